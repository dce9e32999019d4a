"""What both targets upload to S3 for a device to fetch: the artifact bucket and content-addressed objects.

The V1 Lambda function code and the V2 component artifact are both zips that a key holds exactly once: a key is
never overwritten (V1 names the key after the zip's SHA-256; V2 one key per component version, which publish
skips rather than overwrite), and the SHA-256 is stored in the object's metadata so a later run can tell whether
the object still holds the bytes it was written with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from deeplens_cli.aws import maybe
from deeplens_cli.engine.plan import AlreadyExists, ApiCall
from deeplens_cli.errors import DeeplensError

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.settings.config import Settings
    from deeplens_cli.targets.package import Package

# Real S3 answers HEAD without a body, so a missing bucket and a missing key both read "404".
MISSING_BUCKET = ("404", "NoSuchBucket", "NotFound")
MISSING_OBJECT = ("404", "NoSuchKey", "NotFound")


def artifact_bucket(settings: Settings) -> str:
    return settings["greengrass.artifact_bucket"] or settings.require("bucket")


def require_bucket(ctx: AwsContext, bucket: str, problem: str) -> None:
    """A clear error (`problem`, before any change) when the bucket does not exist.

    Asked before any object: HEAD answers without a body, so a missing bucket and a missing key both read "404".
    """
    if maybe(lambda: ctx.client("s3").head_bucket(Bucket=bucket), MISSING_BUCKET) is None:
        raise DeeplensError(
            problem,
            "run `deeplens-cli register-roles` (it creates the bucket), or fix greengrass.artifact_bucket",
        )


def stored_sha256(ctx: AwsContext, bucket: str, key: str) -> str | None:
    """The sha256 we stored on an object, "" for an object of unknown content, None when there is no object."""
    head = maybe(lambda: ctx.client("s3").head_object(Bucket=bucket, Key=key), MISSING_OBJECT)
    if head is None:
        return None
    return (head.get("Metadata") or {}).get("sha256", "")


def upload_call(bucket: str, key: str, package: Package, metadata: Mapping[str, str] | None = None,
                **extra: Any) -> ApiCall:
    """put_object of a zip with its SHA-256 checked by S3 and recorded in the object's metadata.

    With `IfNoneMatch="*"` S3 refuses to overwrite the key (412 PreconditionFailed); when that 412 answers
    botocore's retry of a lost answer, the object holding the same SHA-256 is the one the first attempt wrote."""
    return ApiCall("s3", "put_object", {
        "Bucket": bucket, "Key": key, "Body": package.zip_bytes, "ContentType": "application/zip",
        "ChecksumSHA256": package.code_sha256_b64, "Metadata": {"sha256": package.sha256_hex, **(metadata or {})},
        **extra,
    }, exists=AlreadyExists(("PreconditionFailed", "412"), _object_as_uploaded))


def _object_as_uploaded(ctx: AwsContext, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The object a retried upload found is ours when it holds the bytes we sent (the SHA-256 in its metadata)."""
    sha256 = stored_sha256(ctx, params["Bucket"], params["Key"])
    return {"Key": params["Key"]} if sha256 and sha256 == params["Metadata"]["sha256"] else None
