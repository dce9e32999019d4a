"""The bad-input table: every way a user or the world can get it wrong, and what deeplens-cli says about it.

Each row of `TABLE` is one situation with the exit code and the ONE line the user must see (a regular
expression the last line of stderr must match in full: the cause and, after "(hint: ...)", what to do). Each
row has a test, `test_<row id with _ for ->`, in the test_bad_inputs_<area>.py file of its area, that provokes
the situation for real - a bad file, flag or environment, an AWS answer injected below botocore's parser
(tests/support/aws_faults.py), a dead endpoint, a broken video, a full disk - and checks, besides the line and
the exit code, that nothing was left half-done: no AWS change at all when the input can be checked up front,
the account consistent (a re-run converges) when a step failed midway, no half-written spool file on the
device.

Rows whose exit code is None are conditions the device meets at run time; the loop does not exit, it logs the
line and carries on (spools, drops, retries). docs/troubleshooting.md is checked against this table
(test_bad_inputs_table.py): every row is there with the same exit code and an example line that matches the
row's pattern.

The areas: test_bad_inputs_usage.py (configuration and usage: exit 2, nothing sent to AWS),
test_bad_inputs_aws.py (credentials, endpoint, the AWS environment, AccessDenied, the bucket),
test_bad_inputs_devices.py (devices and deploy), test_bad_inputs_edge.py (the device's loop),
test_bad_inputs_files.py (the local file system: read-only, full, names too long; real tmpfs mounts).
"""

from __future__ import annotations

import logging
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tests.support.aws_faults import Faults

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
                              r"error: config file deeplens\.yaml: unknown key 'bucket_name' \(hint: did you mean "
                              r"'bucket'\?\)"),
    "config-wrong-type": Row("a setting has the wrong type", 2,
                             r"error: setting 'function\.memory_mb' \(from deeplens\.yaml\) is 'lots', expected an "
                             r"integer"
                             r" \(hint: fix function\.memory_mb; default is 1024\)"),
    "device-profile-invalid": Row("greengrass.device_profile (DEEPLENS_GREENGRASS_DEVICE_PROFILE) is not a profile", 2,
                                  r"error: setting 'greengrass\.device_profile' \(from "
                                  r"DEEPLENS_GREENGRASS_DEVICE_PROFILE\) is 'deeplense', expected one of auto, "
                                  r"generic, deeplens \(hint: fix greengrass\.device_profile; default is 'auto'\)"),
    "config-file-missing": Row("--config names a file that does not exist", 2,
                               r"error: config file nowhere\.yaml (does not exist|not found|cannot be read).*" + HINT),
    "bucket-name-invalid": Row("the bucket name breaks the S3 naming rules", 2,
                               r"error: (setting 'bucket'|--bucket) .*'My_Crops', expected lowercase letters, digits, "
                               r"dots"
                               r" and hyphens.*" + HINT),
    "bucket-missing": Row("no bucket configured", 2,
                          r"error: missing required setting 'bucket' \(hint: set bucket in .+, or DEEPLENS_BUCKET, or "
                          r"--bucket.*\)"),
    "device-name-invalid": Row("register-device --name with characters a device name cannot have", 2,
                               r"error: --name 'my cam' is not a valid device name \(hint: use 1-100 letters, digits "
                               r"and"
                               r" hyphens, starting with a letter or digit\)"),
    "bundle-exists": Row("register-device --out points at a folder that already holds files", 2,
                         r"error: --out \S+ already exists and is not empty \(hint: a bundle holds a private key issued"
                         r" only once: choose another --out or move the old one\)"),
    "bundle-unwritable": Row("register-device --out cannot be written", 2,
                             r"error: --out \S+ is not writable .+ \(hint: choose a folder you can write to\)"),
    "bundle-foreign": Row("register-device resumes into a folder that is not this device's bundle (a project, another"
                          " device's bundle)", 2,
                          r"error: --out \S+ already holds (files that are not this device's bundle \(.+\)|files of .+)"
                          r" \(hint: a bundle holds a private key issued only once: choose another --out or move the "
                          r"old"
                          r" one\)"),
    "bundle-uncreatable": Row("register-device --out cannot be created although its parent looks writable", 2,
                              r"error: --out \S+ cannot be created \(.+\) \(hint: choose a folder you can write to\)"),
    "claim-allow-invalid": Row("register-device --claim --allow with a name a device cannot have", 2,
                               r"error: --allow 'my cam' is not a valid device name \(hint: use 1-100 letters, "
                               r"digits and hyphens, starting with a letter or digit\)"),
    "claim-option-without-claim": Row("register-device --allow, --allow-file or --rotate without --fleet G --claim",
                                      2, r"error: --allow needs --fleet G --claim \(hint: the allow-list and the "
                                         r"claim certificate belong to a fleet's claim: add --fleet G --claim\)"),
    "claim-allow-list-exposed": Row("the claim allow-list would sit under the crops prefix (prefix: \"\"), where "
                                    "devices may write", 2,
                                    r"error: the claim allow-list s3://\S+ would be under the crops prefix '', where "
                                    r"devices may write \(hint: set prefix to a folder of its own \(e\.g\. faces/\) "
                                    r"or greengrass\.artifact_bucket to another bucket\)"),
    "claim-allow-list-unreadable": Row("the fleet's claim allow-list object in S3 is not the document the tool writes",
                                       1, r"error: the claim allow-list s3://\S+ cannot be read \(.+\) \(hint: "
                                          r"delete that object and run `register-device --fleet G --claim --allow "
                                          r"NAMES` again \(until then the hook refuses every camera\)\)"),
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
    "json-usage-error": Row("click's own usage error (a value out of range, a file for a folder, an unknown option, "
                            "a missing option, a bad choice) with --output json anywhere on the line", 2,
                            r"error: (Invalid value for '--[\w-]+': .+|No such option '--[\w-]+'.*|Missing option"
                            r" '--[\w-]+'\.) \(hint: see deeplens-cli [\w-]+ --help\)"),
    "since-before-epoch": Row("faces/logs --since before 1970 (a date, or a duration such as 100000000d)", 2,
                              r"error: --since '\S+' (is|reaches back) before 1970-01-01 \(the Unix epoch\)"
                              r" \(hint: no crop or log event is older than 1970: give a later time, or a duration"
                              r" such as 2d\)"),
    "query-too-deep": Row("--query nested deeper than a person writes ('((((...))))', '!!!!...a')", 2,
                          r"error: --query ['\"].+['\"] nests more than 64 levels deep \(hint: write a flatter"
                          r" expression \(a pipe \| per stage, not nested parentheses\)\)"),
    "query-too-large": Row("--query that multiplies the document ('[@,@][]' forty times: 2**40 values)", 2,
                           r"error: --query ['\"].+['\"] builds more than [\d,]+ values on this document"
                           r" \(hint: select less: a query can multiply what it reads\)"),
    # -- the local file system: read-only, full, names too long (2 when the path came from a flag) ---------------
    "download-read-only": Row("faces --download into a read-only folder", 2,
                              r"error: --download \S+: read-only file system"
                              r" \(hint: choose another --download on a writable file system\)"),
    "download-name-too-long": Row("faces --download with a folder name longer than the file system allows", 2,
                                  r"error: --download \S+: file name too long \(hint: choose another --download with"
                                  r" a shorter path \(at most 255 bytes a name\)\)"),
    "download-disk-full": Row("faces --download onto a full disk", 1,
                              r"error: \S+\.jpg: no space left on the device \(hint: free some space on that disk"
                              r" \(or choose another folder\), then run the same command again\)"),
    "init-read-only": Row("init in a read-only folder (the default ./deeplens.yaml)", 1,
                          r"error: deeplens\.yaml: read-only file system \(hint: run it in a folder you can write"
                          r" to, or pass --config PATH\)"),
    "init-config-read-only": Row("init --config PATH on a read-only file system", 2,
                                 r"error: --config \S+: read-only file system"
                                 r" \(hint: choose another --config on a writable file system\)"),
    "bundle-disk-full": Row("register-device --out onto a disk that fills up while the bundle is written", 1,
                            r"error: iot-certificate/\S+: \S+: no space left on the device(; \d+ earlier change\(s\)"
                            r" were applied, re-running converges)? \(hint: free some space on that disk \(or choose"
                            r" another folder\), then run the same command again\)"),
    "demo-out-read-only": Row("demo --out on a read-only file system", 2,
                              r"error: --out \S+: read-only file system"
                              r" \(hint: choose another --out on a writable file system\)"),
    # -- credentials, endpoint, throttling (exit 1, nothing changed) ---------------------------------------------
    "no-credentials": Row("no AWS credentials anywhere (register-roles)", 1,
                          r"error: no AWS credentials found.* \(hint: run `aws configure`, pass --profile, or set"
                          r" AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY\)"),
    "no-credentials-deploy": Row("no AWS credentials anywhere (deploy, which first looks the device up)", 1,
                                 r"error: no AWS credentials found.* \(hint: run `aws configure`, pass --profile, or "
                                 r"set"
                                 r" AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY\)"),
    "expired-token": Row("the session token has expired", 1,
                         r"error: AWS credentials expired.* \(ExpiredToken\w*\) \(hint: refresh them .+\)"),
    "endpoint-unreachable": Row("the endpoint cannot be reached (no network, wrong --endpoint-url)", 1,
                                r"error: cannot reach the AWS endpoint http://127\.0\.0\.1:\d+\S*( while .+)?"
                                r" \(hint: check the network, --endpoint-url / AWS_ENDPOINT_URL and the region\)"),
    "endpoint-unreachable-deploy": Row("the endpoint cannot be reached (deploy)", 1,
                                       r"error: cannot reach the AWS endpoint http://127\.0\.0\.1:\d+\S*.*"
                                       r" \(hint: check the network, --endpoint-url / AWS_ENDPOINT_URL and the "
                                       r"region\)"),
    "throttled-beyond-retries": Row("AWS keeps throttling after every retry botocore makes", 1,
                                    r"error: AWS kept throttling GetRole while reading role \S+ after retries "
                                    r"\(Throttling\)"
                                    r" \(hint: wait and re-run; raise aws\.max_attempts or use aws\.retry_mode: "
                                    r"adaptive\)"),
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
                                     r"error: http://127\.0\.0\.1:\d+ is not an AWS endpoint: it answered \w+ with a "
                                     r"web"
                                     r" page \(HTTP \d+\) \(hint: check --endpoint-url / "
                                     r"AWS_ENDPOINT_URL\[_<SERVICE>\]:"
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
                          r"error: bucket deeplens-hardening-crops exists but this account cannot use it \(HTTP 403: "
                          r".+\)"
                          r" \(hint: bucket names are global: choose another bucket name, or use the owning account's"
                          r" profile\)"),
    "bucket-other-region": Row("the bucket exists in another region", 1,
                               r"error: bucket deeplens-hardening-crops is in (region )?eu-west-1, not "
                               r"us-east-1" + HINT),
    # -- devices ---------------------------------------------------------------------------------------------
    "roles-missing": Row("register-device before register-roles", 1,
                         r"error: IAM role AWSDeepLensGreengrassGroupRole does not exist"
                         r" \(hint: run `deeplens-cli register-roles` first\)"),
    "device-unknown": Row("deploy --device with a name no device has", 1,
                          r"error: no device named 'Nope' \(registered devices: Cam1\) \(hint: check the name, or"
                          r" register it with `deeplens-cli register-device --name NAME`\)"),
    "device-ambiguous": Row("two registrations answer to the same device name", 1,
                            r"error: device name 'Cam1' is ambiguous: \S+ \(v1\), \S+ \(v2\) \(hint: pass the thing "
                            r"name"
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
                             r"error: deployment \S+ failed: .+ \[GG-402: .+\] \(hint: fix the cause shown, then run "
                             r"deploy"
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
                               r"error: missing bucket: set --bucket or DEEPLENS_BUCKET to the S3 bucket for face "
                               r"crops"),
    "edge-unknown-source": Row("--source names nothing that exists", 2,
                               r"error: source \S+ does not exist; expected awscam, webcam:N, a video file, an image "
                               r"file"
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
                            r"upload of faces/\S+ failed, spooling until S3 is reachable: An error occurred "
                            r"\(SlowDown\)"
                            r" when calling the PutObject operation \(reached max retries: \d+\): .+"),
    "edge-spool-in-source": Row("--spool-dir is the --source folder or inside it", 2,
                                r"error: invalid DEEPLENS_SPOOL_DIR/--spool-dir '\S+': it is (inside )?the --source "
                                r"folder"
                                r" '\S+'; expected a dedicated folder outside it"),
    "edge-s3-refused-crop": Row("S3 refuses one crop for good (403 after a prefix change)", None,
                                r"spooled crop \S+ refused, quarantined in \S+/quarantine: An error occurred"
                                r" \(AccessDenied\) when calling the PutObject operation: .+"),
    "edge-spool-disk-full": Row("the disk under the spool is full", None,
                                r"spool write failed, crop faces/\S+ dropped \(.+\): \[Errno 28\] No space left on "
                                r"device; "
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

    def refused_up_front(self, row_id: str, *args: str, env: dict[str, str | None] | None = None) -> Any:
        """Runs the CLI and checks that it refused with the row's line and exit code before sending one AWS
        request (input that can be checked up front); the result, for what a test checks besides."""
        result = self(*args, env=env)
        expect(row_id, result.exit_code, result.stderr)
        assert self.faults.sends == {}, "not one AWS request"
        return result

    @property
    def mutations(self) -> list[tuple[str, str]]:
        return self.faults.mutating_attempts

    def register_v1_device(self, name: str = DEVICE) -> None:
        self.ok("register-roles")
        self.ok("register-device", "--name", name, "--greengrass", "v1", "--out", str(self.tmp_path / f"bundle-{name}"))
