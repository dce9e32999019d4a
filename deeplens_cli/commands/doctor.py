"""`doctor`: preflight for the configured account and region, before anything is created.

Runs the checks of `preflight.py` (each a read or a lookup in dated facts), prints them as a table or one JSON
document, and exits 5 when a check failed; warnings never fail the command. A broken AWS environment
(~/.aws/config, AWS_* variables) is itself a failed check, so doctor still prints its table.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from deeplens_cli.errors import DeeplensError, PreflightFailed
from deeplens_cli.views.preflight import FAIL, OK, SKIP, WARN, Check, check_lambda_runtime, gather_checks

if TYPE_CHECKING:
    from deeplens_cli.cli.app import App


def run_doctor(app: App, today: date | None = None) -> None:
    """Run every check, print a table (or one JSON document), exit 5 when a check failed."""
    settings = app.settings  # a bad deeplens.yaml stays a usage error (exit 2)
    try:
        ctx = app.ctx
    except DeeplensError as exc:  # the AWS environment itself (~/.aws/config, AWS_* variables) is wrong: a failed check
        names = ("region", "credentials", "iot", "greengrass v2", "greengrass v1", "bucket")
        checks = ([Check("aws environment", FAIL, exc.message, exc.hint)]
                  + [Check(n, SKIP, "needs a valid AWS environment") for n in names]
                  + [check_lambda_runtime(settings, today or date.today())])
    else:
        checks = gather_checks(ctx, settings, today or date.today())
    failed = [c for c in checks if c.status == FAIL]
    reporter = app.reporter
    if reporter.json:
        reporter.emit_json({"ok": not failed, "checks": [c.to_dict() for c in checks]})
    else:
        style = {OK: "green", WARN: "yellow", FAIL: "red", SKIP: "dim"}
        reporter.table("deeplens-cli doctor", ("check", "status", "detail"),
                       [(c.name, f"[{style[c.status]}]{c.status}[/]", c.detail) for c in checks])
        for check in checks:
            if check.hint and check.status in (WARN, FAIL):
                reporter.line(f"{check.name}: {check.hint}")
    if failed:
        raise PreflightFailed(f"{len(failed)} preflight check(s) failed: {', '.join(c.name for c in failed)}",
                              failed[0].hint or "see the table above")
