"""The IAM policy documents deeplens-cli writes, as pure functions, and how to compare two documents.

Every document here is plain data built from settings, so it can be unit-tested, linted (parliament) and shown
in `--dry-run` output before anything reaches AWS. IoT policies (device certificates) live with their targets.

Comparison is semantic, because IAM does not give back what was sent: some APIs return URL-encoded JSON,
statement and action order is not preserved, and `"Action": "s3:PutObject"` means the same as
`"Action": ["s3:PutObject"]`. `normalise_policy` maps all of those spellings to one canonical form.
"""

from __future__ import annotations

import json
from typing import Any, Mapping
from urllib.parse import unquote

POLICY_VERSION = "2012-10-17"

# Policy-element keys whose value may be a single string or a list of strings.
_STRING_OR_LIST_KEYS = {"Action", "NotAction", "Resource", "NotResource"}


def partition_for(region: str) -> str:
    """ARN partition of a region: managed policy and bucket ARNs differ in China and GovCloud."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def managed_policy_arn(name_with_path: str, partition: str = "aws") -> str:
    """`managed_policy_arn("service-role/AWSLambdaBasicExecutionRole")` -> the AWS managed policy ARN."""
    return f"arn:{partition}:iam::aws:policy/{name_with_path}"


def trust_policy(service: str) -> dict[str, Any]:
    """A role trust policy letting one AWS service principal assume the role."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def prefix_objects_arn(bucket: str, prefix: str, partition: str = "aws") -> str:
    """ARN of every object under a key prefix: `arn:aws:s3:::bucket/faces/*` (prefix '' = whole bucket)."""
    return f"arn:{partition}:s3:::{bucket}/{prefix}*"


def face_crops_upload_policy(bucket: str, prefix: str, partition: str = "aws") -> dict[str, Any]:
    """Least-privilege S3 grant for the device: write face crops under the prefix, nothing else.

    No GetObject, no ListBucket and no PutObjectAcl: a device that is stolen or compromised can add crops but
    cannot read the faces already collected, enumerate them or make them public. The explicit Deny matters on
    Greengrass V1: the group role also carries the managed AWSDeepLensLambdaFunctionAccessPolicy, which allows
    s3:GetObject and s3:ListBucket on every `deeplens*` bucket - and DeepLens buckets are named like that. The
    Deny covers the whole crops bucket: nothing the device runs reads from it with this role (Lambda copies the
    function code with the deployer's credentials; a Greengrass ML resource is fetched with the service role).
    """
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {"Sid": "UploadFaceCrops", "Effect": "Allow", "Action": "s3:PutObject",
             "Resource": prefix_objects_arn(bucket, prefix, partition)},
            {"Sid": "NeverReadTheCropsBucket", "Effect": "Deny",
             "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:ListBucketVersions"],
             "Resource": [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"]},
        ],
    }


# Actions the Greengrass V2 nucleus itself needs from its token exchange role (nucleus 2.5.0 and later):
# CloudWatch logs uploads and locating artifact buckets.
NUCLEUS_LOG_ACTIONS = (
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "logs:DescribeLogStreams",
)


def token_exchange_policy(crops_bucket: str, crops_prefix: str, artifact_bucket: str, artifact_prefix: str,
                          partition: str = "aws") -> dict[str, Any]:
    """Inline policy of the Greengrass V2 token exchange role: nucleus basics, artifact download, crop upload.

    Every component on a V2 core gets these credentials through the token exchange service, so the grant is
    the union of what the nucleus and our component need - and no more: artifacts are readable only under
    the artifact prefix, crops writable only under the crops prefix.
    """
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {"Sid": "NucleusLogs", "Effect": "Allow", "Action": list(NUCLEUS_LOG_ACTIONS),
             "Resource": f"arn:{partition}:logs:*:*:log-group:/aws/greengrass/*"},
            {"Sid": "LocateArtifactBucket", "Effect": "Allow", "Action": "s3:GetBucketLocation",
             "Resource": f"arn:{partition}:s3:::{artifact_bucket}"},
            {"Sid": "DownloadComponentArtifacts", "Effect": "Allow", "Action": "s3:GetObject",
             "Resource": prefix_objects_arn(artifact_bucket, artifact_prefix, partition)},
            {"Sid": "UploadFaceCrops", "Effect": "Allow", "Action": "s3:PutObject",
             "Resource": prefix_objects_arn(crops_bucket, crops_prefix, partition)},
        ],
    }


# ---------------------------------------------------------------------------------------------- comparison


def parse_policy(document: str | Mapping[str, Any]) -> dict[str, Any]:
    """A policy document as a dict, whether IAM returned a dict, JSON text or URL-encoded JSON text."""
    if isinstance(document, Mapping):
        return dict(document)
    text = document.strip()
    if text.startswith("%"):
        text = unquote(text)
    return json.loads(text)


def normalise_policy(document: str | Mapping[str, Any]) -> dict[str, Any]:
    """Canonical form for comparison: single strings become lists, lists are sorted and de-duplicated,
    statements are sorted, and `Sid`s (labels with no effect on what is allowed) are dropped."""
    policy = parse_policy(document)
    statements = policy.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    canonical = [_canonical_statement(statement) for statement in statements]
    return {
        "Version": policy.get("Version", "2008-10-17"),
        "Statement": sorted(canonical, key=_sort_key),
    }


def same_policy(a: str | Mapping[str, Any] | None, b: str | Mapping[str, Any] | None) -> bool:
    """True when two documents allow and deny exactly the same way in the spelling-insensitive sense above."""
    if a is None or b is None:
        return a is b
    return normalise_policy(a) == normalise_policy(b)


def trusted_services(document: str | Mapping[str, Any]) -> list[str]:
    """Service principals a trust policy allows (for one-line drift messages)."""
    services: list[str] = []
    for statement in normalise_policy(document)["Statement"]:
        principal = statement.get("Principal")
        if statement.get("Effect") == "Allow" and isinstance(principal, Mapping):
            services.extend(principal.get("Service", []))
    return sorted(set(services))


def _canonical_statement(statement: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in statement.items():
        if key == "Sid":
            continue
        if key in _STRING_OR_LIST_KEYS:
            result[key] = _as_sorted_list(value)
        elif key in ("Principal", "NotPrincipal") and isinstance(value, Mapping):
            result[key] = {kind: _as_sorted_list(ids) for kind, ids in value.items()}
        elif key == "Condition" and isinstance(value, Mapping):
            result[key] = {op: {k: _as_sorted_list(v) for k, v in conditions.items()}
                           for op, conditions in value.items()}
        else:
            result[key] = value
    return result


def _as_sorted_list(value: Any) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    return sorted({json.dumps(item, sort_keys=True): item for item in items}.values(), key=_sort_key)


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
