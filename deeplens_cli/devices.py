"""The device commands (register-device, publish, deploy, devices, destroy), independent of the target.

Each one: find the device (which decides the target), ask that target for a plan, render it, stop on
`--dry-run`, execute, then report. Target-specific knowledge lives in `targets/greengrass_v1/` and
`targets/greengrass_v2/`; this module only sequences the stages and maps outcomes to exit codes.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from deeplens_cli.app import App
from deeplens_cli.aws import service_unavailable
from deeplens_cli.errors import ConfigError, DeploymentFailed, DeploymentTimedOut
from deeplens_cli.pipeline import emit_plan_run, run_plan
from deeplens_cli.plan import Plan
from deeplens_cli.targets.base import DeploymentOutcome, DeploymentRef, Device
from deeplens_cli.targets.registration import registration_lock
from deeplens_cli.targets.registry import (
    TARGET_NAMES,
    all_devices,
    find_device,
    fleet_target_name,
    make_target,
    spec_for,
)

DEVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}\Z")  # the DeepLens console's rule: a-zA-Z0-9-, <= 100;
# \Z, not $: "$" also matches before a trailing newline, and "Cam1\n" must be refused however it is matched


def read_names(names: tuple[str, ...] | list[str], names_file: str | None) -> list[str]:
    """The device names of one register-device run: repeated --name, then one name a line of --names-file
    (blank lines and `#` comments skipped); each checked, duplicates refused."""
    collected = list(names)
    if names_file:
        try:
            text = Path(names_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--names-file {names_file} cannot be read ({exc.__class__.__name__})",
                              "pass a text file with one device name a line") from None
        collected += [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not collected:
        raise ConfigError("no device name given", "pass --name NAME (repeatable) or --names-file FILE")
    for name in collected:
        if not DEVICE_NAME.fullmatch(name):
            raise ConfigError(f"--name {name!r} is not a valid device name",
                              "use 1-100 letters, digits and hyphens, starting with a letter or digit")
    duplicates = sorted({name for name in collected if collected.count(name) > 1})
    if duplicates:
        raise ConfigError(f"device name(s) given twice: {', '.join(duplicates)}", "give each device name once")
    return collected


def register_device(app: App, name: str | list[str], out_dir: str | None, target: str | None, fleet: str | None,
                    dry_run: bool, names_file: str | None = None) -> None:
    """register-device for one or many names. Many names share one target instance, so the reads every device
    needs the same answer to (role alias, IoT endpoints, the fleet's thing group) are made once; each device then
    costs its own few calls and gets its own bundle folder: `--out/NAME` (default ./devices/NAME). With one name,
    `--out` is that device's bundle folder, as before."""
    names = read_names([name] if isinstance(name, str) else list(name), names_file)
    target = target or app.settings["greengrass.default_target"]
    if fleet and not spec_for(target).fleets:
        raise ConfigError(f"--fleet needs --greengrass {fleet_target_name()}",
                          "IoT thing-group rollouts are a Greengrass V2 feature")
    single = len(names) == 1
    folders = {n: Path(out_dir) if single and out_dir else Path(out_dir or "devices") / n for n in names}
    targets: dict[str, Any] = {}
    documents = []
    for device_name in names:
        # One registration of a name at a time: the second of two concurrent runs waits, then finds it registered.
        with registration_lock(app.ctx.account_id, app.ctx.region, device_name, app.reporter.progress):
            document = _register_one(app, device_name, folders[device_name], target, fleet, dry_run, targets, single)
        if document is not None:
            documents.append(document)
    if app.reporter.json and not single:
        app.reporter.emit_json({"dry_run": dry_run, "devices": documents})


def _register_one(app: App, name: str, bundle: Path, target: str, fleet: str | None, dry_run: bool,
                  targets: dict[str, Any], single: bool) -> dict[str, Any] | None:
    from deeplens_cli.targets.registry import lookup_device

    known = lookup_device(app.ctx, app.settings, name, app.reporter, include_incomplete=True, console_groups=False)
    existing = [d for d in known if d.name == name]
    if existing and fleet and existing[0].target == target:
        # An existing device plus --fleet joins the fleet (its certificate and bundle are left as they are).
        if target not in targets:
            targets[target] = make_target(target, app.ctx, app.settings)
        run = run_plan(app, targets[target].plan_join_fleet(existing[0], fleet), dry_run)
        if app.reporter.json and single:
            emit_plan_run(app, run, bundle=None)
        elif not app.reporter.json and not dry_run:
            app.reporter.line(f"device '{name}' is in fleet {fleet}")
        return {"name": name, "dry_run": dry_run, "changed": run.changed, "fleet": fleet}
    if existing:
        device = existing[0]
        message = f"device '{name}' is already registered ({device.target}, thing {device.thing_name}); nothing to do"
        app.reporter.progress(message)
        document = {"dry_run": dry_run, "device": device.to_dict(), "changed": False, "message": message}
        if app.reporter.json and single:
            app.reporter.emit_json(document)
        elif not app.reporter.json:
            app.reporter.line(message)
        return document

    # An interrupted registration is resumed, not refused: its thing carries the pending name and its bundle folder
    # already holds the certificate and key that only the first run could write.
    resuming = [d for d in known if d.name == f"{name} (incomplete)"]
    if resuming:
        target = resuming[0].target
        app.reporter.progress(f"resuming the incomplete registration of '{name}' ({target}, thing {resuming[0].thing_name})")
    else:
        check_bundle_dir(bundle)
    if target not in targets:
        targets[target] = make_target(target, app.ctx, app.settings)
    plan = targets[target].plan_register_device(name, str(bundle), fleet)
    run = run_plan(app, plan, dry_run)
    if app.reporter.json and single:
        emit_plan_run(app, run, bundle=None if dry_run else str(bundle))
    elif not app.reporter.json and not dry_run:
        app.reporter.line(f"device '{name}' registered ({target}); bundle written to {bundle}/ "
                          f"(the private key is in it, mode 0600: copy it to the device, keep it secret)")
    return {"name": name, "dry_run": dry_run, "changed": run.changed, "bundle": None if dry_run else str(bundle)}


def register_claim(app: App, fleet: str | None, out_dir: str | None, target: str | None, names: tuple[str, ...],
                   dry_run: bool) -> None:
    """`register-device --fleet G --claim`: the fleet's provisioning template, a claim certificate and one bundle
    (targets/greengrass_v2/provisioning.py); each camera then registers itself on first boot."""
    if not fleet:
        raise ConfigError("--claim needs --fleet", "name the IoT thing group the cameras register into")
    if names:
        raise ConfigError("--claim takes no --name", "each camera names itself when it installs the bundle")
    if target and not spec_for(target).fleets:
        raise ConfigError(f"--claim needs --greengrass {fleet_target_name()}", "fleet provisioning is Greengrass V2")
    bundle = Path(out_dir) if out_dir else Path("devices") / f"{fleet}-claim"
    plan = make_target(fleet_target_name(), app.ctx, app.settings).plan_claim_provisioning(fleet, str(bundle))
    run = run_plan(app, plan, dry_run)
    if app.reporter.json:
        emit_plan_run(app, run, bundle=None if dry_run else str(bundle))
    elif not dry_run:
        app.reporter.line(f"claim bundle for fleet {fleet} written to {bundle}/: on each camera run "
                          f"`sudo sh install.sh NAME` (the claim key is in it, mode 0600: keep it secret)")


def check_bundle_dir(bundle: Path) -> None:
    """Refuse to overwrite an existing bundle, and fail before any AWS call when the folder cannot be written."""
    try:
        bundle.exists()
    except OSError as exc:  # e.g. a name too long for the file system
        raise ConfigError(f"--out {bundle} cannot be created ({exc.strerror or exc})",
                          "choose a folder you can write to") from exc
    if bundle.exists() and (not bundle.is_dir() or any(bundle.iterdir())):
        raise ConfigError(f"--out {bundle} already exists and is not empty",
                          "a bundle holds a private key issued only once: choose another --out or move the old one")
    parent = bundle if bundle.exists() else _nearest_existing_parent(bundle)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {bundle} is not writable ({parent} does not allow it)", "choose a folder you can write to")


def _nearest_existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def publish(app: App, target: str | None, dry_run: bool) -> None:
    target = target or app.settings["greengrass.default_target"]
    emit_plan_run(app, run_plan(app, make_target(target, app.ctx, app.settings).plan_publish(), dry_run))


def deploy(app: App, device_name: str | None, fleet: str | None, dry_run: bool, wait: bool, force: bool,
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
                                 "the device may be offline; the deployment stays queued - check `deeplens-cli status` or raise --timeout")


def list_devices(app: App, details: bool = False, health: str | None = None, max_items: int | None = None,
                 starting_token: str | None = None) -> None:
    """`devices`: every device with its status from bulk reads (pages, not devices; see fleet_view.py)."""
    from deeplens_cli.fleet_view import page_of, read_fleet
    from deeplens_cli.status import health_caveats, health_text

    page = page_of(read_fleet(app.ctx, app.settings, app.reporter, details), health, max_items, starting_token)
    if app.reporter.json:
        document: dict[str, Any] = {"devices": [row.to_dict() for row in page.rows], "summary": page.summary_dict()}
        if page.next_token:
            document["NextToken"] = page.next_token
        app.reporter.emit_json(document)
        return
    if not page.total:
        app.reporter.line("no devices registered (register one with `deeplens-cli register-device --name NAME`)")
        return
    app.reporter.table("Devices", ("name", "target", "thing", "health", "last deployment"), [
        (row.device.name, row.device.target, row.device.thing_name, health_text(row.status),
         row.status.last_deployment_status or "-") for row in page.rows])
    for caveat in health_caveats(row.status for row in page.rows):
        app.reporter.note(caveat)
    if page.next_token:
        app.reporter.line(f"NextToken: {page.next_token}  (more devices: pass --starting-token {page.next_token})")


def destroy(app: App, device_name: str | None, yes: bool, delete_roles: bool, delete_bucket: bool,
            dry_run: bool) -> None:
    from deeplens_cli.roles import plan_account_teardown

    plan = Plan("destroy")
    if device_name:  # one DescribeThing per target, whatever the fleet; the others are listed only for --delete-roles
        chosen = [find_device(app.ctx, app.settings, device_name, app.reporter)]
        all_known = all_devices(app.ctx, app.settings, app.reporter) if delete_roles else chosen
    else:
        all_known = chosen = all_devices(app.ctx, app.settings, app.reporter)
    for device in chosen:
        plan.extend(make_target(device.target, app.ctx, app.settings).plan_destroy(device))
    remaining = [d for d in all_known if d not in chosen]
    if not device_name:
        for name in sorted(set(TARGET_NAMES) - {d.target for d in remaining}):
            try:
                plan.extend(make_target(name, app.ctx, app.settings).plan_destroy(None))
            except Exception as exc:  # noqa: BLE001 - a target whose API is not there has nothing to remove
                if not service_unavailable(exc):
                    raise
                app.reporter.debug(f"Greengrass {name} shared resources unavailable: {exc}")
    if delete_roles and remaining:
        raise ConfigError(f"--delete-roles refused: {len(remaining)} device(s) still use the roles "
                          f"({', '.join(d.name for d in remaining)})", "destroy those devices first")
    if delete_roles or delete_bucket:
        plan.extend(plan_account_teardown(app.ctx, app.settings, roles=delete_roles, bucket=delete_bucket))

    run = run_plan(app, plan, dry_run, confirm=None if yes else lambda plan: _confirm(plan, delete_bucket))
    if app.reporter.json:
        emit_plan_run(app, run)
    elif not dry_run and not plan.is_noop:
        kept = "" if delete_bucket else f"; bucket {app.settings['bucket']} and its face crops were kept"
        app.reporter.line(f"destroyed {len(plan.changes)} resource(s){kept}")


def _confirm(plan: Plan, delete_bucket: bool) -> None:
    import click

    if not sys.stdin.isatty():
        raise ConfigError("destroy needs confirmation and there is no terminal to ask",
                          "re-run with --yes (after checking the plan, e.g. with --dry-run)")
    warning = " INCLUDING THE BUCKET AND ALL FACE CROPS" if delete_bucket else ""
    if not click.confirm(f"Delete {len(plan.changes)} resource(s){warning}?", default=False, err=True):
        raise click.exceptions.Abort()
