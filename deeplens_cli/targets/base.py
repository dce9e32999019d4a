"""The contract between the commands and a deployment target: the `Target` protocol and the typed values that
cross it (`Device`, `DeploymentRef`, `DeploymentOutcome`).

Commands never look inside a target: they find a `Device`, ask its target for plans, and wait on a
`DeploymentRef` for a `DeploymentOutcome`. A new target implements `Target` in its own package and adds one row
to registry.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol

if TYPE_CHECKING:
    from deeplens_cli.output import Reporter
    from deeplens_cli.plan import Plan

NAME_ATTRIBUTE = "deeplens_name"  # IoT thing attribute holding the user's device name
TARGET_ATTRIBUTE = "deeplens_target"  # the registry name of the device's target


@dataclass(frozen=True)
class Device:
    """A registered device as found in AWS."""

    name: str  # the name the user gave (`register-device --name`)
    target: str  # a registry name (registry.TARGET_NAMES)
    thing_name: str
    thing_arn: str | None = None
    group_id: str | None = None  # Greengrass V1 group of the device
    group_name: str | None = None
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "target": self.target, "thing_name": self.thing_name, "thing_arn": self.thing_arn,
                "group_id": self.group_id, "group_name": self.group_name, **self.details}


@dataclass(frozen=True)
class DeploymentOutcome:
    """How a deployment ended, as the device reported it."""

    deployment_id: str | None
    status: str  # "succeeded" | "failed" | "timed_out" | "not_waited"
    detail: str = ""
    errors: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"deployment_id": self.deployment_id, "status": self.status, "detail": self.detail,
                "errors": list(self.errors), **self.extra}


@dataclass(frozen=True)
class DeploymentRef:
    """Which deployment to wait for: its id and, where the target installs a versioned component, that version.

    Built from what a plan's execution produced (`from_variables`), or from a device's status when a re-run
    waits for a deployment an earlier run left pending.
    """

    deployment_id: str | None
    component_version: str | None = None

    @classmethod
    def from_variables(cls, variables: Mapping[str, Any]) -> DeploymentRef:
        return cls(variables.get("deployment_id"), variables.get("component_version"))


class FleetTarget(Protocol):
    """Greengrass V2 only: deployments to an IoT thing group, rolled out by IoT jobs."""

    def plan_deploy_fleet(self, fleet: str, force: bool = False, rollout_per_minute: int | None = None,
                          abort_failure_percent: float | None = None) -> Plan: ...

    def wait_for_fleet(self, fleet: str, deployment: DeploymentRef | None, timeout_s: float,
                       reporter: Reporter) -> DeploymentOutcome: ...


class Target(Protocol):
    name: str  # its registry name

    def list_devices(self) -> list[Device]:
        """Every device of this target registered by deeplens-cli (or recognisable as a DeepLens)."""

    def plan_register_device(self, name: str, out_dir: str, fleet: str | None = None) -> Plan:
        """Thing, certificate, policies and target resources; a LocalStep writes the bundle to out_dir."""

    def plan_publish(self) -> Plan:
        """Package the edge function and publish it (Lambda version / component version) when it changed."""

    def plan_deploy(self, device: Device, force: bool = False) -> Plan:
        """Publish plus the project/deployment for one device (no new deployment when nothing changed)."""

    def wait_for_deployment(self, device: Device, deployment: DeploymentRef, timeout_s: float,
                            reporter: Reporter) -> DeploymentOutcome:
        """Poll until the device reports success/failure or the timeout passes."""

    def device_status(self, device: Device) -> dict[str, Any]:
        """Health, project and last deployment of one device (read-only)."""

    def plan_destroy(self, device: Device | None) -> Plan:
        """Remove, in safe order, what deeplens-cli created for `device`; with None, the target's shared resources
        (published function versions / component versions) once no device of this target is left."""

    def project_status(self) -> dict[str, Any]:
        """The published function (V1: name, latest version, CodeSha256) or component (V2: latest version, state)."""


