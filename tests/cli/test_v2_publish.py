"""Publishing the Greengrass V2 component: the zip goes to an immutable S3 key, a component version is created and
becomes DEPLOYABLE; unchanged code and settings publish nothing; an artifact key is never written twice."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

import pytest

from deeplens_cli.cli.output import Reporter
from deeplens_cli.engine.executor import ExecutionError, Executor
from deeplens_cli.engine.plan import ApiCall
from deeplens_cli.targets.greengrass_v2 import GreengrassV2Target
from deeplens_cli.targets.package import Package, build_package, zip_entries

try:
    from tests.cli.fake_greengrassv2 import v2_account  # noqa: F401 - a fixture
except ImportError:
    from fake_greengrassv2 import v2_account  # noqa: F401

BUCKET = "deeplens-test-face-crops"
COMPONENT = "com.deeplens.FaceCrops"


def key(version: str) -> str:
    return f"greengrass-artifacts/{COMPONENT}/{version}/deeplens_edge.zip"


@pytest.fixture(scope="module")
def package() -> Package:
    return build_package()


@pytest.fixture(scope="module")
def other_package(tmp_path_factory) -> Package:
    source = tmp_path_factory.mktemp("code") / "main.py"
    source.write_text("print('a different edge function')\n")
    return zip_entries({"edge_function/__main__.py": source})


def publish(account, settings, package, apply: bool = True):
    """(plan, ctx) of one `publish`; executed unless apply=False."""
    ctx = account.context(settings)
    plan = GreengrassV2Target(ctx, settings, package).plan_publish()
    if apply:
        Executor(ctx, Reporter(stderr=io.StringIO()).progress).execute(plan)
    return plan, ctx


def verbs(plan) -> list[tuple[str, str]]:
    return [(a.verb, a.resource) for a in plan.actions]


def test_first_publish_uploads_the_zip_and_creates_version_1_0_0(v2_account, settings_for, package):
    plan, _ = publish(v2_account, settings_for(), package)

    assert verbs(plan) == [("create", f"s3-object/s3://{BUCKET}/{key('1.0.0')}"),
                           ("create", f"gg-component/{COMPONENT}@1.0.0")]
    stored = v2_account.client("s3").get_object(Bucket=BUCKET, Key=key("1.0.0"))
    assert stored["Body"].read() == package.zip_bytes
    assert stored["Metadata"]["sha256"] == package.sha256_hex
    gg = v2_account.client("greengrassv2")
    arn = f"arn:aws:greengrass:us-east-1:123456789012:components:{COMPONENT}:versions:1.0.0"
    assert gg.describe_component(arn=arn)["status"]["componentState"] == "DEPLOYABLE"
    recipe = json.loads(gg.get_component(arn=arn, recipeOutputFormat="JSON")["recipe"])
    [artifact] = recipe["Manifests"][0]["Artifacts"]
    assert artifact["URI"] == f"s3://{BUCKET}/{key('1.0.0')}"
    assert artifact["Digest"] == base64.b64encode(hashlib.sha256(package.zip_bytes).digest()).decode()
    assert artifact["Digest"] == package.code_sha256_b64


def test_the_upload_sends_no_acl_and_asks_s3_to_refuse_overwrites(v2_account, settings_for, package):
    plan, _ = publish(v2_account, settings_for(), package, apply=False)

    [upload] = [s for a in plan.actions for s in a.steps if isinstance(s, ApiCall) and s.operation == "put_object"]
    assert upload.params["IfNoneMatch"] == "*"
    assert upload.params["ChecksumSHA256"] == package.code_sha256_b64
    assert not [name for name in upload.params if "ACL" in name.upper() or name.startswith("Grant")]


def test_unchanged_code_and_settings_publish_nothing(v2_account, settings_for, package):
    publish(v2_account, settings_for(), package)
    created = v2_account.gg.operations("Create")

    plan, ctx = publish(v2_account, settings_for(), package)

    assert plan.is_noop
    assert verbs(plan) == [("noop", f"gg-component/{COMPONENT}@1.0.0")]
    assert ctx.recorder.mutating == []
    assert v2_account.gg.operations("Create") == created


def test_changed_code_becomes_1_0_1_under_a_new_key(v2_account, settings_for, package, other_package):
    publish(v2_account, settings_for(), package)

    plan, _ = publish(v2_account, settings_for(), other_package)

    assert ("create", f"gg-component/{COMPONENT}@1.0.1") in verbs(plan)
    assert "code or settings changed since 1.0.0" in plan.actions[-1].reason
    s3 = v2_account.client("s3")
    assert s3.get_object(Bucket=BUCKET, Key=key("1.0.0"))["Body"].read() == package.zip_bytes
    assert s3.get_object(Bucket=BUCKET, Key=key("1.0.1"))["Body"].read() == other_package.zip_bytes


def test_a_changed_setting_is_a_new_version_with_the_same_zip(v2_account, settings_for, package):
    publish(v2_account, settings_for(), package)

    plan, _ = publish(v2_account, settings_for(detection__threshold=0.8), package)

    assert [a.resource for a in plan.changes][-1] == f"gg-component/{COMPONENT}@1.0.1"
    recipe = json.loads(v2_account.client("greengrassv2").get_component(
        arn=f"arn:aws:greengrass:us-east-1:123456789012:components:{COMPONENT}:versions:1.0.1")["recipe"])
    assert recipe["ComponentConfiguration"]["DefaultConfiguration"]["Environment"]["DEEPLENS_THRESHOLD"] == "0.8"


def test_a_key_holding_other_bytes_is_skipped_never_overwritten(v2_account, settings_for, package):
    s3 = v2_account.client("s3")
    s3.put_object(Bucket=BUCKET, Key=key("1.0.0"), Body=b"someone else's zip")

    plan, _ = publish(v2_account, settings_for(), package)

    assert verbs(plan)[-1] == ("create", f"gg-component/{COMPONENT}@1.0.1")
    assert "skipped 1.0.0" in plan.actions[0].reason
    assert s3.get_object(Bucket=BUCKET, Key=key("1.0.0"))["Body"].read() == b"someone else's zip"
    assert s3.get_object(Bucket=BUCKET, Key=key("1.0.1"))["Body"].read() == package.zip_bytes


def test_an_upload_left_by_an_interrupted_run_is_reused(v2_account, settings_for, package):
    v2_account.client("s3").put_object(Bucket=BUCKET, Key=key("1.0.0"), Body=package.zip_bytes,
                                       Metadata={"sha256": package.sha256_hex})

    plan, _ = publish(v2_account, settings_for(), package)

    assert verbs(plan) == [("noop", f"s3-object/s3://{BUCKET}/{key('1.0.0')}"),
                           ("create", f"gg-component/{COMPONENT}@1.0.0")]


def test_an_overwritten_artifact_of_the_latest_version_gets_a_new_version(v2_account, settings_for, package):
    publish(v2_account, settings_for(), package)
    s3 = v2_account.client("s3")
    s3.delete_object(Bucket=BUCKET, Key=key("1.0.0"))
    s3.put_object(Bucket=BUCKET, Key=key("1.0.0"), Body=b"tampered")

    plan, _ = publish(v2_account, settings_for(), package)

    assert verbs(plan)[-1] == ("create", f"gg-component/{COMPONENT}@1.0.1")
    assert "deleted or overwritten" in plan.actions[-1].reason


def test_s3_itself_refuses_an_overwrite_when_the_plan_is_stale(v2_account, settings_for, package):
    settings = settings_for()
    plan, ctx = publish(v2_account, settings, package, apply=False)
    v2_account.client("s3").put_object(Bucket=BUCKET, Key=key("1.0.0"), Body=b"raced in between")

    with pytest.raises(ExecutionError, match="PreconditionFailed"):
        Executor(ctx, Reporter(stderr=io.StringIO()).progress).execute(plan)
    assert v2_account.client("s3").get_object(Bucket=BUCKET, Key=key("1.0.0"))["Body"].read() == b"raced in between"


def test_waits_until_the_new_version_is_deployable(v2_account, settings_for, package):
    v2_account.gg.describe_polls_until_deployable = 3

    publish(v2_account, settings_for(), package)

    assert v2_account.gg.operations("Describe") == ["DescribeComponent"] * 4
    assert v2_account.sleeps == [2.0, 2.0, 2.0]


def test_a_version_the_service_marks_failed_stops_with_its_errors(v2_account, settings_for, package):
    class Unreadable:
        def get_object(self, **_):
            raise PermissionError("AccessDenied")

    v2_account.gg.s3 = Unreadable()

    with pytest.raises(ExecutionError) as failure:
        publish(v2_account, settings_for(), package)

    assert "is FAILED" in failure.value.message
    assert f"s3://{BUCKET}/{key('1.0.0')}" in failure.value.message
    assert "bucket policy" in failure.value.hint


def test_a_missing_artifact_bucket_says_how_to_create_it(v2_account, settings_for, package):
    from deeplens_cli.errors import DeeplensError

    with pytest.raises(DeeplensError, match="artifact bucket other-artifacts does not exist"):
        publish(v2_account, settings_for(greengrass__artifact_bucket="other-artifacts"), package)


def test_publish_command_dry_run_changes_nothing(v2_account, run_cli):
    result = run_cli("publish", "--greengrass", "v2", "--dry-run", env={"DEEPLENS_BUCKET": BUCKET, "COLUMNS": "200"})

    assert result.exit_code == 0, result.stderr
    assert "gg-component/com.deeplens.FaceCrops@1.0.0" in result.stdout
    assert v2_account.gg.operations("Create") == []
    assert v2_account.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_publish_command_json_output(v2_account, run_cli):
    result = run_cli(
        "--output", "json", "publish", "--greengrass", "v2", env={"DEEPLENS_BUCKET": BUCKET, "COLUMNS": "200"}
    )

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert [a["action"] for a in document["plan"]["actions"]] == ["create", "create"]
    assert Path(key("1.0.0")).name == "deeplens_edge.zip"
