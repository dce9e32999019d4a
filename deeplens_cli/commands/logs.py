"""`logs`: a device's component/function log from CloudWatch Logs, once or followed like `tail -f`.

Gather: the device's log sources (cloudwatch_logs: the LogManager's groups for Greengrass V2, the Lambda group for
V1), its streams in each group (recognised by the thing name / group id in the stream name), then
FilterLogEvents from `--since`. Render: one line per event, with its time (UTC) and the thing that wrote it, or
one JSON document. A log line is whatever the device wrote: the Reporter shows its control characters as escapes
(`\\x1b`, `\\n` for a line break inside one event), so an event is one line and cannot steer the terminal.

`--follow` polls. The log manager uploads in batches (every 60 s as we configure it) with the device's own
timestamps, so an event can arrive *older* than the newest one already shown; each poll therefore reads again
from `LATENESS` before the newest event seen and drops the event IDs it already printed. That gives no
duplicates and no gaps for anything that arrives within that window. Ctrl-C ends it with exit 0. With
`--output json` a followed log is JSON lines (one object per event), as `watch` prints.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

from deeplens_cli.cli.timespec import parse_since
from deeplens_cli.targets.cloudwatch_logs import LogSource, v1_log_sources, v2_log_sources
from deeplens_cli.targets.registry import find_device

if TYPE_CHECKING:
    from deeplens_cli.cli.app import App
    from deeplens_cli.cli.output import Reporter
    from deeplens_cli.targets.base import Device

DEFAULT_SINCE = "1h"
POLL_S = 5.0
LATENESS = dt.timedelta(minutes=10)
MAX_STREAMS = 100  # FilterLogEvents takes at most 100 stream names
sleep: Callable[[float], None] = time.sleep  # replaced by tests (and the source of a test's Ctrl-C)


@dataclass(frozen=True)
class LogEvent:
    time: dt.datetime
    thing: str
    source: str  # "component" | "system" | "function"
    stream: str
    message: str
    event_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"time": _iso(self.time), "thing": self.thing, "source": self.source, "stream": self.stream,
                "message": self.message, "event_id": self.event_id}

    def line(self) -> str:
        return f"{_iso(self.time)} {self.thing} {self.source}: {self.message}"


@dataclass
class GroupState:
    group: str
    source: str
    exists: bool = True
    streams: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "source": self.source, "exists": self.exists, "streams": self.streams}


@dataclass
class LogsReport:
    device: str
    thing: str
    target: str
    since: dt.datetime
    filter_text: str | None
    groups: list[GroupState]
    events: list[LogEvent] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "thing": self.thing, "target": self.target, "since": _iso(self.since),
                "filter": self.filter_text, "groups": [g.to_dict() for g in self.groups],
                "count": len(self.events), "events": [e.to_dict() for e in self.events]}


def log_sources(device: Device, region: str, account: str, component: str, function: str) -> list[LogSource]:
    if device.target == "v1":
        return v1_log_sources(region, account, function, device.group_id or "")
    return v2_log_sources(region, component, device.thing_name)


class LogReader:
    """Reads a device's events from its log sources (FilterLogEvents, every page)."""

    def __init__(self, logs: Any, sources: Iterable[LogSource], filter_text: str | None = None) -> None:
        self.logs = logs
        self.sources = list(sources)
        self.filter_text = filter_text
        self.groups = {s.group: GroupState(s.group, s.kind) for s in self.sources}

    def read(self, start: dt.datetime) -> list[LogEvent]:
        events: list[LogEvent] = []
        for source in self.sources:
            streams = self._streams(source)
            if not streams:
                continue
            kwargs: dict[str, Any] = {"logGroupName": source.group, "logStreamNames": streams,
                                      "startTime": _millis(start)}
            if self.filter_text:
                kwargs["filterPattern"] = _phrase(self.filter_text)
            for page in self.logs.get_paginator("filter_log_events").paginate(**kwargs):
                for item in page.get("events", []):
                    events.append(
                        LogEvent(
                            time=dt.datetime.fromtimestamp(item["timestamp"] / 1000, dt.timezone.utc),
                            thing=_thing_of(item.get("logStreamName", "")),
                            source=source.kind,
                            stream=item.get("logStreamName", ""),
                            message=item.get("message", "").rstrip("\n"),
                            event_id=item.get("eventId")
                            or f"{item.get('logStreamName')}:{item['timestamp']}:{item.get('message')}",
                        )
                    )
        events.sort(key=lambda e: (e.time, e.event_id))
        return events

    def _streams(self, source: LogSource) -> list[str]:
        """The device's streams in a group, newest (by the date in their names) first; [] when there is no group."""
        state = self.groups[source.group]
        names: list[str] = []
        try:
            for page in self.logs.get_paginator("describe_log_streams").paginate(logGroupName=source.group):
                names.extend(
                    s["logStreamName"]
                    for s in page.get("logStreams", [])
                    if source.matches(s["logStreamName"])
                )
        except self.logs.exceptions.ResourceNotFoundException:
            state.exists = False
            return []
        state.exists = True
        state.streams = len(names)
        return sorted(names, reverse=True)[:MAX_STREAMS]


def run_logs(app: App, device_name: str, since: str | None, follow: bool, filter_text: str | None,
             now: Callable[[], dt.datetime] | None = None) -> None:
    """The `logs` command."""
    clock = now or _utc_now
    since_at = parse_since(since or DEFAULT_SINCE, clock())  # exit 2 before any AWS call
    ctx, settings = app.ctx, app.settings
    device = find_device(ctx, settings, device_name, app.reporter)
    account = ctx.account_id if device.target == "v1" else ""
    sources = log_sources(device, ctx.region, account, settings["greengrass.component_name"], settings["function.name"])
    reader = LogReader(ctx.client("logs"), sources, filter_text)
    report = LogsReport(device.name, device.thing_name, device.target, since_at, filter_text,
                        list(reader.groups.values()))
    if not follow:
        report.events = reader.read(since_at)
        if app.reporter.json:
            app.reporter.emit_json(report.to_dict())
            _warn_missing(report.groups, app.reporter)
        else:
            render(report, app.reporter)
        return
    try:
        follow_events(reader, since_at, lambda event: _print_event(event, app.reporter), app.reporter)
    except KeyboardInterrupt:
        app.reporter.progress("stopped following")


def follow_events(reader: LogReader, start: dt.datetime, emit: Callable[[LogEvent], None],
                  reporter: Reporter | None = None, polls: int | None = None) -> None:
    """Print every event from `start` on, polling until interrupted (or `polls` polls, for tests)."""
    printed: dict[str, dt.datetime] = {}
    newest = start
    warned = False
    count = 0
    while polls is None or count < polls:
        count += 1
        window = max(start, newest - LATENESS)
        for event in reader.read(window):
            if event.event_id in printed:
                continue
            printed[event.event_id] = event.time
            newest = max(newest, event.time)
            emit(event)
        horizon = newest - LATENESS
        for event_id in [i for i, t in printed.items() if t < horizon]:
            del printed[event_id]  # older than any future read window: cannot come back
        if reporter is not None and not warned:
            warned = True
            _warn_missing(reader.groups.values(), reporter)
        if polls is None or count < polls:
            sleep(POLL_S)


def _print_event(event: LogEvent, reporter: Reporter) -> None:
    if reporter.json:
        reporter.emit_json_line(event.to_dict())
    else:
        reporter.line(event.line())


def render(report: LogsReport, reporter: Reporter) -> None:
    for event in report.events:
        reporter.line(event.line())
    if not report.events:
        what = f" matching {report.filter_text!r}" if report.filter_text else ""
        reporter.line(f"No log events{what} from {report.thing} since {_iso(report.since)}.")
    _warn_missing(report.groups, reporter)


def _warn_missing(groups: Iterable[GroupState], reporter: Reporter) -> None:
    for group in groups:
        if not group.exists:
            reporter.warn(
                f"log group {group.group} does not exist yet: nothing was uploaded to it "
                f"(deploy with logs.cloudwatch on; uploads start within about a minute of the device running)"
            )


def _thing_of(stream: str) -> str:
    """The thing in a stream name: V2 `/2026/11/30/thing/<thing>`, V1 `<date>/<account>/<group>/<core>`."""
    if "/thing/" in stream:
        return stream.rsplit("/thing/", 1)[1].replace("+", ":")
    return stream.rstrip("/").rsplit("/", 1)[-1]


def _phrase(text: str) -> str:
    """A CloudWatch filter pattern matching `text` as an exact phrase (quotes keep '-', ':', spaces literal)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _millis(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
