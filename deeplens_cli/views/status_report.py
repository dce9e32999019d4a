"""What `status` reports: is everything in place, and did the last deployment work? Gathered into a StatusReport.

The command (`commands/status.py`) renders the report as a table or one JSON document and exits 1 when it holds a
problem; the demo gathers the same report for its device.

Gathering only reads. The account part reuses the `register-roles` planner (a planner never writes): every action
it would take is something out of place - `create` means missing, `update` means drifted. Functions/components
and devices come from each target through the `Target` interface (`project_status`, `device_status`), so V1 and V2
devices are reported the same way. Uploads are counted under the crop prefix for the last 24 hours.

A report is `ok` when nothing is missing or drifted and every device's last deployment succeeded. A part that
cannot be read (AccessDenied, a retired API) is reported as a problem with its one-line reason instead of aborting
the whole report.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from deeplens_cli.account.roles import plan_account
from deeplens_cli.aws import translate_error
from deeplens_cli.targets.base import DeviceStatus
from deeplens_cli.targets.registry import TARGET_NAMES, find_device, make_target
from deeplens_cli.views.fleet_view import page_of, read_fleet

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.cli.output import Reporter
    from deeplens_cli.settings.config import Settings
    from deeplens_cli.targets.base import Device, DeviceStatus, ProjectStatus

ACCOUNT_STATES = {"noop": "ok", "create": "missing", "update": "drifted", "delete": "unexpected"}
UPLOAD_WINDOW = dt.timedelta(hours=24)
MAX_LISTED_OBJECTS = 20_000  # a status command must stay quick on a busy bucket; beyond this the count is a floor


@dataclass(frozen=True)
class DeviceReport:
    """One device and what its target reported about it."""

    device: Device
    status: DeviceStatus

    def to_dict(self) -> dict[str, Any]:
        return {**self.device.to_dict(), "status": self.status.to_dict()}


@dataclass
class StatusReport:
    """Everything `status` found; `problems` decides the exit code."""

    account: list[dict[str, Any]] = field(default_factory=list)  # {resource, state, reason}
    projects: list[ProjectStatus] = field(default_factory=list)  # one per target in use (Target.project_status)
    devices: list[DeviceReport] = field(default_factory=list)  # one device, or the fleet's page of devices
    uploads: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    fleet: dict[str, Any] | None = None  # counts by health and deployment state (fleet status only)
    next_token: str | None = None  # --max-items: where the next page starts

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        document = {"ok": self.ok, "problems": self.problems, "account": self.account,
                    "projects": [project.to_dict() for project in self.projects],
                    "devices": [device.to_dict() for device in self.devices], "uploads": self.uploads}
        if self.fleet is not None:
            document["fleet"] = self.fleet
        if self.next_token:
            document["NextToken"] = self.next_token
        return document


def gather_status(ctx: AwsContext, settings: Settings, device_name: str | None = None,
                  reporter: Reporter | None = None, now: Callable[[], dt.datetime] | None = None,
                  details: bool = False, health: str | None = None, max_items: int | None = None,
                  starting_token: str | None = None) -> StatusReport:
    """One device (`device_name`: found by its thing name, read in full) or the fleet: every device from bulk
    reads (fleet_view.py), counted by health and deployment state; the devices with a problem are the report's
    problems, and the devices shown are the filtered (`health`) page (`max_items`, `starting_token`)."""
    report = StatusReport()
    _guard(report, "account", lambda: _gather_account(ctx, settings, report))

    devices: list[Device] = []
    if device_name:
        devices = [find_device(ctx, settings, device_name, reporter)]  # unknown/ambiguous: the usual exit-1 error
        used_targets = {device.target for device in devices}
    else:
        used_targets = _guard(report, "devices", lambda: _gather_fleet(ctx, settings, report, reporter, details,
                                                                        health, max_items, starting_token)) or set()
        if not report.fleet and not report.problems:
            report.problems.append("no device registered (deeplens-cli register-device --name NAME)")

    for target_name in TARGET_NAMES if not device_name else sorted(used_targets):
        _gather_project(ctx, settings, target_name, target_name in used_targets, report, reporter)
    for device in devices:
        _gather_device(ctx, settings, device, report)
    _guard(report, "uploads", lambda: report.uploads.update(
        count_uploads(ctx, settings.require("bucket"), settings["prefix"], (now or _utc_now)())))
    return report


def _gather_fleet(ctx: AwsContext, settings: Settings, report: StatusReport, reporter: Reporter | None,
                  details: bool, health: str | None, max_items: int | None, starting_token: str | None) -> set[str]:
    rows = read_fleet(ctx, settings, reporter, details)
    page = page_of(rows, health, max_items, starting_token)
    report.fleet = page.summary_dict() if rows else None
    report.next_token = page.next_token
    report.devices.extend(DeviceReport(row.device, row.status) for row in page.rows)
    for row in rows:
        problems = list(row.status.problems) or ([f"health {row.status.health}"] if not row.healthy else [])
        report.problems.extend(f"device {row.device.name}: {problem}" for problem in problems)
    return {row.device.target for row in rows}


def _guard(report: StatusReport, part: str, gather: Callable[[], Any]) -> Any:
    """Run one part of the gathering; an AWS error becomes a problem line instead of aborting the report."""
    try:
        return gather()
    except Exception as exc:  # noqa: BLE001 - translated or re-raised
        translated = translate_error(exc, doing=f"reading {part}")
        if translated is None:
            raise
        report.problems.append(f"{part}: {translated.message}")
        return None


def _gather_account(ctx: AwsContext, settings: Settings, report: StatusReport) -> None:
    for action in plan_account(ctx, settings).actions:
        state = ACCOUNT_STATES[action.verb]
        report.account.append({"resource": action.resource, "state": state, "reason": action.reason})
        if state != "ok":
            report.problems.append(f"{action.resource}: {state} ({action.reason}) - run register-roles")


def _gather_project(ctx: AwsContext, settings: Settings, target_name: str, in_use: bool, report: StatusReport,
                    reporter: Reporter | None) -> None:
    """A target's function/component: reported when a device uses the target or it exists anyway."""
    try:
        project = make_target(target_name, ctx, settings).project_status()
    except Exception as exc:  # noqa: BLE001 - translated or re-raised
        translated = translate_error(exc, doing=f"reading the Greengrass {target_name} project")
        if translated is None:
            raise
        if in_use:
            report.problems.append(f"{target_name} project: {translated.message}")
        elif reporter is not None:
            reporter.debug(f"Greengrass {target_name} project unavailable: {translated.one_line()}")
        return
    if not in_use and not project.exists:
        return
    report.projects.append(project)
    if in_use:
        report.problems.extend(f"{target_name} {project.name}: {problem}" for problem in project.problems)


def _gather_device(ctx: AwsContext, settings: Settings, device: Device, report: StatusReport) -> None:
    try:
        status = make_target(device.target, ctx, settings).device_status(device)
    except Exception as exc:  # noqa: BLE001 - translated or re-raised
        translated = translate_error(exc, doing=f"reading device {device.name}")
        if translated is None:
            raise
        status = DeviceStatus("unknown", (translated.message,))
    report.devices.append(DeviceReport(device, status))
    problems = list(status.problems)
    if status.health != "ok" and not problems:
        problems = [f"health {status.health}"]
    report.problems.extend(f"device {device.name}: {problem}" for problem in problems)


def count_uploads(ctx: AwsContext, bucket: str, prefix: str, now: dt.datetime) -> dict[str, Any]:
    """Crops under the prefix modified in the last 24 h: how many, and the newest key."""
    since = now - UPLOAD_WINDOW
    count = 0
    listed = 0
    newest: dict[str, Any] | None = None
    truncated = False
    for page in ctx.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            listed += 1
            if item["LastModified"] >= since:
                count += 1
                if newest is None or item["LastModified"] > newest["LastModified"]:
                    newest = item
        if listed >= MAX_LISTED_OBJECTS:
            truncated = page.get("IsTruncated", False)
            break
    return {"bucket": bucket, "prefix": prefix, "window_hours": UPLOAD_WINDOW.total_seconds() / 3600,
            "count": count, "at_least": truncated, "newest_key": newest["Key"] if newest else None,
            "newest_at": newest["LastModified"].isoformat() if newest else None}


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
