"""Greengrass V1 status: thing, certificate, core, group role, deployed project and last deployment; and the
published function. Read-only.

Functions of the target's `V1Context`. From the siblings: the group reads (`groups`), the last deployment
(`deploy.last_deployment`, through the status seam), the function zip (`lambda_publish.package`,
`device_python`), which function is ours (`project.is_our_function`) and the certificates
(`register.device_certificates`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deeplens_cli.aws import collect, maybe
from deeplens_cli.targets.base import Device, DeviceStatus, ProjectStatus
from deeplens_cli.targets.greengrass_v1.deploy import last_deployment
from deeplens_cli.targets.greengrass_v1.groups import (
    current_items,
    definition_items,
    groups_by_name,
    read_group,
)
from deeplens_cli.targets.greengrass_v1.lambda_publish import device_python, package
from deeplens_cli.targets.greengrass_v1.naming import TARGET
from deeplens_cli.targets.greengrass_v1.project import is_our_function
from deeplens_cli.targets.greengrass_v1.register import device_certificates
from deeplens_cli.targets.iot import NOT_FOUND
from deeplens_cli.targets.package import vendor_dir_if_cached

if TYPE_CHECKING:
    from deeplens_cli.targets.greengrass_v1.context import V1Context

V1_FULL_READS = 10  # V1 devices read in full by fleet views without --details (no bulk read of V1 deployments)


def fleet_statuses(v1: V1Context, devices: list[Device], details: bool = False) -> dict[str, DeviceStatus]:
    """What the bulk reads tell about every device: the thing (ListThings, already read) and its group
    (ListGroups: exists, has a version). Greengrass V1 has no bulk read of deployments, cores or roles - its
    ListDeployments is per group - so the deployment state is "unknown" here; `--details` (or
    `status --device`) reads each device in full (about eight calls a device). Up to V1_FULL_READS devices
    are always read in full (a bounded, constant cost), so a small V1 fleet's `status` still sees a failed
    deployment; beyond that the summary says "unknown" and `--details` reads them.
    """
    groups = {g["Id"]: g for g in groups_by_name(v1).values()}
    statuses: dict[str, DeviceStatus] = {}
    details = details or len(devices) <= V1_FULL_READS  # a bounded number of full reads is a constant cost
    for device in devices:
        if details:
            statuses[device.thing_name] = device_status(v1, device)
            continue
        problems: list[str] = []
        if device.details.get("registration") == "incomplete":
            problems.append("registration incomplete (run register-device again)")
        group = groups.get(device.group_id or "")
        if group is None:
            problems.append("no Greengrass group")
        elif not group.get("LatestVersion"):
            problems.append("the group has no version")
        statuses[device.thing_name] = DeviceStatus(
            health="ok" if not problems else "problem", problems=tuple(problems),
            health_detail="summary: thing and group only (use --details for deployments)",
            last_deployment_status="unknown",
            details={"target": TARGET, "summary_only": True, "group": device.group_name})
    return statuses


def device_status(v1: V1Context, device: Device) -> DeviceStatus:
    """Thing, certificate, core, group role, the deployed project and the last deployment (reads only)."""
    problems: list[str] = []
    info: dict[str, Any] = {"target": TARGET, "thing": device.thing_name, "group": device.group_name,
                            "group_id": device.group_id}
    if device.details.get("registration") == "incomplete":
        problems.append("registration incomplete (run register-device again)")
    thing = maybe(lambda: v1.iot.describe_thing(thingName=device.thing_name), NOT_FOUND)
    info["thing_exists"] = thing is not None
    if thing is None:
        problems.append(f"IoT thing {device.thing_name} missing")
    certificates = device_certificates(v1, device.thing_name) if thing else []
    info["certificates"] = [{"id": c.id, "status": c.status} for c in certificates]
    if thing and not any(c.status == "ACTIVE" for c in certificates):
        problems.append("no active certificate")
    group = read_group(v1, device.group_id) if device.group_id else None
    info["group_version"] = group.latest_version if group else None
    if group is None:
        problems.append("no Greengrass group")
    else:
        core = definition_items(v1, group.core_version_arn)[0] if group.core_version_arn else None
        info["core"] = core.get("ThingArn") if core else None
        if core is None:
            problems.append("the group has no core")
        elif core.get("ThingArn", "").rsplit("/", 1)[-1] != device.thing_name:
            problems.append("the group's core is another thing")
        associated = maybe(lambda: v1.gg.get_associated_role(GroupId=group.id), NOT_FOUND)
        info["group_role"] = (associated or {}).get("RoleArn")
        if not info["group_role"]:
            problems.append("no group role")
        project = [f for f in current_items(v1, group, "functions") if is_our_function(v1.settings, f)]
        info["function_version_arn"] = project[0]["FunctionArn"] if project else None
        last = last_deployment(v1, group.id)
        info["last_deployment"] = last
        info["last_deployment_id"] = last["id"] if last else None
        info["last_deployment_status"] = last["status"] if last else "never"
        if last is None:
            problems.append("never deployed")
        elif last["status"] != "Success":
            problems.append(f"last deployment {last['status']}" + (f": {last['error_message']}"
                                                                   if last.get("error_message") else ""))
        elif last["group_version"] != group.latest_version:
            problems.append("the latest group version is not deployed")
    last = info.get("last_deployment")
    return DeviceStatus(health="ok" if not problems else "problem", problems=tuple(problems),
                        last_deployment_id=last["id"] if last else None,
                        last_deployment_status=last["status"] if last else "never",
                        last_deployment_error=last.get("error_message") if last else None, details=info)


def project_status(v1: V1Context) -> ProjectStatus:
    """The published function: latest version, its CodeSha256, and whether it matches the local build."""
    function_name = v1.settings["function.name"]
    status: dict[str, Any] = {"target": TARGET, "kind": "lambda-function", "name": function_name}
    current = maybe(lambda: v1.lam.get_function(FunctionName=function_name), ("ResourceNotFoundException",))
    status["exists"] = current is not None
    if current is None:
        return ProjectStatus(TARGET, function_name, False, problems=("function not published (run publish or deploy)",),
                             details=status)
    versions = [v for v in collect(v1.lam, "list_versions_by_function", "Versions", FunctionName=function_name)
                if v.get("Version") != "$LATEST"]
    latest = max(versions, key=lambda v: int(v["Version"]), default=None)
    status.update(latest_version=latest["Version"] if latest else None,
                  version_arn=latest["FunctionArn"] if latest else None,
                  code_sha256=latest["CodeSha256"] if latest else current["Configuration"].get("CodeSha256"),
                  runtime=current["Configuration"].get("Runtime"))
    vendor = v1.settings["function.vendor"]
    if vendor and vendor_dir_if_cached(vendor, device_python(v1.settings)) is None:
        status["local_code_sha256"] = None  # would need pip (maybe the network): not for a status command
    else:
        status["local_code_sha256"] = package(v1).code_sha256_b64
    status["up_to_date"] = status["local_code_sha256"] == status["code_sha256"] if status["local_code_sha256"] else None
    status["problems"] = [] if latest else ["no published version"]
    if status["up_to_date"] is False:
        status["problems"].append("local edge_function differs from the published version (run deploy)")
    return ProjectStatus(TARGET, function_name, True, status["latest_version"], status["code_sha256"],
                         status["up_to_date"], tuple(status.pop("problems")), details=status)
