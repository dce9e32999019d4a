"""Publishing the edge function as a Lambda version: created or updated only when CodeSha256 or the
configuration differ, the code uploaded under a content-addressed key.

Functions of the target's `V1Context` (the Lambda client, the settings, the zip built once per target);
`add_publish_actions` is what deploy calls to put the function's actions first in its own plan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from deeplens_cli.aws import collect, maybe
from deeplens_cli.engine.plan import Action, ApiCall, Plan, Ref, Retry, Step, Wait, noop
from deeplens_cli.errors import DeeplensError
from deeplens_cli.targets.artifacts import artifact_bucket, require_bucket, stored_sha256, upload_call
from deeplens_cli.targets.greengrass_v1.naming import LAMBDA_ROLE
from deeplens_cli.targets.greengrass_v1.project import function_environment
from deeplens_cli.targets.key_template import check_key_template
from deeplens_cli.targets.lambda_functions import configuration_differences, function_as_created
from deeplens_cli.targets.package import build_package

if TYPE_CHECKING:
    from deeplens_cli.settings.config import Settings
    from deeplens_cli.targets.greengrass_v1.context import V1Context
    from deeplens_cli.targets.package import Package


HANDLER = "edge_function.lambda_function.function_handler"
FUNCTION_DESCRIPTION = "deeplens-cli edge face detection: uploads face crops to S3 (Greengrass V1 long-lived)"

# Lambda's answer for a runtime it no longer lets anyone create or update (real AWS; moto accepts any runtime).
RUNTIME_REJECTED = re.compile(r"runtime parameter of (\S+) is no longer supported", re.I)
IAM_PROPAGATION = Retry(codes=("InvalidParameterValueException",),
                        message_pattern="cannot be assumed|does not have permissions", budget_s=150,
                        waiting_for=f"IAM to let Lambda assume {LAMBDA_ROLE}")


def package(v1: V1Context) -> Package:
    """The function zip for these settings (built once per target)."""
    if v1.built_package is None:
        v1.built_package = build_package(vendor_requirements=v1.settings["function.vendor"],
                                         python_version=device_python(v1.settings))
    return v1.built_package


def device_python(settings: Settings) -> str:
    return settings["function.runtime"].removeprefix("python")


def lambda_runtime(settings: Settings) -> str:
    return settings["function.lambda_runtime"] or settings["function.runtime"]


def desired_function_configuration(settings: Settings, role_arn: str) -> dict[str, Any]:
    return {"Role": role_arn, "Handler": HANDLER, "Runtime": lambda_runtime(settings),
            "Timeout": settings["function.timeout_s"], "MemorySize": settings["function.memory_mb"],
            "Description": FUNCTION_DESCRIPTION, "Environment": {"Variables": function_environment(settings)}}


def plan_publish(v1: V1Context) -> Plan:
    plan = Plan(f"publish {v1.settings['function.name']} (Lambda, Greengrass V1)")
    add_publish_actions(v1, plan)
    return plan


def add_publish_actions(v1: V1Context, plan: Plan) -> PublishedFunction:
    """The function action(s) of a plan; returns the version ARN to pin (a Ref when one is being published)."""
    settings = v1.settings
    check_key_template(settings)  # before any AWS call: the device must be able to name its crops
    function_name = settings["function.name"]
    built = package(v1)
    desired = desired_function_configuration(settings, v1.role_arn(LAMBDA_ROLE))
    runtime = lambda_runtime(settings)
    resource = f"lambda-function/{function_name}"
    details = {"sha256": built.sha256_hex, "code_sha256": built.code_sha256_b64, "size": built.size,
               "runtime": runtime}
    explain = explainer(settings)
    # CodeSha256 makes Lambda refuse to publish if the code changed under us since our update.
    publish = ApiCall("lambda", "publish_version", {"FunctionName": function_name,
                                                    "CodeSha256": built.code_sha256_b64},
                      outputs={"function_version": "Version", "function_version_arn": "FunctionArn"})
    current = maybe(lambda: v1.lam.get_function(FunctionName=function_name), ("ResourceNotFoundException",))
    code = code_location(settings, built)
    if current is None:
        _add_code_upload(v1, plan, built, code)
        plan.add(Action(resource, "create", f"new function ({built.size} bytes, {runtime}), first version", (
            ApiCall("lambda", "create_function", {**desired, "FunctionName": function_name, "Code": code,
                                                  "Publish": False},
                    retry=IAM_PROPAGATION, explain=explain, exists=function_as_created(built.code_sha256_b64, desired)),
            Wait("lambda", "function_active_v2", {"FunctionName": function_name}),
            publish,
        ), details=details))
        return PublishedFunction(Ref("function_version_arn"), True)

    latest = current["Configuration"]
    code_changed = latest.get("CodeSha256") != built.code_sha256_b64
    config_diff = configuration_differences(latest, desired)
    published = _matching_version(v1, function_name, built.code_sha256_b64, desired)
    if not code_changed and not config_diff and published is not None:
        plan.known["function_version_arn"] = published["FunctionArn"]
        plan.add(noop(resource, f"version {published['Version']} has this code and configuration",
                      version=published["Version"], **details))
        return PublishedFunction(published["FunctionArn"], False)

    steps: list[Step] = []
    reasons = []
    if code_changed:
        reasons.append("code changed")
        _add_code_upload(v1, plan, built, code)
        steps += [ApiCall("lambda", "update_function_code", {"FunctionName": function_name, **code},
                          explain=explain),
                  Wait("lambda", "function_updated_v2", {"FunctionName": function_name})]
    if config_diff:
        reasons.append("configuration differs: " + ", ".join(config_diff))
        steps += [ApiCall("lambda", "update_function_configuration", {**desired, "FunctionName": function_name},
                          retry=IAM_PROPAGATION, explain=explain),
                  Wait("lambda", "function_updated_v2", {"FunctionName": function_name})]
    if not steps:
        reasons.append("no published version has this code and configuration")
    steps.append(publish)
    plan.add(Action(resource, "update", "; ".join(reasons) + "; new version", tuple(steps),
                    details={**details, "changed": config_diff + (["code"] if code_changed else [])}))
    return PublishedFunction(Ref("function_version_arn"), True)


def code_location(settings: Settings, built: Package) -> dict[str, str]:
    """Where the function zip lives in S3: content-addressed, so a key is written once and never overwritten.

    Lambda copies the code from there; the key also stays readable for whoever needs the exact bytes that were
    published (the simulated core in `demo` fetches them from here and checks them against CodeSha256).
    """
    key = f"{code_prefix(settings)}{built.sha256_hex}.zip"
    return {"S3Bucket": artifact_bucket(settings), "S3Key": key}


def code_prefix(settings: Settings) -> str:
    """The S3 prefix of every function zip publish uploads (destroy deletes under it once no device is left)."""
    return f"{settings['greengrass.artifact_prefix']}lambda/{settings['function.name']}/"


def _add_code_upload(v1: V1Context, plan: Plan, built: Package, code: Mapping[str, str]) -> None:
    """Upload the zip unless an earlier (perhaps interrupted) run already did: same key means same bytes."""
    bucket, key = code["S3Bucket"], code["S3Key"]
    resource = f"s3-object/s3://{bucket}/{key}"
    require_bucket(v1.ctx, bucket, f"bucket {bucket} for the function code does not exist")
    if stored_sha256(v1.ctx, bucket, key) is not None:
        plan.add(noop(resource, "function code already uploaded (content-addressed key)"))
        return
    plan.add(Action(resource, "create", f"function code ({built.size} bytes)", (
        upload_call(bucket, key, built),
    ), details={"sha256": built.sha256_hex}))


def _matching_version(v1: V1Context, function_name: str, code_sha256: str,
                      desired: Mapping[str, Any]) -> dict[str, Any] | None:
    versions = collect(v1.lam, "list_versions_by_function", "Versions", FunctionName=function_name)
    matching = [v for v in versions if v.get("Version") != "$LATEST" and v.get("CodeSha256") == code_sha256
                and not configuration_differences(v, desired)]
    return max(matching, key=lambda v: int(v["Version"]), default=None)


def explainer(settings: Settings) -> Callable[[BaseException], DeeplensError | None]:
    """The `explain` of the function's ApiCalls: `explain_runtime_rejection` for these settings."""
    return lambda exc: explain_runtime_rejection(settings, exc)


def explain_runtime_rejection(settings: Settings, exc: BaseException) -> DeeplensError | None:
    """Lambda's "runtime ... no longer supported", as one line with the way out; None for any other error.

    Lambda answers InvalidParameterValueException for many reasons; only this one has a fix we can name, so
    the function's ApiCalls carry this as their `explain` and the Executor asks it before translating.
    """
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {}) if isinstance(response, dict) else {}
    match = RUNTIME_REJECTED.search(str(error.get("Message", "")))
    if error.get("Code") != "InvalidParameterValueException" or not match:
        return None
    runtime = match.group(1).rstrip(".,")
    if settings["function.lambda_runtime"]:
        hint = "set function.lambda_runtime to a runtime Lambda still accepts (e.g. python3.12)"
    else:
        hint = (f"set function.lambda_runtime: python3.12 - Lambda then stores the function as python3.12 "
                f"and Greengrass runs it on the device as {settings['function.runtime']} "
                f"(FunctionRuntimeOverride)")
    return DeeplensError(f"AWS Lambda no longer accepts runtime {runtime} for new or updated functions", hint)


@dataclass
class PublishedFunction:
    """What `plan_publish` found or will produce: the version ARN to pin (a Ref while it is being published)."""

    version_arn: Any
    changed: bool

