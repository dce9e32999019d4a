"""Fleets at scale: a per-device command finds its device by the deterministic thing name (one DescribeThing per
target, whatever the fleet), and the fleet views (`devices`, `status`) read pages, not devices - deep reads only
for devices whose summary shows a problem, or with --details. Output pages and the --status filter work as in
the AWS CLI. Calls are counted with the AwsContext's call recorder, against moto (IoT) and the fake Greengrass V2
endpoint (paged like the service: 100 core devices / deployments a page)."""

from __future__ import annotations

import json
import math

import pytest

from deeplens_cli.errors import ConfigError, DeeplensError
from deeplens_cli.targets.registry import find_device
from deeplens_cli.views.fleet_view import page_of, read_fleet
from deeplens_cli.views.status_report import gather_status

try:
    from tests.cli.fake_greengrassv2 import v2_account  # noqa: F401 - a fixture
except ImportError:
    from fake_greengrassv2 import v2_account  # noqa: F401

BUCKET = "deeplens-test-face-crops"
PER_DEVICE_READS = {"GetCoreDevice", "ListInstalledComponents", "ListEffectiveDeployments", "ListThingPrincipals",
                    "DescribeCertificate"}


def add_devices(account, count: int, start: int = 0, connect: bool = True, **core) -> list[str]:
    """Registered V2 devices as the bulk reads see them: a thing carrying our attributes (what register-device
    leaves), and a connected core."""
    iot = account.client("iot")
    names = []
    for number in range(start, start + count):
        name = f"Cam{number:04d}"
        iot.create_thing(thingName=f"deeplens-{name}", attributePayload={"attributes": {
            "deeplens_target": "v2", "deeplens_name": name}})
        if connect:
            account.gg.connect_core(f"deeplens-{name}", **core)
        names.append(name)
    return names


def calls(ctx) -> list[str]:
    return [operation for _, operation in ctx.recorder.calls]


def fleet_read_cost(account, settings) -> int:
    ctx = account.context(settings)
    read_fleet(ctx, settings)
    return len(ctx.recorder.calls)


def test_finding_one_device_costs_the_same_in_a_fleet_of_5_and_of_300(v2_account, settings_for):
    settings = settings_for(bucket=BUCKET)
    add_devices(v2_account, 5)
    small = v2_account.context(settings)
    assert find_device(small, settings, "Cam0003").thing_name == "deeplens-Cam0003"

    add_devices(v2_account, 295, start=5)
    large = v2_account.context(settings)
    assert find_device(large, settings, "Cam0003").thing_name == "deeplens-Cam0003"

    assert calls(large) == calls(small)
    assert calls(large).count("DescribeThing") == 2  # the V1 and the V2 thing name of "Cam0003"
    # plus one ListThings filtered on the name (IoT filters it) and the V1 console groups (none here)
    assert set(calls(large)) <= {"DescribeThing", "GetCallerIdentity", "ListGroups", "ListThings"}


def test_a_device_is_found_by_its_thing_name_too_and_an_unknown_name_is_an_error(v2_account, settings_for):
    settings = settings_for(bucket=BUCKET)
    add_devices(v2_account, 2)
    ctx = v2_account.context(settings)

    assert find_device(ctx, settings, "deeplens-Cam0001").name == "Cam0001"
    with pytest.raises(DeeplensError, match="no device named 'Cam9999'"):
        find_device(ctx, settings, "Cam9999")


def test_the_fleet_view_costs_pages_not_devices(v2_account, settings_for):
    settings = settings_for(bucket=BUCKET)
    add_devices(v2_account, 10)
    at_10 = fleet_read_cost(v2_account, settings)
    add_devices(v2_account, 290, start=10)
    at_300 = fleet_read_cost(v2_account, settings)

    # ListThings 250 a page, ListCoreDevices 100 a page: 290 more devices cost 1 + 2 more pages
    assert at_300 - at_10 <= math.ceil(290 / 25)
    assert at_300 - at_10 == 3


def test_healthy_devices_are_not_read_one_by_one_and_unhealthy_ones_are(v2_account, settings_for):
    settings = settings_for(bucket=BUCKET)
    add_devices(v2_account, 30)
    v2_account.gg.cores["deeplens-Cam0007"].status = "UNHEALTHY"
    ctx = v2_account.context(settings)

    rows = {row.device.name: row for row in read_fleet(ctx, settings)}

    deep = [op for op in calls(ctx) if op in PER_DEVICE_READS]
    assert deep and "GetCoreDevice" in deep and deep.count("GetCoreDevice") == 1  # Cam0007 only
    assert any("core device reports UNHEALTHY" in p for p in rows["Cam0007"].status.problems)
    assert "summary_only" not in rows["Cam0007"].status.details
    assert rows["Cam0001"].status.details["summary_only"] is True
    assert rows["Cam0001"].status.health == "not deployed"  # connected, never deployed: the summary says so


def test_details_reads_every_device_in_full(v2_account, settings_for):
    settings = settings_for(bucket=BUCKET)
    add_devices(v2_account, 4)
    ctx = v2_account.context(settings)

    rows = read_fleet(ctx, settings, details=True)

    assert calls(ctx).count("GetCoreDevice") == 4
    assert all("certificates" in row.status.details for row in rows)


def test_never_connected_devices_are_explained_by_the_summary(v2_account, settings_for):
    settings = settings_for(bucket=BUCKET)
    add_devices(v2_account, 3, connect=False)
    ctx = v2_account.context(settings)

    rows = read_fleet(ctx, settings)

    assert {row.status.health for row in rows} == {"never connected"}
    assert not [op for op in calls(ctx) if op in PER_DEVICE_READS]


def test_output_pages_cover_every_device_once_and_the_filter_picks_by_health(v2_account, settings_for):
    settings = settings_for(bucket=BUCKET)
    add_devices(v2_account, 7)
    v2_account.gg.cores["deeplens-Cam0002"].status = "UNHEALTHY"
    rows = read_fleet(v2_account.context(settings), settings)

    seen, token = [], None
    while True:
        page = page_of(rows, max_items=3, starting_token=token)
        seen += [row.device.name for row in page.rows]
        token = page.next_token
        if token is None:
            break
    assert seen == [f"Cam{n:04d}" for n in range(7)]
    assert page.total == 7 and page.by_health["not deployed"] == 6 and sum(page.by_health.values()) == 7

    assert [row.device.name for row in page_of(rows, health="UNHEALTHY").rows] == [
        row.device.name for row in rows if row.status.health != "ok"]
    assert page_of(rows, health="HEALTHY").rows == []
    with pytest.raises(ConfigError, match="--starting-token"):
        page_of(rows, starting_token="not-a-token")


def test_fleet_status_counts_by_health_and_deployment_and_lists_the_problems(v2_account, settings_for):
    settings = settings_for(bucket=BUCKET)
    add_devices(v2_account, 5)
    add_devices(v2_account, 2, start=5, connect=False)

    report = gather_status(v2_account.context(settings), settings, max_items=2)

    assert report.fleet == {"devices": 7, "by_health": {"not deployed": 5, "never connected": 2},
                            "by_deployment": {"none": 7}}
    assert len(report.devices) == 2 and report.next_token
    assert sum("never connected" in p for p in report.problems) == 2  # problems cover the fleet, not the page
    assert sum("never deployed" in p for p in report.problems) == 5


def test_the_devices_and_status_commands_take_the_paging_and_filter_flags(v2_account, run_cli):
    add_devices(v2_account, 3)
    env = {"DEEPLENS_BUCKET": BUCKET}

    first = run_cli("--output", "json", "devices", "--max-items", "2", env=env)
    document = json.loads(first.stdout)
    rest = run_cli("--output", "json", "devices", "--starting-token", document["NextToken"], env=env)
    unhealthy = run_cli("--output", "json", "devices", "--status", "UNHEALTHY", env=env)
    status = run_cli("status", "--output", "table", env={**env, "COLUMNS": "200"})

    assert first.exit_code == 0, first.stderr
    assert [d["name"] for d in document["devices"]] == ["Cam0000", "Cam0001"]
    assert [d["name"] for d in json.loads(rest.stdout)["devices"]] == ["Cam0002"]
    assert len(json.loads(unhealthy.stdout)["devices"]) == 3  # never deployed counts as needing attention
    assert status.stdout.index("Fleet: 3 device(s)") < status.stdout.index("Devices that need attention")
