"""docs/troubleshooting.md, section "After deploy": every example line is what the command really prints."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import boto3
import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md"
ENV = {"DEEPLENS_BUCKET": "deeplens-test-face-crops", "DEEPLENS_REGION": "us-east-1"}


def guide_examples() -> dict[str, tuple[str, str]]:
    """{situation: (exit cell, example line)} of the After deploy table."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("## After deploy", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) == 4 and cells[1] in ("0", "1", "2"):
            rows[cells[0]] = (cells[1], cells[2].strip("`"))
    return rows


def register(name: str, thing: str) -> None:
    boto3.client("iot", region_name="us-east-1").create_thing(thingName=thing, attributePayload={
        "attributes": {"deeplens_name": name, "deeplens_target": "v2"}})


def provoke(situation: str, run_cli, broker_url: str | None):
    if situation.startswith("`--since`"):
        return run_cli("faces", "--since", "yesterday", env=ENV)
    if situation.startswith("`logs` for a device whose logs never"):
        register("CamA", "cam-a")
        return run_cli("logs", "--device", "CamA", env=ENV)
    if situation.startswith("`logs` finds the group"):
        register("CamA", "cam-a")
        logs = boto3.client("logs", region_name="us-east-1")
        logs.create_log_group(logGroupName="/aws/greengrass/UserComponent/us-east-1/com.deeplens.FaceCrops")
        return run_cli("logs", "--device", "CamA", "--since", "2026-11-29T09:00", env=ENV)
    if situation.startswith("`watch` cannot reach"):
        register("CamA", "cam-a")
        return run_cli("watch", "--device", "CamA", "--timeout", "1", "--broker", "mqtt://127.0.0.1:9", env=ENV)
    if situation.startswith("`watch` hears nothing"):
        register("CamA", "cam-a")
        return run_cli("watch", "--device", "CamA", "--timeout", "1", "--broker", broker_url, env=ENV)
    if situation.startswith("`watch` receives something"):
        register("CamB", "cam-b")
        publish_retained(broker_url, "deeplens/cam-b/infer", '{"device": "cam-b", "faces": "lots"}')
        return run_cli("watch", "--device", "CamB", "--count", "1", "--timeout", "60", "--broker", broker_url, env=ENV)
    if situation.startswith("`faces --output json` finds a crop"):
        from crop_fixtures import BUCKET, put_crops

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        [key] = put_crops(s3, "cam-a", [dt.datetime.now(dt.timezone.utc)])
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x", Metadata={"device": "cam-a", "confidence": "nan"})
        return run_cli("--output", "json", "faces", env=ENV)
    if situation.startswith("`watch --broker`"):
        register("CamA", "cam-a")
        return run_cli("watch", "--device", "CamA", "--broker", "http://x", env=ENV)
    raise AssertionError(f"no provocation for the guide's row: {situation}")


def publish_retained(broker_url: str, topic: str, payload: str) -> None:
    """One retained message (the broker hands it to the next subscriber), as a device could publish it."""
    from awscrt import mqtt

    from deeplens_cli.commands.watch import connect, parse_broker

    connection = connect(parse_broker(broker_url), "guide-publisher")
    connection.connect().result(10)
    try:
        connection.publish(topic, payload, mqtt.QoS.AT_LEAST_ONCE, retain=True)[0].result(10)
    finally:
        connection.disconnect().result(5)


def test_the_section_has_its_rows():
    assert len(guide_examples()) == 8


@pytest.mark.parametrize("situation", sorted(guide_examples()))
def test_each_example_is_what_the_command_prints(situation, aws_plain, run_cli, broker):
    exit_cell, example = guide_examples()[situation]
    result = provoke(situation, run_cli, broker.mqtt_url)
    assert str(result.exit_code) == exit_cell, result.stderr
    # watch starts a line with the time it received the message; the guide writes HH:MM:SS
    printed = [re.sub(r"^\d\d:\d\d:\d\d ", "HH:MM:SS ", line.strip())
               for line in (result.stdout + result.stderr).splitlines()]
    assert example in printed, printed
