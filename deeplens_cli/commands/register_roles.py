"""`register-roles`: the account's IAM roles, the S3 grant, the bucket and the Greengrass V2 role alias.

The desired state and its planner are `roles.py` (`plan_account`); this command applies `--bucket` and
`--s3-full-access` over the settings, hands the plan to `pipeline.run_plan`, and afterwards offers to record
`--bucket` in deeplens.yaml (`commands/init.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deeplens_cli.account.roles import plan_account
from deeplens_cli.commands.init import offer_to_record_bucket
from deeplens_cli.engine.pipeline import emit_plan_run, run_plan

if TYPE_CHECKING:
    from deeplens_cli.cli.app import App


def run_register_roles(app: App, dry_run: bool, bucket: str | None = None, s3_full_access: bool = False,
                       save: bool | None = None) -> None:
    """The register-roles command (also run by `demo`): plan, render, stop on a dry run, execute, report."""
    app.override(bucket=bucket, s3_access="full" if s3_full_access else None)
    emit_plan_run(app, run_plan(app, plan_account(app.ctx, app.settings), dry_run))
    if not dry_run:
        offer_to_record_bucket(app, bucket, save)
