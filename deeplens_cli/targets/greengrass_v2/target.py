"""The Greengrass V2 `Target` (and `FleetTarget`) of targets/base.py: a thin facade over the concern modules.

One instance holds one `V2Context` (context.py: AWS context, settings, the component build, the caches) and
passes it to the concern functions it delegates to; it holds no logic of its own. Which concern uses which
(module-level imports, acyclic; tests/hardening/test_layout.py checks it):

    register      uses no other concern; used by provisioning (shared_registration_reads, plan_thing_group)
                  and deploy (plan_core_policy)
    publish       uses no other concern; used by deploy and fleet (plan_component), status and destroy
                  (component_versions)
    reads         uses no other concern: the read-only lookups (device list, thing ARN, core device,
                  deployments, installed components, fleet members, failed IoT job executions)
    deploy        uses publish, register, reads
    fleet         uses deploy (plan_deployment, nucleus_pin), publish, reads, status (CORE_DEVICES_PAGE)
    status        uses publish, reads
    destroy       uses publish, reads, claim_teardown
    provisioning  uses register, claim_guard
    claim_guard   uses no other concern (claim_hook.py is the pre-provisioning hook's own code, plain Python)
    claim_teardown uses provisioning (ClaimNames), claim_guard; used by destroy

Tests call the facade's `_device_configuration` (a device's own settings); it forwards to deploy.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from deeplens_cli.targets import iot as device_iot
from deeplens_cli.targets.greengrass_v2 import deploy, destroy, provisioning, publish, reads, register, status
from deeplens_cli.targets.greengrass_v2 import fleet as fleets
from deeplens_cli.targets.greengrass_v2.context import V2Context
from deeplens_cli.targets.greengrass_v2.naming import TARGET

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.cli.output import Reporter
    from deeplens_cli.engine.plan import Plan
    from deeplens_cli.settings.config import Settings
    from deeplens_cli.targets.base import (
        DeploymentOutcome,
        DeploymentRef,
        Device,
        DeviceStatus,
        ProjectStatus,
    )
    from deeplens_cli.targets.greengrass_v2 import component as comp
    from deeplens_cli.targets.iot import ExistingIot
    from deeplens_cli.targets.package import Package


class GreengrassV2Target:
    """Greengrass V2: IoT thing + certificate + policy per device, one component, thing/thing-group deployments."""

    name = TARGET

    def __init__(self, ctx: AwsContext, settings: Settings, package: Package | None = None) -> None:
        # tests pass a prebuilt zip as `package`; otherwise package.build_package() runs on first use
        self.v2 = V2Context(ctx, settings, package)

    @property
    def ctx(self) -> AwsContext:
        return self.v2.ctx

    @property
    def settings(self) -> Settings:
        return self.v2.settings

    @property
    def partition(self) -> str:
        return self.v2.partition

    @property
    def component_name(self) -> str:
        return self.v2.component_name

    def component(self) -> comp.ComponentBuild:
        return self.v2.component()

    # -- devices (Target) ---------------------------------------------------------------------------------

    def list_devices(self) -> list[Device]:
        return reads.list_devices(self.v2)

    def device_from_thing(self, thing: Mapping[str, Any]) -> Device:
        """The device a DescribeThing / ListThings entry stands for."""
        return device_iot.device_from_thing(thing, TARGET)

    def plan_register_device(self, name: str, out_dir: str, fleet: str | None = None,
                             known: ExistingIot | None = None) -> Plan:
        return register.plan_register_device(self.v2, name, out_dir, fleet, known)

    def plan_join_fleet(self, device: Device, fleet: str) -> Plan:
        return register.plan_join_fleet(self.v2, device, fleet)

    def plan_claim_provisioning(self, fleet: str, out_dir: str, allow: Sequence[str] = (),
                                rotate: bool = False) -> Plan:
        return provisioning.plan_claim_provisioning(self.v2, fleet, out_dir, allow, rotate)

    # -- publish and deploy (Target) ----------------------------------------------------------------------

    def plan_publish(self) -> Plan:
        return publish.plan_publish(self.v2)

    def plan_deploy(self, device: Device, force: bool = False) -> Plan:
        return deploy.plan_deploy(self.v2, device, force)

    def wait_for_deployment(self, device: Device, deployment: DeploymentRef, timeout_s: float,
                            reporter: Reporter) -> DeploymentOutcome:
        return deploy.wait_for_deployment(self.v2, device, deployment, timeout_s, reporter)

    def _device_configuration(self, name: str) -> dict[str, Any]:
        return deploy.device_configuration(self.v2, name)

    # -- fleets (FleetTarget) -----------------------------------------------------------------------------

    def plan_deploy_fleet(self, fleet: str, force: bool = False, rollout_per_minute: int | None = None,
                          abort_failure_percent: float | None = None) -> Plan:
        return fleets.plan_deploy_fleet(self.v2, fleet, force, rollout_per_minute, abort_failure_percent)

    def wait_for_fleet(self, fleet: str, deployment: DeploymentRef | None, timeout_s: float,
                       reporter: Reporter) -> DeploymentOutcome:
        return fleets.wait_for_fleet(self.v2, fleet, deployment, timeout_s, reporter)

    # -- status and destroy (Target) ----------------------------------------------------------------------

    def device_status(self, device: Device) -> DeviceStatus:
        return status.device_status(self.v2, device)

    def fleet_statuses(self, devices: list[Device], details: bool = False) -> dict[str, DeviceStatus]:
        return status.fleet_statuses(self.v2, devices, details)

    def project_status(self) -> ProjectStatus:
        return status.project_status(self.v2)

    def plan_destroy(self, device: Device | None) -> Plan:
        return destroy.plan_destroy(self.v2, device)
