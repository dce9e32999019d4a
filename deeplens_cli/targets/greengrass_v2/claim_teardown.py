"""Removing a fleet's claim (destroy, with no Greengrass V2 device left): in an order where nothing is ever
half-guarded.

1. the provisioning template first: from then on no claim can register anything, so nothing calls the hook;
2. the claim certificates (inactive, detached, deleted) and the claim policy;
3. the hook: IoT's permission to invoke it, the function, its log group, then its role (a role is deleted only
   after the function that runs as it);
4. the provisioning role and the allow-list object.

The fleets are found from every kind of resource a claim has (templates, hook functions, roles, allow-list
objects), each by the names provisioning.py and claim_guard.py give it, so a destroy interrupted half way is
finished by the next one. Templates are not listed: every claim has a provisioning role (claims made before the
hook existed too), and the template goes first, so no template outlives the rest of its claim. Functions of the
shared `V2Context` (context.py).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from deeplens_cli.aws import collect, maybe
from deeplens_cli.engine.plan import Action, ApiCall, Plan, Step
from deeplens_cli.targets import iot as device_iot
from deeplens_cli.targets.artifacts import MISSING_BUCKET, artifact_bucket
from deeplens_cli.targets.greengrass_v2.claim_guard import ALLOW_LIST_PREFIX, PERMISSION_SID, HookNames
from deeplens_cli.targets.greengrass_v2.provisioning import ClaimNames
from deeplens_cli.targets.iot import NOT_FOUND
from deeplens_cli.targets.registration import certificate_resource

if TYPE_CHECKING:
    from deeplens_cli.targets.greengrass_v2.context import V2Context

_FUNCTION = re.compile(r"deeplens-(.+)-claim-hook\Z")
_ROLE = re.compile(r"deeplens-(.+)-(?:claim-hook|provisioning)-role\Z")
_MISSING_LAMBDA = ("ResourceNotFoundException",)


def claim_fleets(v2: V2Context) -> list[str]:
    """Every fleet that still has some claim resource deeplens-cli made: its hook function, one of its roles or its
    allow-list."""
    lam, iam = v2.ctx.client("lambda"), v2.ctx.client("iam")
    fleets: set[str] = set()
    for function in collect(lam, "list_functions", "Functions"):
        match = _FUNCTION.fullmatch(function.get("FunctionName", ""))
        if match and str(function.get("Description", "")).startswith("deeplens-cli"):
            fleets.add(match.group(1))
    for role in collect(iam, "list_roles", "Roles"):
        match = _ROLE.fullmatch(role.get("RoleName", ""))
        if match and str(role.get("Description", "")).startswith("deeplens-cli"):
            fleets.add(match.group(1))
    bucket = artifact_bucket(v2.settings)
    objects = maybe(lambda: collect(v2.ctx.client("s3"), "list_objects_v2", "Contents", Bucket=bucket,
                                    Prefix=ALLOW_LIST_PREFIX), ("NoSuchBucket",) + MISSING_BUCKET) or []
    for entry in objects:
        parts = entry["Key"][len(ALLOW_LIST_PREFIX):].split("/")
        if len(parts) == 2 and HookNames(parts[0]).allow_list_key == entry["Key"]:
            fleets.add(parts[0])
    return sorted(fleets)


def plan_claim_teardown(v2: V2Context, fleet: str) -> Plan:
    """One fleet's claim, in the order of the module docstring; what is already gone is skipped."""
    iot, lam, iam = (v2.ctx.client(service) for service in ("iot", "lambda", "iam"))
    names, hook = ClaimNames(fleet), HookNames(fleet)
    plan = Plan(f"destroy the claim of fleet {fleet} (Greengrass V2)")
    if maybe(lambda: iot.describe_provisioning_template(templateName=names.template), NOT_FOUND) is not None:
        plan.add(Action(f"iot-provisioning-template/{names.template}", "delete",
                        "no claim can register a camera from here on", (
                            ApiCall("iot", "delete_provisioning_template", {"templateName": names.template},
                                    ignore_codes=NOT_FOUND),)))
    if maybe(lambda: iot.get_policy(policyName=names.claim_policy), NOT_FOUND) is not None:
        for target in collect(iot, "list_targets_for_policy", "targets", policyName=names.claim_policy):
            if ":cert/" in target:
                plan.add(Action(certificate_resource(target.rsplit("/", 1)[-1]), "delete",
                                f"claim certificate of fleet {fleet}",
                                device_iot.certificate_teardown(target, [names.claim_policy])))
        policy = device_iot.policy_teardown(iot, names.claim_policy, "the claim certificates' policy")
        if policy is not None:
            plan.add(policy)
    if maybe(lambda: lam.get_function(FunctionName=hook.function), _MISSING_LAMBDA) is not None:
        plan.add(Action(f"lambda-function/{hook.function}", "delete", "the pre-provisioning hook", (
            ApiCall("lambda", "remove_permission", {"FunctionName": hook.function, "StatementId": PERMISSION_SID},
                    ignore_codes=_MISSING_LAMBDA),
            ApiCall("lambda", "delete_function", {"FunctionName": hook.function}, ignore_codes=_MISSING_LAMBDA))))
    log_group = f"/aws/lambda/{hook.function}"  # Lambda made it on the hook's first call; the hook's own log
    groups = collect(v2.ctx.client("logs"), "describe_log_groups", "logGroups", logGroupNamePrefix=log_group)
    if any(group.get("logGroupName") == log_group for group in groups):
        plan.add(Action(f"logs-log-group/{log_group}", "delete", "the hook's log (its decisions)", (
            ApiCall("logs", "delete_log_group", {"logGroupName": log_group}, ignore_codes=_MISSING_LAMBDA),)))
    for role, reason in ((hook.role, "the hook's execution role"), (names.role, "the fleet's provisioning role")):
        action = _role_teardown(iam, role, reason)
        if action is not None:
            plan.add(action)
    bucket, key = artifact_bucket(v2.settings), hook.allow_list_key
    if maybe(lambda: v2.ctx.client("s3").head_object(Bucket=bucket, Key=key), ("404", "NoSuchKey", "NoSuchBucket")):
        plan.add(Action(f"s3-object/s3://{bucket}/{key}", "delete", "the claim's allow-list", (
            ApiCall("s3", "delete_object", {"Bucket": bucket, "Key": key}),)))
    return plan


def _role_teardown(iam: Any, role: str, reason: str) -> Action | None:
    """Detach what we attach, delete what we put inline, then the role; None when it is gone already."""
    if maybe(lambda: iam.get_role(RoleName=role), ("NoSuchEntity",)) is None:
        return None
    steps: list[Step] = [
        ApiCall("iam", "detach_role_policy", {"RoleName": role, "PolicyArn": attached["PolicyArn"]},
                ignore_codes=("NoSuchEntity",))
        for attached in collect(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=role)]
    steps += [ApiCall("iam", "delete_role_policy", {"RoleName": role, "PolicyName": name},
                      ignore_codes=("NoSuchEntity",))
              for name in collect(iam, "list_role_policies", "PolicyNames", RoleName=role)]
    steps.append(ApiCall("iam", "delete_role", {"RoleName": role}, ignore_codes=("NoSuchEntity",)))
    return Action(f"iam-role/{role}", "delete", reason, tuple(steps))

