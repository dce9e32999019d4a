"""`devices`: every registered device with its target, health and last deployment.

Read in bulk, pages not devices (`fleet_view.py`, shared with `status`), and shown as a table, text rows or one
JSON document, a page at a time with `--max-items` / `--starting-token`.
"""

from __future__ import annotations

from typing import Any

from deeplens_cli.cli.app import App
from deeplens_cli.views.fleet_view import health_caveats, health_text, page_of, read_fleet


def run_devices(app: App, details: bool = False, health: str | None = None, max_items: int | None = None,
                starting_token: str | None = None) -> None:
    """`devices`: every device with its status from bulk reads (pages, not devices; see fleet_view.py)."""
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
