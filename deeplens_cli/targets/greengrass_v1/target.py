"""The Greengrass V1 `Target` (targets/base.py): a thin facade. It builds the one `V1Context` an instance holds
(AWS context, settings, the deployment status source, the clock, the caches) and hands it to the function of
each concern:

    register.py        plan_register_device (and the device's certificates, for status and destroy)
    lambda_publish.py  plan_publish, add_publish_actions (deploy puts the function first in its plan)
    project.py         desired_project: the group content as data, pure
    deploy.py          plan_deploy, wait_for_deployment, last_deployment
    devices.py         list_devices, device_from_thing, unmanaged_devices
    status.py          device_status, fleet_statuses, project_status
    destroy.py         plan_destroy
    groups.py          the group and definition reads all of them share

Nothing is decided here; a change of behaviour goes into the concern's module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from deeplens_cli.targets.greengrass_v1 import deploy, destroy, devices, lambda_publish, register, status
from deeplens_cli.targets.greengrass_v1.context import DeploymentStatusSource, V1Context, api_status_source
from deeplens_cli.targets.greengrass_v1.naming import TARGET

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
    from deeplens_cli.targets.iot import ExistingIot


def status_source_for(ctx: AwsContext) -> DeploymentStatusSource:
    """Where targets built without a `deployment_status` read it: the API (tests replace this function)."""
    return api_status_source(ctx)


class GreengrassV1Target:
    """`Target` implementation for DeepLens / Greengrass V1 cores (see the package docstring)."""

    name = TARGET

    def __init__(self, ctx: AwsContext, settings: Settings,
                 deployment_status: DeploymentStatusSource | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        # the context's clock unless a test passes its own: wall time, or simulated time with an injected sleep
        self.v1 = V1Context(ctx, settings, deployment_status or status_source_for(ctx), clock or ctx.clock)

    @property
    def ctx(self) -> AwsContext:
        return self.v1.ctx

    @property
    def settings(self) -> Settings:
        return self.v1.settings

    def role_arn(self, role_name: str) -> str:
        return self.v1.role_arn(role_name)

    # -- the Target protocol ------------------------------------------------------------------------------

    def list_devices(self) -> list[Device]:
        return devices.list_devices(self.v1)

    def device_from_thing(self, thing: Mapping[str, Any]) -> Device:
        return devices.device_from_thing(self.v1, thing)

    def unmanaged_devices(self, name: str) -> list[Device]:
        return devices.unmanaged_devices(self.v1, name)

    def plan_register_device(self, name: str, out_dir: str, fleet: str | None = None,
                             known: ExistingIot | None = None) -> Plan:
        """`known` is accepted for the protocol; V1 reads its device's thing and policy itself (V1 is retired)."""
        return register.plan_register_device(self.v1, name, out_dir, fleet)

    def plan_publish(self) -> Plan:
        return lambda_publish.plan_publish(self.v1)

    def desired_function_configuration(self, role_arn: str) -> dict[str, Any]:
        return lambda_publish.desired_function_configuration(self.v1.settings, role_arn)

    def plan_deploy(self, device: Device, force: bool = False) -> Plan:
        return deploy.plan_deploy(self.v1, device, force)

    def wait_for_deployment(self, device: Device, deployment: DeploymentRef, timeout_s: float,
                            reporter: Reporter) -> DeploymentOutcome:
        return deploy.wait_for_deployment(self.v1, device, deployment, timeout_s, reporter)

    def device_status(self, device: Device) -> DeviceStatus:
        return status.device_status(self.v1, device)

    def fleet_statuses(self, devices: list[Device], details: bool = False) -> dict[str, DeviceStatus]:
        return status.fleet_statuses(self.v1, devices, details)

    def project_status(self) -> ProjectStatus:
        return status.project_status(self.v1)

    def plan_destroy(self, device: Device | None) -> Plan:
        return destroy.plan_destroy(self.v1, device)
