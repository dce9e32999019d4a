"""`status`: roles, bucket, function, devices, last deployment and recent uploads in one report (a table, or
one JSON document); exit 0 only when everything is in place and every last deployment succeeded."""

from __future__ import annotations

import datetime as dt
import json

import pytest

import deeplens_cli.targets.greengrass_v1.target as v1_target
import deeplens_cli.targets.registry as targets_module
import deeplens_cli.views.status_report as status_report_module
from deeplens_cli.account.roles import FACE_CROPS_INLINE_POLICY, GROUP_ROLE, plan_account
from deeplens_cli.engine.executor import Executor
from deeplens_cli.targets.base import Device, DeviceStatus, ProjectStatus
from deeplens_cli.views.status_report import count_uploads, gather_status
from tests.support.greengrass_v1 import ScriptedStatus, V1World

pytestmark = pytest.mark.usefixtures("shared_botocore_models")  # one botocore model loader per module

BUCKET = "deeplens-test-face-crops"
ENV = {"DEEPLENS_BUCKET": BUCKET}
CROP = "faces/11_24/2_50/1795920000_abc-1.jpg"


def set_up_account(account, tmp, register_device=True):
    """register-roles (bucket included), then a V1 device registered and deployed."""
    world = V1World(account, tmp)
    Executor(world.ctx).execute(plan_account(world.ctx, world.settings))
    if register_device:
        world.deploy(world.register("MyDevice"))
    return world


@pytest.fixture(scope="class")
def healthy(aws_class, tmp_path_factory):
    world = set_up_account(aws_class, tmp_path_factory.mktemp("status"))
    world.aws.client("s3").put_object(Bucket=BUCKET, Key=CROP, Body=b"\xff\xd8face")
    world.aws.client("s3").put_object(Bucket=BUCKET, Key="elsewhere/not-a-crop.jpg", Body=b"x")
    return world


@pytest.fixture
def device_reports(monkeypatch):
    """Make the device report the given deployment states (moto would say InProgress forever)."""
    def script(*states):
        monkeypatch.setattr(v1_target, "status_source_for", lambda ctx: ScriptedStatus(*states))
    return script


class TestHealthyAccount:

    def test_everything_in_place_exits_0_with_one_json_document(self, healthy, run_cli, device_reports):
        device_reports("Success")
        result = run_cli("--output", "json", "status", env=ENV)
        assert result.exit_code == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)
        assert report["ok"] is True and report["problems"] == []
        assert {a["state"] for a in report["account"]} == {"ok"}
        assert any(a["resource"] == f"iam-role/{GROUP_ROLE}" for a in report["account"])

    def test_the_function_is_reported_with_its_version_and_digest(self, healthy, run_cli, device_reports):
        device_reports("Success")
        report = json.loads(run_cli("--output", "json", "status", env=ENV).stdout)
        (project,) = report["projects"]
        assert (project["target"], project["name"], project["latest_version"]) == ("v1", "deeplens-face-crops", "1")
        assert project["up_to_date"] is True and project["code_sha256"] == project["local_code_sha256"]

    def test_each_device_shows_thing_certificate_core_and_last_deployment(self, healthy, run_cli, device_reports):
        device_reports("Success")
        report = json.loads(run_cli("--output", "json", "status", "--details", env=ENV).stdout)
        (device,) = report["devices"]
        status = device["status"]
        assert device["name"] == "MyDevice" and device["target"] == "v1"
        assert status["health"] == "ok"
        assert status["certificates"][0]["status"] == "ACTIVE"
        assert status["core"] == device["thing_arn"]
        assert status["function_version_arn"].endswith(":deeplens-face-crops:1")
        assert status["last_deployment"]["status"] == "Success"

    def test_recent_uploads_under_the_prefix_are_counted(self, healthy, run_cli, device_reports):
        device_reports("Success")
        uploads = json.loads(run_cli("--output", "json", "status", env=ENV).stdout)["uploads"]
        assert (uploads["count"], uploads["newest_key"], uploads["prefix"]) == (1, CROP, "faces/")

    def test_the_text_report_has_the_tables_and_the_verdict(self, healthy, run_cli, device_reports):
        device_reports("Success")
        result = run_cli("status", "--details", "--output", "table", env=ENV)
        assert result.exit_code == 0
        for title in ("Account", "Edge function", "Fleet: 1 device(s)"):
            assert title in result.stdout
        assert "Uploads: 1 face crop(s)" in result.stdout
        assert result.stdout.rstrip().endswith("status: ok")

    def test_a_failed_deployment_exits_1_and_says_why(self, healthy, run_cli, device_reports):
        device_reports({"DeploymentStatus": "Failure", "ErrorMessage": "lambda crashed on start",
                        "ErrorDetails": [{"DetailedErrorCode": "GG-500", "DetailedErrorMessage": "import error"}]})
        result = run_cli("--output", "json", "status", "--details", env=ENV)
        assert result.exit_code == 1
        report = json.loads(result.stdout)
        assert report["ok"] is False
        assert any("MyDevice" in p and "lambda crashed on start" in p for p in report["problems"])
        assert report["devices"][0]["status"]["last_deployment"]["error_details"] == ["GG-500: import error"]

    def test_a_small_v1_fleet_is_read_in_full_and_a_large_one_summarised(self, healthy, run_cli, device_reports,
                                                                         monkeypatch):
        device_reports("Success")
        full = json.loads(run_cli("--output", "json", "status", env=ENV).stdout)["devices"][0]["status"]
        monkeypatch.setattr("deeplens_cli.targets.greengrass_v1.status.V1_FULL_READS", 0)
        summary = json.loads(run_cli("--output", "json", "status", env=ENV).stdout)["devices"][0]["status"]
        assert full["last_deployment_status"] == "Success" and "certificates" in full
        assert summary["last_deployment_status"] == "unknown" and "certificates" not in summary
        assert summary["summary_only"] is True and summary["health"] == "ok"  # thing and group are in place

    def test_a_deployment_still_in_progress_is_not_success(self, healthy, run_cli, device_reports):
        device_reports("InProgress")
        result = run_cli("status", "--details", env=ENV)
        assert result.exit_code == 1
        assert "last deployment InProgress" in result.stdout

    def test_one_device_can_be_asked_for(self, healthy, run_cli, device_reports):
        device_reports("Success")
        result = run_cli("--output", "json", "status", "--device", "MyDevice", env=ENV)
        assert result.exit_code == 0, result.stdout
        assert [d["name"] for d in json.loads(result.stdout)["devices"]] == ["MyDevice"]

    def test_an_unknown_device_is_an_error_naming_it(self, healthy, run_cli):
        result = run_cli("status", "--device", "Nope", env=ENV)
        assert result.exit_code == 1
        assert "no device named 'Nope'" in result.stderr


class TestProblems:

    def test_a_drifted_role_exits_1_and_points_at_register_roles(self, aws, tmp_path, run_cli, device_reports):
        set_up_account(aws, tmp_path)
        aws.client("iam").delete_role_policy(RoleName=GROUP_ROLE, PolicyName=FACE_CROPS_INLINE_POLICY)
        device_reports("Success")
        report = json.loads(run_cli("--output", "json", "status", env=ENV).stdout)
        (drifted,) = [a for a in report["account"] if a["state"] != "ok"]
        assert drifted == {"resource": f"iam-role/{GROUP_ROLE}", "state": "drifted",
                           "reason": f"inline policy {FACE_CROPS_INLINE_POLICY} missing"}
        assert any("register-roles" in p for p in report["problems"])

    def test_no_device_registered_is_not_all_good(self, aws, tmp_path, run_cli):
        set_up_account(aws, tmp_path, register_device=False)
        result = run_cli("--output", "json", "status", env=ENV)
        assert result.exit_code == 1
        assert any("no device registered" in p for p in json.loads(result.stdout)["problems"])


class TestUploads:

    def test_only_the_last_24_hours_count(self, aws_plain):
        s3 = aws_plain.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="faces/a.jpg", Body=b"a")
        s3.put_object(Bucket=BUCKET, Key="faces/b.jpg", Body=b"b")
        ctx = aws_plain.context()
        now = dt.datetime.now(dt.timezone.utc)
        assert count_uploads(ctx, BUCKET, "faces/", now)["count"] == 2
        later = count_uploads(ctx, BUCKET, "faces/", now + dt.timedelta(hours=25))
        assert later["count"] == 0 and later["newest_key"] is None
        assert count_uploads(ctx, BUCKET, "other/", now)["count"] == 0


class TestOtherTargets:
    """Devices of any target are reported through the Target interface (device_status / project_status)."""

    def test_a_v2_device_is_reported_and_its_problems_count(self, aws_plain, settings_for, monkeypatch):
        camera = Device(name="Garage", target="v2", thing_name="garage-cam")

        class FakeV2:
            name = "v2"

            def __init__(self, ctx, settings):
                pass

            def list_devices(self):
                return [camera]

            def device_status(self, device):
                return DeviceStatus("problem", ("component broken",), last_deployment_status="FAILED")

            def fleet_statuses(self, devices, details=False):
                return {device.thing_name: self.device_status(device) for device in devices}

            def project_status(self):
                return ProjectStatus("v2", "com.deeplens.FaceCrops", True, "1.0.3")

        real_make_target = targets_module.make_target

        def make_target(name, ctx, settings):
            return FakeV2(ctx, settings) if name == "v2" else real_make_target(name, ctx, settings)

        monkeypatch.setattr(targets_module, "make_target", make_target)  # the device lookup's
        monkeypatch.setattr(status_report_module, "make_target", make_target)  # the report's own reads
        monkeypatch.setattr(status_report_module, "plan_account", lambda ctx, settings: _empty_plan())
        report = gather_status(aws_plain.context(), settings_for())
        assert [d.device.name for d in report.devices] == ["Garage"]
        assert report.devices[0].status.last_deployment_status == "FAILED"
        assert "device Garage: component broken" in report.problems
        assert [p.target for p in report.projects] == ["v2"]


def _empty_plan():
    from deeplens_cli.engine.plan import Plan

    return Plan("register-roles")
