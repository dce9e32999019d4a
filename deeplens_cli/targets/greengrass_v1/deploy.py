"""Deploying to a Greengrass V1 device: definition versions that differ, a group version holding them, then
a NewDeployment; and the wait on the deployment's status as the core reports it (the status seam).

Functions of the target's `V1Context`. What this needs from its siblings, imported by name: the group reads
(`groups`), the function's actions (`lambda_publish.add_publish_actions`), the desired content
(`project.desired_project`, pure), and from the context the clients, `role_arn`, `clock` and `deployment_status`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from deeplens_cli.aws import collect, error_code
from deeplens_cli.engine.plan import Action, ApiCall, Plan, Ref, Retry, noop
from deeplens_cli.errors import DeeplensError
from deeplens_cli.targets.base import DeploymentOutcome, DeploymentRef, Device
from deeplens_cli.targets.greengrass_v1.groups import (
    DEFINITION_KINDS,
    GroupState,
    by_id,
    definition_items,
    find_definition,
    group_content,
    not_implemented,
    parse_definition_arn,
    read_group,
)
from deeplens_cli.targets.greengrass_v1.lambda_publish import add_publish_actions
from deeplens_cli.targets.greengrass_v1.naming import SERVICE_ROLE, definition_name
from deeplens_cli.targets.greengrass_v1.project import desired_project
from deeplens_cli.targets.iot import NOT_FOUND
from deeplens_cli.targets.waiting import WaitClock, poll_until

if TYPE_CHECKING:
    from deeplens_cli.cli.output import Reporter
    from deeplens_cli.targets.greengrass_v1.context import V1Context


PROGRESS_EVERY_S = 30.0  # while a deployment's state does not change, say so this often


def plan_deploy(v1: V1Context, device: Device, force: bool = False) -> Plan:
    if device.details.get("registration") == "incomplete":
        raise DeeplensError(f"device {device.name} was not fully registered",
                            "run register-device again with the same --name to finish it")
    if not device.group_id:
        raise DeeplensError(f"device {device.name} has no Greengrass group",
                            "register it again (`deeplens-cli register-device --name NAME --greengrass v1`)")
    group = read_group(v1, device.group_id)
    if group is None:
        raise DeeplensError(f"Greengrass group {device.group_id} of device {device.name} does not exist",
                            "destroy the device and register it again")
    if not group.core_version_arn:
        raise DeeplensError(f"Greengrass group {group.name} has no core, so it cannot be deployed",
                            "register the device again: the group must hold the device's core")

    plan = Plan(f"deploy to {device.name} (Greengrass V1)")
    published = add_publish_actions(v1, plan)
    plan.add(_plan_service_role(v1))

    definition = dict(group.definition)
    thing = device.thing_name
    desired = desired_project(v1.settings, group_content(v1, group), published.version_arn, thing, device.name)
    changed: list[str] = []
    for kind, items in (("functions", desired.functions), ("resources", desired.resources),
                        ("subscriptions", desired.subscriptions)):
        action, version_arn = _plan_definition(v1, kind, thing, group, list(items), published.changed)
        plan.add(action)
        key = f"{DEFINITION_KINDS[kind]}DefinitionVersionArn"
        if version_arn != group.definition.get(key):
            changed.append(kind)
            definition[key] = version_arn

    group_resource = f"greengrass-group-version/{group.name}"
    deployment_resource = f"greengrass-deployment/{group.name}"
    if changed:
        plan.add(Action(group_resource, "create", "new project: " + ", ".join(changed), (
            ApiCall("greengrass", "create_group_version", {"GroupId": group.id, **definition},
                    outputs={"group_version_id": "Version"}),
        ), details={"group_id": group.id}))
        plan.add(_deployment_action(deployment_resource, group.id, Ref("group_version_id"),
                                    "deploy the new version"))
        return plan

    plan.known["group_version_id"] = group.latest_version
    plan.add(noop(group_resource, "the latest group version holds this project", version=group.latest_version))
    last = last_deployment(v1, group.id)
    reason = _redeploy_reason(group, last, force)
    if reason is None:
        plan.add(noop(deployment_resource, f"version already deployed ({last['status']})",
                      deployment_id=last["id"], status=last["status"]))
    else:
        plan.add(_deployment_action(deployment_resource, group.id, group.latest_version, reason))
    return plan


def _redeploy_reason(group: GroupState, last: dict[str, Any] | None, force: bool) -> str | None:
    if force:
        return "--force"
    if last is None:
        return "never deployed"
    if last["group_version"] != group.latest_version:
        return "the latest group version was never deployed" if last["type"] != "ResetDeployment" \
            else "deployments were reset"
    if last["status"] == "Failure":
        return "the last deployment of this version failed"
    return None


def _deployment_action(resource: str, group_id: str, version: Any, reason: str) -> Action:
    return Action(resource, "create", reason, (
        ApiCall("greengrass", "create_deployment", {"GroupId": group_id, "GroupVersionId": version,
                                                    "DeploymentType": "NewDeployment"},
                outputs={"deployment_id": "DeploymentId"}),
    ), details={"group_id": group_id})


def _plan_service_role(v1: V1Context) -> Action:
    """Deployments fail unless a Greengrass service role is associated with the account in the region."""
    from botocore.exceptions import ClientError

    resource = "greengrass-service-role/account"
    try:
        current = v1.gg.get_service_role_for_account()
    except ClientError as exc:
        if not_implemented(exc):
            return noop(resource, "not supported by this endpoint (an emulator); skipped")
        if error_code(exc) not in NOT_FOUND:
            raise
        current = {}
    if current.get("RoleArn"):
        return noop(resource, f"{current['RoleArn'].rsplit('/', 1)[-1]} associated", role_arn=current["RoleArn"])
    role_arn = v1.role_arn(SERVICE_ROLE)
    return Action(resource, "create", f"associate {SERVICE_ROLE} with Greengrass in {v1.ctx.region}", (
        ApiCall("greengrass", "associate_service_role_to_account", {"RoleArn": role_arn}, retry=Retry(
            codes=("BadRequestException", "InvalidParameterValueException"), budget_s=60,
            message_pattern="role|assume", waiting_for=f"IAM to let Greengrass assume {SERVICE_ROLE}")),
    ))


def _plan_definition(v1: V1Context, kind: str, thing: str, group: GroupState, desired: list[dict[str, Any]],
                     function_changed: bool) -> tuple[Action, Any]:
    """(action, the definition version ARN the group should hold - a Ref when the action creates it).

    The group's own definition gets a new version when its items differ. A group without one gets ours
    (named after the thing): found by name when an interrupted deploy already created it, so a re-run adds a
    version to it - or uses it as it is - instead of creating a second definition.
    """
    label = DEFINITION_KINDS[kind]
    resource = f"greengrass-{label.lower()}-definition/{group.name}"
    current_arn = group.definition.get(f"{label}DefinitionVersionArn")
    definition_id: str | None = None
    if current_arn:
        definition_id = parse_definition_arn(current_arn)[1]
    else:
        ours = find_definition(v1, kind, definition_name(thing, kind))
        if ours is not None:
            definition_id, current_arn = ours["Id"], ours.get("LatestVersionArn")
    current = definition_items(v1, current_arn) if current_arn else None
    depends_on_version = kind != "resources" and function_changed
    if current is not None and not depends_on_version and by_id(current) == by_id(desired):
        in_group = current_arn == group.definition.get(f"{label}DefinitionVersionArn")
        return noop(resource, "up to date" if in_group else "holds the project (not yet in the group)",
                    version_arn=current_arn), current_arn
    reason = "pin the new function version" if depends_on_version else "differs from the project"
    if definition_id:
        return Action(resource, "update", reason, (
            ApiCall("greengrass", f"create_{label.lower()}_definition_version",
                    {f"{label}DefinitionId": definition_id, f"{label}s": desired},
                    outputs={f"{kind}_version_arn": "Arn"}),
        ), details={"items": len(desired)}), Ref(f"{kind}_version_arn")
    return Action(resource, "create", "the group has none yet", (
        ApiCall("greengrass", f"create_{label.lower()}_definition",
                {"Name": definition_name(thing, kind), "InitialVersion": {f"{label}s": desired}},
                outputs={f"{kind}_version_arn": "LatestVersionArn"}),
    ), details={"items": len(desired)}), Ref(f"{kind}_version_arn")


def last_deployment(v1: V1Context, group_id: str) -> dict[str, Any] | None:
    """The group's latest deployment (by CreatedAt) with the status its core reported, or None."""
    deployments = collect(v1.gg, "list_deployments", "Deployments", GroupId=group_id)
    if not deployments:
        return None
    last = max(deployments, key=lambda d: str(d.get("CreatedAt", "")))
    group_arn = str(last.get("GroupArn", ""))
    version = group_arn.rsplit("/versions/", 1)[1] if "/versions/" in group_arn else None
    record = {"id": last.get("DeploymentId"), "type": last.get("DeploymentType"),
              "created_at": last.get("CreatedAt"), "group_version": version, "status": None,
              "error_message": None, "error_details": []}
    if last.get("DeploymentType") == "ResetDeployment":
        record["status"] = "Reset"
        return record
    status = v1.deployment_status(group_id, str(last["DeploymentId"]))
    record["status"] = status.get("DeploymentStatus")
    record["error_message"] = status.get("ErrorMessage")
    record["error_details"] = [error_line(d) for d in status.get("ErrorDetails") or []]
    return record


def wait_for_deployment(v1: V1Context, device: Device, deployment: DeploymentRef, timeout_s: float,
                        reporter: Reporter) -> DeploymentOutcome:
    """Poll the status source every deploy.poll_s until Success, Failure or the timeout; progress on stderr.

    Elapsed time is a `WaitClock` on the injected sleep and clock, so an injected sleep that returns at once
    still reaches the timeout after the same number of polls as a real one.
    """
    deployment_id = deployment.deployment_id
    if not deployment_id or not device.group_id:
        return DeploymentOutcome(None, "not_waited", "no deployment was started")
    poll = float(v1.settings["deploy.poll_s"])
    clock = WaitClock(v1.ctx.sleep, v1.clock)
    last: dict[str, Any] = {"state": None, "said": 0.0}

    def check() -> DeploymentOutcome | None:
        status = v1.deployment_status(device.group_id, str(deployment_id))
        state = status.get("DeploymentStatus", "Unknown")
        elapsed = clock.elapsed()
        if state != last["state"] or elapsed - last["said"] >= PROGRESS_EVERY_S:
            still = "still " if state == last["state"] else ""
            reporter.progress(f"deployment {deployment_id} to {device.name}: {still}{state} "
                              f"({elapsed:.0f}s of {timeout_s:g}s)")
            last.update(state=state, said=elapsed)
        if state == "Success":
            return DeploymentOutcome(str(deployment_id), "succeeded", f"{device.name} runs the new project",
                                     extra={"group_id": device.group_id, "elapsed_s": round(elapsed, 1)})
        if state == "Failure":
            errors = tuple(error_line(d) for d in status.get("ErrorDetails") or [])
            return DeploymentOutcome(str(deployment_id), "failed",
                                     status.get("ErrorMessage") or "the core reported Failure",
                                     errors, extra={"group_id": device.group_id})
        return None

    outcome = poll_until(check, clock, timeout_s, poll)
    if outcome is not None:
        return outcome
    return DeploymentOutcome(str(deployment_id), "timed_out", f"still {last['state']} after {timeout_s:g}s",
                             extra={"group_id": device.group_id, "last_status": last["state"]})


def error_line(detail: Mapping[str, Any]) -> str:
    code = detail.get("DetailedErrorCode") or "error"
    return f"{code}: {detail.get('DetailedErrorMessage', '')}".rstrip(": ")

