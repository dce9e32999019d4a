"""The table of deployment targets: one `TargetSpec` row per target, read by the CLI choices, `doctor`, `destroy`
and device lookup. The target names ("v1", "v2") are spelled in names.py, which the settings schema reads without
importing this table; adding a target is a new package, its name there and one row here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from deeplens_cli.aws import maybe, service_unavailable, translate_error
from deeplens_cli.errors import DeeplensError
from deeplens_cli.targets.base import NAME_ATTRIBUTE, TARGET_ATTRIBUTE
from deeplens_cli.targets.iot import NOT_FOUND, PENDING_ATTRIBUTE
from deeplens_cli.targets.names import TARGET_NAMES, V1, V2

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.cli.output import Reporter
    from deeplens_cli.settings.config import Settings
    from deeplens_cli.targets.base import Device, Target
    from deeplens_cli.targets.iot import ExistingIot


@dataclass(frozen=True)
class TargetSpec:
    """What the rest of the tool needs to know about a target without importing it."""

    name: str  # the CLI choice (`--greengrass NAME`), the config value and the thing attribute deeplens_target
    description: str
    factory: Callable[[AwsContext, Settings], Target]  # imports the target package only when called
    probe: Callable[[AwsContext], Any]  # doctor: one cheap read that answers when the target's API is there
    unavailable: tuple[str, str]  # doctor: (detail, hint) when the probe finds no such API
    thing_for: Callable[[str, str, str], str] = lambda account, region, name: name  # (account, region, device
    # name) -> the device's deterministic IoT thing name: per-device commands find a device with one DescribeThing
    fleets: bool = False  # deploys to thing groups (FleetTarget)
    lambda_function: bool = False  # publishes an AWS Lambda function (doctor checks its runtime)
    retired: bool = False  # retired on AWS (still works against emulators)


def _make_v1(ctx: AwsContext, settings: Settings) -> Target:
    from deeplens_cli.targets.greengrass_v1 import GreengrassV1Target

    return GreengrassV1Target(ctx, settings)


def _v1_thing(account: str, region: str, name: str) -> str:
    from deeplens_cli.targets.greengrass_v1.naming import thing_name_for

    return thing_name_for(account, region, name)


def _v2_thing(account: str, region: str, name: str) -> str:
    from deeplens_cli.targets.greengrass_v2.naming import thing_name

    return thing_name(name)


def _make_v2(ctx: AwsContext, settings: Settings) -> Target:
    from deeplens_cli.targets.greengrass_v2 import GreengrassV2Target

    return GreengrassV2Target(ctx, settings)


TARGET_SPECS: tuple[TargetSpec, ...] = (
    TargetSpec(
        V1, "DeepLens classic: Greengrass V1 group + pinned Lambda (emulators only since 2026-10-07)", _make_v1,
        lambda ctx: ctx.client("greengrass").list_groups(MaxResults="1"),
        ("the Greengrass V1 API does not answer: V1 reached end of support on {end_of_support} and is retired on "
         "AWS",
         "use Greengrass V2 (register-device --greengrass v2, the default): any Linux camera, including a DeepLens "
         "reflashed with Ubuntu, runs the V2 nucleus; the V1 path still works against emulators"),
        thing_for=_v1_thing, lambda_function=True, retired=True),
    TargetSpec(
        V2, "Greengrass V2: any Linux camera runs the nucleus and the published component", _make_v2,
        lambda ctx: ctx.client("greengrassv2").list_core_devices(maxResults=1),
        ("the Greengrass V2 API does not answer at this endpoint",
         "an emulator without Greengrass V2 (moto has none): use --greengrass v1 there"),
        thing_for=_v2_thing, fleets=True),
)


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


def each_target(ctx: AwsContext, settings: Settings, read: Callable[[Target], list[Any]],
                reporter: Reporter | None = None) -> list[Any]:
    """`read(target)` for every target, concatenated.

    A target whose API is not there (Greengrass V1 is retired on real AWS, moto has no Greengrass V2) contributes
    nothing. Anything else - no credentials, access denied, throttling - is raised, and so is the first error when
    no target answers at all, so a broken setup is never reported as "no such device".
    """
    found: list[Any] = []
    unavailable: list[BaseException] = []
    for name in TARGET_NAMES:
        try:
            found.extend(read(make_target(name, ctx, settings)))
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
    return found


def all_devices(ctx: AwsContext, settings: Settings, reporter: Reporter | None = None) -> list[Device]:
    """Devices of every target (their things listed in pages; see `each_target` for unavailable targets)."""
    return each_target(ctx, settings, lambda target: target.list_devices(), reporter)


def lookup_device(ctx: AwsContext, settings: Settings, name: str, reporter: Reporter | None = None,
                  include_incomplete: bool = False, console_groups: bool = True,
                  known: ExistingIot | None = None) -> list[Device]:
    """The devices registered as `name`, read by their deterministic thing names: one DescribeThing per target,
    whatever the size of the fleet (never a listing of things).

    `name` may also be a thing name (DescribeThing of it). With `include_incomplete`, a registration that was
    interrupted (the name still pending) counts too - register-device resumes it; other commands do not pick up
    a half-registered device. A DeepLens registered by its console is named by its Greengrass V1 group only,
    which V1 cannot look up by name: one ListGroups listing (read once, shared with the V1 device's own group;
    one refused call where V1 is retired). One ListThings filtered on the name attribute (IoT filters it: one
    call in any fleet) finds a thing named otherwise, so a stale registration makes the name ambiguous.
    `console_groups=False` skips both last resorts (register-device makes its own names). With `known` (the
    account's thing names, read once for many names) a thing that is not listed is not described.
    """
    iot = ctx.client("iot")
    targets: dict[str, Target] = {}

    def target_named(target_name: str) -> Target:
        if target_name not in targets:
            targets[target_name] = make_target(target_name, ctx, settings)
        return targets[target_name]

    found: dict[str, Device] = {}
    candidates = [(spec, spec.thing_for(ctx.account_id, ctx.region, name)) for spec in TARGET_SPECS]
    if name.startswith("deeplens"):  # both targets' thing names do: a thing name given instead of a device name
        candidates.append((None, name))
    for spec, thing in candidates:
        if thing in found:
            continue
        if known is not None and known.lacks_thing(thing):
            continue
        described = maybe(
            lambda thing=thing: iot.describe_thing(thingName=thing), NOT_FOUND + ("InvalidRequestException",)
        )
        attributes = (described or {}).get("attributes") or {}
        target = attributes.get(TARGET_ATTRIBUTE)
        if described is None or target not in TARGET_NAMES or (spec is not None and target != spec.name):
            continue
        names = (attributes.get(NAME_ATTRIBUTE),) + ((attributes.get(PENDING_ATTRIBUTE),) if include_incomplete else ())
        if spec is not None and name not in names:
            continue
        if spec is None and not (attributes.get(NAME_ATTRIBUTE) or include_incomplete):
            continue
        found[thing] = target_named(target).device_from_thing(described)
    if console_groups:  # a thing not named the deterministic way (a stale registration, made by hand or by another
        # tool): one ListThings filtered on the name attribute - IoT filters it, so one call in a fleet of any size
        for thing in iot.list_things(attributeName=NAME_ATTRIBUTE, attributeValue=name, maxResults=10).get(
            "things", []
        ):
            target = (thing.get("attributes") or {}).get(TARGET_ATTRIBUTE)
            if target in TARGET_NAMES and thing["thingName"] not in found:
                found[thing["thingName"]] = target_named(target).device_from_thing(thing)
    if console_groups:
        try:  # a DeepLens registered by its console: only its Greengrass V1 group carries the name
            for device in target_named(V1).unmanaged_devices(name):
                found.setdefault(device.thing_name, device)
        except Exception as exc:  # noqa: BLE001 - the retired V1 API not answering means "no such device"
            if not service_unavailable(exc):
                raise
            if reporter is not None:
                reporter.debug(f"Greengrass v1 groups unavailable: {exc}")
    return sorted(found.values(), key=lambda d: (d.target, d.thing_name))


def find_device(ctx: AwsContext, settings: Settings, name: str, reporter: Reporter | None = None) -> Device:
    """The device called `name` (our stored name, a V1 console group name, or a thing name), found in the same
    few calls in a fleet of any size (`lookup_device`).

    Ambiguous -> error listing the candidates; unknown -> error naming it (exit 1).
    """
    found = lookup_device(ctx, settings, name, reporter)
    if len(found) > 1:
        listed = ", ".join(f"{d.thing_name} ({d.target})" for d in found)
        raise DeeplensError(f"device name '{name}' is ambiguous: {listed}",
                            "pass the thing name instead, or destroy the stale registration")
    if not found:
        known = ", ".join(_some_device_names(ctx)) or "none"
        raise DeeplensError(f"no device named '{name}' (registered devices: {known})",
                            "check the name, or register it with `deeplens-cli register-device --name NAME`")
    return found[0]


SOME_NAMES = 10  # an unknown name's error shows this many registered names: one small page, whatever the fleet


def _some_device_names(ctx: AwsContext) -> list[str]:
    """A few registered device names for an error message: one ListThings page of SOME_NAMES per target."""
    names: set[str] = set()
    for target in TARGET_NAMES:
        page = ctx.client("iot").list_things(attributeName=TARGET_ATTRIBUTE, attributeValue=target,
                                             maxResults=SOME_NAMES)
        names.update(n for n in ((t.get("attributes") or {}).get(NAME_ATTRIBUTE) for t in page.get("things", [])) if n)
    return sorted(names)[:SOME_NAMES] + (["..."] if len(names) >= SOME_NAMES else [])
