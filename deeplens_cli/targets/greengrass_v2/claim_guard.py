"""The guard of a fleet's claim: the pre-provisioning hook (claim_hook.py) as a Lambda function the tool owns,
its execution role, IoT's permission to invoke it, and the allow-list it reads.

Planned by claim provisioning (provisioning.py) before the template that names the hook, so IoT never meets a
template whose hook is missing; removed by claim_teardown.py. Every read here is a planner's read; the changes are
ApiCalls the executor makes.

Where the allow-list lives, and why: an S3 object (`s3://<artifact bucket>/deeplens-claims/<fleet>/allow-list.json`,
`{"fleet": G, "names": [...]}`), not the function's environment (4 KB in all: some 40 names) nor an SSM parameter
(4 KB standard). The hook reads it on every call, so an edit applies at once without touching the function; an
edit is one PutObject (the whole object is replaced, never half written) made conditional on the ETag read while
planning, so two operators editing at once cannot lose each other's names (the second fails and re-runs). The
key is outside the crops prefix (devices may write there) and the artifact prefix (devices may read there);
settings that put it under either are refused.

Least privilege: the hook's role may write its own log group, read that one object and describe things named
`deeplens-*`; IoT may invoke the function only for this fleet's template in this account (SourceArn and
SourceAccount, as the AWS IoT guide asks against the confused deputy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from deeplens_cli.account.policies import trust_policy
from deeplens_cli.account.roles import RoleSpec, create_role_call
from deeplens_cli.aws import maybe
from deeplens_cli.engine.plan import Action, AlreadyExists, ApiCall, Retry, Step, Wait, noop
from deeplens_cli.errors import ConfigError, DeeplensError
from deeplens_cli.targets.artifacts import MISSING_OBJECT, artifact_bucket
from deeplens_cli.targets.greengrass_v2 import claim_hook
from deeplens_cli.targets.greengrass_v2.naming import THING_PREFIX
from deeplens_cli.targets.lambda_functions import configuration_differences, function_as_created
from deeplens_cli.targets.package import Package, zip_entries

if TYPE_CHECKING:
    from deeplens_cli.targets.greengrass_v2.context import V2Context

HOOK_RUNTIME = "python3.12"
HOOK_HANDLER = "claim_hook.handler"
HOOK_PAYLOAD_VERSION = "2020-04-01"  # the one payload version of ProvisioningHook (AWS IoT API reference)
HOOK_POLICY = "deeplens-claim-hook"  # the execution role's inline policy
PERMISSION_SID = "deeplens-iot-pre-provisioning"
ALLOW_LIST_PREFIX = "deeplens-claims/"
NAME_LIMIT = 64  # Lambda function and IAM role names
DESCRIPTION = "deeplens-cli pre-provisioning hook of fleet "
IAM_PROPAGATION = Retry(codes=("InvalidParameterValueException",),
                        message_pattern="cannot be assumed|does not have permissions", budget_s=150,
                        waiting_for="IAM to let Lambda assume the hook's role")


@dataclass(frozen=True)
class HookNames:
    """The hook's resources, named after the fleet so a re-run and destroy find them."""

    fleet: str

    @property
    def function(self) -> str:
        return f"deeplens-{self.fleet}-claim-hook"

    @property
    def role(self) -> str:
        return f"deeplens-{self.fleet}-claim-hook-role"

    @property
    def allow_list_key(self) -> str:
        return f"{ALLOW_LIST_PREFIX}{self.fleet}/allow-list.json"


@dataclass(frozen=True)
class AllowList:
    """The allow-list object as read while planning: its names and ETag (None: no object yet)."""

    bucket: str
    key: str
    names: frozenset[str]
    etag: str | None

    def document(self, names: frozenset[str], fleet: str) -> bytes:
        return (json.dumps({"fleet": fleet, "names": sorted(names)}, indent=1) + "\n").encode()


def hook_package() -> Package:
    """The function's zip: claim_hook.py alone, byte for byte the same on every build (package.zip_entries)."""
    return zip_entries({"claim_hook.py": Path(claim_hook.__file__)})


def allow_list_location(v2: V2Context, names: HookNames) -> tuple[str, str]:
    """(bucket, key) of the allow-list; refused when devices could write (or read) it."""
    settings = v2.settings
    bucket, key = artifact_bucket(settings), names.allow_list_key
    crops_bucket, crops_prefix = settings.require("bucket"), settings["prefix"] or ""
    if bucket == crops_bucket and key.startswith(crops_prefix):
        raise ConfigError(f"the claim allow-list s3://{bucket}/{key} would be under the crops prefix "
                          f"'{crops_prefix}', where devices may write",
                          "set prefix to a folder of its own (e.g. faces/) or greengrass.artifact_bucket to "
                          "another bucket")
    if key.startswith(settings["greengrass.artifact_prefix"] or ""):
        raise ConfigError(f"the claim allow-list s3://{bucket}/{key} would be under greengrass.artifact_prefix, "
                          f"which devices may read", "set greengrass.artifact_prefix to a folder of its own")
    return bucket, key


def read_allow_list(v2: V2Context, names: HookNames) -> AllowList:
    bucket, key = allow_list_location(v2, names)
    found = maybe(lambda: v2.ctx.client("s3").get_object(Bucket=bucket, Key=key), MISSING_OBJECT + ("NoSuchBucket",))
    if found is None:
        return AllowList(bucket, key, frozenset(), None)
    try:
        listed = claim_hook.parse_allow_list(found["Body"].read(), names.fleet)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DeeplensError(f"the claim allow-list s3://{bucket}/{key} cannot be read ({exc})",
                            "delete that object and run `register-device --fleet G --claim --allow NAMES` again "
                            "(until then the hook refuses every camera)") from None
    return AllowList(bucket, key, listed, found.get("ETag"))


def template_arn(v2: V2Context, template: str) -> str:
    return f"arn:{v2.partition}:iot:{v2.ctx.region}:{v2.ctx.account_id}:provisioningtemplate/{template}"


def function_arn(v2: V2Context, names: HookNames) -> str:
    return f"arn:{v2.partition}:lambda:{v2.ctx.region}:{v2.ctx.account_id}:function:{names.function}"


def hook_role(names: HookNames) -> RoleSpec:
    """The hook's execution role: trusted by Lambda, tagged as ours (what a retried CreateRole checks)."""
    return RoleSpec(names.role, "lambda.amazonaws.com", DESCRIPTION + names.fleet)


HOOK_TRUST = trust_policy("lambda.amazonaws.com")


def hook_role_policy(partition: str, region: str, account: str, names: HookNames, bucket: str,
                     key: str) -> dict[str, Any]:
    """What the hook may do: its own log group, the allow-list object, DescribeThing on our things."""
    group = f"arn:{partition}:logs:{region}:{account}:log-group:/aws/lambda/{names.function}"
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "logs:CreateLogGroup", "Resource": group},
        {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": f"{group}:*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:{partition}:s3:::{bucket}/{key}"},
        {"Effect": "Allow", "Action": "iot:DescribeThing",
         "Resource": f"arn:{partition}:iot:{region}:{account}:thing/{THING_PREFIX}*"},
    ]}


def invoke_permission(v2: V2Context, names: HookNames, template: str) -> dict[str, Any]:
    """AddPermission's parameters: IoT, for this template in this account only."""
    return {"FunctionName": names.function, "StatementId": PERMISSION_SID, "Action": "lambda:InvokeFunction",
            "Principal": "iot.amazonaws.com", "SourceArn": template_arn(v2, template),
            "SourceAccount": v2.ctx.account_id}


def plan_hook(v2: V2Context, names: HookNames, template: str, allow: AllowList) -> list[Action]:
    """The role, the function (code and configuration kept current) and IoT's permission to invoke it."""
    iam, lam = v2.ctx.client("iam"), v2.ctx.client("lambda")
    actions: list[Action] = []
    policy = hook_role_policy(v2.partition, v2.ctx.region, v2.ctx.account_id, names, allow.bucket, allow.key)
    put_policy = ApiCall("iam", "put_role_policy", {"RoleName": names.role, "PolicyName": HOOK_POLICY,
                                                    "PolicyDocument": json.dumps(policy)})
    role_arn = f"arn:{v2.partition}:iam::{v2.ctx.account_id}:role/{names.role}"
    if maybe(lambda: iam.get_role(RoleName=names.role), ("NoSuchEntity",)) is None:
        actions.append(Action(f"iam-role/{names.role}", "create", "the pre-provisioning hook runs as it", (
            create_role_call(hook_role(names), "hook_role_arn"),
            put_policy)))
    else:
        current = maybe(lambda: iam.get_role_policy(RoleName=names.role, PolicyName=HOOK_POLICY), ("NoSuchEntity",))
        if current is None or _policy_document(current.get("PolicyDocument")) != policy:
            actions.append(Action(f"iam-role/{names.role}", "update", "the hook's policy differs", (put_policy,)))
        else:
            actions.append(noop(f"iam-role/{names.role}", "up to date"))

    built = hook_package()
    environment = {"Variables": {claim_hook.ENV_BUCKET: allow.bucket, claim_hook.ENV_KEY: allow.key,
                                 claim_hook.ENV_FLEET: names.fleet, claim_hook.ENV_TEMPLATE: template,
                                 claim_hook.ENV_PREFIX: THING_PREFIX}}
    configuration = {"Role": role_arn, "Handler": HOOK_HANDLER, "Runtime": HOOK_RUNTIME, "Timeout": 10,
                     "MemorySize": 128, "Description": DESCRIPTION + names.fleet, "Environment": environment}
    resource = f"lambda-function/{names.function}"
    function = maybe(lambda: lam.get_function(FunctionName=names.function), ("ResourceNotFoundException",))
    if function is None:
        actions.append(Action(resource, "create", f"the pre-provisioning hook ({built.size} bytes, {HOOK_RUNTIME})", (
            ApiCall("lambda", "create_function", {"FunctionName": names.function, "Publish": False,
                                                  "Code": {"ZipFile": built.zip_bytes}, **configuration},
                    retry=IAM_PROPAGATION, exists=function_as_created(built.code_sha256_b64, configuration)),
            Wait("lambda", "function_active_v2", {"FunctionName": names.function})),
            details={"sha256": built.sha256_hex}))
    else:
        actions.append(_function_update(names, function["Configuration"], built, configuration))

    statement = _permission_statement(lam, names.function) if function is not None else None
    wanted = invoke_permission(v2, names, template)
    if statement is not None and _grants(statement, wanted):
        actions.append(noop(f"lambda-permission/{names.function}/{PERMISSION_SID}", "up to date"))
    else:
        steps: list[Step] = []
        if statement is not None:
            steps.append(ApiCall("lambda", "remove_permission", {"FunctionName": names.function,
                                                                 "StatementId": PERMISSION_SID},
                                 ignore_codes=("ResourceNotFoundException",)))
        steps.append(ApiCall("lambda", "add_permission", wanted,
                             exists=AlreadyExists(("ResourceConflictException",), _permission_as_added)))
        actions.append(Action(f"lambda-permission/{names.function}/{PERMISSION_SID}",
                              "update" if statement is not None else "create",
                              f"IoT may invoke the hook for template {template} only", tuple(steps)))
    return actions


def plan_allow_list(allow: AllowList, fleet: str, added: list[str], registered: list[str]) -> Action:
    """The allow-list object: the names it holds plus `added` (less those `registered` already), written only when
    that changes, conditional on the ETag read while planning."""
    wanted = allow.names | (frozenset(added) - frozenset(registered))
    resource = f"s3-object/s3://{allow.bucket}/{allow.key}"
    details: dict[str, Any] = {"names": len(wanted)}
    if registered:
        details["already_registered"] = sorted(registered)
    if allow.etag is not None and wanted == allow.names:
        return noop(resource, f"{len(wanted)} name(s) may register", **details)
    condition = {"IfMatch": allow.etag} if allow.etag is not None else {"IfNoneMatch": "*"}
    new = sorted(wanted - allow.names)
    reason = (f"allow {len(new)} more name(s) ({len(wanted)} in all)" if new else
              "no camera may register until names are added with --allow")
    return Action(resource, "update" if allow.etag is not None else "create", reason, (
        ApiCall("s3", "put_object", {"Bucket": allow.bucket, "Key": allow.key, "Body": allow.document(wanted, fleet),
                                     "ContentType": "application/json", **condition},
                exists=AlreadyExists(("PreconditionFailed", "412"), _allow_list_as_written)),
    ), details={**details, "added": new})


def _function_update(names: HookNames, current: dict[str, Any], built: Package,
                     configuration: dict[str, Any]) -> Action:
    resource = f"lambda-function/{names.function}"
    steps: list[Step] = []
    reasons = []
    if current.get("CodeSha256") != built.code_sha256_b64:
        reasons.append("code changed")
        steps += [ApiCall("lambda", "update_function_code", {"FunctionName": names.function,
                                                             "ZipFile": built.zip_bytes}),
                  Wait("lambda", "function_updated_v2", {"FunctionName": names.function})]
    differs = configuration_differences(current, configuration)
    if differs:
        reasons.append("configuration differs: " + ", ".join(differs))
        steps += [ApiCall("lambda", "update_function_configuration", {"FunctionName": names.function,
                                                                      **configuration}, retry=IAM_PROPAGATION),
                  Wait("lambda", "function_updated_v2", {"FunctionName": names.function})]
    if not steps:
        return noop(resource, "up to date")
    return Action(resource, "update", "; ".join(reasons), tuple(steps))


def _permission_as_added(ctx: Any, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """AddPermission retried after a lost answer finds its statement id taken: ours when it grants what we asked."""
    statement = _permission_statement(ctx.client("lambda"), params["FunctionName"])
    return {"Statement": json.dumps(statement)} if statement is not None and _grants(statement, params) else None


def _allow_list_as_written(ctx: Any, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A conditional PutObject retried after a lost answer fails its own condition (the object now exists, its
    ETag moved on): the write is ours when the object holds exactly the document we sent."""
    found = maybe(lambda: ctx.client("s3").get_object(Bucket=params["Bucket"], Key=params["Key"]), MISSING_OBJECT)
    if found is None or found["Body"].read() != params["Body"]:
        return None
    return {"ETag": found.get("ETag")}


def _permission_statement(lam: Any, function: str) -> dict[str, Any] | None:
    found = maybe(lambda: lam.get_policy(FunctionName=function), ("ResourceNotFoundException",))
    statements = (_policy_document((found or {}).get("Policy")) or {}).get("Statement") or []
    return next((s for s in statements if isinstance(s, dict) and s.get("Sid") == PERMISSION_SID), None)


def _grants(statement: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether a resource-policy statement is exactly the invoke permission `wanted` describes."""
    principal = statement.get("Principal")
    service = principal.get("Service") if isinstance(principal, dict) else principal
    condition = statement.get("Condition") or {}
    source_arn = (condition.get("ArnLike") or condition.get("ArnEquals") or {}).get("AWS:SourceArn")
    source_account = (condition.get("StringEquals") or {}).get("AWS:SourceAccount")
    return (statement.get("Effect") == "Allow" and service == wanted["Principal"]
            and statement.get("Action") == wanted["Action"] and source_arn == wanted["SourceArn"]
            and source_account == wanted["SourceAccount"])


def _policy_document(value: Any) -> Any:
    """IAM and Lambda hand policy documents back as JSON text (IAM URL-encoded it; boto3 decodes that)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value
