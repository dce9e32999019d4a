"""`publish` (Greengrass V1): the edge function as a Lambda function with a published version - created once,
skipped when code and configuration are unchanged, updated when either changes, and honest about IAM propagation
and runtimes Lambda no longer accepts."""

from __future__ import annotations

import json

import pytest

import deeplens_cli.targets.package as package_module
from deeplens_cli.engine.executor import ExecutionError
from deeplens_cli.errors import DeeplensError
from deeplens_cli.targets.greengrass_v1 import LAMBDA_ROLE
from deeplens_cli.targets.greengrass_v1.lambda_publish import HANDLER
from deeplens_cli.targets.package import build_package
from tests.support.greengrass_v1 import BUCKET, ProgressSink, fail_call

pytestmark = pytest.mark.usefixtures("shared_botocore_models")  # one botocore model loader per module

FUNCTION = "deeplens-face-crops"
ROLE_NOT_ASSUMABLE = "The role defined for the function cannot be assumed by Lambda."
RUNTIME_GONE = (
    "The runtime parameter of python3.7 is no longer supported for creating or updating AWS Lambda functions."
)


def publish(world):
    plan = world.target().plan_publish()
    return plan, world.apply(plan)


def versions(world):
    return [
        v
        for v in world.lam.list_versions_by_function(FunctionName=FUNCTION)["Versions"]
        if v["Version"] != "$LATEST"
    ]


class TestFirstPublish:

    def test_the_function_is_created_from_the_package_and_version_1_published(self, world):
        plan, result = publish(world)
        assert [(a.verb, a.resource.split("/")[0]) for a in plan.actions] == [("create", "s3-object"),
                                                                              ("create", "lambda-function")]
        configuration = world.lam.get_function(FunctionName=FUNCTION)["Configuration"]
        assert configuration["Handler"] == HANDLER
        assert configuration["Runtime"] == "python3.7"
        assert configuration["Role"].endswith(f":role/service-role/{LAMBDA_ROLE}")
        assert configuration["CodeSha256"] == build_package().code_sha256_b64
        assert [v["Version"] for v in versions(world)] == ["1"]
        assert result.variables["function_version_arn"].endswith(f":function:{FUNCTION}:1")

    def test_the_code_is_uploaded_once_under_its_sha256_and_lambda_reads_it_from_there(self, world):
        publish(world)
        package = build_package()
        key = f"greengrass-artifacts/lambda/{FUNCTION}/{package.sha256_hex}.zip"
        stored = world.aws.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert stored == package.zip_bytes
        location = world.lam.get_function(FunctionName=FUNCTION)["Code"]["Location"]
        assert location.endswith(key)

    def test_settings_travel_as_environment_variables_not_code_edits(self, world):
        world.aws.client("s3").create_bucket(Bucket="deeplens-my-crops")
        world.reconfigure(bucket="deeplens-my-crops", detection__threshold=0.8)
        publish(world)
        variables = world.lam.get_function(FunctionName=FUNCTION)["Configuration"]["Environment"]["Variables"]
        assert variables["DEEPLENS_BUCKET"] == "deeplens-my-crops"
        assert variables["DEEPLENS_THRESHOLD"] == "0.8"
        assert variables["DEEPLENS_MODEL_PATH"] == "/opt/awscam/artifacts/mxnet_deploy_ssd_FP16_FUSED.xml"

    def test_a_declared_lambda_runtime_is_what_lambda_gets(self, world):
        world.reconfigure(function__lambda_runtime="python3.12")
        publish(world)
        assert world.lam.get_function(FunctionName=FUNCTION)["Configuration"]["Runtime"] == "python3.12"

    def test_dry_run_creates_nothing(self, gg_account, run_cli):
        result = run_cli("--output", "json", "publish", "--greengrass", "v1", "--dry-run",
                         env={"DEEPLENS_BUCKET": "deeplens-test-face-crops"})
        assert result.exit_code == 0, result.stderr
        document = json.loads(result.stdout)
        assert document["plan"]["actions"][0]["action"] == "create"
        assert gg_account.client("lambda").list_functions()["Functions"] == []

    def test_without_the_lambda_role_nothing_is_created(self, world):
        world.aws.client("iam").delete_role(RoleName=LAMBDA_ROLE)
        with pytest.raises(DeeplensError, match=LAMBDA_ROLE) as raised:
            world.target().plan_publish()
        assert "register-roles" in raised.value.hint
        assert world.lam.list_functions()["Functions"] == []


class TestRepublish:

    def test_nothing_changed_means_no_upload_and_no_version(self, world):
        publish(world)
        plan = None

        def again():
            nonlocal plan
            plan, _ = publish(world)

        assert world.mutating_calls_of(again) == []
        assert plan.is_noop
        assert [v["Version"] for v in versions(world)] == ["1"]

    def test_a_changed_setting_updates_the_configuration_and_publishes_a_version(self, world):
        publish(world)
        world.reconfigure(detection__threshold=0.75)
        plan, result = publish(world)
        (action,) = plan.actions
        assert action.verb == "update" and "environment" in action.reason and "code" not in action.reason
        assert [s.describe() for s in action.steps] == [
            "lambda:update_function_configuration", "wait lambda:function_updated_v2", "lambda:publish_version"]
        assert [v["Version"] for v in versions(world)] == ["1", "2"]
        assert result.variables["function_version_arn"].endswith(":2")

    def test_changed_code_is_uploaded_and_published(self, world, tmp_path, monkeypatch):
        publish(world)
        source = tmp_path / "edge_function"
        source.mkdir()
        (source / "lambda_function.py").write_text("def function_handler(event, context):\n    return 'v2'\n")
        monkeypatch.setattr(package_module, "edge_function_dir", lambda: source)
        plan, _ = publish(world)
        upload, action = plan.actions
        assert upload.resource.startswith("s3-object/") and upload.verb == "create"
        assert "code changed" in action.reason
        assert world.lam.get_function(FunctionName=FUNCTION)["Configuration"]["CodeSha256"] == \
            build_package(source).code_sha256_b64
        assert [v["Version"] for v in versions(world)] == ["1", "2"]

    def test_an_interrupted_update_is_finished_by_publishing_only(self, world):
        publish(world)
        world.reconfigure(detection__threshold=0.75)
        target = world.target()
        desired = target.desired_function_configuration(target.role_arn(LAMBDA_ROLE))
        world.lam.update_function_configuration(FunctionName=FUNCTION, **desired)  # applied, never published
        plan = target.plan_publish()
        (action,) = plan.actions
        assert [s.describe() for s in action.steps] == ["lambda:publish_version"]
        world.apply(plan)
        assert [v["Version"] for v in versions(world)] == ["1", "2"]
        assert world.target().plan_publish().is_noop


class TestIamPropagation:

    def test_a_role_not_yet_assumable_is_retried_with_visible_backoff(self, world):
        failures = fail_call(world.ctx.client("lambda"), "CreateFunction", "InvalidParameterValueException",
                             ROLE_NOT_ASSUMABLE, times=2)
        plan = world.target().plan_publish()
        from deeplens_cli.cli.output import Reporter
        from deeplens_cli.engine.executor import Executor

        sink = ProgressSink()
        Executor(world.ctx, Reporter(stderr=sink).progress).execute(plan)
        assert failures == [2]
        assert world.aws.sleeps == [2.0, 4.0]
        waits = [line for line in sink.lines if "waiting for IAM" in line]
        assert len(waits) == 2 and "AWSDeepLensLambdaRole" in waits[0]
        assert [v["Version"] for v in versions(world)] == ["1"]

    def test_the_retry_budget_is_bounded(self, world):
        fail_call(world.ctx.client("lambda"), "CreateFunction", "InvalidParameterValueException", ROLE_NOT_ASSUMABLE)
        with pytest.raises(ExecutionError, match="cannot be assumed"):
            world.apply(world.target().plan_publish())
        assert sum(world.aws.sleeps) <= 150
        assert len(world.aws.sleeps) >= 5

    def test_other_invalid_parameters_are_not_retried(self, world):
        fail_call(world.ctx.client("lambda"), "CreateFunction", "InvalidParameterValueException",
                  "Unzipped size too big")
        with pytest.raises(ExecutionError, match="Unzipped size too big"):
            world.apply(world.target().plan_publish())
        assert world.aws.sleeps == []


class TestRuntimeRejected:

    def test_a_runtime_lambda_no_longer_accepts_fails_with_the_way_out(self, world):
        fail_call(world.ctx.client("lambda"), "CreateFunction", "InvalidParameterValueException", RUNTIME_GONE)
        with pytest.raises(ExecutionError) as raised:
            world.apply(world.target().plan_publish())
        assert "no longer accepts runtime python3.7" in raised.value.message
        assert "function.lambda_runtime" in raised.value.hint
        assert "FunctionRuntimeOverride" in raised.value.hint
        assert world.aws.sleeps == []  # not mistaken for IAM propagation

    def test_the_cli_prints_one_line_and_exits_1(self, gg_account, run_cli, monkeypatch):
        import deeplens_cli.aws as aws_module

        real = aws_module.make_context

        def make_context(settings, sleep=None):
            ctx = real(settings, sleep=lambda s: None)
            fail_call(ctx.client("lambda"), "CreateFunction", "InvalidParameterValueException", RUNTIME_GONE)
            return ctx

        monkeypatch.setattr(aws_module, "make_context", make_context)
        result = run_cli("publish", "--greengrass", "v1", env={"DEEPLENS_BUCKET": "deeplens-test-face-crops"})
        assert result.exit_code == 1
        (line,) = result.stderr.strip().splitlines()[-1:]
        assert line.startswith(
            "error: lambda-function/deeplens-face-crops: AWS Lambda no longer accepts runtime python3.7"
        )
        assert "function.lambda_runtime" in line
        assert "Traceback" not in result.stderr


def test_a_missing_code_bucket_is_named_at_plan_time(world):
    """Found while planning (S3 HEAD errors carry no code on real AWS, so the bucket is asked for first)."""
    world.aws.client("s3").delete_bucket(Bucket=BUCKET)

    with pytest.raises(DeeplensError, match=f"bucket {BUCKET} for the function code does not exist"):
        world.target().plan_publish()
