"""`doctor`: preflight of credentials, region, which Greengrass targets answer, the Lambda runtime (from dated facts,
never by creating a function) and the bucket. Warnings never fail; any failed check exits 5."""

from __future__ import annotations

import json
from datetime import date

import pytest
from botocore.stub import Stubber

from deeplens_cli.views.preflight import FAIL, OK, SKIP, WARN, check_bucket, check_lambda_runtime

try:
    from tests.cli.fake_greengrassv2 import v2_account  # noqa: F401 - a fixture
except ImportError:
    from fake_greengrassv2 import v2_account  # noqa: F401

ENV = {"DEEPLENS_BUCKET": "deeplens-test-face-crops", "COLUMNS": "200"}


def doctor(run_cli, **env):
    result = run_cli("--output", "json", "doctor", env={**ENV, **env})
    return result, {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def test_a_ready_account_passes_with_a_warning_about_the_v1_runtime(v2_account, run_cli):
    result, checks = doctor(run_cli)

    assert result.exit_code == 0, result.stderr
    assert {name: c["status"] for name, c in checks.items()} == {
        "region": OK, "credentials": OK, "iot": OK, "greengrass v2": OK, "greengrass v1": OK,
        "lambda runtime": WARN, "bucket": OK}
    assert checks["credentials"]["detail"].startswith("account 123456789012 as arn:aws:")
    assert checks["greengrass v2"]["detail"] == "reachable (default target)"
    assert "no longer creates python3.7 functions (blocked since 2024-01-09)" in checks["lambda runtime"]["detail"]
    assert "function.lambda_runtime" in checks["lambda runtime"]["hint"]


def test_a_retired_greengrass_v1_is_explained_with_the_way_forward(v2_account, run_cli):
    result, checks = doctor(run_cli, AWS_ENDPOINT_URL_GREENGRASS=v2_account.gg_url)  # answers V1 paths with 404

    assert result.exit_code == 0, result.stderr
    v1 = checks["greengrass v1"]
    assert v1["status"] == WARN
    assert "end of support on 2026-10-07" in v1["detail"]
    assert "Greengrass V2" in v1["hint"] and "--greengrass v2" in v1["hint"]


def test_an_unreachable_v1_endpoint_also_counts_as_retired(v2_account, run_cli):
    result, checks = doctor(run_cli, AWS_ENDPOINT_URL_GREENGRASS="http://127.0.0.1:9", DEEPLENS_AWS_MAX_ATTEMPTS="1")

    assert result.exit_code == 0
    assert checks["greengrass v1"]["status"] == WARN and "retired" in checks["greengrass v1"]["detail"]


def test_with_v1_as_the_default_target_a_retired_v1_and_python37_fail_with_exit_5(v2_account, run_cli):
    result, checks = doctor(run_cli, AWS_ENDPOINT_URL_GREENGRASS=v2_account.gg_url,
                            DEEPLENS_GREENGRASS_DEFAULT_TARGET="v1")

    assert result.exit_code == 5
    assert (checks["greengrass v1"]["status"], checks["lambda runtime"]["status"]) == (FAIL, FAIL)
    assert checks["greengrass v2"]["status"] == OK
    assert "2 preflight check(s) failed: greengrass v1, lambda runtime" in result.stderr


def test_the_lambda_runtime_escape_hatch_passes(v2_account, run_cli):
    result, checks = doctor(
        run_cli, DEEPLENS_GREENGRASS_DEFAULT_TARGET="v1", DEEPLENS_FUNCTION_LAMBDA_RUNTIME="python3.12"
    )

    assert result.exit_code == 0, result.stderr
    assert checks["lambda runtime"]["status"] in (OK, WARN)
    assert "the device runs python3.7 through FunctionRuntimeOverride" in checks["lambda runtime"]["detail"]


def test_an_endpoint_without_greengrass_v2_fails_when_v2_is_the_default(v2_account, run_cli, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL_GREENGRASSV2")  # plain moto: its Greengrass V1 backend answers 404

    result, checks = doctor(run_cli)

    assert result.exit_code == 5
    assert checks["greengrass v2"]["status"] == FAIL
    assert checks["greengrass v2"]["detail"] == "the Greengrass V2 API does not answer at this endpoint"
    assert checks["greengrass v1"]["status"] == OK


def test_access_denied_names_the_missing_permission(v2_account, run_cli):
    v2_account.gg.denied.add("ListCoreDevices")

    result, checks = doctor(run_cli)

    assert result.exit_code == 5
    assert checks["greengrass v2"]["detail"].startswith("access denied: greengrass:ListCoreDevices on *")
    assert "grant greengrass:ListCoreDevices" in checks["greengrass v2"]["hint"]


def test_without_credentials_the_aws_checks_are_skipped(v2_account, run_cli):
    result, checks = doctor(run_cli, AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None, AWS_SESSION_TOKEN=None,
                            AWS_SECURITY_TOKEN=None, AWS_EC2_METADATA_DISABLED="true")

    assert result.exit_code == 5
    assert checks["credentials"]["status"] == FAIL and "no AWS credentials" in checks["credentials"]["detail"]
    assert {checks[n]["status"] for n in ("iot", "greengrass v2", "greengrass v1", "bucket")} == {SKIP}
    assert checks["lambda runtime"]["status"] == WARN  # dated facts need no account


def test_a_missing_bucket_fails_with_the_command_that_creates_it(v2_account, run_cli):
    result, checks = doctor(run_cli, DEEPLENS_BUCKET="not-created-yet-bucket")

    assert result.exit_code == 5
    assert checks["bucket"]["detail"] == "s3://not-created-yet-bucket does not exist"
    assert "register-roles" in checks["bucket"]["hint"]
    assert "register-roles" in result.stderr  # the one-line error carries the first failed check's hint


def test_a_fresh_machine_without_a_bucket_is_a_hint_not_a_failure(v2_account, run_cli):
    """The guide's first step is doctor, before any bucket exists: it must not exit 5 for that alone."""
    result, checks = doctor(run_cli, DEEPLENS_BUCKET=None)

    assert result.exit_code == 0, result.stderr
    assert checks["bucket"]["status"] == WARN
    assert checks["bucket"]["detail"] == "not configured yet (no bucket set)"
    assert "deeplens-cli init --bucket NAME" in checks["bucket"]["hint"]


def test_a_bucket_in_another_region_fails_naming_both_regions(v2_account, run_cli):
    v2_account.client("s3").create_bucket(Bucket="eu-face-crops", CreateBucketConfiguration={
        "LocationConstraint": "eu-west-1"})

    result, checks = doctor(run_cli, DEEPLENS_BUCKET="eu-face-crops")

    assert result.exit_code == 5
    assert checks["bucket"]["detail"] == "s3://eu-face-crops is in eu-west-1, deeplens-cli uses us-east-1"


def test_a_bucket_owned_by_someone_else_fails(v2_account, settings_for):
    ctx = v2_account.context(settings_for())
    with Stubber(ctx.client("s3")) as s3:
        s3.add_client_error("head_bucket", service_error_code="403", http_status_code=403)

        check = check_bucket(ctx, "bucket", "taken-by-someone")

    assert check.status == FAIL
    assert "exists but this identity cannot use it" in check.detail and "global" in check.hint


def test_text_output_is_a_table_with_hints(v2_account, run_cli):
    result = run_cli("doctor", "--output", "table", env={**ENV, "DEEPLENS_BUCKET": "not-created-yet-bucket"})

    assert result.exit_code == 5
    assert "deeplens-cli doctor" in result.stdout
    assert "bucket: run `deeplens-cli register-roles` to create it" in result.stdout
    assert result.stderr.startswith("error: 1 preflight check(s) failed: bucket")


@pytest.mark.parametrize(("runtime", "lambda_runtime", "today", "existing", "target", "status", "fragment"), [
    ("python3.7", None, date(2026, 11, 24), None, "v2", WARN, "no longer creates python3.7 functions"),
    ("python3.7", None, date(2026, 11, 24), None, "v1", FAIL, "blocked since 2024-01-09"),
    ("python3.7", None, date(2026, 11, 24), "python3.7", "v1", WARN, "can still be updated until 2027-03-03"),
    ("python3.7", None, date(2027, 3, 3), "python3.7", "v1", FAIL, "no longer updates python3.7"),
    ("python3.7", None, date(2023, 12, 20), None, "v1", WARN, "stops creating such functions on 2024-01-09"),
    ("python3.7", "python3.9", date(2026, 1, 10), None, "v1", WARN, "deprecated since 2025-12-15"),
    ("python3.7", "python3.9", date(2026, 11, 24), None, "v1", WARN, "stops creating such functions on 2027-02-01"),
    ("python3.7", "python3.9", date(2027, 2, 1), None, "v1", FAIL, "no longer creates python3.9"),
    ("python3.7", "python3.12", date(2026, 11, 24), None, "v1", OK, "python3.12 accepted by AWS Lambda"),
    ("python3.12", None, date(2026, 11, 24), None, "v1", OK, "accepted"),
])
def test_lambda_runtime_verdicts_follow_the_dated_table(settings_for, runtime, lambda_runtime, today, existing,
                                                        target, status, fragment):
    settings = settings_for(function__runtime=runtime, function__lambda_runtime=lambda_runtime,
                            greengrass__default_target=target)

    check = check_lambda_runtime(settings, today, existing_runtime=existing)

    assert check.status == status
    assert fragment in check.detail
