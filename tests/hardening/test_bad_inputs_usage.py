"""Bad input, configuration and usage (rows of bad_input_table.TABLE): refused with exit 2 before any AWS request."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from tests.hardening.bad_input_table import BUCKET, DEVICE, Cli, closed_port, expect
from tests.support.account_snapshot import account_snapshot, differences

# ---------------------------------------------------------------------------------------------- configuration


def test_config_invalid_yaml(cli: Cli) -> None:
    Path("deeplens.yaml").write_text("bucket: [deeplens-hardening-crops\nregion: us-east-1\n")
    cli.refused_up_front("config-invalid-yaml", "register-roles", env={"DEEPLENS_BUCKET": None})


def test_config_unknown_key(cli: Cli) -> None:
    Path("deeplens.yaml").write_text("bucket_name: deeplens-hardening-crops\n")
    cli.refused_up_front("config-unknown-key", "register-roles", env={"DEEPLENS_BUCKET": None})


def test_config_wrong_type(cli: Cli) -> None:
    Path("deeplens.yaml").write_text("bucket: deeplens-hardening-crops\nfunction:\n  memory_mb: lots\n")
    cli.refused_up_front("config-wrong-type", "register-roles", env={"DEEPLENS_BUCKET": None})


def test_device_profile_invalid(cli: Cli) -> None:
    cli.refused_up_front("device-profile-invalid", "register-device", "--name", "Cam",
                         env={"DEEPLENS_GREENGRASS_DEVICE_PROFILE": "deeplense"})


def test_config_file_missing(cli: Cli) -> None:
    cli.refused_up_front("config-file-missing", "--config", "nowhere.yaml", "register-roles")


def test_bucket_name_invalid(cli: Cli) -> None:
    cli.refused_up_front("bucket-name-invalid", "register-roles", "--bucket", "My_Crops")


def test_bucket_missing(cli: Cli) -> None:
    cli.refused_up_front("bucket-missing", "register-roles", env={"DEEPLENS_BUCKET": None})


def test_device_name_invalid(cli: Cli) -> None:
    cli.refused_up_front("device-name-invalid", "register-device", "--name", "my cam")


def test_claim_allow_invalid(cli: Cli) -> None:
    cli.refused_up_front("claim-allow-invalid", "register-device", "--fleet", "Stores", "--claim", "--allow",
                         "Cam1,my cam")


def test_claim_option_without_claim(cli: Cli) -> None:
    cli.refused_up_front("claim-option-without-claim", "register-device", "--name", DEVICE, "--allow", "Cam2")
    assert not Path("devices").exists()


def test_claim_allow_list_exposed(cli: Cli) -> None:
    Path("deeplens.yaml").write_text('bucket: deeplens-hardening-crops\nprefix: ""\n')
    result = cli("register-device", "--fleet", "Stores", "--claim", "--allow", "Cam2", env={"DEEPLENS_BUCKET": None})
    expect("claim-allow-list-exposed", result.exit_code, result.stderr)
    assert cli.mutations == [] and not Path("devices").exists()


def test_bundle_exists(cli: Cli) -> None:
    cli.ok("register-roles")
    old = cli.tmp_path / "old-bundle"
    old.mkdir()
    (old / "device.private.key").write_text("a key issued once\n")
    result = cli("register-device", "--name", DEVICE, "--greengrass", "v1", "--out", str(old))
    expect("bundle-exists", result.exit_code, result.stderr)
    assert not any(operation in ("CreateThing", "CreateKeysAndCertificate") for _, operation in cli.mutations)
    assert (old / "device.private.key").read_text() == "a key issued once\n"


def test_bundle_unwritable(cli: Cli) -> None:
    cli.ok("register-roles")
    before = len(cli.mutations)
    Path("notes.txt").write_text("a file, not a folder\n")
    result = cli("register-device", "--name", DEVICE, "--greengrass", "v1", "--out", "notes.txt/bundle")
    expect("bundle-unwritable", result.exit_code, result.stderr)
    assert len(cli.mutations) == before  # refused before any change
    assert account_snapshot()["iot"]["things"] == {}


def test_bundle_foreign(cli: Cli) -> None:
    cli.ok("register-roles")
    cli.faults.fail("greengrass", "AssociateRoleToGroup", "AccessDeniedException", "injected", status=403, times=1)
    assert cli("register-device", "--name", DEVICE, "--greengrass", "v1", "--out", "first").exit_code == 1
    project = cli.tmp_path / "myproject"
    project.mkdir()
    (project / "README.md").write_text("# mine\n")
    before = len(cli.mutations)
    result = cli("register-device", "--name", DEVICE, "--greengrass", "v1", "--out", str(project))
    expect("bundle-foreign", result.exit_code, result.stderr)
    assert len(cli.mutations) == before and sorted(os.listdir(project)) == ["README.md"]


def test_bundle_uncreatable(cli: Cli) -> None:
    cli.ok("register-roles")
    before = len(cli.mutations)
    result = cli("register-device", "--name", DEVICE, "--greengrass", "v1", "--out", "x" * 300)
    expect("bundle-uncreatable", result.exit_code, result.stderr)
    assert len(cli.mutations) == before
    assert account_snapshot()["iot"]["things"] == {}


def test_key_template_unformattable(cli: Cli) -> None:
    Path("deeplens.yaml").write_text("key_template: '{month}/{n:d}.jpg'\n")
    result = cli("publish", "--greengrass", "v2")
    expect("key-template-unformattable", result.exit_code, result.stderr)
    assert cli.mutations == []


def test_destroy_v2_endpoint_unreachable(cli: Cli) -> None:
    cli.ok("register-roles")
    result = cli("destroy", "--yes", env={"AWS_ENDPOINT_URL_GREENGRASSV2": f"http://127.0.0.1:{closed_port()}"})
    expect("destroy-v2-endpoint-unreachable", result.exit_code, result.stderr)


def test_destroy_without_terminal(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    cli.register_v1_device()
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # a pipe, not a terminal
    before = account_snapshot()
    mutations = len(cli.mutations)
    result = cli("destroy", "--device", DEVICE)
    expect("destroy-without-terminal", result.exit_code, result.stderr)
    assert len(cli.mutations) == mutations
    assert not differences(account_snapshot(), before)




def test_config_vendor_nested(cli: Cli) -> None:
    Path("deeplens.yaml").write_text(f"bucket: {BUCKET}\nfunction:\n  vendor:\n    - boto3==1.33.13\n"
                                     f"    - [numpy, {{pinned: 1.21}}]\n")
    cli.refused_up_front("config-vendor-nested", "publish", "--greengrass", "v1", env={"DEEPLENS_BUCKET": None})


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
function:
  vendor: [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_config_alias_bomb(cli: Cli) -> None:
    import time

    assert len(BILLION_LAUGHS) < 600  # a tiny file...
    Path("deeplens.yaml").write_text(BILLION_LAUGHS)
    started = time.process_time()
    result = cli("publish", "--greengrass", "v1")
    elapsed = time.process_time() - started
    expect("config-alias-bomb", result.exit_code, result.stderr)
    assert elapsed < 2.0, f"refusing it took {elapsed:.1f} s of CPU"  # ...that expands to 9^9 values
    assert cli.faults.sends == {}




def test_json_output_stays_one_document_on_errors(cli: Cli) -> None:
    """With --output json an error still leaves stdout empty or one JSON document: scripts never parse a
    half-printed plan."""
    result = cli("--output", "json", "register-roles", env={"DEEPLENS_BUCKET": None})
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "config" and "bucket" in error["message"] and error["hint"]


# ---------------------------------------------------------------------------------------------- click, --since, --query


@pytest.mark.parametrize("args", [
    ("deploy", "--timeout", "0"),  # out of range
    ("faces", "--download", "notes.txt"),  # a file where a folder is expected
    ("register-device", "--name", DEVICE, "--out", "notes.txt"),
    ("deploy", "--no-such-flag"),  # unknown option
    ("logs",),  # missing --device
    ("register-device", "--name", DEVICE, "--greengrass", "v9"),  # bad choice
])
@pytest.mark.parametrize("where", ["after", "before", "environment"])
def test_json_usage_error(cli: Cli, args: tuple[str, ...], where: str) -> None:
    """Click's own usage errors kept stdout empty when --output json came after the command (click failed before
    it parsed it): every exit prints one document, and stderr keeps its one line."""
    Path("notes.txt").write_text("a file, not a folder\n")
    json_args = ("--output", "json")
    line = (*args, *json_args) if where == "after" else (*json_args, *args) if where == "before" else args
    result = cli.refused_up_front("json-usage-error", *line,
                                  env={"DEEPLENS_OUTPUT": "json"} if where == "environment" else None)
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "usage" and result.stderr.strip() == f"error: {error['message']} (hint: {error['hint']})"


def test_the_last_output_on_the_line_decides_as_click_does(cli: Cli) -> None:
    text_last = cli("--output", "json", "deploy", "--output", "text", "--timeout", "0")
    json_last = cli("--output", "text", "deploy", "--timeout", "0", "--output", "json")
    assert text_last.exit_code == json_last.exit_code == 2
    assert text_last.stdout == "" and "Usage: deeplens-cli deploy" in text_last.stderr  # click's own, for a person
    assert json.loads(json_last.stdout)["error"]["code"] == "usage"


@pytest.mark.parametrize("args", [
    ("faces", "--since", "1960-01-01"),
    ("faces", "--since", "100000000d"),  # OverflowError in the old tree
    ("faces", "--since", "9" * 400 + "s"),
    ("logs", "--device", DEVICE, "--since", "1969-12-31T23:59Z"),  # CloudWatch refused the negative start
    ("logs", "--device", DEVICE, "--since", "100000000d"),
])
def test_since_before_epoch(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli.refused_up_front("since-before-epoch", "--output", "json", *args)
    assert json.loads(result.stdout)["error"]["code"] == "config"


DEEP_QUERIES = ["(" * 3000 + "devices" + ")" * 3000, "!" * 3000 + "devices", "[" * 100 + "@" + "]" * 100]


@pytest.mark.parametrize("query", DEEP_QUERIES, ids=["parentheses", "nots", "lists"])
def test_query_too_deep(cli: Cli, query: str) -> None:
    """The old tree: RecursionError, "unexpected error ... report it" (exit 1), before any AWS request."""
    result = cli.refused_up_front("query-too-deep", "--output", "json", "--query", query, "devices")
    assert json.loads(result.stdout)["error"]["code"] == "usage"


@pytest.mark.parametrize("stage", ["[@,@][]", "[@,@]", "join('', [to_string(@), to_string(@)])"])
def test_query_too_large(cli: Cli, stage: str) -> None:
    """Forty doubling stages: the old tree built 2**40 values (hours, then MemoryError) or printed them."""
    result = cli("--output", "json", "--query", "|".join([stage] * 40), "devices")
    expect("query-too-large", result.exit_code, result.stderr)
    assert json.loads(result.stdout)["error"]["code"] == "usage"
