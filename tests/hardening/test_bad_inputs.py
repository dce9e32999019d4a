"""The bad-input table: every way a user or the world can get it wrong, and what deeplens-cli says about it.

Each row of `TABLE` is one situation with the exit code and the ONE line the user must see (a regular
expression the last line of stderr must match in full: the cause and, after "(hint: ...)", what to do). Each
row has a test, `test_<row id with _ for ->`, that provokes the situation for real - a bad file, flag or
environment, an AWS answer injected below botocore's parser (aws_faults.py), a dead endpoint, a broken video,
a full disk - and checks, besides the line and the exit code, that nothing was left half-done: no AWS change
at all when the input can be checked up front, the account consistent (a re-run converges) when a step
failed midway, no half-written spool file on the device.

Rows whose exit code is None are conditions the device meets at run time; the loop does not exit, it logs the
line and carries on (spools, drops, retries). docs/troubleshooting.md is checked against this table:
every row is there with the same exit code and an example line that matches the row's pattern.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from account_snapshot import account_snapshot, differences
from aws_faults import Faults, faults_fixture  # noqa: F401 - the `faults` fixture
from fast_accounts import fresh_account_fixture, lean_managed_policies_fixture, shared_models_fixture  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "troubleshooting.md"
BUCKET = "deeplens-hardening-crops"
DEVICE = "Cam1"
ENV = {"DEEPLENS_BUCKET": BUCKET}
HINT = r" \(hint: .+\)"


@dataclass(frozen=True)
class Row:
    situation: str
    exit_code: int | None  # None: the device loop keeps running and logs the line
    line: str  # regular expression for the whole line


TABLE: dict[str, Row] = {
    # -- configuration and usage (exit 2, nothing sent to AWS) -------------------------------------------------
    "config-invalid-yaml": Row("deeplens.yaml is not valid YAML", 2,
                               r"error: config file deeplens\.yaml: invalid YAML at line \d+, column \d+: .+"
                               r" \(hint: fix the YAML syntax \(indentation, quotes, colons\)\)"),
    "config-unknown-key": Row("deeplens.yaml has a key deeplens-cli does not know (a typo)", 2,
                              r"error: config file deeplens\.yaml: unknown key 'bucket_name' \(hint: did you mean 'bucket'\?\)"),
    "config-wrong-type": Row("a setting has the wrong type", 2,
                             r"error: setting 'function\.memory_mb' \(from deeplens\.yaml\) is 'lots', expected an integer"
                             r" \(hint: fix function\.memory_mb; default is 1024\)"),
    "config-file-missing": Row("--config names a file that does not exist", 2,
                               r"error: config file nowhere\.yaml (does not exist|not found|cannot be read).*" + HINT),
    "bucket-name-invalid": Row("the bucket name breaks the S3 naming rules", 2,
                               r"error: (setting 'bucket'|--bucket) .*'My_Crops', expected lowercase letters, digits, dots"
                               r" and hyphens.*" + HINT),
    "bucket-missing": Row("no bucket configured", 2,
                          r"error: missing required setting 'bucket' \(hint: set bucket in .+, or DEEPLENS_BUCKET, or --bucket.*\)"),
    "device-name-invalid": Row("register-device --name with characters a device name cannot have", 2,
                               r"error: --name 'my cam' is not a valid device name \(hint: use 1-100 letters, digits and"
                               r" hyphens, starting with a letter or digit\)"),
    "bundle-exists": Row("register-device --out points at a folder that already holds files", 2,
                         r"error: --out \S+ already exists and is not empty \(hint: a bundle holds a private key issued"
                         r" only once: choose another --out or move the old one\)"),
    "bundle-unwritable": Row("register-device --out cannot be written", 2,
                             r"error: --out \S+ is not writable .+ \(hint: choose a folder you can write to\)"),
    "bundle-foreign": Row("register-device resumes into a folder that is not this device's bundle (a project, another"
                          " device's bundle)", 2,
                          r"error: --out \S+ already holds (files that are not this device's bundle \(.+\)|files of .+)"
                          r" \(hint: a bundle holds a private key issued only once: choose another --out or move the old"
                          r" one\)"),
    "bundle-uncreatable": Row("register-device --out cannot be created although its parent looks writable", 2,
                              r"error: --out \S+ cannot be created \(.+\) \(hint: choose a folder you can write to\)"),
    "key-template-unformattable": Row("key_template the device cannot format (a format spec such as {n:d})", 2,
                                      r"error: key_template '.+' cannot be formatted on the device: .+ \(hint: use the"
                                      r" placeholders of edge_function/keys\.py without format specs, .+\)"),
    "destroy-v2-endpoint-unreachable": Row("destroy while the Greengrass V2 endpoint cannot be reached", 1,
                                           r"error: cannot reach \S+ to remove the Greengrass V2 component and fleets"
                                           r" \(hint: check the network and AWS_ENDPOINT_URL\[_GREENGRASSV2\], then"
                                           r" run destroy again \(nothing shared was removed\)\)"),
    "destroy-without-terminal": Row("destroy without --yes in a script (no terminal to ask)", 2,
                                    r"error: destroy needs confirmation and there is no terminal to ask"
                                    r" \(hint: re-run with --yes .+\)"),
    # -- credentials, endpoint, throttling (exit 1, nothing changed) ---------------------------------------------
    "no-credentials": Row("no AWS credentials anywhere (register-roles)", 1,
                          r"error: no AWS credentials found.* \(hint: run `aws configure`, pass --profile, or set"
                          r" AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY\)"),
    "no-credentials-deploy": Row("no AWS credentials anywhere (deploy, which first looks the device up)", 1,
                                 r"error: no AWS credentials found.* \(hint: run `aws configure`, pass --profile, or set"
                                 r" AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY\)"),
    "expired-token": Row("the session token has expired", 1,
                         r"error: AWS credentials expired.* \(ExpiredToken\w*\) \(hint: refresh them .+\)"),
    "endpoint-unreachable": Row("the endpoint cannot be reached (no network, wrong --endpoint-url)", 1,
                                r"error: cannot reach the AWS endpoint http://127\.0\.0\.1:\d+\S*( while .+)?"
                                r" \(hint: check the network, --endpoint-url / AWS_ENDPOINT_URL and the region\)"),
    "endpoint-unreachable-deploy": Row("the endpoint cannot be reached (deploy)", 1,
                                       r"error: cannot reach the AWS endpoint http://127\.0\.0\.1:\d+\S*.*"
                                       r" \(hint: check the network, --endpoint-url / AWS_ENDPOINT_URL and the region\)"),
    "throttled-beyond-retries": Row("AWS keeps throttling after every retry botocore makes", 1,
                                    r"error: AWS kept throttling GetRole while reading role \S+ after retries \(Throttling\)"
                                    r" \(hint: wait and re-run; raise aws\.max_attempts or use aws\.retry_mode: adaptive\)"),
    "access-denied": Row("AccessDenied on a mutating step (any of them)", 1,
                         r"error: \S+: access denied: [\w:-]+( on \S+)? while \w+:\w+(; \d+ earlier change\(s\) were"
                         r" applied, re-running converges)? \(hint: grant [\w:-]+ to the calling identity, or use a"
                         r" profile that has it\)"),
    # -- the AWS environment: checked before the first call (exit 2), or answers that are not AWS's (exit 1) ----
    "aws-config-malformed": Row("~/.aws/config (AWS_CONFIG_FILE) is not a valid INI file", 2,
                                r"error: AWS config file \S+ cannot be parsed \(hint: fix its syntax \(sections are"
                                r" \[default\] or \[profile NAME\], then key = value lines\), or point AWS_CONFIG_FILE"
                                r" at a valid file\)"),
    "doctor-aws-environment": Row("doctor with a broken AWS environment (here a malformed ~/.aws/config)", 5,
                                  r"error: 1 preflight check\(s\) failed: aws environment \(hint: .+\)"),
    "credential-process-missing": Row("the profile's credential_process helper is not installed", 2,
                                      r"error: the credential_process helper '.+' cannot be run: No such file or"
                                      r" directory \(hint: install the helper, or fix credential_process in the profile"
                                      r" \(AWS_CONFIG_FILE\)\)"),
    "access-key-without-secret": Row("AWS_ACCESS_KEY_ID set without AWS_SECRET_ACCESS_KEY", 2,
                                     r"error: AWS credentials in the environment are incomplete: AWS_SECRET_ACCESS_KEY"
                                     r" is missing \(hint: set the access key and its secret together, or unset both"
                                     r" to use a profile\)"),
    "endpoint-variable-invalid": Row("AWS_ENDPOINT_URL is ftp://..., has no scheme, or a port beyond 65535", 2,
                                     r"error: AWS_ENDPOINT_URL\w* is '.*', expected an http:// or https:// URL such as"
                                     r" http://127\.0\.0\.1:5000( \(port 1-65535\))? \(hint: fix or unset"
                                     r" AWS_ENDPOINT_URL\w* \(the same rules as --endpoint-url\)\)"),
    "region-variable-invalid": Row("AWS_DEFAULT_REGION (or AWS_REGION) is not a region name, e.g. 'us east 1'", 2,
                                   r"error: AWS_(DEFAULT_)?REGION is '.*', expected an AWS region such as us-east-1 or"
                                   r" eu-west-2 \(hint: fix or unset AWS_(DEFAULT_)?REGION\)"),
    "name-trailing-newline": Row("a name, bucket or region with a trailing newline ($'Cam1\\n')", 2,
                                 r"error: (--name '\S+\\n' is not a valid device name|setting '(bucket|region)'"
                                 r" \(--\w+\) is '\S+\\n', expected .+) \(hint: .+\)"),
    "endpoint-plain-web-server": Row("--endpoint-url points at a web server, not AWS or an emulator", 1,
                                     r"error: http://127\.0\.0\.1:\d+ is not an AWS endpoint: it answered \w+ with a web"
                                     r" page \(HTTP \d+\) \(hint: check --endpoint-url / AWS_ENDPOINT_URL\[_<SERVICE>\]:"
                                     r" it must be AWS or an AWS emulator such as moto\)"),
    "endpoint-text-5xx": Row("IAM/STS answer 500/503 with a plain-text body (a proxy), on every retry", 1,
                             r"error: the AWS endpoint kept failing \w+ after retries \(HTTP 5\d\d: [\w ]+\)"
                             r" \(hint: a temporary fault at AWS or at the endpoint: wait and re-run; check"
                             r" --endpoint-url / AWS_ENDPOINT_URL if it persists\)"),
    "config-vendor-nested": Row("function.vendor holds a nested list or mapping instead of requirement strings", 2,
                                r"error: setting 'function\.vendor' \(from deeplens\.yaml\) has .+ in its list,"
                                r" expected one-line strings \(pip requirements such as 'boto3==1\.33\.13'\)"
                                r" \(hint: fix function\.vendor\)"),
    "config-alias-bomb": Row("deeplens.yaml expands through nested YAML anchors/aliases (a 'billion laughs' file)", 2,
                             r"error: config file deeplens\.yaml: YAML aliases expand to more than 10000 values"
                             r" \(hint: write the values out, or use fewer &anchors/\*aliases\)"),
    # -- the bucket ------------------------------------------------------------------------------------------
    "bucket-foreign": Row("the bucket name is taken by another account", 1,
                          r"error: bucket deeplens-hardening-crops exists but this account cannot use it \(HTTP 403: .+\)"
                          r" \(hint: bucket names are global: choose another bucket name, or use the owning account's"
                          r" profile\)"),
    "bucket-other-region": Row("the bucket exists in another region", 1,
                               r"error: bucket deeplens-hardening-crops is in (region )?eu-west-1, not us-east-1" + HINT),
    # -- devices ---------------------------------------------------------------------------------------------
    "roles-missing": Row("register-device before register-roles", 1,
                         r"error: IAM role AWSDeepLensGreengrassGroupRole does not exist"
                         r" \(hint: run `deeplens-cli register-roles` first\)"),
    "device-unknown": Row("deploy --device with a name no device has", 1,
                          r"error: no device named 'Nope' \(registered devices: Cam1\) \(hint: check the name, or"
                          r" register it with `deeplens-cli register-device --name NAME`\)"),
    "device-ambiguous": Row("two registrations answer to the same device name", 1,
                            r"error: device name 'Cam1' is ambiguous: \S+ \(v1\), \S+ \(v2\) \(hint: pass the thing name"
                            r" instead, or destroy the stale registration\)"),
    "device-without-core": Row("the device's Greengrass group has no core", 1,
                               r"error: Greengrass group deeplens-Cam1 has no core, so it cannot be deployed"
                               r" \(hint: register the device again.*\)"),
    # -- deploy ----------------------------------------------------------------------------------------------
    "lambda-runtime-rejected": Row("AWS Lambda refuses the device's runtime (python3.7)", 1,
                                   r"error: lambda-function/deeplens-face-crops: AWS Lambda no longer accepts runtime"
                                   r" python3\.7 for new or updated functions(; \d+ earlier change\(s\) were applied,"
                                   r" re-running converges)? \(hint: set function\.lambda_runtime:"
                                   r" python3\.12 - .+FunctionRuntimeOverride\)\)?"),
    "deployment-failed": Row("the device reports the deployment failed", 3,
                             r"error: deployment \S+ failed: .+ \[GG-402: .+\] \(hint: fix the cause shown, then run deploy"
                             r" again \(see `deeplens-cli status`\)\)"),
    "deployment-timeout": Row("the device does not answer before --timeout", 4,
                              r"error: deployment \S+ did not finish in time \(still InProgress after \d+s\)"
                              r" \(hint: the device may be offline; .+\)"),
    "interrupted": Row("Ctrl-C during deploy", 130,
                       r"interrupted: nothing more was changed; re-running the command converges"),
    # -- the device (python -m edge_function run) ------------------------------------------------------------
    "edge-threshold-out-of-range": Row("--threshold outside 0..1", 2,
                                       r"error: invalid --threshold '1\.5': expected a number from 0 to 1"),
    "edge-setting-not-a-number": Row("a DEEPLENS_* variable that is not a number", 2,
                                     r"error: invalid DEEPLENS_THRESHOLD 'high': expected a number from 0 to 1"),
    "edge-bucket-missing": Row("no bucket for the crops", 2,
                               r"error: missing bucket: set --bucket or DEEPLENS_BUCKET to the S3 bucket for face crops"),
    "edge-unknown-source": Row("--source names nothing that exists", 2,
                               r"error: source \S+ does not exist; expected awscam, webcam:N, a video file, an image file"
                               r" or a directory of images"),
    "edge-unreadable-video": Row("--source is a file OpenCV cannot decode", 2,
                                 r"error: cannot read video \S+: not a video OpenCV can decode \(images need a known"
                                 r" extension: .+\)"),
    "edge-awscam-off-device": Row("--source/--detector awscam on a machine that is not a DeepLens", 2,
                                  r"error: --source/--detector awscam needs the awscam module, which exists only on a"
                                  r" DeepLens; use --source FILE\|DIR\|webcam:N --detector opencv"),
    "edge-camera-no-frame": Row("the camera stops returning frames", None,
                                r"edge loop failed \(restart 1 in [\d.]+ s\): RuntimeError: no frame from awscam after"
                                r" \d+ tries"),
    "edge-s3-slowdown": Row("S3 answers SlowDown (throttling) to the device", None,
                            r"upload of faces/\S+ failed, spooling until S3 is reachable: An error occurred \(SlowDown\)"
                            r" when calling the PutObject operation \(reached max retries: \d+\): .+"),
    "edge-spool-in-source": Row("--spool-dir is the --source folder or inside it", 2,
                                r"error: invalid DEEPLENS_SPOOL_DIR/--spool-dir '\S+': it is (inside )?the --source folder"
                                r" '\S+'; expected a dedicated folder outside it"),
    "edge-s3-refused-crop": Row("S3 refuses one crop for good (403 after a prefix change)", None,
                                r"spooled crop \S+ refused, quarantined in \S+/quarantine: An error occurred"
                                r" \(AccessDenied\) when calling the PutObject operation: .+"),
    "edge-spool-disk-full": Row("the disk under the spool is full", None,
                                r"spool write failed, crop faces/\S+ dropped \(.+\): \[Errno 28\] No space left on device; "
                                r"check DEEPLENS_SPOOL_DIR \(--spool-dir\)"),
}


# ---------------------------------------------------------------------------------------------- helpers


def one_line(stderr: str) -> str:
    """The line the user is told: the last non-empty line of stderr."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def expect(row_id: str, exit_code: int, stderr: str) -> str:
    row = TABLE[row_id]
    line = one_line(stderr)
    assert "Traceback" not in stderr, stderr
    assert re.fullmatch(row.line, line), f"{row_id}: the user saw\n  {line}\nexpected a line matching\n  {row.line}"
    assert exit_code == row.exit_code, f"{row_id}: exit {exit_code}, expected {row.exit_code}: {line}"
    return line


def expect_log(row_id: str, records: list[logging.LogRecord]) -> str:
    """Runtime conditions: one log record (message, plus the exception's last line when it carries one)."""
    pattern = TABLE[row_id].line
    seen = []
    for record in records:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            text += f": {type(error).__name__}: {error}"
        seen.append(text)
        if re.fullmatch(pattern, text):
            return text
    raise AssertionError(f"{row_id}: no log line matches {pattern!r}; logged:\n" + "\n".join(seen))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Cli:
    """The CLI on a fresh emulated account, with injectable AWS faults."""

    run_cli: Callable[..., Any]
    faults: Faults
    tmp_path: Path

    def __call__(self, *args: str, env: dict[str, str | None] | None = None) -> Any:
        self.faults.start_run()
        return self.run_cli(*args, env={**ENV, **(env or {})})

    def ok(self, *args: str, env: dict[str, str | None] | None = None) -> Any:
        result = self(*args, env=env)
        assert result.exit_code == 0, result.stderr
        return result

    @property
    def mutations(self) -> list[tuple[str, str]]:
        return self.faults.mutating_attempts

    def register_v1_device(self, name: str = DEVICE) -> None:
        self.ok("register-roles")
        self.ok("register-device", "--name", name, "--greengrass", "v1", "--out", str(self.tmp_path / f"bundle-{name}"))


@pytest.fixture
def bare_cli(run_cli: Callable[..., Any], faults: Faults, fresh_account: Callable[[], Any], tmp_path: Path) -> Cli:
    """The CLI without an account: the test enters `fresh_account()` itself (mocks must not be nested)."""
    return Cli(run_cli, faults, tmp_path)


@pytest.fixture
def cli(bare_cli: Cli, fresh_account: Callable[[], Any]) -> Iterator[Cli]:
    with fresh_account():
        yield bare_cli


class SimulatedCore:
    """What the Greengrass V1 core reports: each new deployment follows `script` (the last answer repeats);
    a deployment keeps its own history, so an old failed deployment still reads as failed."""

    def __init__(self) -> None:
        self.script: list[dict[str, Any]] = [{"DeploymentStatus": "Success"}]
        self.by_deployment: dict[str, list[dict[str, Any]]] = {}

    def will_report(self, *states: str | dict[str, Any]) -> None:
        self.script = [s if isinstance(s, dict) else {"DeploymentStatus": s} for s in states]

    def __call__(self, group_id: str, deployment_id: str) -> dict[str, Any]:
        answers = self.by_deployment.setdefault(deployment_id, list(self.script))
        return answers.pop(0) if len(answers) > 1 else answers[0]


@pytest.fixture
def core(monkeypatch: pytest.MonkeyPatch) -> SimulatedCore:
    import deeplens_cli.targets.greengrass_v1.target as v1_target

    simulated = SimulatedCore()
    monkeypatch.setattr(v1_target, "status_source_for", lambda ctx: simulated)
    return simulated


# ---------------------------------------------------------------------------------------------- configuration


def test_config_invalid_yaml(cli: Cli) -> None:
    Path("deeplens.yaml").write_text("bucket: [deeplens-hardening-crops\nregion: us-east-1\n")
    result = cli("register-roles", env={"DEEPLENS_BUCKET": None})
    expect("config-invalid-yaml", result.exit_code, result.stderr)
    assert cli.faults.sends == {}  # not one AWS request


def test_config_unknown_key(cli: Cli) -> None:
    Path("deeplens.yaml").write_text("bucket_name: deeplens-hardening-crops\n")
    result = cli("register-roles", env={"DEEPLENS_BUCKET": None})
    expect("config-unknown-key", result.exit_code, result.stderr)
    assert cli.faults.sends == {}


def test_config_wrong_type(cli: Cli) -> None:
    Path("deeplens.yaml").write_text("bucket: deeplens-hardening-crops\nfunction:\n  memory_mb: lots\n")
    result = cli("register-roles", env={"DEEPLENS_BUCKET": None})
    expect("config-wrong-type", result.exit_code, result.stderr)
    assert cli.faults.sends == {}


def test_config_file_missing(cli: Cli) -> None:
    result = cli("--config", "nowhere.yaml", "register-roles")
    expect("config-file-missing", result.exit_code, result.stderr)
    assert cli.faults.sends == {}


def test_bucket_name_invalid(cli: Cli) -> None:
    result = cli("register-roles", "--bucket", "My_Crops")
    expect("bucket-name-invalid", result.exit_code, result.stderr)
    assert cli.faults.sends == {}


def test_bucket_missing(cli: Cli) -> None:
    result = cli("register-roles", env={"DEEPLENS_BUCKET": None})
    expect("bucket-missing", result.exit_code, result.stderr)
    assert cli.faults.sends == {}


def test_device_name_invalid(cli: Cli) -> None:
    result = cli("register-device", "--name", "my cam")
    expect("device-name-invalid", result.exit_code, result.stderr)
    assert cli.faults.sends == {}


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


# ---------------------------------------------------------------------------------------------- credentials, endpoint


NO_CREDENTIALS = {name: None for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                          "AWS_SECURITY_TOKEN")}


def test_no_credentials(cli: Cli) -> None:
    result = cli("register-roles", env=NO_CREDENTIALS)
    expect("no-credentials", result.exit_code, result.stderr)
    assert cli.mutations == []


def test_no_credentials_deploy(cli: Cli) -> None:
    cli.register_v1_device()
    before = len(cli.mutations)
    result = cli("deploy", "--device", DEVICE, env=NO_CREDENTIALS)
    expect("no-credentials-deploy", result.exit_code, result.stderr)
    assert len(cli.mutations) == before


def test_expired_token(cli: Cli) -> None:
    for service in ("s3", "iam", "sts", "iot", "lambda", "greengrass"):
        code = "ExpiredToken" if service in ("s3", "iam", "sts") else "ExpiredTokenException"
        cli.faults.fail(service, "*", code, "The security token included in the request is expired", status=400)
    result = cli("register-roles")
    expect("expired-token", result.exit_code, result.stderr)
    assert cli.mutations == []


def test_endpoint_unreachable(cli: Cli) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = cli("--endpoint-url", url, "register-roles", env={"DEEPLENS_AWS_MAX_ATTEMPTS": "2"})
    expect("endpoint-unreachable", result.exit_code, result.stderr)
    assert cli.mutations == []


def test_endpoint_unreachable_deploy(cli: Cli) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = cli("--endpoint-url", url, "deploy", "--device", DEVICE, env={"DEEPLENS_AWS_MAX_ATTEMPTS": "1"})
    expect("endpoint-unreachable-deploy", result.exit_code, result.stderr)
    assert cli.mutations == []


def test_throttled_beyond_retries(cli: Cli) -> None:
    cli.faults.fail("iam", "GetRole", "Throttling", "Rate exceeded")
    result = cli("register-roles")
    expect("throttled-beyond-retries", result.exit_code, result.stderr)
    assert cli.faults.sends[("iam", "GetRole")] == 5  # aws.max_attempts: the first call and four retries
    assert len(cli.faults.backoffs) == 4  # botocore backed off between them (recorded, not slept)
    assert cli.mutations == []


# ---------------------------------------------------------------------------------------------- the AWS environment


def aws_config_file(text: str) -> dict[str, str]:
    path = Path("aws-config")
    path.write_text(text)
    return {"AWS_CONFIG_FILE": str(path.resolve())}


def test_aws_config_malformed(cli: Cli) -> None:
    result = cli("register-roles", env=aws_config_file("[default\nregion = us-east-1\n"))
    expect("aws-config-malformed", result.exit_code, result.stderr)
    assert cli.faults.sends == {}


def test_doctor_aws_environment(cli: Cli) -> None:
    result = cli("--output", "json", "doctor", env=aws_config_file("[default\nregion = us-east-1\n"))
    expect("doctor-aws-environment", result.exit_code, result.stderr)
    checks = {check["name"]: check for check in json.loads(result.stdout)["checks"]}
    assert checks["aws environment"]["status"] == "fail" and "cannot be parsed" in checks["aws environment"]["detail"]
    assert cli.faults.sends == {}


def test_credential_process_missing(cli: Cli) -> None:
    env = {**aws_config_file("[profile helper]\ncredential_process = /nonexistent/aws-helper --json\n"),
           **NO_CREDENTIALS}
    result = cli("--profile", "helper", "register-roles", env=env)
    expect("credential-process-missing", result.exit_code, result.stderr)
    assert "/nonexistent/aws-helper" in result.stderr
    assert cli.faults.sends == {}


def test_access_key_without_secret(cli: Cli) -> None:
    result = cli("register-roles", env={"AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None,
                                        "AWS_SECURITY_TOKEN": None})
    expect("access-key-without-secret", result.exit_code, result.stderr)
    assert cli.faults.sends == {}


@pytest.mark.parametrize("variable, value", [
    ("AWS_ENDPOINT_URL", "ftp://127.0.0.1:5000"),
    ("AWS_ENDPOINT_URL", "127.0.0.1:5000"),
    ("AWS_ENDPOINT_URL", "http://127.0.0.1:99999"),
    ("AWS_ENDPOINT_URL_IAM", "http://127.0.0.1:99999"),
])
def test_endpoint_variable_invalid(cli: Cli, variable: str, value: str) -> None:
    result = cli("register-roles", env={variable: value})
    line = expect("endpoint-variable-invalid", result.exit_code, result.stderr)
    assert variable in line and value in line
    assert cli.faults.sends == {}
    flag = cli("--endpoint-url", value, "register-roles")  # the same value as a flag: the same exit code
    assert flag.exit_code == 2


@pytest.mark.parametrize("variable", ["AWS_DEFAULT_REGION", "AWS_REGION"])
def test_region_variable_invalid(cli: Cli, variable: str) -> None:
    result = cli("register-roles", env={"AWS_REGION": None, "AWS_DEFAULT_REGION": None, variable: "us east 1"})
    line = expect("region-variable-invalid", result.exit_code, result.stderr)
    assert line.startswith(f"error: {variable} is 'us east 1'")
    assert cli.faults.sends == {}


def test_aws_region_is_honoured_as_the_other_sdks_do(cli: Cli) -> None:
    """botocore reads only AWS_DEFAULT_REGION; AWS_REGION wins over it in the AWS CLI v2 and the other SDKs."""
    result = cli("--output", "json", "doctor", env={"AWS_DEFAULT_REGION": None, "AWS_REGION": "eu-west-2"})
    checks = {check["name"]: check for check in json.loads(result.stdout)["checks"]}
    assert checks["region"]["detail"].startswith("eu-west-2"), checks["region"]
    neither = cli("register-roles", env={"AWS_DEFAULT_REGION": None, "AWS_REGION": None})
    assert "AWS_DEFAULT_REGION" in neither.stderr  # the hint names the variable botocore reads too


@pytest.mark.parametrize("args", [
    ("register-device", "--name", "Cam1\n"),
    ("register-roles", "--bucket", f"{BUCKET}\n"),
    ("--region", "us-east-1\n", "register-roles"),
])
def test_name_trailing_newline(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli(*args)
    expect("name-trailing-newline", result.exit_code, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1  # the newline is shown escaped, not printed
    assert cli.faults.sends == {}


class _Answering:
    """A local HTTP server answering every request with one fixed status and body; counts the requests."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        import http.server

        owner = self
        self.hits = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                owner.hits += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _answer  # noqa: N815

            def log_message(self, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def web_server() -> Iterator[_Answering]:
    """http.server's own answer to a POST it does not support: an HTML page with status 501."""
    page = (b"<!DOCTYPE HTML>\n<html lang=\"en\"><head><title>Error response</title></head><body>"
            b"<h1>Error response</h1><p>Error code: 501</p></body></html>\n")
    server = _Answering(501, page, "text/html;charset=utf-8")
    yield server
    server.close()


def test_endpoint_plain_web_server(bare_cli: Cli, web_server: _Answering) -> None:
    result = bare_cli("--endpoint-url", web_server.url, "register-roles")
    expect("endpoint-plain-web-server", result.exit_code, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1  # one line, not the page
    assert web_server.hits == 1  # not retried: it will not change


@pytest.mark.parametrize("status", [500, 503])
def test_endpoint_text_5xx(bare_cli: Cli, status: int) -> None:
    server = _Answering(status, b"Internal Server Error\n", "text/plain")
    try:
        result = bare_cli("--endpoint-url", server.url, "register-roles", env={"DEEPLENS_AWS_MAX_ATTEMPTS": "3"})
    finally:
        server.close()
    expect("endpoint-text-5xx", result.exit_code, result.stderr)
    assert server.hits == 3  # retried as botocore retries any 5xx: aws.max_attempts in all


def test_config_vendor_nested(cli: Cli) -> None:
    Path("deeplens.yaml").write_text(f"bucket: {BUCKET}\nfunction:\n  vendor:\n    - boto3==1.33.13\n"
                                     f"    - [numpy, {{pinned: 1.21}}]\n")
    result = cli("publish", "--greengrass", "v1", env={"DEEPLENS_BUCKET": None})
    expect("config-vendor-nested", result.exit_code, result.stderr)
    assert cli.faults.sends == {}


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


# ---------------------------------------------------------------------------------------------- AccessDenied


ACCESS_DENIED_COMMANDS = {
    "register-roles": ((), ("register-roles",)),
    "register-device": ((("register-roles",),), ("register-device", "--name", DEVICE, "--greengrass", "v1",
                                                  "--out", "bundle")),
    "deploy": ((("register-roles",), ("register-device", "--name", DEVICE, "--greengrass", "v1", "--out", "bundle")),
               ("deploy", "--device", DEVICE, "--no-wait")),
}


@pytest.mark.parametrize("command", list(ACCESS_DENIED_COMMANDS))
def test_access_denied(command: str, bare_cli: Cli, fresh_account: Callable[[], Any], monkeypatch: pytest.MonkeyPatch,
                       tmp_path: Path) -> None:
    """The command's mutating steps are denied one after the other, in one account: each run is denied at the
    next step not yet done (its 2nd mutating call; its 1st is the step the previous run was denied), so the
    runs walk the whole plan until one has nothing left to deny. Each must stop at once with the line naming
    the action, and once the permission is there the account must end as one clean run leaves it. (A re-run
    plans only what is still missing, so it may need fewer steps than the clean run: a bucket created with
    ObjectOwnership needs no separate ownership call.)"""
    setup, args = ACCESS_DENIED_COMMANDS[command]
    cli = bare_cli

    def arrange(folder: str) -> None:
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        for step in setup:
            cli.ok(*step)

    with fresh_account():  # the clean reference, in an account and a folder of its own
        arrange("clean")
        first = len(cli.mutations)
        cli.ok(*args)
        clean_calls = [f"{service}:{operation}" for service, operation in cli.mutations[first:]]
        expected = account_snapshot()
    with fresh_account():
        arrange("denied")
        denied: list[str] = []
        completed = False
        for attempt in range(len(clean_calls) + 1):
            cli.faults.deny_mutation_at = 1 if attempt == 0 else 2
            result = cli(*args)
            cli.faults.deny_mutation_at = None
            if not cli.faults.injected:  # no step was left to deny: the run completed
                assert result.exit_code == 0, result.stderr
                completed = True
                break
            service, operation, _ = cli.faults.injected[-1]
            line = expect("access-denied", result.exit_code, result.stderr)
            assert operation in line, line  # the line names the denied action
            denied.append(f"{service}:{operation}")
        found = differences(account_snapshot(), expected)
    assert completed, f"after {len(denied)} denials the command still had steps to do: {denied}"
    assert len(denied) >= len(set(clean_calls)) and set(denied) <= set(clean_calls), (denied, clean_calls)
    assert not found, "after the denials the account differs from one clean run:\n" + "\n".join(found)


# ---------------------------------------------------------------------------------------------- the bucket


def test_bucket_foreign(cli: Cli) -> None:
    cli.faults.fail("s3", "HeadBucket", "403", "Forbidden", status=403)
    result = cli("register-roles")
    expect("bucket-foreign", result.exit_code, result.stderr)
    assert cli.mutations == []


def test_bucket_other_region(cli: Cli) -> None:
    import boto3

    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    result = cli("register-roles")
    expect("bucket-other-region", result.exit_code, result.stderr)
    assert cli.mutations == []


# ---------------------------------------------------------------------------------------------- devices


def test_roles_missing(cli: Cli) -> None:
    result = cli("register-device", "--name", DEVICE, "--greengrass", "v1", "--out", "bundle")
    expect("roles-missing", result.exit_code, result.stderr)
    assert cli.mutations == []
    assert not Path("bundle").exists()


def test_device_unknown(cli: Cli) -> None:
    cli.register_v1_device()
    before = len(cli.mutations)
    result = cli("deploy", "--device", "Nope")
    expect("device-unknown", result.exit_code, result.stderr)
    assert len(cli.mutations) == before


def test_device_ambiguous(cli: Cli) -> None:
    import boto3

    iot = boto3.client("iot", region_name="us-east-1")
    iot.create_thing(thingName="deeplens_old", attributePayload={"attributes": {
        "deeplens_name": DEVICE, "deeplens_target": "v1"}})
    iot.create_thing(thingName="deeplens-Cam1", attributePayload={"attributes": {
        "deeplens_name": DEVICE, "deeplens_target": "v2"}})
    result = cli("deploy", "--device", DEVICE)
    expect("device-ambiguous", result.exit_code, result.stderr)
    assert cli.mutations == []


def test_device_without_core(cli: Cli) -> None:
    import boto3

    cli.register_v1_device()
    gg = boto3.client("greengrass", region_name="us-east-1")
    (group,) = gg.list_groups()["Groups"]
    gg.create_group_version(GroupId=group["Id"])  # the latest version: no core
    before = len(cli.mutations)
    result = cli("deploy", "--device", DEVICE)
    expect("device-without-core", result.exit_code, result.stderr)
    assert len(cli.mutations) == before
    assert boto3.client("lambda", region_name="us-east-1").list_functions()["Functions"] == []


# ---------------------------------------------------------------------------------------------- deploy


def test_lambda_runtime_rejected(cli: Cli, core: SimulatedCore) -> None:
    import boto3

    cli.register_v1_device()
    cli.faults.fail("lambda", "CreateFunction", "InvalidParameterValueException",
                    "The runtime parameter of python3.7 is no longer supported for creating or updating AWS Lambda "
                    "functions. We recommend you use a supported runtime while creating or updating functions.",
                    when=lambda request: b'"Runtime": "python3.7"' in (request.body or b""))
    result = cli("deploy", "--device", DEVICE)
    expect("lambda-runtime-rejected", result.exit_code, result.stderr)
    lam = boto3.client("lambda", region_name="us-east-1")
    assert lam.list_functions()["Functions"] == []  # the first step failed: nothing half-made
    # the hint works: Lambda gets python3.12, the device still runs python3.7 through the override
    cli.ok("deploy", "--device", DEVICE, env={"DEEPLENS_FUNCTION_LAMBDA_RUNTIME": "python3.12"})
    (function,) = lam.list_functions()["Functions"]
    assert function["Runtime"] == "python3.12"


def test_deployment_failed(cli: Cli, core: SimulatedCore) -> None:
    cli.register_v1_device()
    core.will_report("InProgress", {
        "DeploymentStatus": "Failure", "ErrorMessage": "Greengrass core failed to download the function",
        "ErrorDetails": [{"DetailedErrorCode": "GG-402", "DetailedErrorMessage": "AccessDenied on the artifact"}]})
    result = cli("deploy", "--device", DEVICE)
    expect("deployment-failed", result.exit_code, result.stderr)
    assert account_snapshot()["greengrass"]["groups"]["deeplens-Cam1"]["deployments"] == 1
    # nothing half-done: once the cause is fixed, deploy simply deploys the same version again
    core.will_report("InProgress", "Success")
    again = cli.ok("deploy", "--device", DEVICE)
    assert "succeeded" in again.stdout
    groups = account_snapshot()["greengrass"]["groups"]["deeplens-Cam1"]
    assert groups["deployments"] == 2 and groups["versions"] == 2  # no new project version, one more deployment


def test_deployment_timeout(cli: Cli, core: SimulatedCore) -> None:
    cli.register_v1_device()
    core.will_report("InProgress")
    result = cli("deploy", "--device", DEVICE, "--timeout", "20", env={"DEEPLENS_DEPLOY_POLL_S": "5"})
    expect("deployment-timeout", result.exit_code, result.stderr)
    assert sum(cli.faults.backoffs) == 20  # polled for exactly --timeout (waits recorded, not slept)
    # the deployment stays queued for the device; a re-run does not queue a second one
    cli("deploy", "--device", DEVICE, "--timeout", "5", env={"DEEPLENS_DEPLOY_POLL_S": "5"})
    assert account_snapshot()["greengrass"]["groups"]["deeplens-Cam1"]["deployments"] == 1


def test_interrupted(cli: Cli, core: SimulatedCore) -> None:
    cli.register_v1_device()
    cli.faults.interrupt_at = "CreateGroupVersion"
    result = cli("deploy", "--device", DEVICE)
    expect("interrupted", result.exit_code, result.stderr)
    cli.faults.interrupt_at = None
    cli.ok("deploy", "--device", DEVICE)
    groups = account_snapshot()["greengrass"]["groups"]["deeplens-Cam1"]
    assert groups["deployments"] == 1 and groups["versions"] == 2


# ---------------------------------------------------------------------------------------------- the device


def edge_main(capsys: pytest.CaptureFixture[str], args: list[str], env: dict[str, str]) -> tuple[int, str]:
    from edge_function.__main__ import main

    capsys.readouterr()
    code = main(args, env=env)
    return code, capsys.readouterr().err


@pytest.fixture
def edge_env(aws_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**aws_env, "DEEPLENS_SPOOL_DIR": str(tmp_path / "spool")}


def frames_folder(tmp_path: Path) -> str:
    import cv2
    import numpy

    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "frame_0.jpg"), numpy.zeros((120, 160, 3), numpy.uint8))
    return str(folder)


def test_edge_threshold_out_of_range(capsys: pytest.CaptureFixture[str], edge_env: dict[str, str],
                                     tmp_path: Path) -> None:
    code, err = edge_main(capsys, ["run", "--source", frames_folder(tmp_path), "--detector", "opencv",
                                   "--bucket", BUCKET, "--threshold", "1.5"], edge_env)
    expect("edge-threshold-out-of-range", code, err)
    assert not Path(edge_env["DEEPLENS_SPOOL_DIR"]).exists()  # stopped before anything was set up


def test_edge_setting_not_a_number(capsys: pytest.CaptureFixture[str], edge_env: dict[str, str],
                                   tmp_path: Path) -> None:
    env = {**edge_env, "DEEPLENS_THRESHOLD": "high", "DEEPLENS_BUCKET": BUCKET}
    code, err = edge_main(capsys, ["run", "--source", frames_folder(tmp_path), "--detector", "opencv"], env)
    expect("edge-setting-not-a-number", code, err)
    assert not Path(edge_env["DEEPLENS_SPOOL_DIR"]).exists()


def test_edge_bucket_missing(capsys: pytest.CaptureFixture[str], edge_env: dict[str, str], tmp_path: Path) -> None:
    code, err = edge_main(capsys, ["run", "--source", frames_folder(tmp_path), "--detector", "opencv"], edge_env)
    expect("edge-bucket-missing", code, err)
    assert not Path(edge_env["DEEPLENS_SPOOL_DIR"]).exists()


def test_edge_unknown_source(capsys: pytest.CaptureFixture[str], edge_env: dict[str, str], tmp_path: Path) -> None:
    code, err = edge_main(capsys, ["run", "--source", str(tmp_path / "no-such.mp4"), "--detector", "opencv",
                                   "--bucket", BUCKET], edge_env)
    expect("edge-unknown-source", code, err)
    assert not Path(edge_env["DEEPLENS_SPOOL_DIR"]).exists()


def test_edge_unreadable_video(capsys: pytest.CaptureFixture[str], edge_env: dict[str, str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2048))  # an MP4 header, then noise
    code, err = edge_main(capsys, ["run", "--source", str(broken), "--detector", "opencv", "--bucket", BUCKET],
                          edge_env)
    expect("edge-unreadable-video", code, err)
    assert not Path(edge_env["DEEPLENS_SPOOL_DIR"]).exists()


def test_edge_awscam_off_device(capsys: pytest.CaptureFixture[str], edge_env: dict[str, str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "awscam", None)  # `import awscam` fails, as off a DeepLens
    code, err = edge_main(capsys, ["run", "--source", "awscam", "--detector", "opencv", "--bucket", BUCKET], edge_env)
    expect("edge-awscam-off-device", code, err)
    assert not Path(edge_env["DEEPLENS_SPOOL_DIR"]).exists()


class SilentCamera:
    """The DeepLens camera through `awscam.getLastFrame()`: no frame for `silent` calls, then frames."""

    def __init__(self, silent: int) -> None:
        import numpy

        self.silent = silent
        self.calls = 0
        self.frame = numpy.full((120, 160, 3), 90, numpy.uint8)

    def getLastFrame(self) -> tuple[bool, Any]:  # noqa: N802 - the device API's name
        self.calls += 1
        if self.calls <= self.silent:
            return False, None
        return True, self.frame


class NoFaces:
    name = "no-faces"

    def detect(self, frame: Any) -> list[Any]:
        return []


def test_edge_camera_no_frame(caplog: pytest.LogCaptureFixture, edge_env: dict[str, str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_function import loop, publish, settings, sources

    monkeypatch.setattr(loop, "READ_BACKOFF_INITIAL_S", 0.001)
    monkeypatch.setattr(loop, "READ_BACKOFF_MAX_S", 0.002)
    camera = SilentCamera(silent=loop.MAX_READ_FAILURES + 1)
    config = settings.load_settings({**edge_env, "DEEPLENS_BUCKET": BUCKET, "DEEPLENS_MAX_FRAMES": "3",
                                     "DEEPLENS_SOURCE": "awscam", "DEEPLENS_DETECTOR": "awscam"})
    opened = []

    def open_components() -> tuple[Any, Any]:
        opened.append(sources.AwscamSource(camera))
        return opened[-1], NoFaces()

    uploader = Stub()
    edge = loop.EdgeLoop(config, uploader, publish.StdoutPublisher(io.StringIO()), open_components=open_components)
    supervisor = loop.Supervisor(edge.run_once, threading.Event(), initial_backoff_s=0.01)
    with caplog.at_level(logging.ERROR, logger="edge_function.loop"):
        supervisor.run()
    expect_log("edge-camera-no-frame", caplog.records)
    assert supervisor.restarts == 1 and len(opened) == 2  # the source was reopened, not a second thread started
    assert edge.frames == 3  # and the loop carried on once frames came back
    assert threading.active_count() < 20


class Stub:
    """An uploader that takes crops and reports counters (the camera test needs no S3)."""

    def submit(self, item: Any) -> None:
        raise AssertionError("no face, no crop")

    def stats(self) -> dict[str, Any]:
        return {}

    def close(self, deadline_s: float = 0.0) -> bool:
        return True


def crop_item(index: int) -> Any:
    from edge_function.uploader import UploadItem

    return UploadItem(f"faces/1_1/1_1/1700000000_{index:04d}.jpg", b"\xff\xd8" + bytes(2000) + b"\xff\xd9",
                      {"device": "hardening"})


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_edge_s3_slowdown(caplog: pytest.LogCaptureFixture, tmp_path: Path, aws_env: dict[str, str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 throttles the device: botocore retries (its backoff recorded, not slept), the crop is parked in the
    spool and the worker probes until S3 accepts again. Capture never waits; every crop arrives once."""
    import types

    import boto3
    import botocore.endpoint
    from moto import mock_aws

    from edge_function.uploader import SpoolingUploader, make_s3_client

    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=lambda seconds: None))
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        client = make_s3_client()
        faults = Faults().fail("s3", "PutObject", "SlowDown", "Please reduce your request rate.", status=503,
                               times=9)  # three crops' worth of botocore attempts (3 each)
        faults.install(client.meta.events)
        uploader = SpoolingUploader(BUCKET, str(tmp_path / "spool"), client=client, retry_initial_s=0.01,
                                    retry_max_s=0.05)
        with caplog.at_level(logging.WARNING, logger="edge_function.uploader"):
            for index in range(10):
                uploader.submit(crop_item(index))  # never blocks, whatever S3 answers
            wait_until(lambda: uploader.stats()["uploaded"] == 10)
            assert uploader.close(5.0)
        stats = uploader.stats()
        keys = [o["Key"] for o in boto3.client("s3", region_name="us-east-1").list_objects_v2(
            Bucket=BUCKET)["Contents"]]
    expect_log("edge-s3-slowdown", caplog.records)
    assert faults.sends[("s3", "PutObject")] > 10 and stats["spooled"] >= 1  # throttled, parked, retried
    assert sorted(keys) == sorted(crop_item(i).key for i in range(10))  # every crop exactly once
    assert stats["dropped"] == 0 and os.listdir(tmp_path / "spool") == [".deeplens-spool"]  # only the marker


def test_edge_spool_in_source(capsys: pytest.CaptureFixture[str], edge_env: dict[str, str], tmp_path: Path) -> None:
    """The spool used to clean up the folder it was given: with --spool-dir = --source it deleted the user's files."""
    source = frames_folder(tmp_path)
    before = sorted(os.listdir(source))
    code, err = edge_main(capsys, ["run", "--source", source, "--detector", "opencv", "--bucket", BUCKET,
                                   "--spool-dir", source], edge_env)
    expect("edge-spool-in-source", code, err)
    assert sorted(os.listdir(source)) == before


def test_edge_s3_refused_crop(caplog: pytest.LogCaptureFixture, tmp_path: Path, aws_env: dict[str, str]) -> None:
    """A crop spooled before a prefix change is refused (403) for good: quarantined and logged once, and the
    crops behind it are uploaded (the seed retried it forever and uploaded nothing else)."""
    import boto3
    from moto import mock_aws

    from edge_function.spool import Spool
    from edge_function.uploader import SpoolingUploader, UploadItem, make_s3_client

    old = crop_item(0)
    Spool(str(tmp_path / "spool"), 10 ** 6).add(UploadItem("old-" + old.key, old.body, old.metadata))
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        client = make_s3_client()
        Faults().fail("s3", "PutObject", "AccessDenied", "Access Denied", status=403, times=1).install(
            client.meta.events)
        uploader = SpoolingUploader(BUCKET, str(tmp_path / "spool"), client=client, retry_initial_s=0.01)
        with caplog.at_level(logging.ERROR, logger="edge_function.uploader"):
            for index in range(1, 4):
                uploader.submit(crop_item(index))
            wait_until(lambda: uploader.stats()["uploaded"] == 3)
            assert uploader.close(5.0)
    expect_log("edge-s3-refused-crop", caplog.records)
    assert uploader.stats()["quarantined"] == 1
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1


def test_edge_spool_disk_full(caplog: pytest.LogCaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 is down, so crops go to the spool, and the disk is full: the spool's sidecar write hits the real
    ENOSPC of /dev/full. The crop is dropped and counted, no half-written entry stays, capture goes on."""
    import builtins

    from edge_function import spool as spool_module
    from edge_function import uploader as uploader_module

    real_open = builtins.open

    def full_disk_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "w" in mode and str(path).endswith(".json.tmp"):
            return real_open("/dev/full", mode, *args, **kwargs)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(spool_module, "open", full_disk_open, raising=False)

    class DeadS3:
        def put_object(self, **_: Any) -> None:
            raise ConnectionError("S3 unreachable")

    spool = tmp_path / "spool"
    up = uploader_module.SpoolingUploader(BUCKET, str(spool), client=DeadS3(), queue_size=1, retry_initial_s=60)
    with caplog.at_level(logging.ERROR, logger="edge_function.spool"):
        for index in range(5):
            up.submit(crop_item(index))  # returns at once even though nothing can be stored
        wait_until(lambda: up.stats()["dropped"] >= 4)
    line = expect_log("edge-spool-disk-full", caplog.records)
    assert errno.errorcode[errno.ENOSPC] == "ENOSPC" and "[Errno 28]" in line
    up.close(0.5)
    stats = up.stats()
    assert stats["dropped"] == 5 and stats["uploaded"] == 0  # every crop accounted for
    assert sorted(os.listdir(spool)) == [".deeplens-spool"]  # the spool's marker; no half entry, no temporary file


# ---------------------------------------------------------------------------------------------- the table itself


def guide_rows() -> dict[str, tuple[str, str]]:
    """{row id: (exit code cell, example line)} from the table in docs/troubleshooting.md."""
    rows = {}
    for line in GUIDE.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) >= 5 and cells[0].startswith("`") and not cells[0].startswith("``"):
            rows[cells[0].strip("`")] = (cells[2], cells[3].strip("`").strip().replace("\\|", "|"))
    return rows


def test_the_table_has_enough_rows_and_a_test_for_each() -> None:
    assert len(TABLE) >= 25
    tests = {name for name in globals() if name.startswith("test_")}
    missing = [row_id for row_id in TABLE if "test_" + row_id.replace("-", "_") not in tests]
    assert not missing, f"rows without a test: {missing}"


def test_the_troubleshooting_guide_matches_the_table() -> None:
    rows = guide_rows()
    assert sorted(rows) == sorted(TABLE), "docs/troubleshooting.md and the table list different situations"
    for row_id, row in TABLE.items():
        exit_cell, example = rows[row_id]
        expected_exit = "-" if row.exit_code is None else str(row.exit_code)
        assert exit_cell == expected_exit, f"{row_id}: the guide says exit {exit_cell}, the table {expected_exit}"
        assert re.fullmatch(row.line, example), f"{row_id}: the guide's example does not match:\n  {example}"


def test_the_readme_has_a_troubleshooting_section_pointing_to_the_guide() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert re.search(r"^## Troubleshooting", readme, re.MULTILINE), "README.md has no '## Troubleshooting' section"
    assert "docs/troubleshooting.md" in readme


def test_json_output_stays_one_document_on_errors(cli: Cli) -> None:
    """With --output json an error still leaves stdout empty or one JSON document: scripts never parse a
    half-printed plan."""
    result = cli("--output", "json", "register-roles", env={"DEEPLENS_BUCKET": None})
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "config" and "bucket" in error["message"] and error["hint"]
