"""Deployment targets behind one interface: Greengrass V1 (DeepLens classic) and Greengrass V2.

A device decides its target: `register-device` records it on the IoT thing (attributes `deeplens_name` and
`deeplens_target`), and every later command finds the device by name first and asks the right target. Users
never pass a target flag to `deploy`/`status`/`destroy`.

Each target implements `Target` for one AWS context + settings. Planners only read; mutations are the steps of the
plans they return, executed by `plan.Executor`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from deeplens_cli.errors import DeeplensError

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.config import Settings
    from deeplens_cli.output import Reporter
    from deeplens_cli.plan import ExecutionResult, Plan

NAME_ATTRIBUTE = "deeplens_name"  # IoT thing attribute holding the user's device name
TARGET_ATTRIBUTE = "deeplens_target"  # "v1" | "v2"
TARGETS = ("v1", "v2")


@dataclass(frozen=True)
class Device:
    """A registered device as found in AWS."""

    name: str  # the name the user gave (`register-device --name`)
    target: str  # "v1" | "v2"
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


class FleetTarget(Protocol):
    """Greengrass V2 only: deployments to an IoT thing group, rolled out by IoT jobs."""

    def plan_deploy_fleet(self, fleet: str, force: bool = False, rollout_per_minute: int | None = None,
                          abort_failure_percent: float | None = None) -> Plan: ...

    def wait_for_fleet(self, fleet: str, result: ExecutionResult | None, timeout_s: float,
                       reporter: Reporter) -> DeploymentOutcome: ...


class Target(Protocol):
    name: str  # "v1" | "v2"

    def list_devices(self) -> list[Device]:
        """Every device of this target registered by deeplens-cli (or recognisable as a DeepLens)."""

    def plan_register_device(self, name: str, out_dir: str, fleet: str | None = None) -> Plan:
        """Thing, certificate, policies and target resources; a LocalStep writes the bundle to out_dir."""

    def plan_publish(self) -> Plan:
        """Package the edge function and publish it (Lambda version / component version) when it changed."""

    def plan_deploy(self, device: Device, force: bool = False) -> Plan:
        """Publish plus the project/deployment for one device (no new deployment when nothing changed)."""

    def wait_for_deployment(self, device: Device, result: ExecutionResult, timeout_s: float,
                            reporter: Reporter) -> DeploymentOutcome:
        """Poll until the device reports success/failure or the timeout passes."""

    def device_status(self, device: Device) -> dict[str, Any]:
        """Health, project and last deployment of one device (read-only)."""

    def plan_destroy(self, device: Device | None) -> Plan:
        """Remove, in safe order, what deeplens-cli created for `device`; with None, the target's shared resources
        (published function versions / component versions) once no device of this target is left."""

    def project_status(self) -> dict[str, Any]:
        """The published function (V1: name, latest version, CodeSha256) or component (V2: latest version, state)."""


def make_target(name: str, ctx: AwsContext, settings: Settings) -> Target:
    if name == "v1":
        from deeplens_cli.targets.greengrass_v1 import GreengrassV1Target

        return GreengrassV1Target(ctx, settings)
    if name == "v2":
        from deeplens_cli.targets.greengrass_v2 import GreengrassV2Target

        return GreengrassV2Target(ctx, settings)
    raise DeeplensError(f"unknown Greengrass target '{name}'", "use v1 or v2")


def all_devices(ctx: AwsContext, settings: Settings, reporter: Reporter | None = None) -> list[Device]:
    """Devices of both targets.

    A target whose API is not there (Greengrass V1 is retired on real AWS, moto has no Greengrass V2) contributes
    none. Anything else - no credentials, access denied, throttling - is raised, and so is the first error when
    no target answers at all, so a broken setup is never reported as "no such device".
    """
    from deeplens_cli.aws import service_unavailable, translate_error

    devices: list[Device] = []
    unavailable: list[BaseException] = []
    for name in TARGETS:
        try:
            devices.extend(make_target(name, ctx, settings).list_devices())
        except Exception as exc:  # noqa: BLE001 - one unavailable target must not hide the other
            translated = translate_error(exc, doing=f"listing Greengrass {name} devices")
            if translated is None:
                raise
            if not service_unavailable(exc) and not isinstance(exc, DeeplensError):
                raise translated from exc
            unavailable.append(translated)
            if reporter is not None:
                reporter.debug(f"Greengrass {name} devices unavailable: {translated.one_line()}")
    if len(unavailable) == len(TARGETS):
        raise unavailable[0]
    return devices


def find_device(ctx: AwsContext, settings: Settings, name: str, reporter: Reporter | None = None,
                devices: list[Device] | None = None) -> Device:
    """The device called `name`: our stored name first, then the V1 group name, then the thing name.

    Ambiguous -> error listing the candidates; unknown -> error naming it (exit 1). `devices` is the list a
    caller already read with `all_devices` (listing devices costs several calls per Greengrass group).
    """
    devices = all_devices(ctx, settings, reporter) if devices is None else devices
    for matches_name in (lambda d: d.name == name, lambda d: d.group_name == name, lambda d: d.thing_name == name):
        found = [d for d in devices if matches_name(d)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            listed = ", ".join(f"{d.thing_name} ({d.target})" for d in found)
            raise DeeplensError(f"device name '{name}' is ambiguous: {listed}",
                                "pass the thing name instead, or destroy the stale registration")
    known = ", ".join(sorted({d.name for d in devices})) or "none"
    raise DeeplensError(f"no device named '{name}' (registered devices: {known})",
                        "check the name, or register it with `deeplens-cli register-device --name NAME`")
