"""What `status` and `devices` learn about a Greengrass V2 device and the component: core device health with when it
was reported (it can be stale), the component's lifecycle state, the last effective deployment and its reason."""

from __future__ import annotations

import io
import json
import time

import pytest

from deeplens_cli.cli.output import Reporter
from deeplens_cli.engine.executor import Executor
from deeplens_cli.targets.base import DeploymentRef
from deeplens_cli.targets.greengrass_v2 import GreengrassV2Target
from deeplens_cli.targets.package import Package, build_package

try:
    from tests.cli.fake_greengrassv2 import v2_account  # noqa: F401 - a fixture
except ImportError:
    from fake_greengrassv2 import v2_account  # noqa: F401

COMPONENT = "com.deeplens.FaceCrops"
ENV = {"DEEPLENS_BUCKET": "deeplens-test-face-crops", "DEEPLENS_DEPLOY_POLL_S": "0.01"}


@pytest.fixture(scope="module")
def package() -> Package:
    return build_package()


@pytest.fixture
def v2(v2_account, settings_for, package, tmp_path):
    """A target on the emulated account, and helpers to register / deploy a device called Cam."""
    settings = settings_for()
    ctx = v2_account.context(settings)
    target = GreengrassV2Target(ctx, settings, package)

    def apply(plan):
        return Executor(ctx, Reporter(stderr=io.StringIO()).progress).execute(plan) if not plan.is_noop else None

    def register(connect: bool = True, **core):
        apply(target.plan_register_device("Cam", str(tmp_path / "Cam")))
        device = target.list_devices()[0]
        if connect:
            v2_account.gg.connect_core(device.thing_name, **core)
        return device

    def deploy(device):
        result = apply(target.plan_deploy(device))
        return target.wait_for_deployment(
            device, DeploymentRef.from_variables(result.variables), 60, Reporter(stderr=io.StringIO())
        )

    target.register, target.deploy, target.apply = register, deploy, apply
    return target


def test_a_deployed_healthy_device_is_ok_and_says_when_health_was_reported(v2):
    device = v2.register()
    v2.deploy(device)

    status = v2.device_status(device).to_dict()

    assert status["health"] == "ok" and status["problems"] == []
    assert status["core_status"] == "HEALTHY"
    assert status["health_detail"].startswith("HEALTHY, reported ")
    assert "can be stale" not in status["health_detail"]  # said once per table, not in every row
    assert "can be stale" in status["health_caveat"]
    assert status["health_reported_at"].endswith("+00:00")
    assert status["nucleus_version"] == "2.14.3" and status["platform"] == "linux/aarch64"
    assert status["component_state"] == "RUNNING" and status["component"]["version"] == "1.0.0"
    assert status["last_deployment_status"] == "COMPLETED"
    assert list(status["certificates"].values()) == ["ACTIVE"]


def test_an_old_health_report_is_shown_with_its_age(v2, v2_account):
    device = v2.register()
    v2.deploy(device)
    v2_account.gg.cores["deeplens-Cam"].last_status = time.time() - 3 * 86400

    status = v2.device_status(device).to_dict()

    assert "reported 3 d ago" in status["health_detail"]


def test_a_device_that_never_connected_says_how_to_install_it(v2):
    device = v2.register(connect=False)

    status = v2.device_status(device).to_dict()

    assert status["health"] == "never connected"
    assert any("install.sh" in problem for problem in status["problems"])
    assert status["last_deployment_status"] == "none"


def test_a_failed_last_deployment_is_reported_with_its_reason(v2):
    device = v2.register(behaviour="fail")
    v2.deploy(device)

    status = v2.device_status(device).to_dict()

    assert status["health"] == "deployment failed"
    assert status["last_deployment_status"] == "FAILED"
    assert status["last_deployment_reason"].startswith("FAILED: COMPONENT_BROKEN")
    assert status["last_deployment_errors"][0].startswith("error stack: DEPLOYMENT_FAILURE")


def test_an_unhealthy_core_and_a_broken_component_are_problems(v2, v2_account):
    device = v2.register(component_state="BROKEN")
    v2.deploy(device)
    v2_account.gg.cores["deeplens-Cam"].status = "UNHEALTHY"

    status = v2.device_status(device).to_dict()

    assert status["health"] == "unhealthy"
    assert f"{COMPONENT} is BROKEN" in status["problems"]
    assert any(p.startswith("core device reports UNHEALTHY") for p in status["problems"])


def test_a_deactivated_certificate_is_a_problem(v2, v2_account):
    device = v2.register()
    v2.deploy(device)
    iot = v2_account.client("iot")
    [principal] = iot.list_thing_principals(thingName="deeplens-Cam")["principals"]
    iot.update_certificate(certificateId=principal.rsplit("/", 1)[-1], newStatus="INACTIVE")

    status = v2.device_status(device).to_dict()

    assert status["health"] == "no certificate"
    assert "no active certificate attached to the thing" in status["problems"]


def test_project_status_before_and_after_publishing(v2, package, settings_for, v2_account):
    before = v2.project_status().to_dict()
    v2.apply(v2.plan_publish())
    after = v2.project_status().to_dict()
    changed = GreengrassV2Target(v2_account.context(settings_for()), settings_for(detection__threshold=0.9),
                                 package).project_status().to_dict()

    assert before["exists"] is False and before["problems"]
    assert after["exists"] is True and after["problems"] == []
    assert (after["name"], after["latest_version"], after["state"]) == (COMPONENT, "1.0.0", "DEPLOYABLE")
    assert after["code_sha256"] == package.sha256_hex
    assert after["up_to_date"] is True
    assert changed["up_to_date"] is False


def test_project_status_notices_an_overwritten_artifact(v2, v2_account):
    v2.apply(v2.plan_publish())
    v2_account.client("s3").put_object(Bucket="deeplens-test-face-crops", Body=b"x",
                                       Key=f"greengrass-artifacts/{COMPONENT}/1.0.0/deeplens_edge.zip")

    assert v2.project_status().problems == (
        f"artifact s3://deeplens-test-face-crops/greengrass-artifacts/{COMPONENT}/1.0.0/deeplens_edge.zip "
        "was overwritten",
    )


def test_devices_command_lists_v2_devices_with_health_and_last_deployment(v2, run_cli):
    device = v2.register()
    v2.deploy(device)

    summary = run_cli("--output", "json", "devices", env=ENV)
    detailed = run_cli("--output", "json", "devices", "--details", env=ENV)

    assert summary.exit_code == 0 and detailed.exit_code == 0, summary.stderr + detailed.stderr
    [listed] = json.loads(summary.stdout)["devices"]
    assert (listed["name"], listed["target"], listed["thing_name"]) == ("Cam", "v2", "deeplens-Cam")
    assert listed["status"]["health"] == "ok"
    assert listed["status"]["last_deployment_status"] == "ACTIVE"  # ListDeployments: the deployment is in effect
    [listed] = json.loads(detailed.stdout)["devices"]
    assert listed["status"]["last_deployment_status"] == "COMPLETED"  # the device's own report


def test_status_command_reports_the_v2_device_and_component(v2, run_cli):
    device = v2.register(behaviour="fail")
    v2.deploy(device)

    result = run_cli("--output", "json", "status", "--device", "Cam", env=ENV)

    document = json.loads(result.stdout)
    assert result.exit_code == 1  # the deployment failed (and this emulated account lacks the V1 roles)
    [reported] = document["devices"]
    assert reported["status"]["last_deployment_status"] == "FAILED"
    assert any(p.startswith("device Cam: last deployment FAILED") for p in document["problems"])
    assert [p["name"] for p in document["projects"]] == [COMPONENT]


def test_the_text_tables_say_when_the_health_was_reported(v2, run_cli):
    """Health can be a day old; the tables a person reads say so, not only the JSON."""
    device = v2.register()
    v2.deploy(device)

    for command in (("devices",), ("status", "--device", "Cam")):
        result = run_cli(*command, env={**ENV, "COLUMNS": "250"})

        assert "HEALTHY, reported " in result.stdout, (command, result.stdout)


HOSTILE_REASON = "COMPONENT_BROKEN: \x1b]0;OWNED\x07\x1b[2J[/bold] \u202ebroken"
HOSTILE_FAILURE = {"reason": HOSTILE_REASON, "errorStack": ["DEPLOYMENT_FAILURE", "\x1b[31mRED[/red]"],
                   "errorTypes": ["COMPONENT_ERROR"]}


@pytest.mark.parametrize("output", ["table", "text"])
def test_what_the_device_reports_is_shown_escaped_and_never_as_markup(v2, run_cli, output):
    """The deployment's reason and error stack are what the device wrote: data, not terminal control or markup."""
    device = v2.register(behaviour="fail", failure=HOSTILE_FAILURE)
    v2.deploy(device)

    for command in (("status", "--device", "Cam"), ("devices", "--details")):
        result = run_cli("--output", output, *command, env={**ENV, "COLUMNS": "250"})

        assert "unexpected error" not in result.stderr and result.exit_code in (0, 1), (command, result.stderr)
        assert not {"\x1b", "\x07", "\u202e"} & set(result.stdout + result.stderr), command
        if command[0] == "status":  # devices shows the state, status the reason too
            assert "\\x1b]0;OWNED\\x07\\x1b[2J[/bold] \\u202ebroken" in result.stdout, result.stdout
