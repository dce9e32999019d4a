"""`destroy`: remove what deeplens-cli created, in safe order; face crops are kept unless `--delete-bucket`.

Every device's target plans its own removal, then each target's shared resources (when no device of it is
left), then, when asked, the account's roles and bucket (`roles.plan_account_teardown`). The plan is shown and
confirmed before anything is deleted (`--yes` skips the question; without a terminal it is required).
"""

from __future__ import annotations

import sys

import click

from deeplens_cli.account.roles import plan_account_teardown
from deeplens_cli.aws import service_unavailable
from deeplens_cli.cli.app import App
from deeplens_cli.engine.pipeline import emit_plan_run, run_plan
from deeplens_cli.engine.plan import Plan
from deeplens_cli.errors import ConfigError
from deeplens_cli.targets.registry import TARGET_NAMES, all_devices, find_device, make_target


def run_destroy(app: App, device_name: str | None, yes: bool, delete_roles: bool, delete_bucket: bool,
                dry_run: bool) -> None:
    """The destroy command: one device, or everything deeplens-cli created (roles and bucket only when asked)."""
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
    """Ask before deleting anything (stderr, default no); without a terminal there is no one to ask."""
    if not sys.stdin.isatty():
        raise ConfigError("destroy needs confirmation and there is no terminal to ask",
                          "re-run with --yes (after checking the plan, e.g. with --dry-run)")
    warning = " INCLUDING THE BUCKET AND ALL FACE CROPS" if delete_bucket else ""
    if not click.confirm(f"Delete {len(plan.changes)} resource(s){warning}?", default=False, err=True):
        raise click.exceptions.Abort()
