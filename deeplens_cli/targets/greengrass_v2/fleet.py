"""Greengrass V2 fleets: one deployment to an IoT thing group, rolled out by an IoT job, followed in bulk
(plan_deploy_fleet and wait_for_fleet of the `FleetTarget` protocol).

A fleet deployment is one Greengrass deployment to the thing group, rolled out by one IoT job. Progress is
read from that job's execution summaries (250 devices a call) and ListCoreDevices filtered by the group (100
a call) - never one call per member per poll. Only devices that failed get a per-device read, for the
reason, at the end.

Functions of the shared `V2Context` (context.py). Uses publish (`plan_component`), deploy (`plan_deployment`,
`nucleus_pin`: the same deployment planning as for one device) and the shared lookups of reads.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from deeplens_cli.aws import collect, maybe
from deeplens_cli.engine.plan import Plan
from deeplens_cli.errors import DeeplensError
from deeplens_cli.targets import iot as device_iot
from deeplens_cli.targets.base import DeploymentOutcome, DeploymentRef
from deeplens_cli.targets.greengrass_v2 import component as comp
from deeplens_cli.targets.greengrass_v2.deploy import nucleus_pin, plan_deployment
from deeplens_cli.targets.greengrass_v2.outcomes import FAILURE_STATUSES, SUCCESS_STATUSES, describe_failure
from deeplens_cli.targets.greengrass_v2.publish import plan_component
from deeplens_cli.targets.greengrass_v2.reads import (
    core_device,
    effective_deployment,
    fleet_members,
    latest_deployment,
)
from deeplens_cli.targets.greengrass_v2.status import CORE_DEVICES_PAGE
from deeplens_cli.targets.iot import NOT_FOUND
from deeplens_cli.targets.waiting import WaitClock, poll_until

if TYPE_CHECKING:
    from deeplens_cli.cli.output import Reporter
    from deeplens_cli.targets.greengrass_v2.context import V2Context

FLEET_PIN_LIMIT = 100  # a first fleet deployment reads each member's nucleus only up to this many members
JOB_EXECUTIONS_PAGE = 250  # ListJobExecutionsForJob's maximum page (botocore's model)
FAILURE_DETAILS_LIMIT = 20  # failed members whose reason is read one by one at the end of a wait


def _fleet_size_floor(v2: V2Context, fleet: str) -> tuple[int, bool]:
    """(members on the first page, more pages?): one call, whatever the fleet (enough to plan a deployment)."""
    page = v2.ctx.client("iot").list_things_in_thing_group(thingGroupName=fleet,
                                                           maxResults=device_iot.LIST_THINGS_PAGE)
    return len(page.get("things") or []), bool(page.get("nextToken"))


def plan_deploy_fleet(v2: V2Context, fleet: str, force: bool = False, rollout_per_minute: int | None = None,
                      abort_failure_percent: float | None = None) -> Plan:
    """The deployment to the group; an unchanged re-run costs the same few calls in a fleet of any size."""
    group = maybe(lambda: v2.ctx.client("iot").describe_thing_group(thingGroupName=fleet), NOT_FOUND)
    if group is None:
        raise DeeplensError(f"fleet {fleet}: no such IoT thing group",
                            "add a device to it with `deeplens-cli register-device --name N --fleet " + fleet + "`")
    size, more = _fleet_size_floor(v2, fleet)
    plan = Plan(f"deploy fleet {fleet} (Greengrass V2, {size}{'+' if more else ''} device(s))")
    version = plan_component(v2, plan)
    components = comp.deployment_components(v2.component_name, version,
                                            _fleet_nucleus_pin(v2, fleet, group["thingGroupArn"], size, more))
    job = comp.fleet_job_configuration(rollout_per_minute, abort_failure_percent, size)
    plan.add(plan_deployment(v2, plan, group["thingGroupArn"], f"gg-deployment/thinggroup/{fleet}", components,
                             job, force, device_things=[]))
    return plan


def _fleet_nucleus_pin(v2: V2Context, fleet: str, group_arn: str, size: int, more: bool) -> tuple[str, str] | None:
    """The nucleus the fleet's deployment pins: the one the group's latest deployment pinned (no per-member
    read); for a first deployment, the version every member reports, read for fleets of up to
    FLEET_PIN_LIMIT members (larger fleets are not pinned)."""
    latest = latest_deployment(v2, group_arn)
    if latest is not None:
        pinned = [(name, spec.get("componentVersion")) for name, spec in (latest.get("components") or {}).items()
                  if name in comp.NUCLEUS_COMPONENTS.values() and spec.get("componentVersion")]
        return pinned[0] if len(pinned) == 1 else None
    if size == 0 or more or size > FLEET_PIN_LIMIT:
        return None
    return nucleus_pin([core_device(v2, thing) for thing in fleet_members(v2, fleet)])


def _job_statuses(v2: V2Context, job_id: str) -> dict[str, str]:
    """thing -> its IoT job execution status (QUEUED, IN_PROGRESS, SUCCEEDED, FAILED, ...): 250 a call."""
    executions = maybe(lambda: collect(v2.ctx.client("iot"), "list_job_executions_for_job", "executionSummaries",
                                       jobId=job_id, PaginationConfig={"PageSize": JOB_EXECUTIONS_PAGE}),
                       NOT_FOUND) or []
    return {str(e.get("thingArn", "")).rsplit("/", 1)[-1]: (e.get("jobExecutionSummary") or {}).get("status", "")
            for e in executions}


def wait_for_fleet(v2: V2Context, fleet: str, deployment: DeploymentRef | None, timeout_s: float,
                   reporter: Reporter) -> DeploymentOutcome:
    gg = v2.ctx.client("greengrassv2")
    group = v2.ctx.client("iot").describe_thing_group(thingGroupName=fleet)
    deployment_id = deployment.deployment_id if deployment is not None else None
    if not deployment_id:
        latest = latest_deployment(v2, group["thingGroupArn"])
        deployment_id = latest["deploymentId"] if latest else None
    if not deployment_id:
        return DeploymentOutcome(None, "not_waited", f"fleet {fleet} has no deployment")
    job_id = gg.get_deployment(deploymentId=deployment_id).get("iotJobId")
    members = fleet_members(v2, fleet)
    outcomes: dict[str, dict[str, Any]] = {thing: {"status": "QUEUED"} for thing in members}
    poll = float(v2.settings["deploy.poll_s"])
    last: dict[str, Any] = {"summary": None}

    def settled() -> bool | None:
        """True once no member is pending, or the rollout stopped; None while it goes on."""
        connected = {core["coreDeviceThingName"]: core for core in collect(
            gg, "list_core_devices", "coreDevices", thingGroupArn=group["thingGroupArn"],
            PaginationConfig={"PageSize": CORE_DEVICES_PAGE})}
        statuses = _job_statuses(v2, job_id) if job_id else {}
        for thing, outcome in outcomes.items():
            status = _DEVICE_STATUS.get(statuses.get(thing, ""), outcome["status"])
            outcome["status"] = status
            outcome["connected"] = thing in connected
            if thing in connected:
                outcome["core_status"] = connected[thing].get("status")
        counts = _fleet_counts(outcomes)
        summary = _fleet_summary(fleet, counts)
        if summary != last["summary"]:
            reporter.progress(summary)
            last["summary"] = summary
        if counts["pending"] == 0:
            return True
        status = gg.get_deployment(deploymentId=deployment_id).get("deploymentStatus")
        # the IoT job was canceled (abort criteria) or failed: the pending devices will not run it
        return True if status in ("CANCELED", "FAILED") else None

    poll_until(settled, WaitClock(v2.ctx.sleep, v2.ctx.clock), timeout_s, poll, whole_intervals=True)
    deployment_status = gg.get_deployment(deploymentId=deployment_id).get("deploymentStatus")
    failed = [thing for thing, o in outcomes.items() if o["status"] in FAILURE_STATUSES and o["status"] != "CANCELED"]
    for thing in failed[:FAILURE_DETAILS_LIMIT]:  # why: the device's own report, only for the failed ones
        effective = effective_deployment(v2, thing, deployment_id)
        if effective is not None:
            detail, errors = describe_failure(effective)
            outcomes[thing].update(reason=detail, errors=list(errors))
    counts = _fleet_counts(outcomes)
    aborted = deployment_status in ("CANCELED", "FAILED") and bool(counts["failed"] or counts["canceled"])
    errors = tuple(f"{thing}: {outcomes[thing].get('reason', outcomes[thing]['status'])}" for thing in failed)
    pending = [thing for thing, o in outcomes.items() if o["status"] not in SUCCESS_STATUSES + FAILURE_STATUSES]
    extra = {"fleet": fleet, "devices": outcomes, "deployment_status": deployment_status, **counts}
    tally = (f"{counts['succeeded']} of {len(members)} succeeded, {counts['failed']} failed"
             + (f", {counts['canceled']} canceled" if counts["canceled"] else "") + f", {counts['pending']} pending")
    if counts["failed"] or counts["canceled"] or aborted:
        why = " (rollout aborted)" if aborted else ""
        return DeploymentOutcome(deployment_id, "failed", tally + why, errors, extra=extra)
    if pending:
        shown = ", ".join(pending[:20]) + (f" and {len(pending) - 20} more" if len(pending) > 20 else "")
        return DeploymentOutcome(deployment_id, "timed_out", f"{tally} after {timeout_s:.0f}s: {shown}",
                                 errors, extra=extra)
    return DeploymentOutcome(deployment_id, "succeeded", tally, extra=extra)


# IoT job execution status -> the device's deployment status as Greengrass spells it for a thing group
_DEVICE_STATUS = {"QUEUED": "QUEUED", "IN_PROGRESS": "IN_PROGRESS", "SUCCEEDED": "SUCCEEDED", "FAILED": "FAILED",
                  "TIMED_OUT": "TIMED_OUT", "REJECTED": "REJECTED", "CANCELED": "CANCELED", "REMOVED": "CANCELED"}


def _fleet_counts(outcomes: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    statuses = [o["status"] for o in outcomes.values()]
    succeeded = sum(s in SUCCESS_STATUSES for s in statuses)
    canceled = sum(s == "CANCELED" for s in statuses)
    failed = sum(s in FAILURE_STATUSES for s in statuses) - canceled
    return {"succeeded": succeeded, "failed": failed, "canceled": canceled,
            "pending": len(statuses) - succeeded - failed - canceled}


def _fleet_summary(fleet: str, counts: Mapping[str, int]) -> str:
    canceled = f", {counts['canceled']} canceled" if counts["canceled"] else ""
    return (f"fleet {fleet}: {counts['succeeded']} succeeded, {counts['failed']} failed{canceled}, "
            f"{counts['pending']} pending")


