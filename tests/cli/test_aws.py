"""The AWS session factory and the translation of AWS failures into one-line errors with a hint."""

from __future__ import annotations

import socket

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from deeplens_cli.aws import CallRecorder, error_code, is_mutating, make_context, translate_error
from deeplens_cli.errors import DeeplensError

DENIED = ("User: arn:aws:iam::123456789012:user/ci is not authorized to perform: iam:CreateRole on resource: "
          "arn:aws:iam::123456789012:role/AWSDeepLensServiceRole because no identity-based policy allows the "
          "iam:CreateRole action")


def client_error(code: str, message: str = "", operation: str = "CreateRole", status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


def one_line_error(result) -> str:
    assert result.exit_code == 1, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    return line


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------------------------- translation


def test_access_denied_names_the_action_and_the_resource():
    error = translate_error(client_error("AccessDenied", DENIED), doing="iam:create_role")

    assert error.message == ("access denied: iam:CreateRole on arn:aws:iam::123456789012:role/AWSDeepLensServiceRole "
                             "while iam:create_role")
    assert error.hint == "grant iam:CreateRole to the calling identity, or use a profile that has it"


def test_access_denied_without_details_falls_back_to_the_operation():
    error = translate_error(client_error("AccessDeniedException", "Forbidden", operation="ListGroups"))

    assert error.message == "access denied: ListGroups"
    assert "grant ListGroups" in error.hint


@pytest.mark.parametrize("code", ["ExpiredToken", "ExpiredTokenException", "RequestExpired"])
def test_expired_credentials(code):
    error = translate_error(client_error(code, "The security token included in the request is expired"))

    assert error.message == f"AWS credentials expired ({code})"
    assert "refresh them" in error.hint


def test_rejected_credentials():
    error = translate_error(
        client_error("InvalidClientTokenId", "The security token included in the request is invalid.")
    )

    assert error.message.startswith("AWS rejected the credentials (InvalidClientTokenId:")


@pytest.mark.parametrize("code", ["Throttling", "ThrottlingException", "TooManyRequestsException", "SlowDown"])
def test_throttling_after_botocore_retries(code):
    error = translate_error(client_error(code, "Rate exceeded", operation="AttachRolePolicy"))

    assert error.message == f"AWS kept throttling AttachRolePolicy after retries ({code})"
    assert "aws.retry_mode: adaptive" in error.hint


@pytest.mark.parametrize(
    "code", ["AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException"]
)
def test_region_mismatch(code):
    error = translate_error(client_error(code, "the region 'us-east-1' is wrong; expecting 'eu-west-1'"))

    assert error.message.startswith("region mismatch: ")
    assert "set --region" in error.hint


def test_no_credentials():
    error = translate_error(NoCredentialsError(), doing="reading roles")

    assert error.message == "no AWS credentials found while reading roles"
    assert "aws configure" in error.hint


def test_unreachable_endpoint():
    error = translate_error(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"))

    assert error.message == "cannot reach the AWS endpoint http://127.0.0.1:9"


def test_unknown_errors_are_not_swallowed():
    assert translate_error(ValueError("a bug")) is None
    generic = translate_error(client_error("Weird", "something odd", operation="GetRole"))
    assert generic.message == "GetRole failed: Weird: something odd"


def test_error_code_reads_client_errors_only():
    assert error_code(client_error("NoSuchEntity")) == "NoSuchEntity"
    assert error_code(ValueError("x")) is None


# ---------------------------------------------------------------------------------------------- through the CLI


def test_no_credentials_end_to_end(aws_env, run_cli, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name)

    line = one_line_error(run_cli("--endpoint-url", f"http://127.0.0.1:{closed_port()}", "register-roles",
                                  "--bucket", "deeplens-crops"))

    assert line.startswith("error: no AWS credentials found")
    assert "(hint: run `aws configure`, pass --profile" in line


def test_unreachable_endpoint_end_to_end(aws_env, run_cli):
    endpoint = f"http://127.0.0.1:{closed_port()}"

    line = one_line_error(run_cli("--endpoint-url", endpoint, "register-roles", "--bucket", "deeplens-crops",
                                  env={"DEEPLENS_AWS_MAX_ATTEMPTS": "1"}))

    assert line.startswith(f"error: cannot reach the AWS endpoint {endpoint}")
    assert "--endpoint-url" in line


def test_unknown_profile_end_to_end(aws_env, run_cli):
    line = one_line_error(run_cli("--profile", "nobody", "register-roles", "--bucket", "deeplens-crops"))

    assert line == ("error: AWS profile 'nobody' not found "
                    "(hint: check --profile / AWS_PROFILE against ~/.aws/config)")


def test_access_denied_end_to_end(aws_plain, run_cli, monkeypatch):
    """A planner's read that AWS refuses reaches the user as one line naming the action and the resource."""
    from botocore.stub import Stubber

    import deeplens_cli.aws as aws_module

    real_client = aws_module.AwsContext.client
    denial = DENIED.replace("iam:CreateRole", "iam:GetRole")

    def client(self, service):
        made = real_client(self, service)
        if service == "iam" and not hasattr(made, "_denied"):
            stub = Stubber(made)
            stub.add_client_error("get_role", service_error_code="AccessDenied", service_message=denial,
                                  http_status_code=403)
            stub.activate()
            made._denied = stub
        return made

    monkeypatch.setattr(aws_module.AwsContext, "client", client)

    line = one_line_error(run_cli("register-roles", "--bucket", "deeplens-crops"))

    assert line == ("error: access denied: iam:GetRole on arn:aws:iam::123456789012:role/AWSDeepLensServiceRole "
                    "while reading role AWSDeepLensServiceRole (hint: grant iam:GetRole to the calling identity, "
                    "or use a profile that has it)")


# ---------------------------------------------------------------------------------------------- the context


def test_context_applies_region_endpoint_and_retry_mode(aws_env, settings_for):
    ctx = make_context(settings_for(region="eu-west-1", endpoint_url="http://127.0.0.1:5999",
                                    aws__retry_mode="adaptive", aws__max_attempts=7))

    client = ctx.client("iam")

    assert ctx.region == "eu-west-1"
    assert client.meta.endpoint_url == "http://127.0.0.1:5999"
    assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 7}  # 7 calls in all, not 1 + 7
    assert ctx.client("iam") is client  # cached


def test_standard_aws_endpoint_variable_is_honoured(moto_server, monkeypatch, settings_for):
    """AWS_ENDPOINT_URL is botocore's own setting: the emulator is reached without --endpoint-url."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    ctx = make_context(settings_for())

    ctx.client("s3").create_bucket(Bucket="deeplens-through-env")

    import boto3
    listed = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1").list_buckets()["Buckets"]
    assert [b["Name"] for b in listed] == ["deeplens-through-env"]


def test_missing_region_is_an_error_with_a_hint(aws_env, monkeypatch, settings_for):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION")

    ctx = make_context(settings_for(region=None))

    with pytest.raises(DeeplensError, match="no AWS region configured"):
        ctx.client("iam")


def test_recorder_counts_every_call_and_tells_reads_from_writes(aws_plain):
    ctx = aws_plain.context()
    s3 = ctx.client("s3")

    s3.list_buckets()
    s3.create_bucket(Bucket="deeplens-recorded")
    s3.head_bucket(Bucket="deeplens-recorded")

    assert ctx.recorder.calls == [("s3", "ListBuckets"), ("s3", "CreateBucket"), ("s3", "HeadBucket")]
    assert ctx.recorder.mutating == [("s3", "CreateBucket")]


@pytest.mark.parametrize(("operation", "mutating"), [
    ("GetRole", False), ("ListRoles", False), ("DescribeRoleAlias", False), ("HeadBucket", False),
    ("SearchThings", False), ("CreateRole", True), ("PutRolePolicy", True), ("DeleteRole", True),
    ("AttachRolePolicy", True), ("UpdateRoleAlias", True)])
def test_operation_classification(operation, mutating):
    assert is_mutating(operation) is mutating
    recorder = CallRecorder()
    assert recorder.mutating == []


# --- waits on simulated time (issue 22) ----------------------------------------------------------------------


def test_with_an_injected_sleep_a_wait_runs_on_simulated_time_however_slow_each_read_is(aws_env):
    """A test's deploy wait must not time out because the machine is slow: with an injected sleep the context's
    clock stands still, so a wait's elapsed time is what it slept and it makes timeout/interval reads."""
    import time

    import boto3

    from deeplens_cli.aws import AwsContext
    from deeplens_cli.targets.waiting import WaitClock, poll_until

    slept: list[float] = []
    ctx = AwsContext(boto3.Session(region_name="us-east-1"), None, sleep=slept.append)
    reads: list[float] = []

    def slow_read() -> None:
        reads.append(time.monotonic())
        time.sleep(0.02)  # each read costs real time (on a loaded machine, far more than the interval)

    assert poll_until(slow_read, WaitClock(ctx.sleep, ctx.clock), timeout_s=0.5, interval_s=0.01) is None
    assert len(reads) == 51 and sum(slept) == pytest.approx(0.5)  # 50 intervals of 0.01 s, 51 reads


def test_with_the_real_sleep_a_wait_runs_on_the_wall_clock(aws_env):
    import time

    import boto3

    from deeplens_cli.aws import AwsContext

    ctx = AwsContext(boto3.Session(region_name="us-east-1"), None)
    assert ctx.sleep is time.sleep and ctx.clock is time.monotonic
