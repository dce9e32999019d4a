"""The preflight checks `doctor` runs for the configured account and region, before anything is created.

The command (`commands/doctor.py`) prints them and exits 5 when one failed. Every check is a read (STS, IoT,
Greengrass, S3, Lambda GetFunction) or a lookup in data kept here; doctor never creates anything to probe (no test
Lambda function, no test object). Each check ends as

* ok   - ready;
* warn - works, but something will bite later (a deprecated runtime, the Greengrass target that is not the default
         being unavailable); warnings never fail the command;
* fail - the command the user is about to run would fail; exit code 5;
* skip - could not be checked because an earlier check failed (no credentials, no region).

Why these checks: the two ways this project can fail on a real account without any bug in it are a retired
service (Greengrass V1 reached end of support on 2026-10-07; the DeepLens API is gone since 2024-01-31) and a
Lambda runtime AWS no longer accepts (python3.7, the DeepLens runtime, cannot be used to create functions since
2024-01-09). moto accepts both, so only a preflight with dated facts says so before a deploy fails half way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from deeplens_cli.aws import error_code, service_unavailable, translate_error
from deeplens_cli.errors import DeeplensError
from deeplens_cli.targets.registry import TARGET_SPECS, spec_for

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.settings.config import Settings

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
GREENGRASS_V1_END_OF_SUPPORT = date(2026, 10, 7)
SOON = timedelta(days=180)  # a runtime whose creation is blocked within this window gets a warning


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail | skip
    detail: str
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class RuntimeLifecycle:
    """AWS Lambda's dates for one runtime: deprecation, then no more creating, then no more updating functions."""

    deprecated: date | None
    create_blocked: date | None
    update_blocked: date | None


# AWS Lambda runtime lifecycle (sources: the AWS Lambda "Lambda runtimes" page, and cfn-lint's
# LmbdRuntimeLifecycle.json, updated
# 2026-06-02 from the AWS Lambda documentation - the dates have moved several times; update this table with them).
LAMBDA_RUNTIMES: dict[str, RuntimeLifecycle] = {
    "python3.7": RuntimeLifecycle(date(2023, 12, 4), date(2024, 1, 9), date(2027, 3, 3)),
    "python3.8": RuntimeLifecycle(date(2024, 10, 14), date(2027, 2, 1), date(2027, 3, 3)),
    "python3.9": RuntimeLifecycle(date(2025, 12, 15), date(2027, 2, 1), date(2027, 3, 3)),
    "python3.10": RuntimeLifecycle(date(2026, 10, 31), date(2027, 2, 1), date(2027, 3, 3)),
    "python3.11": RuntimeLifecycle(date(2027, 6, 30), None, None),
    "python3.12": RuntimeLifecycle(date(2028, 10, 31), None, None),
    "python3.13": RuntimeLifecycle(date(2029, 6, 30), None, None),
    "python3.14": RuntimeLifecycle(date(2029, 6, 30), None, None),
}


def gather_checks(ctx: AwsContext, settings: Settings, today: date) -> list[Check]:
    checks: list[Check] = []
    region = check_region(ctx, settings)
    checks.append(region)
    if region.status == FAIL:
        names = ("credentials", "iot", "greengrass v2", "greengrass v1", "bucket")
        return checks + [Check(n, SKIP, "needs a region") for n in names] + [check_lambda_runtime(settings, today)]
    credentials = check_credentials(ctx)
    checks.append(credentials)
    if credentials.status == FAIL:
        names = ("iot", "greengrass v2", "greengrass v1", "bucket")
        return checks + [Check(n, SKIP, "needs credentials") for n in names] + [check_lambda_runtime(settings, today)]
    checks.append(check_iot(ctx))
    checks.extend(check_greengrass(ctx, settings))
    checks.append(check_lambda_runtime(settings, today, existing_runtime=_existing_function_runtime(ctx, settings)))
    checks.extend(check_buckets(ctx, settings))
    return checks


# ---------------------------------------------------------------------------------------------- checks


def check_region(ctx: AwsContext, settings: Settings) -> Check:
    try:
        region = ctx.region
    except DeeplensError as exc:
        return Check("region", FAIL, exc.message, exc.hint)
    if ctx.endpoint_url or settings["endpoint_url"]:
        return Check("region", OK, f"{region} (all calls go to {ctx.endpoint_url or settings['endpoint_url']})")
    missing = [service for service in ("iot", "greengrassv2")
               if region not in ctx.session.get_available_regions(service)]
    if missing:
        return Check("region", WARN, f"{region}: botocore lists no {' or '.join(missing)} endpoint there",
                     "Greengrass V2 and AWS IoT run in fewer regions than S3; pick one where both are offered")
    return Check("region", OK, region)


def check_credentials(ctx: AwsContext) -> Check:
    try:
        identity = ctx.client("sts").get_caller_identity()
    except Exception as exc:  # noqa: BLE001 - translated below, re-raised otherwise
        problem = _translated(exc, "calling sts:GetCallerIdentity")
        return Check("credentials", FAIL, problem.message, problem.hint)
    return Check("credentials", OK, f"account {identity['Account']} as {identity['Arn']}")


def check_iot(ctx: AwsContext) -> Check:
    """Both targets register devices in AWS IoT; its data endpoint is what devices connect to."""
    try:
        address = ctx.client("iot").describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    except Exception as exc:  # noqa: BLE001
        problem = _translated(exc, "calling iot:DescribeEndpoint")
        return Check("iot", FAIL, problem.message, problem.hint)
    return Check("iot", OK, f"devices connect to {address}")


def check_greengrass(ctx: AwsContext, settings: Settings) -> list[Check]:
    """Which Greengrass targets answer. Only the default target being unavailable (or both) fails."""
    default = settings["greengrass.default_target"]
    results: dict[str, Check] = {}
    for spec in sorted(TARGET_SPECS, key=lambda spec: spec.retired):  # current targets first
        target = spec.name
        name = f"greengrass {target}"
        try:
            spec.probe(ctx)
            results[target] = Check(name, OK, "reachable" + (" (default target)" if target == default else ""))
            continue
        except Exception as exc:  # noqa: BLE001

            unavailable = service_unavailable(exc)
            problem = _translated(exc, f"probing Greengrass {target.upper()}")
        if unavailable:
            detail, hint = spec.unavailable
            detail = detail.format(end_of_support=GREENGRASS_V1_END_OF_SUPPORT.isoformat())
        else:
            detail, hint = problem.message, problem.hint
        results[target] = Check(name, FAIL if target == default else WARN, detail, hint)
    if all(check.status != OK for check in results.values()):
        results = {t: Check(c.name, FAIL, c.detail, c.hint) for t, c in results.items()}
    return list(results.values())


def check_lambda_runtime(settings: Settings, today: date, existing_runtime: str | None = None) -> Check:
    """Whether AWS Lambda will take the runtime the V1 target declares (V2 components need no Lambda).

    Judged from `LAMBDA_RUNTIMES`, never by creating a function. With `function.lambda_runtime` set, that is the
    runtime Lambda sees, and the device still runs `function.runtime` (FunctionRuntimeOverride). A function that
    already exists only needs updates, which stay allowed longer than creation.
    """
    declared = settings["function.lambda_runtime"] or settings["function.runtime"]
    device = settings["function.runtime"]

    v1_default = spec_for(settings["greengrass.default_target"]).lambda_function
    blocked_status = FAIL if v1_default else WARN
    override = f" (the device runs {device} through FunctionRuntimeOverride)" if declared != device else ""
    escape = ("set function.lambda_runtime to a runtime Lambda still accepts, e.g. python3.12 (the device keeps "
              "running function.runtime), or use Greengrass V2, which needs no Lambda function")
    lifecycle = LAMBDA_RUNTIMES.get(declared)
    name = "lambda runtime"
    if lifecycle is None:
        return Check(name, WARN, f"{declared}: no lifecycle dates known to this version of deeplens-cli", escape)
    scope = "" if v1_default else " - only the Greengrass V1 target uses Lambda"
    exists = existing_runtime == declared
    if exists and lifecycle.update_blocked and today >= lifecycle.update_blocked:
        return Check(name, blocked_status, f"AWS Lambda no longer updates {declared} functions (blocked since "
                                           f"{lifecycle.update_blocked.isoformat()}){scope}", escape)
    if lifecycle.create_blocked and today >= lifecycle.create_blocked:
        if exists:
            until = f" until {lifecycle.update_blocked.isoformat()}" if lifecycle.update_blocked else ""
            return Check(name, WARN, f"{declared}: the function exists and can still be updated{until}, but Lambda "
                                     f"no longer creates such functions{scope}", escape)
        return Check(name, blocked_status,
                     f"AWS Lambda no longer creates {declared} functions (blocked since "
                     f"{lifecycle.create_blocked.isoformat()}){scope}", escape)
    if lifecycle.create_blocked and today >= lifecycle.create_blocked - SOON:
        return Check(name, WARN, f"{declared}: Lambda stops creating such functions on "
                                 f"{lifecycle.create_blocked.isoformat()}{override}", escape)
    if lifecycle.deprecated and today >= lifecycle.deprecated:
        return Check(name, WARN, f"{declared} is deprecated since {lifecycle.deprecated.isoformat()} "
                                 f"(no more security patches){override}", escape)
    return Check(name, OK, f"{declared} accepted by AWS Lambda{override}")


def check_buckets(ctx: AwsContext, settings: Settings) -> list[Check]:
    bucket = settings["bucket"]
    if not bucket:
        # A fresh machine: doctor is the first step of the guide, before any bucket exists. A hint, not a failure.
        return [Check("bucket", WARN, "not configured yet (no bucket set)",
                      "run `deeplens-cli init --bucket NAME`, or `deeplens-cli register-roles --bucket NAME --save`")]
    checks = [check_bucket(ctx, "bucket", bucket)]
    artifacts = settings["greengrass.artifact_bucket"]
    if artifacts and artifacts != bucket:
        checks.append(check_bucket(ctx, "artifact bucket", artifacts))
    return checks


def check_bucket(ctx: AwsContext, name: str, bucket: str) -> Check:
    from botocore.exceptions import ClientError

    try:
        response = ctx.client("s3").head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket"):
            return Check(name, FAIL, f"s3://{bucket} does not exist",
                         "run `deeplens-cli register-roles` to create it, or fix the bucket name")
        if code in ("403", "AccessDenied", "Forbidden"):
            return Check(name, FAIL, f"s3://{bucket} exists but this identity cannot use it (another account's "
                                     f"bucket, or s3:ListBucket is not granted)",
                         "bucket names are global: choose a name you own, or grant access to this identity")
        if code in ("301", "PermanentRedirect"):
            found = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-bucket-region", "?")
            return _other_region(name, bucket, found, ctx.region)
        problem = _translated(exc, f"calling s3:HeadBucket on {bucket}")
        return Check(name, FAIL, problem.message, problem.hint)
    except Exception as exc:  # noqa: BLE001
        problem = _translated(exc, f"calling s3:HeadBucket on {bucket}")
        return Check(name, FAIL, problem.message, problem.hint)
    found = response.get("BucketRegion") or response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get(
        "x-amz-bucket-region")
    if found and found != ctx.region:
        return _other_region(name, bucket, found, ctx.region)
    return Check(name, OK, f"s3://{bucket} reachable" + (f" in {found}" if found else ""))


def _other_region(name: str, bucket: str, found: str, region: str) -> Check:
    return Check(name, FAIL, f"s3://{bucket} is in {found}, deeplens-cli uses {region}",
                 f"set region: {found} (or --region {found}), or choose a bucket in {region}")


# ---------------------------------------------------------------------------------------------- helpers


def _existing_function_runtime(ctx: AwsContext, settings: Settings) -> str | None:
    """The runtime of the V1 Lambda function if it already exists (read-only); None when absent or unreadable."""
    try:
        return ctx.client("lambda").get_function(FunctionName=settings["function.name"])["Configuration"].get("Runtime")
    except Exception:  # noqa: BLE001 - a missing function or missing permission just means "not known"
        return None


def _translated(exc: BaseException, doing: str) -> DeeplensError:
    translated = translate_error(exc, doing=doing)
    if translated is None:
        raise exc
    return translated
