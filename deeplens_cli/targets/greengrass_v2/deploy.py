"""Deploying to one Greengrass V2 device: the complete component set as a thing deployment (kept as it is
when nothing changed), then following the device's own report and the component's lifecycle state.

Functions of the shared `V2Context` (context.py). Uses publish (`plan_component`: the version to deploy),
register (`plan_core_policy`: deploy repairs a drifted policy) and the shared lookups of reads.py. fleet.py
builds its thing-group deployment with `plan_deployment` and `nucleus_pin` from here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping

from deeplens_cli.engine.plan import Action, ApiCall, Plan, noop
from deeplens_cli.errors import ConfigError
from deeplens_cli.targets import cloudwatch_logs
from deeplens_cli.targets.base import DeploymentOutcome, DeploymentRef, Device
from deeplens_cli.targets.greengrass_v2 import component as comp
from deeplens_cli.targets.greengrass_v2.naming import MANAGED
from deeplens_cli.targets.greengrass_v2.outcomes import (
    BROKEN_STATES,
    FAILURE_STATUSES,
    RUNNING_STATES,
    SUCCESS_STATUSES,
    describe_failure,
    failure_hint,
)
from deeplens_cli.targets.greengrass_v2.publish import plan_component
from deeplens_cli.targets.greengrass_v2.reads import (
    core_device,
    effective_deployment,
    failed_in_job,
    installed_components,
    latest_deployment,
    thing_arn,
)
from deeplens_cli.targets.greengrass_v2.register import plan_core_policy
from deeplens_cli.targets.waiting import WaitClock, poll_until

PENDING_EXECUTION_STATES = ("QUEUED", "IN_PROGRESS")  # the device has not finished the deployment

if TYPE_CHECKING:
    from deeplens_cli.cli.output import Reporter
    from deeplens_cli.targets.greengrass_v2.context import V2Context


def plan_deploy(v2: V2Context, device: Device, force: bool = False) -> Plan:
    plan = Plan(f"deploy {device.name} (Greengrass V2)")
    version = plan_component(v2, plan)
    plan.add(plan_core_policy(v2, device.name, device.thing_name))
    # The nucleus is pinned only when asked (greengrass.pin_nucleus): a pin in the thing deployment would
    # hold back a nucleus upgrade sent to the device's thing group, and our component needs no nucleus pin.
    nucleus = nucleus_pin([core_device(v2, device.thing_name)]) if v2.settings["greengrass.pin_nucleus"] else None
    target_arn = device.thing_arn or thing_arn(v2, device.thing_name)
    components = comp.deployment_components(v2.component_name, version, nucleus,
                                            log_manager_version=_log_manager_version(v2, plan, target_arn))
    own = device_configuration(v2, device.name)
    if own:  # this device's settings: in its own deployment, never in a component version of its own
        components[v2.component_name]["configurationUpdate"]["merge"] = json.dumps(own, sort_keys=True)
    plan.add(plan_deployment(v2, plan, target_arn, f"gg-deployment/{device.thing_name}", components, None,
                             force, device_things=[device.thing_name]))
    return plan


def _log_manager_version(v2: V2Context, plan: Plan, target_arn: str) -> str | None:
    """aws.greengrass.LogManager's version for this deployment when logs.cloudwatch is on: the one the
    current deployment runs, else the newest published. Where none is published (an emulator, a region
    without it) the plan says so once and the deployment goes on without it."""
    if not v2.settings["logs.cloudwatch"]:
        return None

    latest = latest_deployment(v2, target_arn)
    version = cloudwatch_logs.log_manager_version_for(v2.ctx.client("greengrassv2"), v2.partition,
                                                      v2.ctx.region, (latest or {}).get("components"))
    if version is None:
        plan.add(noop(f"gg-component/{cloudwatch_logs.LOG_MANAGER}",
                      f"warning: {cloudwatch_logs.LOG_MANAGER} is not published in {v2.ctx.region} here; "
                      f"deploying without CloudWatch log upload (logs.cloudwatch: false silences this)"))
    return version


def device_configuration(v2: V2Context, name: str) -> dict[str, Any]:
    """What this device's `devices: {NAME: ...}` section changes in the component's configuration:
    {"Environment": {variable: value}} for the variables whose value differs, {} when nothing does.

    The deployment resets the configuration to the version's defaults and then merges this, so the device
    runs the fleet's settings plus its own, and the component version (and its content hash) stays the
    fleet's. Only variables the component exports can be set this way.
    """
    device_settings = v2.settings.for_device(name)
    if device_settings is v2.settings:
        return {}
    fleet = v2.component().environment
    own = comp.component_environment(device_settings)
    changed = {variable: value for variable, value in own.items() if fleet.get(variable) != value}
    missing = sorted(set(changed) - set(fleet))
    if missing:
        raise ConfigError(f"devices.{name} sets {', '.join(missing)}, which the fleet's component leaves to the "
                          f"device's defaults", "set that setting for every device too (the top-level section); "
                          "the device's section can then change its value")
    return {"Environment": changed} if changed else {}


def nucleus_pin(cores: list[dict[str, Any] | None]) -> tuple[str, str] | None:
    """(nucleus component, version) when every core reports the same one; None otherwise (nothing to pin)."""
    pins = set()
    for core in cores:
        if not core or not core.get("coreVersion"):
            return None
        pins.add((comp.NUCLEUS_COMPONENTS.get(core.get("runtime") or "aws_nucleus_classic",
                                              "aws.greengrass.Nucleus"), core["coreVersion"]))
    return pins.pop() if len(pins) == 1 else None


def plan_deployment(v2: V2Context, plan: Plan, target_arn: str, resource: str, components: dict[str, Any],
                    job: dict[str, Any] | None, force: bool, device_things: list[str]) -> Action:
    """A new deployment when the desired component set differs from the target's current one (or the last
    one failed, or --force). Components someone else deployed to the same target are kept: a new deployment
    replaces the old one, and dropping them would uninstall them."""
    latest = latest_deployment(v2, target_arn)
    if latest is not None:
        # The nucleus pin and the LogManager are ours to add or drop (greengrass.pin_nucleus, logs.cloudwatch).
        ours = set(components) | set(comp.NUCLEUS_COMPONENTS.values()) | {comp.LOG_MANAGER}
        for other, spec in (latest.get("components") or {}).items():
            if other not in ours:
                components[other] = spec
    params: dict[str, Any] = {
        "targetArn": target_arn, "deploymentName": v2.settings["project.name"], "components": components,
        "deploymentPolicies": comp.DEPLOYMENT_POLICIES, "tags": {comp.TAG_MANAGED: MANAGED},
    }
    if job:
        params["iotJobConfiguration"] = job
    step = ApiCall("greengrassv2", "create_deployment", params,
                   outputs={"deployment_id": "deploymentId", "iot_job_id": "iotJobId"})
    versions = {name: spec["componentVersion"] for name, spec in components.items()}
    if latest is None:
        return Action(resource, "create", "first deployment", (step,), details={"components": versions})
    differences = comp.deployment_differences(latest, components, job)
    previous = latest.get("deploymentId")
    if force:
        return Action(resource, "update", f"--force (replaces {previous})", (step,),
                      details={"components": versions})
    if differences:
        return Action(resource, "update", "; ".join(differences) + f" (replaces {previous})", (step,),
                      details={"components": versions, "previous": previous})
    failed = _failed_on_devices(v2, latest, device_things)
    if latest.get("deploymentStatus") in ("CANCELED", "FAILED") or failed:
        why = failed or f"deployment {previous} is {latest.get('deploymentStatus')}"
        return Action(resource, "update", f"{why}; deploying again", (step,), details={"components": versions})
    plan.known["deployment_id"] = previous
    if len(device_things) == 1 and job is None:
        # Nothing to change, but the device may not have finished (or even taken) this deployment: a deploy
        # that timed out leaves it queued, and the re-run waits for it, as the README promises.
        effective = effective_deployment(v2, device_things[0], previous)
        state = effective.get("coreDeviceExecutionStatus") if effective else "QUEUED"
        if state in PENDING_EXECUTION_STATES and latest.get("deploymentStatus") == "ACTIVE":
            plan.known["pending_deployment_state"] = state
    return noop(resource, f"deployment {previous} already has this component set", deployment_id=previous,
                components=versions)


def _failed_on_devices(v2: V2Context, deployment: Mapping[str, Any], things: list[str]) -> str | None:
    if ":thinggroup/" in str(deployment.get("targetArn", "")):
        return failed_in_job(v2, deployment)  # the IoT job's execution summaries, not per member
    for thing in things:
        effective = effective_deployment(v2, thing, deployment["deploymentId"])
        if effective and effective.get("coreDeviceExecutionStatus") in FAILURE_STATUSES:
            return (f"deployment {deployment['deploymentId']} ended {effective['coreDeviceExecutionStatus']} "
                    f"on {thing}")
    return None


def wait_for_deployment(v2: V2Context, device: Device, deployment: DeploymentRef, timeout_s: float,
                        reporter: Reporter) -> DeploymentOutcome:
    deployment_id = deployment.deployment_id
    version = deployment.component_version
    thing = device.thing_name
    if not deployment_id:
        return DeploymentOutcome(None, "not_waited", "no deployment was made")
    clock = WaitClock(v2.ctx.sleep, v2.ctx.clock)
    poll = float(v2.settings["deploy.poll_s"])
    connected = core_device(v2, thing) is not None
    if not connected:
        reporter.progress(f"{thing} has not connected to Greengrass yet; the deployment waits for it "
                          f"(install the nucleus with the device bundle's install.sh)")
    last: dict[str, Any] = {"status": None}

    def reported() -> DeploymentOutcome | bool | None:
        effective = effective_deployment(v2, thing, deployment_id)
        status = effective["coreDeviceExecutionStatus"] if effective else "QUEUED"
        if status != last["status"]:
            reporter.progress(f"deployment {deployment_id} on {thing}: {status}")
            last["status"] = status
        if status in SUCCESS_STATUSES:
            return True
        if status in FAILURE_STATUSES:
            detail, errors = describe_failure(effective or {})
            return DeploymentOutcome(deployment_id, "failed", detail, errors,
                                     extra={"device_status": status, "reason": (effective or {}).get("reason")})
        return None

    answer = poll_until(reported, clock, timeout_s, poll, whole_intervals=True)
    if answer is None and last["status"] == "IN_PROGRESS":
        # The device took the deployment and may still be in Install, which the recipe allows to take this
        # long: giving up earlier would report a timeout for a deployment that is going fine.
        recipe = v2.component().recipe(version or comp.FIRST_VERSION)
        floor = comp.minimum_deploy_wait_s(recipe)
        if clock.elapsed() < floor:
            reporter.progress(f"deployment {deployment_id} on {thing}: still IN_PROGRESS; the component's "
                              f"Install may take up to {comp.install_timeout_s(recipe):.0f} s, so deploy waits "
                              f"up to {floor:.0f} s in all")
            answer = poll_until(reported, clock, floor, poll, whole_intervals=True)
            timeout_s = floor  # and the component's state gets the same allowance
    if isinstance(answer, DeploymentOutcome):
        return answer
    if answer is None:
        status = last["status"]
        never = "" if connected or core_device(v2, thing) else "; the device has never connected to Greengrass"
        return DeploymentOutcome(deployment_id, "timed_out", f"still {status} after {timeout_s:.0f}s{never}",
                                 extra={"device_status": status})
    return _wait_component_running(v2, deployment_id, thing, version, clock, timeout_s, poll, reporter)


def _wait_component_running(v2: V2Context, deployment_id: str, thing: str, version: str | None, clock: WaitClock,
                            timeout_s: float, poll: float, reporter: Reporter) -> DeploymentOutcome:
    """After the device reported success: is our component RUNNING (or FINISHED) at the deployed version?"""
    last: dict[str, Any] = {"state": None, "mine": None}

    def running() -> DeploymentOutcome | None:
        mine = last["mine"] = next((c for c in installed_components(v2, thing)
                                    if c.get("componentName") == v2.component_name), None)
        state = mine.get("lifecycleState") if mine else None
        current = mine is not None and (version is None or mine.get("componentVersion") == version)
        if current and state != last["state"]:
            reporter.progress(f"{v2.component_name} {mine.get('componentVersion')} on {thing}: {state}")
            last["state"] = state
        extra = _component_extra(mine)
        if current and state in RUNNING_STATES:
            return DeploymentOutcome(deployment_id, "succeeded", f"{v2.component_name} {state}", extra=extra)
        if current and state in BROKEN_STATES:
            details = mine.get("lifecycleStateDetails") or ""
            codes = list(mine.get("lifecycleStatusCodes") or [])
            errors = tuple(filter(None, ["status codes: " + ", ".join(codes) if codes else "",
                                         "hint: " + (failure_hint(codes + ["COMPONENT_BROKEN"]) or "")]))
            detail = f"{v2.component_name} is {state} after the deployment: {details}".rstrip(": ")
            return DeploymentOutcome(deployment_id, "failed", detail, errors, extra=extra)
        return None

    outcome = poll_until(running, clock, timeout_s, poll, whole_intervals=True)
    if outcome is not None:
        return outcome
    mine = last["mine"]
    seen = f"{mine.get('lifecycleState')} ({mine.get('componentVersion')})" if mine else "not reported"
    return DeploymentOutcome(deployment_id, "timed_out",
                             f"deployment completed but {v2.component_name} is {seen}; the device "
                             f"reports component states only now and then", extra=_component_extra(mine))


def _component_extra(mine: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"component_state": mine.get("lifecycleState") if mine else None,
            "component_version": mine.get("componentVersion") if mine else None}
