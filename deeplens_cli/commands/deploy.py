"""`deploy`: publish the edge function and deploy the project to one device or one fleet, then wait for the verdict.

Find the device (which decides the target), ask that target for a plan, hand it to `pipeline.run_plan`, then wait
(unless `--no-wait`) and map the outcome to the documented exit codes: 3 when the deployment failed, 4 when it did
not finish in time. A run with nothing to change still waits for a deployment an earlier run left pending.
"""

from __future__ import annotations

from typing import Any

import click

from deeplens_cli.cli.app import App
from deeplens_cli.engine.pipeline import run_plan
from deeplens_cli.engine.plan import Plan
from deeplens_cli.errors import ConfigError, DeploymentFailed, DeploymentTimedOut
from deeplens_cli.targets.base import DeploymentOutcome, DeploymentRef, Device
from deeplens_cli.targets.registry import find_device, fleet_target_name, make_target


def run_deploy(app: App, device_name: str | None, fleet: str | None, dry_run: bool, wait: bool, force: bool,
               rollout_per_minute: int | None, abort_failure_percent: float | None,
               timeout_s: int | None = None) -> None:
    """The deploy command (also run by `demo`): one device (`device_name`, default: the config's device) or one
    fleet; `timeout_s` (--timeout) overrides deploy.timeout_s."""
    if device_name and fleet:
        raise click.UsageError("--device and --fleet are exclusive: deploy to one device or to one fleet")
    app.override(deploy__timeout_s=timeout_s)
    if not fleet:
        device_name = device_name or app.settings["device"]
    _deploy(app, device_name, fleet, dry_run, wait, force, rollout_per_minute, abort_failure_percent)


def _deploy(app: App, device_name: str | None, fleet: str | None, dry_run: bool, wait: bool, force: bool,
            rollout_per_minute: int | None, abort_failure_percent: float | None) -> None:
    timeout_s = float(app.settings["deploy.timeout_s"])
    if fleet:
        target: Any = make_target(fleet_target_name(), app.ctx, app.settings)
        plan = target.plan_deploy_fleet(fleet, force, rollout_per_minute, abort_failure_percent)
        subject: dict[str, Any] = {"fleet": fleet}
    else:
        if not device_name:
            raise ConfigError("no device given", "pass --device NAME or set device in deeplens.yaml")
        if rollout_per_minute is not None or abort_failure_percent is not None:
            raise ConfigError("--rollout-per-minute and --abort-failure-percent need --fleet",
                              "they configure a thing-group rollout")
        device = find_device(app.ctx, app.settings, device_name, app.reporter)
        target = make_target(device.target, app.ctx, app.settings)
        plan = target.plan_deploy(device, force)
        subject = {"device": device.to_dict()}

    run = run_plan(app, plan, dry_run)
    result = run.result
    outcome: DeploymentOutcome | None = None
    if not dry_run and wait and (result is not None or force):
        if fleet:
            outcome = target.wait_for_fleet(fleet, DeploymentRef.from_variables(result.variables) if result else None,
                                            timeout_s, app.reporter)
        elif result is not None:
            outcome = target.wait_for_deployment(device, DeploymentRef.from_variables(result.variables), timeout_s,
                                                 app.reporter)
    elif not dry_run and wait and not fleet:
        # Nothing to change - but an earlier deploy may have timed out (exit 4) with its deployment still pending.
        # Then this run waits for that one instead of declaring success.
        outcome = _wait_for_pending(app, target, device, plan, timeout_s)
    document = run.document(**subject, deployment=outcome.to_dict() if outcome else None, changed=run.changed)
    _report_outcome(app, outcome, document, dry_run, result is None)


PENDING_STATES = {"InProgress", "Building", "QUEUED", "IN_PROGRESS"}  # Greengrass V1 and V2 spellings


def _wait_for_pending(app: App, target: Any, device: Device, plan: Plan, timeout_s: float) -> DeploymentOutcome | None:
    if plan.known.get("pending_deployment_state"):  # read while planning (V2: the device has not finished it)
        state, deployment_id = plan.known["pending_deployment_state"], plan.known.get("deployment_id")
    else:
        status = target.device_status(device)
        state = status.last_deployment_status
        deployment_id = status.last_deployment_id
    if not deployment_id or state not in PENDING_STATES:
        return None
    app.reporter.progress(f"nothing to change, but deployment {deployment_id} is still {state}: waiting for it")
    pending = DeploymentRef(deployment_id, plan.known.get("component_version"))
    return target.wait_for_deployment(device, pending, timeout_s, app.reporter)


def _report_outcome(app: App, outcome: DeploymentOutcome | None, document: dict[str, Any], dry_run: bool,
                    unchanged: bool) -> None:
    if app.reporter.json:
        app.reporter.emit_json(document)
    elif dry_run:
        pass
    elif outcome is None:
        app.reporter.line("nothing changed: no new deployment" if unchanged else "deployment started (not waiting)")
    else:
        app.reporter.line(f"deployment {outcome.deployment_id}: {outcome.status}"
                          + (f" - {outcome.detail}" if outcome.detail else ""))
        for error in outcome.errors:
            app.reporter.line(f"  {error}")
    if outcome is not None and outcome.status == "failed":
        errors = "; ".join(outcome.errors)
        raise DeploymentFailed(f"deployment {outcome.deployment_id} failed: {outcome.detail}"
                               + (f" [{errors}]" if errors else ""),
                               "fix the cause shown, then run deploy again (see `deeplens-cli status`)")
    if outcome is not None and outcome.status == "timed_out":
        raise DeploymentTimedOut(f"deployment {outcome.deployment_id} did not finish in time ({outcome.detail})",
                                 "the device may be offline; the deployment stays queued - "
                                 "check `deeplens-cli status` or raise --timeout")
