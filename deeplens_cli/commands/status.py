"""`status`: roles, bucket, function, project, devices, last deployment and recent uploads; exit 1 on a problem.

Gather (`status_report.gather_status`, read only) -> StatusReport -> a table or one JSON document. The exit code is
0 when nothing is missing or drifted and every device's last deployment succeeded, else 1, so CI and cron jobs can
use `deeplens-cli status` as a health check. The problems are already in the output, so the exit is a
`ProblemsReported` error that `cli.main` turns into exit 1 without printing anything more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deeplens_cli.errors import ProblemsReported
from deeplens_cli.views.fleet_view import counts_line, health_caveats, health_text
from deeplens_cli.views.status_report import StatusReport, gather_status

if TYPE_CHECKING:
    from deeplens_cli.cli.app import App
    from deeplens_cli.cli.output import Reporter
    from deeplens_cli.settings.config import Settings
    from deeplens_cli.targets.base import DeviceStatus, ProjectStatus

MAX_PROBLEM_LINES = 50  # a fleet of thousands: the text report stays readable; JSON has every problem


def run_status(app: App, device_name: str | None, details: bool = False, health: str | None = None,
               max_items: int | None = None, starting_token: str | None = None) -> None:
    """The `status` command: gather, render, exit 1 when anything is missing or failed."""
    report = gather_status(app.ctx, app.settings, device_name, app.reporter, details=details, health=health,
                           max_items=max_items, starting_token=starting_token)
    if app.reporter.json:
        app.reporter.emit_json(report.to_dict())
    else:
        render(report, app.reporter, app.settings)
    if not report.ok:
        raise ProblemsReported(f"status found {len(report.problems)} problem(s)", "see the report above")


def render(report: StatusReport, reporter: Reporter, settings: Settings) -> None:
    """The report as tables and lines (`--output table` or `text`); the fleet shows only devices with a problem."""
    style = {"ok": "green", "missing": "red", "drifted": "yellow", "unexpected": "yellow"}
    if report.account:
        reporter.table("Account (roles, bucket)", ("state", "resource", "detail"), [
            (f"[{style.get(a['state'], 'white')}]{a['state']}[/]", a["resource"], a["reason"]) for a in report.account])
    if report.projects:
        reporter.table("Edge function", ("target", "name", "published", "code sha256", "matches local build"), [
            (p.target, p.name, _published(p), _short_sha(p.code_sha256),
             {True: "yes", False: "no", None: "unknown"}[p.up_to_date]) for p in report.projects])
    if report.fleet:
        reporter.line(f"Fleet: {report.fleet['devices']} device(s); health: {counts_line(report.fleet['by_health'])}; "
                      f"last deployment: {counts_line(report.fleet['by_deployment'])}")
    shown = report.devices if report.fleet is None else [d for d in report.devices
                                                          if d.status.health != "ok" or d.status.problems]
    if shown:
        title = "Devices" if report.fleet is None else "Devices that need attention"
        reporter.table(title, ("name", "target", "thing", "health", "last deployment", "problems"), [
            (d.device.name, d.device.target, d.device.thing_name, health_text(d.status), _deployment(d.status),
             "; ".join(d.status.problems) or "-") for d in shown])
        for caveat in health_caveats(d.status for d in shown):
            reporter.note(caveat)
    if report.next_token:
        reporter.line(f"NextToken: {report.next_token}  (more devices: pass --starting-token {report.next_token})")
    uploads = report.uploads
    if uploads:
        more = "at least " if uploads.get("at_least") else ""
        newest = f"; newest {uploads['newest_key']} ({uploads['newest_at']})" if uploads.get("newest_key") else ""
        reporter.line(f"Uploads: {more}{uploads['count']} face crop(s) under "
                      f"s3://{uploads['bucket']}/{uploads['prefix']} "
                      f"in the last 24 h{newest}")
    if report.ok:
        reporter.line("status: ok")
    else:
        reporter.line(f"status: {len(report.problems)} problem(s)")
        for problem in report.problems[:MAX_PROBLEM_LINES]:
            reporter.line(f"  - {problem}")
        if len(report.problems) > MAX_PROBLEM_LINES:
            reporter.line(f"  ... and {len(report.problems) - MAX_PROBLEM_LINES} more (--output json lists them all)")


def _published(project: ProjectStatus) -> str:
    if not project.exists:
        return "no"
    return f"version {project.latest_version}" if project.latest_version else "yes"


def _short_sha(value: str | None) -> str:
    return (value[:12] + "...") if value else "-"


def _deployment(status: DeviceStatus) -> str:
    state = status.last_deployment_status or "-"
    return f"{state}: {status.last_deployment_error}" if status.last_deployment_error else state
