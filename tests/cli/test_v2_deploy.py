"""`deploy --device N` on a Greengrass V2 device: publish, send the complete component set, follow the device's own
report (list_effective_deployments), then check the component is RUNNING. Failures show the device's reason and
error stack (exit 3); a device that never answers is a timeout (exit 4); nothing changed means no deployment."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from deeplens_cli.cli.output import Reporter
from deeplens_cli.engine.executor import Executor
from deeplens_cli.engine.plan import ApiCall
from deeplens_cli.targets.base import DeploymentRef, Device
from deeplens_cli.targets.greengrass_v2 import GreengrassV2Target, describe_failure
from deeplens_cli.targets.package import Package, build_package

try:
    from tests.cli.fake_greengrassv2 import v2_account  # noqa: F401 - a fixture
except ImportError:
    from fake_greengrassv2 import v2_account  # noqa: F401

BUCKET = "deeplens-test-face-crops"
COMPONENT = "com.deeplens.FaceCrops"
THING_ARN = "arn:aws:iot:us-east-1:123456789012:thing/deeplens-Cam"
CLI_ENV = {"DEEPLENS_BUCKET": BUCKET, "DEEPLENS_DEPLOY_POLL_S": "0.01", "COLUMNS": "200"}


@pytest.fixture(scope="module")
def package() -> Package:
    return build_package()  # the same bytes the CLI builds, so target-level and CLI runs agree


class Harness:
    """One emulated account with registered devices; every call builds a fresh context, as a CLI run would."""

    def __init__(self, account, settings_for, package, tmp_path: Path) -> None:
        self.account, self.settings_for, self.package, self.tmp_path = account, settings_for, package, tmp_path
        self.progress = io.StringIO()

    def target(self, **settings):
        ctx = self.account.context(self.settings_for(**settings))
        return ctx, GreengrassV2Target(ctx, self.settings_for(**settings), self.package)

    def register(self, name: str = "Cam", connect: bool = True, **core) -> Device:
        ctx, target = self.target()
        Executor(ctx, Reporter(stderr=io.StringIO()).progress).execute(
            target.plan_register_device(name, str(self.tmp_path / name))
        )
        device = next(d for d in target.list_devices() if d.name == name)
        if connect:
            self.account.gg.connect_core(device.thing_name, bundle=self.tmp_path / name, **core)
        return device

    def deploy(self, device: Device, force: bool = False, timeout: float = 60, **settings):
        """(plan, outcome or None, ctx)."""
        ctx, target = self.target(**settings)
        plan = target.plan_deploy(device, force)
        if plan.is_noop:
            return plan, None, ctx
        result = Executor(ctx, Reporter(stderr=io.StringIO()).progress).execute(plan)
        return (
            plan,
            target.wait_for_deployment(device, DeploymentRef.from_variables(result.variables), timeout,
                                       Reporter(stderr=self.progress)),
            ctx,
        )


@pytest.fixture
def world(v2_account, settings_for, package, tmp_path) -> Harness:
    return Harness(v2_account, settings_for, package, tmp_path)


def deployment_step(plan) -> ApiCall:
    [step] = [s for a in plan.actions for s in a.steps if isinstance(s, ApiCall) and s.operation == "create_deployment"]
    return step


# ---------------------------------------------------------------------------------------------- success


def test_deploy_sends_the_full_component_set_and_waits_for_running(world):
    device = world.register()

    plan, outcome, _ = world.deploy(device)

    assert outcome.status == "succeeded", outcome
    assert outcome.detail == f"{COMPONENT} RUNNING"
    params = deployment_step(plan).params
    assert params["targetArn"] == THING_ARN
    assert params["deploymentName"] == "deeplens-face-detection"
    assert params["components"] == {  # no nucleus pin unless asked (greengrass.pin_nucleus)
        COMPONENT: {"componentVersion": "1.0.0", "configurationUpdate": {"reset": [""]}},
    }
    assert params["deploymentPolicies"]["failureHandlingPolicy"] == "ROLLBACK"
    progress = world.progress.getvalue()
    assert (
        "IN_PROGRESS" in progress
        and "COMPLETED" in progress
        and f"{COMPONENT} 1.0.0 on deeplens-Cam: RUNNING" in progress
    )


def test_the_nucleus_is_pinned_to_what_the_device_runs_only_when_asked(world):
    device = world.register()

    plan, outcome, _ = world.deploy(device, greengrass__pin_nucleus=True)

    assert outcome.status == "succeeded"
    assert deployment_step(plan).params["components"]["aws.greengrass.Nucleus"] == {"componentVersion": "2.14.3"}


def test_without_a_published_log_manager_the_plan_warns_once_and_deploys_without_it(world):
    device = world.register()

    plan, outcome, _ = world.deploy(device)  # logs.cloudwatch is on by default; the emulator publishes none

    assert outcome.status == "succeeded"
    assert "aws.greengrass.LogManager" not in deployment_step(plan).params["components"]
    warnings = [a for a in plan.actions if a.reason.startswith("warning: aws.greengrass.LogManager")]
    assert len(warnings) == 1 and warnings[0].verb == "noop"


def test_the_log_manager_is_deployed_at_the_newest_version_when_logs_go_to_cloudwatch(world):
    world.account.gg.components[("aws.greengrass.LogManager", "2.3.7")] = {"recipe": {"Manifests": []}}
    device = world.register()

    plan, outcome, _ = world.deploy(device)
    off, _, _ = world.deploy(device, force=True, logs__cloudwatch=False)

    assert outcome.status == "succeeded"
    entry = deployment_step(plan).params["components"]["aws.greengrass.LogManager"]
    assert entry["componentVersion"] == "2.3.7"
    assert COMPONENT in json.loads(entry["configurationUpdate"]["merge"])["logsUploaderConfiguration"][
        "componentLogsConfigurationMap"]
    assert "aws.greengrass.LogManager" not in deployment_step(off).params["components"]
    assert not [a for a in off.actions if a.reason.startswith("warning:")]


def test_a_deployment_still_installing_gets_the_recipes_install_timeout_before_deploy_gives_up(world):
    device = world.register(polls_until_done=40)  # IN_PROGRESS for 40 polls: 200 s at 5 s a poll

    _, outcome, _ = world.deploy(device, timeout=10, deploy__poll_s=5.0)

    assert outcome.status == "succeeded", outcome
    assert "Install may take up to 900 s" in world.progress.getvalue()
    assert sum(world.account.sleeps) < 1020  # within the recipe's Install timeout plus the delivery allowance


def test_a_changed_setting_is_a_new_version_and_a_deployment_replacing_the_last(world):
    device = world.register()
    _, first, _ = world.deploy(device)

    plan, outcome, _ = world.deploy(device, detection__threshold=0.8)

    assert outcome.status == "succeeded"
    action = plan.actions[-1]
    assert action.verb == "update"
    assert f"{COMPONENT} 1.0.0 -> 1.0.1" in action.reason and first.deployment_id in action.reason
    deployments = world.account.gg.deployments
    assert not deployments[first.deployment_id]["isLatestForTarget"]
    assert deployments[outcome.deployment_id]["components"][COMPONENT]["componentVersion"] == "1.0.1"


def test_components_someone_else_deployed_to_the_device_are_kept(world):
    device = world.register()
    _, first, _ = world.deploy(device)
    gg = world.account.client("greengrassv2")
    components = dict(world.account.gg.deployments[first.deployment_id]["components"])
    components["aws.greengrass.Cli"] = {"componentVersion": "2.14.0"}
    gg.create_deployment(targetArn=THING_ARN, deploymentName="console", components=components,
                         deploymentPolicies=world.account.gg.deployments[first.deployment_id]["deploymentPolicies"])

    unchanged, _, _ = world.deploy(device)
    changed, _, _ = world.deploy(device, detection__threshold=0.8)

    assert unchanged.is_noop
    assert deployment_step(changed).params["components"]["aws.greengrass.Cli"] == {"componentVersion": "2.14.0"}


# ---------------------------------------------------------------------------------------------- failures


@pytest.mark.parametrize(("behaviour", "status", "reason"), [
    ("fail", "FAILED", "COMPONENT_BROKEN: FAILED_ROLLBACK_COMPLETE"),
    ("reject", "REJECTED", "the deployment document is invalid"),
    ("timeout", "TIMED_OUT", "IoT job timed out"),
])
def test_a_failed_deployment_reports_the_device_status_and_reason(world, behaviour, status, reason):
    device = world.register(behaviour=behaviour)

    _, outcome, _ = world.deploy(device)

    assert outcome.status == "failed"
    assert outcome.detail.startswith(f"{status}: ") and reason in outcome.detail


def test_a_failure_shows_the_error_stack_from_general_to_specific_and_a_hint(world):
    device = world.register(behaviour="fail")

    _, outcome, _ = world.deploy(device)

    assert outcome.errors[0] == "error stack: DEPLOYMENT_FAILURE > COMPONENT_UPDATE_ERROR > COMPONENT_BROKEN"
    assert outcome.errors[1] == "error types: COMPONENT_ERROR"
    assert outcome.errors[2].startswith("hint: the component failed to start")


def test_a_canceled_deployment_is_a_failure(world):
    device = world.register(polls_until_done=100)
    ctx, target = world.target()
    result = Executor(ctx, Reporter(stderr=io.StringIO()).progress).execute(target.plan_deploy(device))
    world.account.client("greengrassv2").cancel_deployment(deploymentId=result.variables["deployment_id"])

    outcome = target.wait_for_deployment(
        device, DeploymentRef.from_variables(result.variables), 60, Reporter(stderr=io.StringIO())
    )

    assert (outcome.status, outcome.detail.split(":")[0]) == ("failed", "CANCELED")


def test_an_offline_device_is_a_timeout_after_the_configured_wait(world):
    device = world.register(behaviour="offline")

    _, outcome, _ = world.deploy(device, timeout=12, deploy__poll_s=5.0)

    assert outcome.status == "timed_out"
    assert outcome.detail == "still QUEUED after 12s"
    assert world.account.sleeps[-3:] == [5.0, 5.0, 5.0]  # waited in poll steps, never for real


def test_a_device_that_never_connected_times_out_and_says_so(world):
    device = world.register(connect=False)

    plan, outcome, _ = world.deploy(device, timeout=1)

    assert list(deployment_step(plan).params["components"]) == [COMPONENT]  # no nucleus version to pin yet
    assert outcome.status == "timed_out"
    assert "never connected" in outcome.detail
    assert "install the nucleus" in world.progress.getvalue()


def test_a_component_broken_after_a_completed_deployment_is_a_failure(world):
    device = world.register(component_state="BROKEN")

    _, outcome, _ = world.deploy(device)

    assert outcome.status == "failed"
    assert outcome.detail.startswith(f"{COMPONENT} is BROKEN after the deployment")


def test_a_component_never_reported_running_is_a_timeout(world):
    device = world.register(component_state="STARTING")

    _, outcome, _ = world.deploy(device, timeout=10)

    assert outcome.status == "timed_out"
    assert "deployment completed but" in outcome.detail and "STARTING" in outcome.detail


def test_an_overwritten_artifact_breaks_its_version_and_deploy_publishes_a_new_one(world):
    device = world.register()
    _, first, _ = world.deploy(device)
    s3 = world.account.client("s3")
    key = f"greengrass-artifacts/{COMPONENT}/1.0.0/deeplens_edge.zip"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"overwritten by hand")  # what GDK users hit (gdk#300)
    gg = world.account.client("greengrassv2")
    other = world.register("Cam2")
    manual = gg.create_deployment(targetArn="arn:aws:iot:us-east-1:123456789012:thing/deeplens-Cam2",
                                  components=world.account.gg.deployments[first.deployment_id]["components"])
    for _ in range(3):
        gg.list_effective_deployments(coreDeviceThingName="deeplens-Cam2")
    [effective] = gg.list_effective_deployments(coreDeviceThingName="deeplens-Cam2")["effectiveDeployments"]

    _, outcome, _ = world.deploy(other)

    assert effective["deploymentId"] == manual["deploymentId"]
    detail, errors = describe_failure(effective)
    assert detail.startswith("FAILED: ARTIFACT_CHECKSUM_MISMATCH")
    assert "publishes a new version under a new key" in errors[-1]
    assert outcome.status == "succeeded"
    assert world.account.gg.deployments[outcome.deployment_id]["components"][COMPONENT]["componentVersion"] == "1.0.1"


# ---------------------------------------------------------------------------------------------- the command


def test_deploy_command_exits_0_and_reports_the_deployment(world, run_cli):
    world.register()

    result = run_cli("--output", "json", "deploy", "--device", "Cam", env=CLI_ENV)

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["device"]["thing_name"] == "deeplens-Cam" and document["device"]["target"] == "v2"
    assert document["deployment"]["status"] == "succeeded"
    assert document["deployment"]["component_state"] == "RUNNING"


def test_deploy_command_exits_3_with_the_reason_on_failure(world, run_cli):
    world.register(behaviour="fail")

    result = run_cli("deploy", "--device", "Cam", env=CLI_ENV)

    assert result.exit_code == 3
    assert "COMPONENT_BROKEN" in result.stderr
    assert "error stack: DEPLOYMENT_FAILURE > COMPONENT_UPDATE_ERROR > COMPONENT_BROKEN" in result.stdout


def test_the_failure_line_shows_what_the_device_reported_escaped(world, run_cli):
    """The reason in the exit-3 line is the device's text: terminal control in it is shown, not sent."""
    world.register(behaviour="fail", failure={"reason": "COMPONENT_BROKEN: \x1b]0;OWNED\x07\x1b[2J\u202e",
                                              "errorStack": ["DEPLOYMENT_FAILURE"], "errorTypes": ["COMPONENT_ERROR"]})

    result = run_cli("deploy", "--device", "Cam", env=CLI_ENV)

    assert result.exit_code == 3
    assert not {"\x1b", "\x07", "\u202e"} & set(result.stdout + result.stderr)
    assert "COMPONENT_BROKEN: \\x1b]0;OWNED\\x07\\x1b[2J\\u202e" in result.stderr.splitlines()[-1]


def test_deploy_command_exits_4_when_the_device_does_not_answer_in_time(world, run_cli):
    world.register(behaviour="offline")

    result = run_cli("deploy", "--device", "Cam", "--timeout", "1", env=CLI_ENV)

    assert result.exit_code == 4
    assert "did not finish in time" in result.stderr and "still QUEUED" in result.stderr


def test_the_device_is_found_by_name_among_both_targets(world, run_cli):
    world.register()
    world.account.client("iot").create_thing(thingName="deeplens_0a1b2c", attributePayload={"attributes": {
        "deeplens_name": "Classic", "deeplens_target": "v1"}})

    found = run_cli("deploy", "--device", "Cam", "--dry-run", "--output", "table", env=CLI_ENV)
    unknown = run_cli("deploy", "--device", "Nope", "--dry-run", env=CLI_ENV)

    assert found.exit_code == 0, found.stderr
    assert "deploy Cam (Greengrass V2)" in found.stdout
    assert unknown.exit_code == 1
    assert "no device named 'Nope'" in unknown.stderr and "Cam" in unknown.stderr


@pytest.mark.parametrize("connect", [True, False], ids=["offline", "never-connected"])
def test_a_deploy_rerun_after_a_timeout_waits_for_the_still_pending_deployment(world, run_cli, connect):
    """The README: a timed-out deployment stays queued and running deploy again waits for it (as V1 does).
    It used to say "nothing changed" and exit 0 while the device had not taken the deployment."""
    if connect:
        world.register(behaviour="offline")
    else:
        world.register(connect=False)
    first = run_cli("deploy", "--device", "Cam", "--timeout", "1", env=CLI_ENV)
    assert first.exit_code == 4, first.stderr
    deployments = set(world.account.gg.deployments)

    again = run_cli("deploy", "--device", "Cam", "--timeout", "1", env=CLI_ENV)

    assert again.exit_code == 4, (again.stdout, again.stderr)
    assert "nothing changed" not in again.stdout and "did not finish in time" in again.stderr
    assert set(world.account.gg.deployments) == deployments  # waited for the same one, no new deployment
