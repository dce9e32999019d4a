"""Which Greengrass V1 devices there are: the things deeplens-cli registered (attribute deeplens_target=v1) with
the group named after each, and the DeepLens devices its console registered, found by their group's core.

Functions of the target's `V1Context`; groups and their cores are read through `groups`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Mapping

from deeplens_cli.aws import collect
from deeplens_cli.targets import iot as device_iot
from deeplens_cli.targets.base import TARGET_ATTRIBUTE, Device
from deeplens_cli.targets.greengrass_v1.groups import group_core, groups_by_name
from deeplens_cli.targets.greengrass_v1.naming import TARGET, group_name_for
from deeplens_cli.targets.iot import PENDING_ATTRIBUTE

if TYPE_CHECKING:
    from deeplens_cli.targets.greengrass_v1.context import V1Context


def list_devices(v1: V1Context) -> list[Device]:
    """Our registered things (attribute deeplens_target=v1), plus groups whose core is a `deeplens_` thing
    that we did not register (devices registered by the DeepLens console)."""
    things = collect(v1.iot, "list_things", "things", attributeName=TARGET_ATTRIBUTE, attributeValue=TARGET)
    groups = collect(v1.gg, "list_groups", "Groups")
    by_name = {group["Name"]: group for group in groups if "Name" in group}
    devices: list[Device] = []
    claimed: set[str] = set()
    for thing in things:
        device = device_iot.device_from_thing(thing, TARGET, managed=True)
        if device.details.get("registration") == device_iot.INCOMPLETE:
            group = by_name.get(group_name_for((thing.get("attributes") or {}).get(PENDING_ATTRIBUTE, "")))
        else:
            group = by_name.get(group_name_for(device.name))
        if group:
            claimed.add(group["Id"])
            device = replace(device, group_id=group["Id"], group_name=group["Name"])
        devices.append(device)
    ours = {d.thing_name for d in devices}
    for group in groups:
        if group["Id"] in claimed or not group.get("LatestVersion"):
            continue
        unmanaged = console_device(v1, group)
        if unmanaged is not None and unmanaged.thing_name not in ours:
            devices.append(unmanaged)
    return devices


def device_from_thing(v1: V1Context, thing: Mapping[str, Any]) -> Device:
    """The device a DescribeThing entry stands for, with its group (named after the device)."""
    device = device_iot.device_from_thing(thing, TARGET, managed=True)
    incomplete = device.details.get("registration") == device_iot.INCOMPLETE
    name = device.details.get("pending_name", "") if incomplete else device.name
    group = groups_by_name(v1).get(group_name_for(name))
    return replace(device, group_id=group["Id"], group_name=group["Name"]) if group else device


def unmanaged_devices(v1: V1Context, name: str) -> list[Device]:
    """A DeepLens registered by its console, named by its group: the group's core is a `deeplens_` thing."""
    group = groups_by_name(v1).get(name)
    if group is None or not group.get("LatestVersion"):
        return []
    device = console_device(v1, group)
    return [device] if device is not None else []


def console_device(v1: V1Context, group: Mapping[str, Any]) -> Device | None:
    """The device a listed group (with a version) stands for when its core is a `deeplens_` thing, else None."""
    core = group_core(v1, group["Id"], group["LatestVersion"])
    thing_name = core["ThingArn"].rsplit("/", 1)[-1] if core else ""
    if not thing_name.startswith("deeplens_"):
        return None
    return Device(name=group["Name"], target=TARGET, thing_name=thing_name, thing_arn=core["ThingArn"],
                  group_id=group["Id"], group_name=group["Name"], details={"managed": False})
