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
    from deeplens_cli.cli.output import Reporter
    from deeplens_cli.engine.plan import Plan

NAME_ATTRIBUTE = "deeplens_name"  # IoT thing attribute holding the user's device name
TARGET_ATTRIBUTE = "deeplens_target"  # the registry name of the device's target


@dataclass(frozen=True)
class ExistingIot:
    """The names of every IoT thing and policy in the account, each read with one paginated listing.

    `register-device` with many names reads this once instead of a DescribeThing and a GetPolicy per name and
    target (10,000 names made ~50,000 reads before any change): a thing or policy that is not listed did not
    exist when the run started, so its read is skipped; a listed one is read as before. A name whose
    registration lock had to wait for another run is planned without it (that run may just have created it).
    The listings stop (and the run reads per name, as before) past one page per name: in an account with far
    more things than names to register, per-name reads are the cheaper way.
    """

    things: frozenset[str]
    policies: frozenset[str]

    def lacks_thing(self, thing: str) -> bool:
        return thing not in self.things

    def lacks_policy(self, policy: str) -> bool:
        return policy not in self.policies


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
class DeviceStatus:
    """One device's health as its target reads it (read-only).

    `health` is "ok" when nothing is wrong, else a short word; `problems` says what is wrong. `health_detail` is
    what the device last reported and when, where the target knows it (Greengrass V2 health can be a day old).
    `details` holds what only this target reads (certificates, group, component state); JSON output shows it.
    """

    health: str
    problems: tuple[str, ...] = ()
    health_detail: str | None = None
    last_deployment_id: str | None = None
    last_deployment_status: str | None = None
    last_deployment_error: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {**self.details, "health": self.health, "problems": list(self.problems),
                "health_detail": self.health_detail, "last_deployment_id": self.last_deployment_id,
                "last_deployment_status": self.last_deployment_status,
                "last_deployment_error": self.last_deployment_error}


@dataclass(frozen=True)
class ProjectStatus:
    """What a target published for every device: the Lambda function (V1) or the component (V2)."""

    target: str
    name: str
    exists: bool
    latest_version: str | None = None
    code_sha256: str | None = None
    up_to_date: bool | None = None  # None: unknown (not published, or the local build cannot be made offline)
    problems: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {**self.details, "target": self.target, "name": self.name, "exists": self.exists,
                "latest_version": self.latest_version, "code_sha256": self.code_sha256,
                "up_to_date": self.up_to_date, "problems": list(self.problems)}


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

    def plan_register_device(self, name: str, out_dir: str, fleet: str | None = None,
                             known: ExistingIot | None = None) -> Plan:
        """Thing, certificate, policies and target resources; a LocalStep writes the bundle to out_dir. `known`
        (iot.read_existing, read once for many names) spares the reads of things and policies that do not exist."""

    def plan_publish(self) -> Plan:
        """Package the edge function and publish it (Lambda version / component version) when it changed."""

    def plan_deploy(self, device: Device, force: bool = False) -> Plan:
        """Publish plus the project/deployment for one device (no new deployment when nothing changed)."""

    def wait_for_deployment(self, device: Device, deployment: DeploymentRef, timeout_s: float,
                            reporter: Reporter) -> DeploymentOutcome:
        """Poll until the device reports success/failure or the timeout passes."""

    def device_status(self, device: Device) -> DeviceStatus:
        """Health, project and last deployment of one device (read-only)."""

    def device_from_thing(self, thing: Mapping[str, Any]) -> Device:
        """The device a DescribeThing answer stands for (per-device commands find devices by thing name)."""

    def fleet_statuses(self, devices: list[Device], details: bool = False) -> dict[str, DeviceStatus]:
        """Status of many devices (by thing name) from bulk reads; deep reads only where the summary shows a
        problem it cannot explain, or for every device with `details`."""

    def plan_destroy(self, device: Device | None) -> Plan:
        """Remove, in safe order, what deeplens-cli created for `device`; with None, the target's shared resources
        (published function versions / component versions) once no device of this target is left."""

    def project_status(self) -> ProjectStatus:
        """The published function (V1: name, latest version, CodeSha256) or component (V2: latest version, state)."""


