"""The table of deployment targets: one `TargetSpec` row per target, read by the CLI choices, config
validation, `doctor`, `destroy` and device lookup. The target names ("v1", "v2") are spelled here and in the
target packages only; adding a target is a new package plus one row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from deeplens_cli.errors import DeeplensError

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.config import Settings
    from deeplens_cli.output import Reporter
    from deeplens_cli.targets.base import Device, Target


@dataclass(frozen=True)
class TargetSpec:
    """What the rest of the tool needs to know about a target without importing it."""

    name: str  # the CLI choice (`--greengrass NAME`), the config value and the thing attribute deeplens_target
    description: str
    factory: Callable[[AwsContext, Settings], Target]  # imports the target package only when called
    probe: Callable[[AwsContext], Any]  # doctor: one cheap read that answers when the target's API is there
    unavailable: tuple[str, str]  # doctor: (detail, hint) when the probe finds no such API
    fleets: bool = False  # deploys to thing groups (FleetTarget)
    lambda_function: bool = False  # publishes an AWS Lambda function (doctor checks its runtime)
    retired: bool = False  # retired on AWS (still works against emulators)


def _make_v1(ctx: AwsContext, settings: Settings) -> Target:
    from deeplens_cli.targets.greengrass_v1 import GreengrassV1Target

    return GreengrassV1Target(ctx, settings)


def _make_v2(ctx: AwsContext, settings: Settings) -> Target:
    from deeplens_cli.targets.greengrass_v2 import GreengrassV2Target

    return GreengrassV2Target(ctx, settings)


TARGET_SPECS: tuple[TargetSpec, ...] = (
    TargetSpec(
        "v1", "DeepLens classic: Greengrass V1 group + pinned Lambda (emulators only since 2026-10-07)", _make_v1,
        lambda ctx: ctx.client("greengrass").list_groups(MaxResults="1"),
        ("the Greengrass V1 API does not answer: V1 reached end of support on {end_of_support} and is retired on "
         "AWS",
         "use Greengrass V2 (register-device --greengrass v2, the default): any Linux camera, including a DeepLens "
         "reflashed with Ubuntu, runs the V2 nucleus; the V1 path still works against emulators"),
        lambda_function=True, retired=True),
    TargetSpec(
        "v2", "Greengrass V2: any Linux camera runs the nucleus and the published component", _make_v2,
        lambda ctx: ctx.client("greengrassv2").list_core_devices(maxResults=1),
        ("the Greengrass V2 API does not answer at this endpoint",
         "an emulator without Greengrass V2 (moto has none): use --greengrass v1 there"),
        fleets=True),
)
TARGET_NAMES = tuple(spec.name for spec in TARGET_SPECS)
DEFAULT_TARGET = "v2"  # register-device without --greengrass (config greengrass.default_target)


def spec_for(name: str) -> TargetSpec:
    for spec in TARGET_SPECS:
        if spec.name == name:
            return spec
    raise DeeplensError(f"unknown Greengrass target '{name}'", "use " + " or ".join(TARGET_NAMES))


def fleet_target_name() -> str:
    """The target that deploys to fleets (thing groups)."""
    return next(spec.name for spec in TARGET_SPECS if spec.fleets)


def make_target(name: str, ctx: AwsContext, settings: Settings) -> Target:
    return spec_for(name).factory(ctx, settings)


def all_devices(ctx: AwsContext, settings: Settings, reporter: Reporter | None = None) -> list[Device]:
    """Devices of every target.

    A target whose API is not there (Greengrass V1 is retired on real AWS, moto has no Greengrass V2) contributes
    none. Anything else - no credentials, access denied, throttling - is raised, and so is the first error when
    no target answers at all, so a broken setup is never reported as "no such device".
    """
    from deeplens_cli.aws import service_unavailable, translate_error

    devices: list[Device] = []
    unavailable: list[BaseException] = []
    for name in TARGET_NAMES:
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
    if len(unavailable) == len(TARGET_NAMES):
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
