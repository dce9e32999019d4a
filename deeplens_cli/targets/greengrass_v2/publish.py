"""Publishing the Greengrass V2 component: the artifact (content-addressed, never overwritten) and a new
component version only when the code or settings changed; then wait until the version is DEPLOYABLE.

Functions of the shared `V2Context` (context.py); deploy and fleet call `plan_component`, status and destroy
read `component_versions`. This module needs no other concern.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from deeplens_cli.aws import collect, maybe
from deeplens_cli.engine.plan import Action, ApiCall, LocalStep, Plan, noop
from deeplens_cli.errors import DeeplensError
from deeplens_cli.targets.artifacts import artifact_bucket, require_bucket, stored_sha256, upload_call
from deeplens_cli.targets.greengrass_v2 import component as comp
from deeplens_cli.targets.greengrass_v2.naming import MANAGED
from deeplens_cli.targets.iot import NOT_FOUND
from deeplens_cli.targets.key_template import check_key_template
from deeplens_cli.targets.waiting import WaitClock, poll_until

if TYPE_CHECKING:
    from deeplens_cli.targets.greengrass_v2.context import V2Context

COMPONENT_READY_WAIT_S = 300.0
COMPONENT_READY_POLL_S = 2.0


def plan_publish(v2: V2Context) -> Plan:
    plan = Plan("publish (Greengrass V2 component)")
    plan_component(v2, plan)
    return plan


def plan_component(v2: V2Context, plan: Plan) -> str:
    """Add the artifact upload and component version actions; returns the version devices should run."""
    check_key_template(v2.settings)  # before any AWS call: the device must be able to name its crops
    gg = v2.ctx.client("greengrassv2")
    build = v2.component()
    bucket = artifact_bucket(v2.settings)
    require_bucket(v2.ctx, bucket, f"artifact bucket {bucket} does not exist")
    latest = comp.highest_version(v["componentVersion"] for v in component_versions(v2))
    reason = "first version"
    if latest is not None:
        described = gg.describe_component(arn=v2.component_arn(latest))
        tags = described.get("tags") or {}
        state = (described.get("status") or {}).get("componentState")
        artifact_key = comp.artifact_key(v2.settings, v2.component_name, latest)
        if tags.get(comp.TAG_CONTENT) != build.content_sha256:
            reason = f"code or settings changed since {latest}"
        elif state != "DEPLOYABLE":
            reason = f"{latest} is {state}"
        elif stored_sha256(v2.ctx, bucket, artifact_key) != tags.get(comp.TAG_ARTIFACT):
            reason = f"the artifact of {latest} was deleted or overwritten (s3://{bucket}/{artifact_key})"
        else:
            resource = f"gg-component/{v2.component_name}@{latest}"
            plan.add(noop(resource, f"up to date (content sha256 {build.content_sha256[:12]})",
                          version=latest, artifact=build.artifact_uri(latest)))
            plan.known["component_version"] = latest
            return latest

    version, skipped, reuse = comp.bump_patch(latest), [], False
    while True:  # never overwrite an artifact key: skip versions whose key holds other bytes
        found = stored_sha256(v2.ctx, bucket, comp.artifact_key(v2.settings, v2.component_name, version))
        if found is None or found == build.package.sha256_hex:
            reuse = found is not None
            break
        skipped.append(version)
        version = comp.bump_patch(version)
    key = comp.artifact_key(v2.settings, v2.component_name, version)
    uri = build.artifact_uri(version)
    note = f" (skipped {', '.join(skipped)}: their artifact keys already hold other bytes)" if skipped else ""
    if reuse:
        plan.add(noop(f"s3-object/{uri}", "already uploaded with the same sha256 (by an interrupted run)"))
    else:
        plan.add(Action(f"s3-object/{uri}", "create", f"artifact of {v2.component_name} {version}{note}", (
            upload_call(bucket, key, build.package, {comp.TAG_MANAGED: MANAGED},
                        IfNoneMatch="*"),  # S3 itself refuses to overwrite an existing key
        ), details={"sha256": build.package.sha256_hex, "size": build.package.size}))
    plan.add(Action(f"gg-component/{v2.component_name}@{version}", "create", reason, (
        ApiCall("greengrassv2", "create_component_version",
                {"inlineRecipe": build.recipe_bytes(version), "tags": build.tags()},
                outputs={"component_version_arn": "arn"}),
        LocalStep(f"wait until {v2.component_name} {version} is DEPLOYABLE", partial(_wait_deployable, v2)),
    ), details={"version": version, "previous": latest, "content_sha256": build.content_sha256}))
    plan.known["component_version"] = version
    return version


def component_versions(v2: V2Context) -> list[dict[str, Any]]:
    """Every version of our component, highest first; [] before the first publish."""
    return maybe(lambda: collect(v2.ctx.client("greengrassv2"), "list_component_versions", "componentVersions",
                                 arn=v2.component_arn()), NOT_FOUND) or []


def _wait_deployable(v2: V2Context, variables: dict[str, Any]) -> None:
    """Poll describe_component until the new version is DEPLOYABLE (botocore has no greengrassv2 waiters)."""
    arn = variables["component_version_arn"]
    seen: dict[str, Any] = {}

    def deployable() -> bool | None:
        status = v2.ctx.client("greengrassv2").describe_component(arn=arn).get("status") or {}
        state = seen["state"] = status.get("componentState")
        if state in ("FAILED", "DEPRECATED"):
            errors = "; ".join(f"{uri}: {message}" for uri, message in (status.get("errors") or {}).items())
            raise DeeplensError(f"component version {arn} is {state}: {status.get('message', '')}"
                                + (f" ({errors})" if errors else ""),
                                "the Greengrass service must be able to read the artifact: check the bucket "
                                "policy and that the bucket is in this region; then run the command again")
        return True if state == "DEPLOYABLE" else None

    if poll_until(deployable, WaitClock(v2.ctx.sleep, v2.ctx.clock), COMPONENT_READY_WAIT_S, COMPONENT_READY_POLL_S,
                  whole_intervals=True) is None:
        raise DeeplensError(f"component version {arn} is still {seen['state']} after {COMPONENT_READY_WAIT_S:.0f}s",
                            "run the command again later")
