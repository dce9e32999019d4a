"""Reading Greengrass V1 groups and their definition versions (immutable, so each is read once per target).

Pure helpers (ARN parsing, canonical comparison) and read functions that take the target's `V1Context` (the
client and the caches); every other V1 concern reads groups through these.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from deeplens_cli.aws import collect, maybe
from deeplens_cli.errors import DeeplensError
from deeplens_cli.targets.iot import NOT_FOUND

if TYPE_CHECKING:
    from deeplens_cli.targets.greengrass_v1.context import V1Context

DEFINITION_KINDS = {"cores": "Core", "functions": "Function", "resources": "Resource",
                     "subscriptions": "Subscription"}
DEFINITION_ARN = re.compile(r"/definition/(?P<kind>\w+)/(?P<id>[^/]+)/versions/(?P<version>[^/]+)$")


def not_implemented(exc: BaseException) -> bool:
    """moto answers operations it lacks with a bare 404 "Not yet implemented" (or, in server mode, an HTML 404
    page). Only that exact shape means "this endpoint cannot do it"; real AWS errors carry a modeled code."""
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {})
    message = str(error.get("Message", ""))
    return error.get("Code") == "404" and ("Not yet implemented" in message or "<html" in message.lower()
                                           or "<!doctype html" in message.lower())


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def by_id(items: Iterable[Mapping[str, Any]]) -> str:
    return canonical(sorted(items, key=lambda item: str(item.get("Id"))))


def parse_definition_arn(arn: str) -> tuple[str, str, str]:
    """(kind, definition id, version id) of a definition version ARN."""
    match = DEFINITION_ARN.search(arn)
    if not match:
        raise DeeplensError(f"unexpected Greengrass definition version ARN {arn}", "rerun with -v and report it")
    return match["kind"], match["id"], match["version"]


def function_name_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[6] if len(parts) >= 7 and parts[2] == "lambda" else None


@dataclass
class GroupState:
    id: str
    name: str
    latest_version: str | None
    definition: dict[str, str] = field(default_factory=dict)  # Core/Function/... DefinitionVersionArn

    @property
    def core_version_arn(self) -> str | None:
        return self.definition.get("CoreDefinitionVersionArn")


@dataclass(frozen=True)
class GroupContent:
    """What a group's latest version holds besides its core, per kind (the input of `project.desired_project`)."""

    functions: tuple[dict[str, Any], ...] = ()
    resources: tuple[dict[str, Any], ...] = ()
    subscriptions: tuple[dict[str, Any], ...] = ()


# -- reads through the target's state (V1Context: the Greengrass client and the caches) ----------------------


def group_core(v1: V1Context, group_id: str, version: str) -> dict[str, Any] | None:
    definition = group_definition(v1, group_id, version)
    arn = definition.get("CoreDefinitionVersionArn")
    if not arn:
        return None
    cores = definition_items(v1, arn)
    return cores[0] if cores else None


def group_definition(v1: V1Context, group_id: str, version: str) -> dict[str, str]:
    return dict(v1.gg.get_group_version(GroupId=group_id, GroupVersionId=version).get("Definition") or {})


def definition_items(v1: V1Context, version_arn: str) -> list[dict[str, Any]]:
    """Cores / Functions / Resources / Subscriptions of one definition version.

    Definition versions are immutable, so each is read once per target (a plan consults them several times).
    """
    if version_arn not in v1.definition_cache:
        kind, definition_id, version = parse_definition_arn(version_arn)
        label = DEFINITION_KINDS.get(kind)
        if label is None:
            return []
        getter = getattr(v1.gg, f"get_{label.lower()}_definition_version")
        response = getter(**{f"{label}DefinitionId": definition_id, f"{label}DefinitionVersionId": version})
        v1.definition_cache[version_arn] = list((response.get("Definition") or {}).get(f"{label}s", []))
    return [dict(item) for item in v1.definition_cache[version_arn]]


def current_items(v1: V1Context, group: GroupState, kind: str) -> list[dict[str, Any]]:
    """The items of one kind ("functions", "resources", ...) the group's latest version holds."""
    arn = group.definition.get(f"{DEFINITION_KINDS[kind]}DefinitionVersionArn")
    return definition_items(v1, arn) if arn else []


def group_content(v1: V1Context, group: GroupState) -> GroupContent:
    return GroupContent(*(tuple(current_items(v1, group, kind))
                          for kind in ("functions", "resources", "subscriptions")))


def read_group(v1: V1Context, group_id: str) -> GroupState | None:
    group = maybe(lambda: v1.gg.get_group(GroupId=group_id), NOT_FOUND)
    if group is None:
        return None
    latest = group.get("LatestVersion")
    definition = group_definition(v1, group_id, latest) if latest else {}
    return GroupState(group["Id"], group.get("Name", ""), latest, definition)


def find_group(v1: V1Context, name: str) -> GroupState | None:
    for group in collect(v1.gg, "list_groups", "Groups"):
        if group.get("Name") == name:
            return read_group(v1, group["Id"])
    return None


def groups_by_name(v1: V1Context) -> dict[str, dict[str, Any]]:
    """Every Greengrass V1 group by name: V1 has no lookup of a group by name, so this is one listing (pages
    of groups, read once per target instance)."""
    if v1.group_listing is None:
        v1.group_listing = {g["Name"]: g for g in collect(v1.gg, "list_groups", "Groups") if "Name" in g}
    return v1.group_listing


def find_definition(v1: V1Context, kind: str, name: str) -> dict[str, Any] | None:
    label = DEFINITION_KINDS[kind]
    for definition in collect(v1.gg, f"list_{label.lower()}_definitions", "Definitions"):
        if definition.get("Name") == name:
            return definition
    return None


def converge_by_name(gg: Any, kind: str, name: str, created_id: str) -> list[str]:
    """Delete the other resources named `name` next to the one just created (`created_id`); their ids.

    A create whose answer was lost on the way back (a connection reset after Greengrass carried it out) is sent
    again by botocore's retry, and Greengrass V1 has no idempotency for it: `AmznClientToken` only correlates
    requests and responses, and the emulator ignores it. So the first copy is found again by its name, right
    after the create, and removed - it is brand new, holds nothing else, and no one else creates this device's
    names while the registration lock is held (registration.registration_lock).
    """
    if kind == "groups":
        listed, delete = collect(gg, "list_groups", "Groups"), lambda i: gg.delete_group(GroupId=i)
    else:
        label = DEFINITION_KINDS[kind]
        listed = collect(gg, f"list_{label.lower()}_definitions", "Definitions")
        delete = lambda i: getattr(gg, f"delete_{label.lower()}_definition")(**{f"{label}DefinitionId": i})  # noqa: E731
    removed = []
    for item in listed:
        if item.get("Name") == name and item.get("Id") != created_id:
            maybe(lambda duplicate=item["Id"]: delete(duplicate), NOT_FOUND + ("IdNotFoundException",))
            removed.append(item["Id"])
    return removed
