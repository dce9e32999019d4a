"""Greengrass V2 status: certificates, core device health (with when it was reported), our component's state,
the last effective deployment, and the published component (device_status, fleet_statuses and project_status:
read-only).

Functions of the shared `V2Context` (context.py). Uses publish (`component_versions`) and the shared lookups of
reads.py.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Mapping

from deeplens_cli.aws import collect, maybe
from deeplens_cli.errors import DeeplensError
from deeplens_cli.targets import iot as device_iot
from deeplens_cli.targets.artifacts import artifact_bucket, stored_sha256
from deeplens_cli.targets.base import Device, DeviceStatus, ProjectStatus
from deeplens_cli.targets.greengrass_v2 import component as comp
from deeplens_cli.targets.greengrass_v2.naming import TARGET
from deeplens_cli.targets.greengrass_v2.outcomes import (
    FAILURE_STATUSES,
    RUNNING_STATES,
    SUCCESS_STATUSES,
    describe_failure,
    iso_time,
)
from deeplens_cli.targets.greengrass_v2.publish import component_versions
from deeplens_cli.targets.greengrass_v2.reads import core_device, effective_deployments, installed_components
from deeplens_cli.targets.iot import NOT_FOUND

if TYPE_CHECKING:
    from deeplens_cli.targets.greengrass_v2.context import V2Context

CORE_DEVICES_PAGE = 100  # ListCoreDevices' maximum page (botocore's model)
DEPLOYMENTS_PAGE = 100  # ListDeployments' maximum page
STALE_HEALTH_NOTE = "a core reports at startup, after deployments, when a component breaks and every 24 h by default"


def fleet_statuses(v2: V2Context, devices: list[Device], details: bool = False) -> dict[str, DeviceStatus]:
    """Every device's status from bulk reads: ListCoreDevices (health and last report of 100 cores a page) and
    ListDeployments (the latest deployment of 100 targets a page). Cost: pages, not devices.

    A device whose summary shows something the summary cannot explain - an UNHEALTHY core, a failed or
    canceled latest deployment - gets the per-device deep read (`device_status`), and so does every device
    with `details`. A device that never connected or was never deployed is explained by the summary alone.
    """
    gg = v2.ctx.client("greengrassv2")
    cores = {core["coreDeviceThingName"]: core for core in collect(
        gg, "list_core_devices", "coreDevices", PaginationConfig={"PageSize": CORE_DEVICES_PAGE})}
    latest = {d["targetArn"]: d for d in collect(
        gg, "list_deployments", "deployments", historyFilter="LATEST_ONLY",
        PaginationConfig={"PageSize": DEPLOYMENTS_PAGE}) if d.get("deploymentName") == v2.settings["project.name"]}
    by_fleet: dict[str, Mapping[str, Any]] = {}  # thing -> its fleet's latest deployment (pages of members)
    for arn, deployment in latest.items():
        if ":thinggroup/" in arn:
            for thing in collect(v2.ctx.client("iot"), "list_things_in_thing_group", "things",
                                 thingGroupName=arn.rsplit("/", 1)[-1],
                                 PaginationConfig={"PageSize": device_iot.LIST_THINGS_PAGE}):
                by_fleet.setdefault(thing, deployment)
    statuses: dict[str, DeviceStatus] = {}
    for device in devices:
        own = latest.get(device.thing_arn or device_iot.thing_arn_for(v2.ctx.region, v2.ctx.account_id,
                                                                       device.thing_name))
        summary = _summary_status(v2, device, cores.get(device.thing_name), own or by_fleet.get(device.thing_name))
        deep = details or summary.health in ("unhealthy", "deployment failed")
        statuses[device.thing_name] = device_status(v2, device) if deep else summary
    return statuses


def _summary_status(v2: V2Context, device: Device, core: Mapping[str, Any] | None,
                    deployment: Mapping[str, Any] | None) -> DeviceStatus:
    """What one ListCoreDevices entry and the thing's latest deployment say (no per-device call)."""
    problems: list[str] = []
    info: dict[str, Any] = {"target": TARGET, "thing_name": device.thing_name, "summary_only": True}
    words: list[tuple[int, str]] = []
    if device.details.get("registration") == "incomplete":
        problems.append("registration incomplete (run register-device again with the same --out)")
        words.append((0, "incomplete"))
    if core is None:
        detail = "never connected to Greengrass"
        problems.append("the device has never connected (install the nucleus with the bundle's install.sh)")
        words.append((1, "never connected"))
    else:
        reported = core.get("lastStatusUpdateTimestamp")
        detail = f"{core.get('status')}, reported {_age(reported) or 'at an unknown time'}"
        info.update(core_status=core.get("status"), health_reported_at=iso_time(reported),
                    health_caveat=f"Greengrass V2 health is what the core last reported and can be stale: "
                                  f"{STALE_HEALTH_NOTE}",
                    runtime=core.get("runtime"))
        if core.get("status") != "HEALTHY":
            problems.append(f"core device reports {core.get('status')} ({_age(reported) or 'time unknown'})")
            words.append((2, "unhealthy"))
    status = (deployment or {}).get("deploymentStatus")
    if deployment is None:
        status = "none"
        if core is not None:
            problems.append(f"never deployed (run `deeplens-cli deploy --device {device.name}`)")
    elif status in ("FAILED", "CANCELED"):
        problems.append(f"last deployment is {status}")
        words.append((3, "deployment failed"))
    health = min(words)[1] if words else ("not deployed" if problems else "ok")
    return DeviceStatus(health=health, problems=tuple(problems), health_detail=detail,
                        last_deployment_id=(deployment or {}).get("deploymentId"),
                        last_deployment_status=status, details=info)


def device_status(v2: V2Context, device: Device) -> DeviceStatus:
    """Certificate, core device health (with when it was reported: it can be stale), our component's state
    and the last effective deployment. `health` is "ok" when nothing is wrong, else the word of the
    most important problem."""
    thing = device.thing_name
    problems: list[str] = []
    info: dict[str, Any] = {"target": TARGET, "thing_name": thing}
    words: list[tuple[int, str]] = []  # (priority, one-word health) of what is wrong; the first one is shown
    if device.details.get("registration") == "incomplete":
        problems.append("registration incomplete (run register-device again with the same --out)")
        words.append((0, "incomplete"))

    certificates = _certificate_states(v2, thing)
    info["certificates"] = certificates
    if "ACTIVE" not in certificates.values():
        problems.append("no active certificate attached to the thing")
        words.append((0, "no certificate"))

    core = core_device(v2, thing)
    if core is None:
        info.update(core_status=None, health_reported_at=None, nucleus_version=None,
                    health_detail="never connected to Greengrass")
        problems.append("the device has never connected (install the nucleus with the bundle's install.sh)")
        words.append((1, "never connected"))
    else:
        reported = core.get("lastStatusUpdateTimestamp")
        # The caveat holds for every V2 device: renderers print it once under the table, not in each row.
        info.update(core_status=core.get("status"), health_reported_at=iso_time(reported),
                    health_detail=f"{core.get('status')}, reported {_age(reported) or 'at an unknown time'}",
                    health_caveat=f"Greengrass V2 health is what the core last reported and can be stale: "
                                  f"{STALE_HEALTH_NOTE}",
                    nucleus_version=core.get("coreVersion"), runtime=core.get("runtime"),
                    platform="/".join(filter(None, [core.get("platform"), core.get("architecture")])) or None)
        if core.get("status") != "HEALTHY":
            problems.append(f"core device reports {core.get('status')} ({_age(reported) or 'time unknown'})")
            words.append((2, "unhealthy"))

    installed = installed_components(v2, thing) if core else []
    info["components"] = [{"name": c.get("componentName"), "version": c.get("componentVersion"),
                           "state": c.get("lifecycleState"), "details": c.get("lifecycleStateDetails"),
                           "reported_at": iso_time(c.get("lastReportedTimestamp"))} for c in installed]
    mine = next((c for c in info["components"] if c["name"] == v2.component_name), None)
    info["component"] = mine
    info["component_state"] = mine["state"] if mine else "not installed"
    if core and (mine is None or mine["state"] not in RUNNING_STATES):
        problems.append(f"{v2.component_name} is {info['component_state']}")
        words.append((4, "component " + info["component_state"].lower()))

    effective = sorted(effective_deployments(v2, thing) if core else [],
                       key=lambda e: e.get("modifiedTimestamp") or e.get("creationTimestamp"), reverse=True)
    last = next((e for e in effective if e.get("deploymentName") == v2.settings["project.name"]),
                effective[0] if effective else None)
    if last is None:
        info.update(last_deployment_id=None, last_deployment_status="none")
        if core is not None:
            problems.append(f"never deployed (run `deeplens-cli deploy --device {device.name}`)")
    else:
        status = last.get("coreDeviceExecutionStatus")
        info.update(last_deployment_id=last.get("deploymentId"), last_deployment_status=status,
                    last_deployment_at=iso_time(last.get("modifiedTimestamp")),
                    last_deployment_target=last.get("targetArn"))
        if status in FAILURE_STATUSES:
            detail, errors = describe_failure(last)
            info.update(last_deployment_reason=detail, last_deployment_errors=list(errors))
            problems.append(f"last deployment {detail}")
            words.append((3, "deployment failed"))
        elif status not in SUCCESS_STATUSES:
            problems.append(f"last deployment is {status}")
            words.append((5, "deploying"))
    health = min(words)[1] if words else ("not deployed" if problems else "ok")
    return DeviceStatus(health=health, problems=tuple(problems), health_detail=info.pop("health_detail"),
                        last_deployment_id=info.pop("last_deployment_id"),
                        last_deployment_status=info.pop("last_deployment_status"),
                        details=info)  # the failure's reason stays in details (last_deployment_reason)


def _certificate_states(v2: V2Context, thing: str) -> dict[str, str]:
    iot = v2.ctx.client("iot")
    states = {}
    for principal in maybe(lambda: collect(v2.ctx.client("iot"), "list_thing_principals", "principals",
                                                         thingName=thing), NOT_FOUND) or []:
        if ":cert/" in principal:
            certificate_id = principal.rsplit("/", 1)[-1]
            described = maybe(lambda cid=certificate_id: iot.describe_certificate(certificateId=cid), NOT_FOUND)
            states[certificate_id] = described["certificateDescription"]["status"] if described else "missing"
    return states


def project_status(v2: V2Context) -> ProjectStatus:
    """The component: its latest version, state and artifact, and whether it matches what `deploy` would
    publish now."""
    gg = v2.ctx.client("greengrassv2")
    info: dict[str, Any] = {"target": TARGET, "name": v2.component_name, "kind": "Greengrass V2 component"}
    versions = [v["componentVersion"] for v in component_versions(v2)]
    latest = comp.highest_version(versions)
    info["versions"] = len(versions)
    if latest is None:
        return ProjectStatus(TARGET, v2.component_name, False,
                             problems=("not published yet (run `deeplens-cli deploy`)",), details=info)
    described = gg.describe_component(arn=v2.component_arn(latest))
    tags = described.get("tags") or {}
    state = (described.get("status") or {}).get("componentState")
    bucket = artifact_bucket(v2.settings)
    key = comp.artifact_key(v2.settings, v2.component_name, latest)
    stored = stored_sha256(v2.ctx, bucket, key)
    problems = []
    if state != "DEPLOYABLE":
        problems.append(f"{latest} is {state}")
    if stored is None:
        problems.append(f"artifact s3://{bucket}/{key} is missing")
    elif stored != tags.get(comp.TAG_ARTIFACT):
        problems.append(f"artifact s3://{bucket}/{key} was overwritten")
    try:
        local: str | None = v2.component().content_sha256
    except DeeplensError:
        local = None
    info.update(state=state, artifact=f"s3://{bucket}/{key}", content_sha256=tags.get(comp.TAG_CONTENT),
                created=iso_time(described.get("creationTimestamp")))
    return ProjectStatus(TARGET, v2.component_name, True, latest, tags.get(comp.TAG_ARTIFACT),
                         None if local is None else local == tags.get(comp.TAG_CONTENT), tuple(problems),
                         details=info)


def _age(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    seconds = max(0.0, (datetime.now(timezone.utc) - value.astimezone(timezone.utc)).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"
