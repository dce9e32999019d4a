"""`logs`: a device's events from the groups its target uploads to, one line each; --follow without duplicates
or gaps; Ctrl-C ends it with exit 0. CloudWatch Logs is moto's."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest

import deeplens_cli.commands.logs as logs_command
from deeplens_cli.commands.logs import LogReader, follow_events
from deeplens_cli.targets.cloudwatch_logs import v1_log_sources, v2_log_sources

REGION = "us-east-1"
COMPONENT_GROUP = f"/aws/greengrass/UserComponent/{REGION}/com.deeplens.FaceCrops"
SYSTEM_GROUP = f"/aws/greengrass/GreengrassSystemComponent/{REGION}/System"
ENV = {"DEEPLENS_BUCKET": "deeplens-test-face-crops", "DEEPLENS_REGION": REGION}


def ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


@pytest.fixture
def logs(aws_plain):
    return boto3.client("logs", region_name=REGION)


def put(logs, group: str, stream: str, *events: tuple[dt.datetime, str]) -> None:
    try:
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    try:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": ms(t), "message": m} for t, m in events])


def v2_stream(thing: str, when: dt.datetime) -> str:
    return when.strftime("/%Y/%m/%d/thing/") + thing


def register_v2_thing(name: str, thing: str) -> None:
    boto3.client("iot", region_name=REGION).create_thing(thingName=thing, attributePayload={
        "attributes": {"deeplens_name": name, "deeplens_target": "v2"}})


class TestReader:

    def test_reads_only_this_things_streams_from_the_component_and_system_groups(self, logs):
        t = now() - dt.timedelta(minutes=5)
        put(logs, COMPONENT_GROUP, v2_stream("cam-a", t), (t, "frames=100 fps=9.8"))
        put(logs, COMPONENT_GROUP, v2_stream("cam-b", t), (t, "another camera"))
        put(logs, SYSTEM_GROUP, v2_stream("cam-a", t), (t + dt.timedelta(seconds=1), "WARN nucleus"))
        reader = LogReader(logs, v2_log_sources(REGION, "com.deeplens.FaceCrops", "cam-a"))

        events = reader.read(t - dt.timedelta(minutes=1))

        assert [(e.source, e.thing, e.message) for e in events] == [
            ("component", "cam-a", "frames=100 fps=9.8"), ("system", "cam-a", "WARN nucleus")]

    def test_since_and_filter_narrow_the_events(self, logs):
        t = now()
        put(logs, COMPONENT_GROUP, v2_stream("cam-a", t), (t - dt.timedelta(hours=2), "upload failed: old"),
            (t - dt.timedelta(minutes=1), "upload failed: AccessDenied"), (t, "frames=5"))
        reader = LogReader(logs, v2_log_sources(REGION, "com.deeplens.FaceCrops", "cam-a"), filter_text="upload failed")
        assert [e.message for e in reader.read(t - dt.timedelta(hours=1))] == ["upload failed: AccessDenied"]

    def test_a_missing_group_is_reported_not_raised(self, logs):
        reader = LogReader(logs, v2_log_sources(REGION, "com.deeplens.FaceCrops", "cam-a"))
        assert reader.read(now() - dt.timedelta(hours=1)) == []
        assert [g.exists for g in reader.groups.values()] == [False, False]

    def test_greengrass_v1_reads_the_lambda_group_streams_of_the_devices_group(self, logs):
        t = now()
        group = f"/aws/greengrass/Lambda/{REGION}/123456789012/deeplens-face-crops"
        put(logs, group, t.strftime("%Y/%m/%d") + "/123456789012/group-1/deeplens_cam_a_Core", (t, "mine"))
        put(logs, group, t.strftime("%Y/%m/%d") + "/123456789012/group-2/other_Core", (t, "not mine"))
        reader = LogReader(logs, v1_log_sources(REGION, "123456789012", "deeplens-face-crops", "group-1"))
        events = reader.read(t - dt.timedelta(minutes=1))
        assert [(e.message, e.thing, e.source) for e in events] == [("mine", "deeplens_cam_a_Core", "function")]


class TestFollow:

    def test_prints_each_event_once_including_late_arrivals_older_than_the_newest(self, logs, monkeypatch):
        t0 = now() - dt.timedelta(minutes=3)
        stream = v2_stream("cam-a", t0)
        put(logs, COMPONENT_GROUP, stream, (t0, "one"), (t0 + dt.timedelta(seconds=2), "two"))
        batches = iter([
            # a batch uploaded late: its first event is older than "two", the newest already printed
            [(t0 + dt.timedelta(seconds=1), "late one-and-a-half"), (t0 + dt.timedelta(seconds=3), "three")],
            [],
            [(t0 + dt.timedelta(seconds=4), "four")],
        ])

        def upload_next_batch(seconds):
            batch = next(batches, [])
            if batch:
                put(logs, COMPONENT_GROUP, stream, *batch)

        monkeypatch.setattr(logs_command, "sleep", upload_next_batch)
        printed = []
        reader = LogReader(logs, v2_log_sources(REGION, "com.deeplens.FaceCrops", "cam-a"))

        follow_events(reader, t0 - dt.timedelta(minutes=1), printed.append, polls=4)

        assert [e.message for e in printed] == ["one", "two", "late one-and-a-half", "three", "four"]


# ---------------------------------------------------------------------------------------------- the command


def test_one_line_per_event_with_time_and_thing(logs, run_cli):
    register_v2_thing("CamA", "cam-a")
    t = now() - dt.timedelta(minutes=2)
    put(logs, COMPONENT_GROUP, v2_stream("cam-a", t), (t, "frames=100 fps=9.8 uploads=3"))
    result = run_cli("logs", "--device", "CamA", env=ENV)
    assert result.exit_code == 0, result.stderr
    line = result.stdout.strip()
    assert line.startswith(t.strftime("%Y-%m-%dT%H:%M:%S.000Z")) and " cam-a " in line and line.endswith("uploads=3")


def test_json_is_one_document_and_a_device_without_logs_says_which_groups_are_missing(logs, run_cli):
    register_v2_thing("Quiet", "cam-quiet")
    result = run_cli("--output", "json", "logs", "--device", "Quiet", "--since", "2d", env=ENV)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["events"] == [] and document["thing"] == "cam-quiet"
    assert {g["group"]: g["exists"] for g in document["groups"]} == {COMPONENT_GROUP: False, SYSTEM_GROUP: False}
    assert "does not exist yet" in result.stderr


@pytest.mark.parametrize("since", ["soon", "1 fortnight", "2026-02-30"])
def test_a_bad_since_is_a_usage_error(logs, run_cli, since):
    result = run_cli("logs", "--device", "CamA", "--since", since, env=ENV)
    assert result.exit_code == 2 and "--since" in result.stderr


def test_follow_ends_with_exit_0_on_ctrl_c_and_prints_json_lines(logs, run_cli, monkeypatch):
    register_v2_thing("CamA", "cam-a")
    t = now() - dt.timedelta(minutes=1)
    stream = v2_stream("cam-a", t)
    put(logs, COMPONENT_GROUP, stream, (t, "first"))
    polls = []

    def sleep_then_interrupt(seconds):
        polls.append(seconds)
        if len(polls) == 1:
            put(logs, COMPONENT_GROUP, stream, (t + dt.timedelta(seconds=1), "second"))
            return
        raise KeyboardInterrupt

    monkeypatch.setattr(logs_command, "sleep", sleep_then_interrupt)
    result = run_cli("--output", "json", "logs", "--device", "CamA", "--follow", env=ENV)

    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["message"] for line in result.stdout.splitlines()] == ["first", "second"]


# ---------------------------------------------------------------------------------------------- hostile log lines

HOSTILE_LINE = "\x1b]0;OWNED\x07\x1b[2Jupload ok\rALL CLEAR \u202eTraceback\n  line 2\x9b"


def test_a_hostile_log_line_is_one_line_shown_escaped(logs, run_cli):
    register_v2_thing("CamA", "cam-a")
    t = now() - dt.timedelta(minutes=2)
    put(logs, COMPONENT_GROUP, v2_stream("cam-a", t), (t, HOSTILE_LINE), (t + dt.timedelta(seconds=1), "next"))

    for output in ("text", "table"):
        result = run_cli("--output", output, "logs", "--device", "CamA", env=ENV)

        assert result.exit_code == 0, result.stderr
        assert not {"\x1b", "\x07", "\r", "\u202e", "\x9b"} & set(result.stdout)
        first, second = result.stdout.splitlines()  # the event's own line break does not make a second line
        assert first.endswith(" cam-a component: \\x1b]0;OWNED\\x07\\x1b[2Jupload ok\\rALL CLEAR \\u202eTraceback"
                              "\\n  line 2\\x9b")
        assert second.endswith(" cam-a component: next")


def test_a_hostile_log_line_reaches_json_lines_unchanged_as_json_data(logs, run_cli, monkeypatch):
    register_v2_thing("CamA", "cam-a")
    t = now() - dt.timedelta(minutes=1)
    put(logs, COMPONENT_GROUP, v2_stream("cam-a", t), (t, HOSTILE_LINE))

    def interrupt(_seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(logs_command, "sleep", interrupt)
    result = run_cli("--output", "json", "logs", "--device", "CamA", "--follow", env=ENV)

    assert result.exit_code == 0, result.stderr
    assert not {"\x1b", "\x07", "\r", "\u202e", "\x9b"} & set(result.stdout)  # JSON escapes them itself
    [line] = result.stdout.splitlines()
    assert json.loads(line)["message"] == HOSTILE_LINE.rstrip("\n")
