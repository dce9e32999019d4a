"""The face-crops bucket: desired state as data, how to read it, and the plan that makes it so.

Face crops are biometric data, so the bucket's desired state is private by construction:

* all four Block Public Access settings on;
* Object Ownership `BucketOwnerEnforced` (ACLs disabled - the device never sends one, and an ACL could not
  make a crop public even by mistake);
* default encryption SSE-S3 (AES256), unless the owner already chose SSE-KMS, which is kept;
* optionally a lifecycle rule that expires crops under the prefix after `retention_days` (current and
  noncurrent versions, so enabling versioning later does not silently keep faces forever).

The planner only reads (head/get); every change is a step of the returned plan. A bucket name that exists in
another account or another region is an error naming it, never something to "fix".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from deeplens_cli.aws import error_code, translate_error
from deeplens_cli.engine.plan import Action, ApiCall, Plan, Step, Wait, noop
from deeplens_cli.errors import DeeplensError

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.settings.config import Settings

LIFECYCLE_RULE_ID = "deeplens-cli-face-crops-retention"
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
OBJECT_OWNERSHIP = "BucketOwnerEnforced"
DEFAULT_ENCRYPTION = "AES256"
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")  # an owner's choice of SSE-KMS is stronger than ours: keep it
DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys per request

# Lifecycle rule fields we own; anything else S3 echoes back is ignored when comparing.
_RULE_FIELDS = ("Filter", "Status", "Expiration", "NoncurrentVersionExpiration")


@dataclass(frozen=True)
class DesiredBucket:
    name: str
    region: str
    prefix: str
    retention_days: int | None

    def lifecycle_rule(self) -> dict[str, Any] | None:
        if self.retention_days is None:
            return None
        return {
            "ID": LIFECYCLE_RULE_ID,
            "Filter": {"Prefix": self.prefix},
            "Status": "Enabled",
            "Expiration": {"Days": self.retention_days},
            "NoncurrentVersionExpiration": {"NoncurrentDays": self.retention_days},
        }


@dataclass
class BucketState:
    """What S3 says about the bucket now. `exists=False` means every other field is meaningless."""

    name: str
    exists: bool
    region: str | None = None
    public_access_block: dict[str, bool] | None = None
    ownership: str | None = None
    encryption: str | None = None  # SSEAlgorithm of the default encryption rule
    lifecycle_rules: list[dict[str, Any]] = field(default_factory=list)

    @property
    def our_rule(self) -> dict[str, Any] | None:
        return next((rule for rule in self.lifecycle_rules if rule.get("ID") == LIFECYCLE_RULE_ID), None)

    @property
    def other_rules(self) -> list[dict[str, Any]]:
        return [rule for rule in self.lifecycle_rules if rule.get("ID") != LIFECYCLE_RULE_ID]


def desired_bucket(settings: Settings, region: str) -> DesiredBucket:
    return DesiredBucket(name=settings.require("bucket"), region=region, prefix=settings["prefix"],
                         retention_days=settings["retention_days"])


# ---------------------------------------------------------------------------------------------- reading


def read_bucket(ctx: AwsContext, name: str) -> BucketState:
    """Read the bucket's settings; raise a one-line error when it belongs to another account or region."""
    s3 = ctx.client("s3")
    head = _read(lambda: s3.head_bucket(Bucket=name), f"checking bucket {name}", ("404", "NoSuchBucket"),
                 bucket=name, region=ctx.region)
    if head is None:
        return BucketState(name=name, exists=False)
    location = _read(lambda: s3.get_bucket_location(Bucket=name), f"reading the region of bucket {name}", (),
                     bucket=name, region=ctx.region)
    region = _location_region((location or {}).get("LocationConstraint"))
    if region != ctx.region:
        raise DeeplensError(f"bucket {name} is in region {region}, not {ctx.region}",
                            f"use --region {region}, or choose another bucket name for {ctx.region}")
    state = BucketState(name=name, exists=True, region=region)

    pab = _read(lambda: s3.get_public_access_block(Bucket=name), f"reading public access block of {name}",
                ("NoSuchPublicAccessBlockConfiguration",))
    state.public_access_block = dict(pab["PublicAccessBlockConfiguration"]) if pab else None
    ownership = _read(lambda: s3.get_bucket_ownership_controls(Bucket=name), f"reading object ownership of {name}",
                      ("OwnershipControlsNotFoundError",))
    rules = (ownership or {}).get("OwnershipControls", {}).get("Rules", [])
    state.ownership = rules[0].get("ObjectOwnership") if rules else None
    encryption = _read(lambda: s3.get_bucket_encryption(Bucket=name), f"reading default encryption of {name}",
                       ("ServerSideEncryptionConfigurationNotFoundError",))
    enc_rules = (encryption or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    state.encryption = (
        enc_rules[0].get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") if enc_rules else None
    )
    lifecycle = _read(lambda: s3.get_bucket_lifecycle_configuration(Bucket=name), f"reading lifecycle rules of {name}",
                      ("NoSuchLifecycleConfiguration",))
    state.lifecycle_rules = list((lifecycle or {}).get("Rules", []))
    return state


def _read(call: Callable[[], dict[str, Any]], doing: str, missing_codes: tuple[str, ...],
          bucket: str | None = None, region: str | None = None) -> dict[str, Any] | None:
    """One read; None when the error code means "not configured". Foreign buckets get a specific message."""
    from botocore.exceptions import ClientError

    try:
        return call()
    except ClientError as exc:
        code = error_code(exc) or ""
        if code in missing_codes:
            return None
        if bucket is not None and code in ("403", "AccessDenied"):
            raise DeeplensError(
                f"bucket {bucket} exists but this account cannot use it (HTTP 403: it belongs to "
                f"another account, or access is denied)",
                "bucket names are global: choose another bucket name, or use the owning account's profile",
            ) from None
        if bucket is not None and code in ("301", "PermanentRedirect", "AuthorizationHeaderMalformed",
                                           "IllegalLocationConstraintException"):
            headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            actual = headers.get("x-amz-bucket-region", "another region")
            raise DeeplensError(f"bucket {bucket} is in {actual}, not {region}",
                                "use --region matching the bucket, or choose another bucket name") from None
        raise translate_error(exc, doing=doing) or exc from None


def _location_region(constraint: str | None) -> str:
    """GetBucketLocation's legacy answers: no constraint means us-east-1, "EU" means eu-west-1."""
    if not constraint:
        return "us-east-1"
    return "eu-west-1" if constraint == "EU" else constraint


# ---------------------------------------------------------------------------------------------- comparing


def differences(state: BucketState, desired: DesiredBucket) -> list[str]:
    """What differs from the desired state, one short phrase each (empty when up to date)."""
    found: list[str] = []
    if state.public_access_block != PUBLIC_ACCESS_BLOCK:
        off = [k for k, v in PUBLIC_ACCESS_BLOCK.items() if (state.public_access_block or {}).get(k) != v]
        found.append("public access not fully blocked (" + ", ".join(off) + " off)")
    if state.ownership != OBJECT_OWNERSHIP:
        found.append(f"object ownership is {state.ownership or 'unset'}, ACLs not disabled")
    if state.encryption not in (DEFAULT_ENCRYPTION, *KMS_ALGORITHMS):
        found.append(f"default encryption is {state.encryption or 'unset'}")
    wanted = desired.lifecycle_rule()
    ours = state.our_rule
    if wanted is not None and ours is None:
        found.append(f"no lifecycle rule expiring {desired.prefix}* after {desired.retention_days} days")
    elif wanted is not None and ours is not None and _rule_fields(ours) != _rule_fields(wanted):
        found.append(
            f"lifecycle rule {LIFECYCLE_RULE_ID} differs (want {desired.prefix}* after {desired.retention_days} days)"
        )
    elif wanted is None and ours is not None:
        found.append(f"lifecycle rule {LIFECYCLE_RULE_ID} present but retention_days is unset")
    return found


def _rule_fields(rule: dict[str, Any]) -> dict[str, Any]:
    return {key: rule.get(key) for key in _RULE_FIELDS}


# ---------------------------------------------------------------------------------------------- planning


def plan_bucket(ctx: AwsContext, settings: Settings) -> Plan:
    """Plan for the face-crops bucket: create it, repair what drifted, or nothing."""
    desired = desired_bucket(settings, ctx.region)
    state = read_bucket(ctx, desired.name)
    resource = f"s3-bucket/{desired.name}"
    plan = Plan(f"bucket {desired.name}")
    if not state.exists:
        plan.add(Action(resource, "create", f"missing; create private bucket in {desired.region}",
                        _create_steps(desired), details={"region": desired.region}))
        return plan
    found = differences(state, desired)
    details: dict[str, Any] = {}
    if state.encryption in KMS_ALGORITHMS:
        # The device grants are S3-only: with a customer KMS key, uploads also need kms:GenerateDataKey on it.
        details["warning"] = ("bucket uses SSE-KMS: grant kms:GenerateDataKey on its key to the device roles "
                              "(deeplens-cli grants S3 access only)")
    if not found:
        retention = f", crops expire after {desired.retention_days} days" if desired.retention_days else ""
        kms = " (SSE-KMS: see details)" if details else ""
        plan.add(noop(resource, f"private, encrypted{retention}{kms}", **details))
        return plan
    plan.add(Action(resource, "update", "; ".join(found), _repair_steps(state, desired),
                    details={"differences": found, **details}))
    return plan


def _create_steps(desired: DesiredBucket) -> tuple[Step, ...]:
    params: dict[str, Any] = {"Bucket": desired.name, "ObjectOwnership": OBJECT_OWNERSHIP}
    if desired.region != "us-east-1":  # us-east-1 rejects an explicit LocationConstraint
        params["CreateBucketConfiguration"] = {"LocationConstraint": desired.region}
    steps: list[Step] = [
        ApiCall("s3", "create_bucket", params, ignore_codes=("BucketAlreadyOwnedByYou",)),
        Wait("s3", "bucket_exists", {"Bucket": desired.name}),
        _put_public_access_block(desired.name),
        _put_ownership(desired.name),
        _put_encryption(desired.name),
    ]
    rule = desired.lifecycle_rule()
    if rule is not None:
        steps.append(_put_lifecycle(desired.name, [rule]))
    return tuple(steps)


def _repair_steps(state: BucketState, desired: DesiredBucket) -> tuple[Step, ...]:
    steps: list[Step] = []
    if state.public_access_block != PUBLIC_ACCESS_BLOCK:
        steps.append(_put_public_access_block(desired.name))
    if state.ownership != OBJECT_OWNERSHIP:
        steps.append(_put_ownership(desired.name))
    if state.encryption not in (DEFAULT_ENCRYPTION, *KMS_ALGORITHMS):
        steps.append(_put_encryption(desired.name))
    wanted = desired.lifecycle_rule()
    ours = state.our_rule
    if wanted is not None and (ours is None or _rule_fields(ours) != _rule_fields(wanted)):
        steps.append(_put_lifecycle(desired.name, state.other_rules + [wanted]))  # other owners' rules are kept
    elif wanted is None and ours is not None:
        if state.other_rules:
            steps.append(_put_lifecycle(desired.name, state.other_rules))
        else:
            steps.append(ApiCall("s3", "delete_bucket_lifecycle", {"Bucket": desired.name}))
    return tuple(steps)


def _put_public_access_block(name: str) -> ApiCall:
    return ApiCall("s3", "put_public_access_block",
                   {"Bucket": name, "PublicAccessBlockConfiguration": dict(PUBLIC_ACCESS_BLOCK)})


def _put_ownership(name: str) -> ApiCall:
    return ApiCall("s3", "put_bucket_ownership_controls",
                   {"Bucket": name, "OwnershipControls": {"Rules": [{"ObjectOwnership": OBJECT_OWNERSHIP}]}})


def _put_encryption(name: str) -> ApiCall:
    return ApiCall("s3", "put_bucket_encryption", {
        "Bucket": name,
        "ServerSideEncryptionConfiguration": {
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": DEFAULT_ENCRYPTION}}]},
    })


def _put_lifecycle(name: str, rules: list[dict[str, Any]]) -> ApiCall:
    return ApiCall("s3", "put_bucket_lifecycle_configuration",
                   {"Bucket": name, "LifecycleConfiguration": {"Rules": rules}})


# ---------------------------------------------------------------------------------------------- teardown


def plan_bucket_teardown(ctx: AwsContext, settings: Settings) -> Plan:
    """Empty the bucket (every object version and delete marker) and delete it.

    The objects to delete are listed now, so `--dry-run` can say how many face crops would go. A crop uploaded
    between plan and execution makes DeleteBucket fail with BucketNotEmpty; running destroy again converges.
    """
    name = settings.require("bucket")
    plan = Plan(f"delete bucket {name}")
    resource = f"s3-bucket/{name}"
    state = read_bucket(ctx, name)
    if not state.exists:
        plan.add(noop(resource, "already gone"))
        return plan
    keys = _all_object_versions(ctx, name)
    steps: list[Step] = [
        ApiCall(
            "s3",
            "delete_objects",
            {"Bucket": name, "Delete": {"Objects": keys[i : i + DELETE_BATCH], "Quiet": True}},
        )
        for i in range(0, len(keys), DELETE_BATCH)
    ]
    steps.append(ApiCall("s3", "delete_bucket", {"Bucket": name}, ignore_codes=("NoSuchBucket",)))
    plan.add(Action(resource, "delete", f"delete bucket and ALL {len(keys)} object version(s) in it", tuple(steps),
                    details={"objects": len(keys)}))
    return plan


def _all_object_versions(ctx: AwsContext, name: str) -> list[dict[str, str]]:
    keys: list[dict[str, str]] = []
    paginator = ctx.client("s3").get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=name):
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            keys.append({"Key": entry["Key"], "VersionId": entry.get("VersionId") or "null"})
    return keys
