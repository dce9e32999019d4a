"""`register-roles`: the five DeepLens IAM roles, the device's S3 grant, the Greengrass V2 token exchange role
and its IoT role alias - desired state as data, read and compared, planned as steps.

The five roles are the ones the DeepLens console created (names, trust principals and managed policies as the
DeepLens developer guide lists them):

=================================  =============================  ===============================================
role                               trusted service                managed policy
=================================  =============================  ===============================================
AWSDeepLensServiceRole             deeplens.amazonaws.com         service-role/AWSDeepLensServiceRolePolicy
AWSDeepLensGreengrassRole          greengrass.amazonaws.com       service-role/AWSGreengrassResourceAccessRolePolicy
AWSDeepLensGreengrassGroupRole     greengrass.amazonaws.com       AWSDeepLensLambdaFunctionAccessPolicy (+ S3 grant)
service-role/AWSDeepLensLambdaRole lambda.amazonaws.com           service-role/AWSLambdaBasicExecutionRole
AWSDeepLensSagemakerRole           sagemaker.amazonaws.com        AmazonSageMakerFullAccess
=================================  =============================  ===============================================

Decisions (the README repeats them):

* **Lambda role policy.** The console attached `AWSLambdaFullAccess`, which is deprecated and can no longer be
  attached to new roles. On a DeepLens the function runs on the device with the *group role's* credentials;
  the execution role only has to exist for Lambda to accept the function. So it gets the least privilege that
  still makes sense in the cloud, `AWSLambdaBasicExecutionRole` (CloudWatch Logs), not `AWSLambda_FullAccess`
  (full control of every function in the account).
* **Device S3 access.** `AWSDeepLensLambdaFunctionAccessPolicy` has no `s3:PutObject`, so uploading crops needs
  a grant on the group role. The workshop attached `AmazonS3FullAccess` (every bucket, read and delete too).
  By default we put an inline policy `DeepLensFaceCropsUpload` allowing only `s3:PutObject` on
  `arn:aws:s3:::<bucket>/<prefix>*`; `s3_access: full` (`--s3-full-access`) attaches `AmazonS3FullAccess`
  as the workshop did. Switching mode removes the other grant, so exactly one is ever in place.
* **Greengrass V2 token exchange role.** A dedicated role trusted by `credentials.iot.amazonaws.com`, not the
  V1 group role: the V1 role trusts `greengrass.amazonaws.com` (the V1 cloud service), while V2 devices obtain
  credentials from the IoT credentials provider through a role alias; one role trusted by both would let either
  path assume the other's permissions, and V2 devices need artifact download rights V1 devices must not have.
  Its inline policy holds the nucleus' base actions, `s3:GetObject` on the artifact prefix and `s3:PutObject`
  on the crops prefix. The role alias grants 3600 s credentials, never more than the role's MaxSessionDuration.

Roles created here carry the tag `deeplens-cli=managed`. Existing roles without it (made by the DeepLens
console) are adopted: repaired but never deleted by `destroy --delete-roles`, which only removes the inline
policies deeplens-cli itself put on them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from deeplens_cli.account.bucket import plan_bucket, plan_bucket_teardown
from deeplens_cli.account.policies import (
    face_crops_upload_policy,
    managed_policy_arn,
    partition_for,
    same_policy,
    token_exchange_policy,
    trust_policy,
    trusted_services,
)
from deeplens_cli.aws import error_code, translate_error
from deeplens_cli.engine.plan import Action, AlreadyExists, ApiCall, Plan, Ref, Step, Wait, noop
from deeplens_cli.errors import DeeplensError

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.settings.config import Settings

TAG_KEY = "deeplens-cli"
TAG_VALUE = "managed"
GROUP_ROLE = "AWSDeepLensGreengrassGroupRole"
FACE_CROPS_INLINE_POLICY = "DeepLensFaceCropsUpload"
TOKEN_EXCHANGE_INLINE_POLICY = "DeepLensGreengrassV2Access"
S3_FULL_ACCESS = "AmazonS3FullAccess"
ROLE_ALIAS_DURATION_S = 3600  # what the Greengrass V2 installer uses; IoT accepts 900..43200
MIN_ROLE_ALIAS_DURATION_S = 900


@dataclass(frozen=True)
class RoleSpec:
    """One IAM role as it should be. `owned_*` are the grants deeplens-cli may also remove from it."""

    name: str
    service: str  # the one service principal trusted to assume the role
    description: str
    path: str = "/"
    managed_policies: tuple[str, ...] = ()  # ARNs that must be attached
    inline_policies: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # name -> document
    owned_managed: tuple[str, ...] = ()  # ARNs detached when not desired (e.g. AmazonS3FullAccess in least privilege)
    owned_inline: tuple[str, ...] = ()  # inline policy names deleted when not desired

    @property
    def trust(self) -> dict[str, Any]:
        return trust_policy(self.service)


@dataclass(frozen=True)
class RoleState:
    """An existing role as IAM reports it."""

    name: str
    arn: str
    path: str
    trust: Mapping[str, Any]
    tags: Mapping[str, str]
    max_session_s: int
    attached: tuple[str, ...]
    inline: Mapping[str, Mapping[str, Any]]

    @property
    def managed_by_us(self) -> bool:
        return self.tags.get(TAG_KEY) == TAG_VALUE


# ---------------------------------------------------------------------------------------------- desired state


def desired_roles(settings: Settings, region: str) -> list[RoleSpec]:
    """The six roles register-roles maintains, for these settings (bucket, prefix, s3_access, V2 names).

    Without a bucket (only when tearing roles down) the bucket-scoped inline documents are left out: role names,
    trust and ownership do not depend on the bucket.
    """
    partition = partition_for(region)
    bucket, prefix = settings["bucket"], settings["prefix"]

    def managed(name: str) -> str:
        return managed_policy_arn(name, partition)

    full_s3 = settings["s3_access"] == "full"
    group_managed = (managed("AWSDeepLensLambdaFunctionAccessPolicy"),) + (
        (managed(S3_FULL_ACCESS),) if full_s3 else ()
    )
    group_inline = {} if full_s3 or bucket is None else {
        FACE_CROPS_INLINE_POLICY: face_crops_upload_policy(bucket, prefix, partition)}
    artifact_bucket = settings["greengrass.artifact_bucket"] or bucket
    token_exchange_inline = {} if bucket is None else {TOKEN_EXCHANGE_INLINE_POLICY: token_exchange_policy(
        bucket, prefix, artifact_bucket, settings["greengrass.artifact_prefix"], partition)}
    return [
        RoleSpec("AWSDeepLensServiceRole", "deeplens.amazonaws.com",
                 "DeepLens service role (deeplens-cli)",
                 managed_policies=(managed("service-role/AWSDeepLensServiceRolePolicy"),)),
        RoleSpec("AWSDeepLensGreengrassRole", "greengrass.amazonaws.com",
                 "Greengrass service role for DeepLens devices (deeplens-cli)",
                 managed_policies=(managed("service-role/AWSGreengrassResourceAccessRolePolicy"),)),
        RoleSpec(GROUP_ROLE, "greengrass.amazonaws.com",
                 "Greengrass group role: credentials of the DeepLens device's functions (deeplens-cli)",
                 managed_policies=group_managed, inline_policies=group_inline,
                 owned_managed=(managed(S3_FULL_ACCESS),), owned_inline=(FACE_CROPS_INLINE_POLICY,)),
        RoleSpec("AWSDeepLensLambdaRole", "lambda.amazonaws.com",
                 "Execution role of DeepLens project functions; on the device they use the group role (deeplens-cli)",
                 path="/service-role/",
                 managed_policies=(managed("service-role/AWSLambdaBasicExecutionRole"),)),
        RoleSpec("AWSDeepLensSagemakerRole", "sagemaker.amazonaws.com",
                 "SageMaker role for DeepLens models (deeplens-cli)",
                 managed_policies=(managed("AmazonSageMakerFullAccess"),)),
        RoleSpec(settings["greengrass.token_exchange_role"], "credentials.iot.amazonaws.com",
                 "Greengrass V2 token exchange role of deeplens-cli devices (deeplens-cli)",
                 inline_policies=token_exchange_inline, owned_inline=(TOKEN_EXCHANGE_INLINE_POLICY,)),
    ]


def role_arn_variable(role_name: str) -> str:
    """Plan variable holding a role's ARN (known when it exists, produced by create_role otherwise)."""
    return f"role_arn:{role_name}"


def alias_duration(max_session_s: int, wanted_s: int = ROLE_ALIAS_DURATION_S) -> int:
    """Role alias credential lifetime: IoT rejects one longer than the role's MaxSessionDuration."""
    return max(MIN_ROLE_ALIAS_DURATION_S, min(wanted_s, max_session_s))


# ---------------------------------------------------------------------------------------------- reading


def read_role(ctx: AwsContext, name: str) -> RoleState | None:
    """The role with its trust policy, tags, attached and inline policies; None when it does not exist."""
    from botocore.exceptions import ClientError

    iam = ctx.client("iam")
    try:
        role = iam.get_role(RoleName=name)["Role"]
        attached = [policy["PolicyArn"]
                    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name)
                    for policy in page["AttachedPolicies"]]
        inline_names = [policy_name
                        for page in iam.get_paginator("list_role_policies").paginate(RoleName=name)
                        for policy_name in page["PolicyNames"]]
        inline = {policy_name: iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
                  for policy_name in inline_names}
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return None  # also when the role vanished between two reads
        raise translate_error(exc, doing=f"reading role {name}") or exc from None
    return RoleState(name=name, arn=role["Arn"], path=role.get("Path", "/"), trust=role["AssumeRolePolicyDocument"],
                     tags={tag["Key"]: tag["Value"] for tag in role.get("Tags", [])},
                     max_session_s=int(role.get("MaxSessionDuration", 3600)), attached=tuple(attached), inline=inline)


class _ManagedPolicyCheck:
    """Confirms a managed policy can still be attached before planning to attach it (reads only, cached).

    AWS retires managed policies of retired services; attaching one fails late and obscurely, so say it early.
    """

    def __init__(self, ctx: AwsContext) -> None:
        self.ctx = ctx
        self.checked: set[str] = set()

    def require(self, arn: str, role: str) -> None:
        from botocore.exceptions import ClientError

        if arn in self.checked:
            return
        try:
            policy = self.ctx.client("iam").get_policy(PolicyArn=arn)["Policy"]
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
            raise DeeplensError(f"managed policy {arn} (for role {role}) does not exist in this account",
                                "AWS may have retired it; attach an equivalent policy to the role by hand") from None
        if policy.get("IsAttachable") is False:
            raise DeeplensError(f"managed policy {arn} (for role {role}) can no longer be attached",
                                "AWS deprecated it; attach an equivalent policy to the role by hand")
        self.checked.add(arn)


# ---------------------------------------------------------------------------------------------- planning


def plan_account(ctx: AwsContext, settings: Settings) -> Plan:
    """register-roles: the bucket, the six roles and the role alias - created, repaired, or left alone."""
    plan = Plan("register-roles")
    settings.require("bucket")  # a usage error, found before any AWS call
    # Ask STS who we are first: bad, expired or missing credentials then fail with STS's explicit error code. The
    # bucket check that comes next is an S3 HEAD request, whose errors carry no body ("400 Bad Request").
    plan.known["account_id"] = ctx.account_id
    plan.extend(plan_bucket(ctx, settings))
    checker = _ManagedPolicyCheck(ctx)
    states: dict[str, RoleState | None] = {}
    for spec in desired_roles(settings, ctx.region):
        state = read_role(ctx, spec.name)
        states[spec.name] = state
        if state is not None:
            plan.known[role_arn_variable(spec.name)] = state.arn
        plan.add(plan_role(spec, state, checker))
    plan.add(plan_role_alias(ctx, settings, states[settings["greengrass.token_exchange_role"]]))
    return plan


def plan_role(spec: RoleSpec, state: RoleState | None, checker: _ManagedPolicyCheck | None = None) -> Action:
    """The action bringing one role to its spec, with what differed in `reason` and `details`."""
    resource = f"iam-role/{spec.name}"
    if state is None:
        for arn in spec.managed_policies:
            if checker:
                checker.require(arn, spec.name)
        steps: list[Step] = [
            create_role_call(spec, role_arn_variable(spec.name)),
            Wait("iam", "role_exists", {"RoleName": spec.name}),
        ]
        steps += [_attach(spec.name, arn) for arn in spec.managed_policies]
        steps += [_put_inline(spec.name, name, doc) for name, doc in spec.inline_policies.items()]
        return Action(resource, "create", f"missing; trusted by {spec.service}", tuple(steps),
                      details={"trust": spec.service, "managed_policies": list(spec.managed_policies),
                               "inline_policies": sorted(spec.inline_policies)})

    reasons: list[str] = []
    details: dict[str, Any] = {"arn": state.arn}
    steps = []
    if not same_policy(state.trust, spec.trust):
        found = ", ".join(trusted_services(state.trust)) or "no service"
        reasons.append(f"trust policy differs (trusts {found}, want {spec.service})")
        details["trust"] = {"actual": trusted_services(state.trust), "desired": [spec.service]}
        steps.append(ApiCall("iam", "update_assume_role_policy",
                             {"RoleName": spec.name, "PolicyDocument": json.dumps(spec.trust)}))
    missing = [arn for arn in spec.managed_policies if arn not in state.attached]
    if missing:
        for arn in missing:
            if checker:
                checker.require(arn, spec.name)
        reasons.append("managed policy not attached: " + ", ".join(_short(arn) for arn in missing))
        details["attach"] = missing
        steps += [_attach(spec.name, arn) for arn in missing]
    extra = [arn for arn in spec.owned_managed if arn in state.attached and arn not in spec.managed_policies]
    if extra:
        reasons.append("managed policy to remove: " + ", ".join(_short(arn) for arn in extra))
        details["detach"] = extra
        steps += [ApiCall("iam", "detach_role_policy", {"RoleName": spec.name, "PolicyArn": arn},
                          ignore_codes=("NoSuchEntity",)) for arn in extra]
    for name, document in spec.inline_policies.items():
        if name not in state.inline:
            reasons.append(f"inline policy {name} missing")
        elif not same_policy(state.inline[name], document):
            reasons.append(f"inline policy {name} differs")
        else:
            continue
        details.setdefault("put_inline", []).append(name)
        steps.append(_put_inline(spec.name, name, document))
    stale = [name for name in spec.owned_inline if name in state.inline and name not in spec.inline_policies]
    if stale:
        reasons.append("inline policy to remove: " + ", ".join(stale))
        details["delete_inline"] = stale
        steps += [ApiCall("iam", "delete_role_policy", {"RoleName": spec.name, "PolicyName": name},
                          ignore_codes=("NoSuchEntity",)) for name in stale]
    if state.path != spec.path:
        details["path_note"] = (f"role lives at path {state.path}, expected {spec.path}; a path cannot change, "
                                f"so the existing role is used as it is")
    if not state.managed_by_us:
        details["adopted"] = True  # created outside deeplens-cli: repaired, never deleted by destroy
    if not steps:
        return noop(
            resource,
            "up to date" + (" (adopted, not created by deeplens-cli)" if not state.managed_by_us else ""),
            **details,
        )
    return Action(resource, "update", "; ".join(reasons), tuple(steps), details=details)


def plan_role_alias(ctx: AwsContext, settings: Settings, role: RoleState | None) -> Action:
    """The IoT role alias Greengrass V2 devices use to get token-exchange-role credentials."""
    alias_name = settings["greengrass.role_alias"]
    role_name = settings["greengrass.token_exchange_role"]
    resource = f"iot-role-alias/{alias_name}"
    duration = alias_duration(role.max_session_s if role else 3600)
    role_arn: Any = role.arn if role else Ref(role_arn_variable(role_name))
    current = _describe_role_alias(ctx, alias_name)
    if current is None:
        return Action(resource, "create", f"missing; points at {role_name}, {duration}s credentials", (
            ApiCall("iot", "create_role_alias", {"roleAlias": alias_name, "roleArn": role_arn,
                                                 "credentialDurationSeconds": duration},
                    exists=AlreadyExists(("ResourceAlreadyExistsException",), _role_alias_as_created)),
        ), details={"role": role_name, "credential_duration_s": duration})
    reasons = []
    if role is None or current.get("roleArn") != role.arn:
        reasons.append(f"points at {current.get('roleArn')}, want role {role_name}")
    if current.get("credentialDurationSeconds") != duration:
        reasons.append(f"credential duration {current.get('credentialDurationSeconds')}s, want {duration}s")
    if not reasons:
        return noop(resource, f"points at {role_name}", arn=current.get("roleAliasArn"), credential_duration_s=duration)
    return Action(resource, "update", "; ".join(reasons), (
        ApiCall("iot", "update_role_alias", {"roleAlias": alias_name, "roleArn": role_arn,
                                             "credentialDurationSeconds": duration}),
    ), details={"role": role_name, "credential_duration_s": duration, "previous_role_arn": current.get("roleArn")})


def create_role_call(spec: RoleSpec, arn_variable: str) -> ApiCall:
    """CreateRole as the spec says (path, trust, description, our tag), its ARN into `arn_variable`; a retry
    after a lost answer that finds the role counts it as created when it is ours (`_role_as_created`)."""
    return ApiCall("iam", "create_role", {
        "RoleName": spec.name, "Path": spec.path, "AssumeRolePolicyDocument": json.dumps(spec.trust),
        "Description": spec.description, "Tags": [{"Key": TAG_KEY, "Value": TAG_VALUE}],
    }, outputs={arn_variable: "Role.Arn"}, exists=_role_as_created(spec))


def _role_as_created(spec: RoleSpec) -> AlreadyExists:
    """CreateRole retried after a lost answer: the role that exists is ours when it has our tag, path and trust."""
    def read(ctx: AwsContext, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        state = read_role(ctx, spec.name)
        if state is None or not state.managed_by_us or state.path != spec.path or not same_policy(state.trust,
                                                                                                   spec.trust):
            return None
        return {"Role": {"RoleName": state.name, "Arn": state.arn}}

    return AlreadyExists(("EntityAlreadyExists",), read)


def _role_alias_as_created(ctx: AwsContext, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """CreateRoleAlias retried after a lost answer: the alias that exists is ours when it points where we asked."""
    current = _describe_role_alias(ctx, params["roleAlias"])
    if current is None or current.get("roleArn") != params["roleArn"] or current.get(
            "credentialDurationSeconds") != params["credentialDurationSeconds"]:
        return None
    return {"roleAlias": current.get("roleAlias"), "roleAliasArn": current.get("roleAliasArn")}


def _describe_role_alias(ctx: AwsContext, alias_name: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return ctx.client("iot").describe_role_alias(roleAlias=alias_name)["roleAliasDescription"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def _attach(role: str, arn: str) -> ApiCall:
    return ApiCall("iam", "attach_role_policy", {"RoleName": role, "PolicyArn": arn})


def _put_inline(role: str, name: str, document: Mapping[str, Any]) -> ApiCall:
    return ApiCall(
        "iam",
        "put_role_policy",
        {"RoleName": role, "PolicyName": name, "PolicyDocument": json.dumps(document)},
    )


def _short(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


# ---------------------------------------------------------------------------------------------- teardown


def plan_account_teardown(ctx: AwsContext, settings: Settings, roles: bool, bucket: bool) -> Plan:
    """destroy --delete-roles / --delete-bucket: the role alias, the roles (only those deeplens-cli created)
    and the bucket with every object version. NotFound is tolerated, so a second destroy is a no-op."""
    plan = Plan("account teardown")
    if roles:
        plan.add(_plan_alias_teardown(ctx, settings["greengrass.role_alias"]))
        for spec in desired_roles(settings, ctx.region):
            plan.add(_plan_role_teardown(spec, read_role(ctx, spec.name)))
    if bucket:
        plan.extend(plan_bucket_teardown(ctx, settings))
    return plan


def _plan_alias_teardown(ctx: AwsContext, alias_name: str) -> Action:
    resource = f"iot-role-alias/{alias_name}"
    if _describe_role_alias(ctx, alias_name) is None:
        return noop(resource, "already gone")
    return Action(resource, "delete", "role alias of the token exchange role", (
        ApiCall("iot", "delete_role_alias", {"roleAlias": alias_name}, ignore_codes=("ResourceNotFoundException",)),
    ))


def _plan_role_teardown(spec: RoleSpec, state: RoleState | None) -> Action:
    resource = f"iam-role/{spec.name}"
    if state is None:
        return noop(resource, "already gone")
    if not state.managed_by_us:
        ours = [name for name in spec.owned_inline if name in state.inline]
        if not ours:
            return noop(resource, "not created by deeplens-cli; left in place", adopted=True)
        return Action(resource, "update", "not created by deeplens-cli: removing only its inline policy "
                      + ", ".join(ours), tuple(
                          ApiCall("iam", "delete_role_policy", {"RoleName": spec.name, "PolicyName": name},
                                  ignore_codes=("NoSuchEntity",)) for name in ours), details={"adopted": True})
    steps: list[Step] = [ApiCall("iam", "detach_role_policy", {"RoleName": spec.name, "PolicyArn": arn},
                                 ignore_codes=("NoSuchEntity",)) for arn in state.attached]
    steps += [ApiCall("iam", "delete_role_policy", {"RoleName": spec.name, "PolicyName": name},
                      ignore_codes=("NoSuchEntity",)) for name in state.inline]
    steps.append(ApiCall("iam", "delete_role", {"RoleName": spec.name}, ignore_codes=("NoSuchEntity",)))
    return Action(resource, "delete", f"created by deeplens-cli ({len(state.attached)} managed, "
                  f"{len(state.inline)} inline policies)", tuple(steps))
