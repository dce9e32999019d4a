"""register-device for many cameras in one run: repeated --name or --names-file, one bundle folder per device,
the reads every device shares made once, and a total cost linear in the number of devices (the N-th device
costs what the first one did: no listing of every thing)."""

from __future__ import annotations

import json

import pytest

import deeplens_cli.aws as aws_module
from deeplens_cli.errors import ConfigError
from deeplens_cli.settings.device_names import read_names

try:
    from tests.cli.fake_greengrassv2 import v2_account  # noqa: F401 - a fixture
except ImportError:
    from fake_greengrassv2 import v2_account  # noqa: F401

ENV = {"DEEPLENS_BUCKET": "deeplens-test-face-crops"}
SHARED_READS = {"DescribeRoleAlias", "DescribeEndpoint", "DescribeThingGroup"}


@pytest.fixture
def recorded(monkeypatch):
    """Every AWS call any context makes during the test (the CLI makes its own contexts)."""
    calls: list[str] = []
    original = aws_module.CallRecorder.__call__

    def record(self, model=None, **kwargs):
        if model is not None:
            calls.append(model.name)
        return original(self, model, **kwargs)

    monkeypatch.setattr(aws_module.CallRecorder, "__call__", record)
    return calls


def register(run_cli, *args):
    result = run_cli("--output", "json", "register-device", *args, env=ENV)
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_many_names_give_one_bundle_folder_each(v2_account, run_cli, tmp_path):
    (tmp_path / "names.txt").write_text("# store 12\nCam3\n\nCam4\n")

    document = register(run_cli, "--name", "Cam1", "--name", "Cam2", "--names-file", "names.txt", "--out", "bundles",
                        "--fleet", "Lobby")

    assert [d["name"] for d in document["devices"]] == ["Cam1", "Cam2", "Cam3", "Cam4"]
    for name in ("Cam1", "Cam2", "Cam3", "Cam4"):
        assert (tmp_path / "bundles" / name / "config.yaml").exists()
        assert oct((tmp_path / "bundles" / name / "private.pem.key").stat().st_mode & 0o777) == "0o600"
    members = v2_account.client("iot").list_things_in_thing_group(thingGroupName="Lobby")["things"]
    assert sorted(members) == [f"deeplens-Cam{n}" for n in (1, 2, 3, 4)]


def test_the_shared_reads_are_made_once_and_each_device_costs_the_same(v2_account, run_cli, recorded):
    register(run_cli, "--name", "Cam1", "--fleet", "Lobby", "--out", "one")
    one = list(recorded)
    recorded.clear()
    register(run_cli, *[arg for n in range(2, 12) for arg in ("--name", f"Cam{n}")], "--fleet", "Lobby",
             "--out", "many")
    ten = list(recorded)

    assert "ListThings" not in one  # one name: its own reads, no listing
    assert ten.count("ListThings") == ten.count("ListPolicies") == 1  # many names: one listing, shared
    for shared in ("DescribeRoleAlias", "DescribeEndpoint"):
        assert ten.count(shared) == one.count(shared)  # once per run, not per device
    per_device = [op for op in one if op not in SHARED_READS and op != "GetCallerIdentity"]
    assert len([op for op in ten if op not in SHARED_READS and op != "GetCallerIdentity"]) <= 10 * len(per_device)


def test_the_hundredth_device_costs_what_the_first_did(v2_account, run_cli, recorded):
    register(run_cli, "--name", "First", "--out", "first")
    first = len(recorded)
    register(run_cli, *[arg for n in range(60) for arg in ("--name", f"Bulk{n}")], "--out", "bulk")
    recorded.clear()
    register(run_cli, "--name", "Last", "--out", "last")

    assert len(recorded) == first


def test_names_are_checked_before_anything_is_created():
    with pytest.raises(ConfigError, match="given twice: Cam1"):
        read_names(["Cam1", "Cam1"], None)
    with pytest.raises(ConfigError, match="not a valid device name"):
        read_names(["Cam 1"], None)
    with pytest.raises(ConfigError, match="no device name"):
        read_names([], None)


def names_file(tmp_path, prefix, count):
    path = tmp_path / f"{prefix}.txt"
    path.write_text("".join(f"{prefix}{n:05d}\n" for n in range(count)))
    return str(path)


def test_a_dry_run_reads_the_same_for_10_and_for_100_names(v2_account, run_cli, recorded, tmp_path):
    """Issue 21: 10,000 names with --dry-run did not finish in 300 s - five reads per name (a DescribeThing per
    target, the plan's own DescribeThing, two GetPolicy). Which things and policies exist is now listed once."""
    counts = []
    for prefix, count in (("Ten", 10), ("Hundred", 100)):
        recorded.clear()
        register(run_cli, "--dry-run", "--names-file", names_file(tmp_path, prefix, count), "--out", prefix)
        counts.append(len(recorded))
    assert counts[0] == counts[1], counts


def test_a_real_run_costs_the_same_per_name_at_5_10_and_20_names(v2_account, run_cli, recorded, tmp_path):
    """Linear: each name adds the same number of calls (its creates), whatever came before it in the run."""
    counts = {}
    for prefix, count in (("Five", 5), ("Ten", 10), ("Twenty", 20)):
        recorded.clear()
        register(run_cli, "--names-file", names_file(tmp_path, prefix, count), "--out", prefix)
        counts[count] = len(recorded)
    assert (counts[10] - counts[5]) / 5 == (counts[20] - counts[10]) / 10, counts
    assert (counts[10] - counts[5]) / 5 < 12, counts  # what a registration must create and attach, no reads


def test_a_long_run_shows_its_progress_on_stderr_and_keeps_stdout_one_document(v2_account, run_cli, tmp_path):
    result = run_cli("--output", "json", "register-device", "--dry-run", "--names-file",
                     names_file(tmp_path, "Cam", 40), env=ENV)

    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)["devices"]) == 40  # stdout: exactly the one document
    lines = [line for line in result.stderr.splitlines() if " of 40 device names" in line]
    assert lines[0].startswith("planned 2 of 40") and lines[-1].startswith("planned 40 of 40"), lines
    assert len(lines) == 20  # every twentieth of the way, whatever the number of names


def test_an_account_with_more_thing_pages_than_names_is_read_per_name(v2_account, run_cli, recorded, tmp_path,
                                                                       monkeypatch):
    """The listing stops after one page per name: past that, per-name reads cost less than listing on."""
    import deeplens_cli.targets.iot as iot_module

    for n in range(3):
        v2_account.client("iot").create_thing(thingName=f"someone-elses-{n}")
    monkeypatch.setattr(iot_module, "LIST_THINGS_PAGE", 1)  # 3 things: 3 pages, more than the 2 names
    register(run_cli, "--dry-run", "--name", "A1", "--name", "A2", "--out", "pages")

    assert recorded.count("ListThings") == 3  # pages 1 and 2, then the third proves the budget was passed
    assert "ListPolicies" not in recorded and recorded.count("DescribeThing") == 6  # as before: 3 a name
