"""Bad input from the AWS side (rows of bad_input_table.TABLE): credentials, endpoints, the AWS environment,
AccessDenied on every mutating step, and a bucket that is not ours."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.hardening.bad_input_table import BUCKET, DEVICE, Cli, closed_port, expect
from tests.support.account_snapshot import account_snapshot, differences

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
    cli.refused_up_front("aws-config-malformed", "register-roles",
                         env=aws_config_file("[default\nregion = us-east-1\n"))


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
    cli.refused_up_front("access-key-without-secret", "register-roles",
                         env={"AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None, "AWS_SECURITY_TOKEN": None})


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
