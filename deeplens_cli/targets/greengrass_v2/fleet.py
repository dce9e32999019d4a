"""Greengrass V2 fleets: one deployment to an IoT thing group, rolled out by an IoT job, followed per member.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from deeplens_cli.aws import collect, maybe
from deeplens_cli.errors import DeeplensError
from deeplens_cli.plan import Plan
from deeplens_cli.targets.base import DeploymentOutcome, DeploymentRef
from deeplens_cli.targets.greengrass_v2 import component as comp
from deeplens_cli.targets.greengrass_v2.outcomes import FAILURE_STATUSES, SUCCESS_STATUSES, describe_failure
from deeplens_cli.targets.iot import NOT_FOUND
from deeplens_cli.targets.waiting import WaitClock, poll_until

if TYPE_CHECKING:
    from deeplens_cli.output import Reporter

FLEET_PIN_LIMIT = 100  # beyond this many members the nucleus is not pinned (one read per member)


class Fleets:
    """plan_deploy_fleet and wait_for_fleet (FleetTarget)."""

    def _fleet_members(self, fleet: str) -> list[str]:
        return sorted(collect(self.ctx.client("iot"), "list_things_in_thing_group", "things", thingGroupName=fleet))

    def plan_deploy_fleet(self, fleet: str, force: bool = False, rollout_per_minute: int | None = None,
                          abort_failure_percent: float | None = None) -> Plan:
        group = maybe(lambda: self.ctx.client("iot").describe_thing_group(thingGroupName=fleet), NOT_FOUND)
        if group is None:
            raise DeeplensError(f"fleet {fleet}: no such IoT thing group",
                              "add a device to it with `deeplens-cli register-device --name N --fleet " + fleet + "`")
        members = self._fleet_members(fleet)
        plan = Plan(f"deploy fleet {fleet} (Greengrass V2, {len(members)} device(s))")
        version = self._plan_component(plan)
        cores = [self._core_device(thing) for thing in members] if 0 < len(members) <= FLEET_PIN_LIMIT else [None]
        components = comp.deployment_components(self.component_name, version, self._nucleus_pin(cores))
        job = comp.fleet_job_configuration(rollout_per_minute, abort_failure_percent, len(members))
        plan.add(self._plan_deployment(plan, group["thingGroupArn"], f"gg-deployment/thinggroup/{fleet}", components,
                                       job, force, device_things=members))
        plan.known["fleet_members"] = members
        return plan

    def wait_for_fleet(self, fleet: str, deployment: DeploymentRef | None, timeout_s: float,
                       reporter: Reporter) -> DeploymentOutcome:
        deployment_id = deployment.deployment_id if deployment is not None else None
        if not deployment_id:
            group = self.ctx.client("iot").describe_thing_group(thingGroupName=fleet)
            latest = self._latest_deployment(group["thingGroupArn"])
            deployment_id = latest["deploymentId"] if latest else None
        if not deployment_id:
            return DeploymentOutcome(None, "not_waited", f"fleet {fleet} has no deployment")
        members = self._fleet_members(fleet)
        outcomes: dict[str, dict[str, Any]] = {thing: {"status": "QUEUED"} for thing in members}
        poll = float(self.settings["deploy.poll_s"])
        last: dict[str, Any] = {"summary": None}

        def settled() -> bool | None:
            """True once no member is pending, or the rollout stopped; None while it goes on."""
            for thing, outcome in outcomes.items():
                if outcome["status"] in SUCCESS_STATUSES + FAILURE_STATUSES:
                    continue
                effective = self._effective_deployment(thing, deployment_id)
                if effective is None:
                    continue
                outcome["status"] = effective["coreDeviceExecutionStatus"]
                if outcome["status"] in FAILURE_STATUSES:
                    detail, errors = describe_failure(effective)
                    outcome.update(reason=detail, errors=list(errors))
            counts = _fleet_counts(outcomes)
            summary = _fleet_summary(fleet, counts)
            if summary != last["summary"]:
                reporter.progress(summary)
                last["summary"] = summary
            if counts["pending"] == 0:
                return True
            status = self.ctx.client("greengrassv2").get_deployment(deploymentId=deployment_id).get("deploymentStatus")
            # the IoT job was canceled (abort criteria) or failed: the pending devices will not run it
            return True if status in ("CANCELED", "FAILED") else None

        poll_until(settled, WaitClock(self.ctx.sleep), timeout_s, poll, whole_intervals=True)
        deployment_status = self.ctx.client("greengrassv2").get_deployment(deploymentId=deployment_id).get(
            "deploymentStatus")
        counts = _fleet_counts(outcomes)
        aborted = deployment_status in ("CANCELED", "FAILED") and bool(counts["failed"] or counts["canceled"])
        errors = tuple(f"{thing}: {o.get('reason', o['status'])}" for thing, o in outcomes.items()
                       if o["status"] in FAILURE_STATUSES and o["status"] != "CANCELED")
        pending = [thing for thing, o in outcomes.items() if o["status"] not in SUCCESS_STATUSES + FAILURE_STATUSES]
        extra = {"fleet": fleet, "devices": outcomes, "deployment_status": deployment_status, **counts}
        tally = (f"{counts['succeeded']} of {len(members)} succeeded, {counts['failed']} failed"
                 + (f", {counts['canceled']} canceled" if counts["canceled"] else "") + f", {counts['pending']} pending")
        if counts["failed"] or counts["canceled"] or aborted:
            why = " (rollout aborted)" if aborted else ""
            return DeploymentOutcome(deployment_id, "failed", tally + why, errors, extra=extra)
        if pending:
            return DeploymentOutcome(deployment_id, "timed_out", f"{tally} after {timeout_s:.0f}s: {', '.join(pending)}",
                                     errors, extra=extra)
        return DeploymentOutcome(deployment_id, "succeeded", tally, extra=extra)


def _fleet_counts(outcomes: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    statuses = [o["status"] for o in outcomes.values()]
    succeeded = sum(s in SUCCESS_STATUSES for s in statuses)
    canceled = sum(s == "CANCELED" for s in statuses)
    failed = sum(s in FAILURE_STATUSES for s in statuses) - canceled
    return {"succeeded": succeeded, "failed": failed, "canceled": canceled,
            "pending": len(statuses) - succeeded - failed - canceled}


def _fleet_summary(fleet: str, counts: Mapping[str, int]) -> str:
    canceled = f", {counts['canceled']} canceled" if counts["canceled"] else ""
    return f"fleet {fleet}: {counts['succeeded']} succeeded, {counts['failed']} failed{canceled}, {counts['pending']} pending"


