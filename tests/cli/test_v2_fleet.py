"""Fleets: `register-device --fleet G` puts devices in an IoT thing group; `deploy --fleet G` deploys to the group
with a rollout rate and abort criteria, waits, and reports per device how many succeeded, failed (and why) or are
still pending."""

from __future__ import annotations

import io
import json

import pytest

from deeplens_cli.cli.output import Reporter
from deeplens_cli.engine.executor import Executor
from deeplens_cli.engine.plan import ApiCall
from deeplens_cli.errors import DeeplensError
from deeplens_cli.targets.base import DeploymentRef
from deeplens_cli.targets.greengrass_v2 import GreengrassV2Target
from deeplens_cli.targets.package import Package, build_package

try:
    from tests.cli.fake_greengrassv2 import v2_account  # noqa: F401 - a fixture
except ImportError:
    from fake_greengrassv2 import v2_account  # noqa: F401

COMPONENT = "com.deeplens.FaceCrops"
GROUP_ARN = "arn:aws:iot:us-east-1:123456789012:thinggroup/Lobby"


@pytest.fixture(scope="module")
def package() -> Package:
    return build_package()


class Fleet:
    def __init__(self, account, settings_for, package, tmp_path) -> None:
        self.account, self.settings, self.package, self.tmp_path = account, settings_for(), package, tmp_path
        self.progress = io.StringIO()

    def target(self) -> tuple:
        ctx = self.account.context(self.settings)
        return ctx, GreengrassV2Target(ctx, self.settings, self.package)

    def add(self, name: str, connect: bool = True, **core) -> None:
        ctx, target = self.target()
        plan = target.plan_register_device(name, str(self.tmp_path / name), fleet="Lobby")
        Executor(ctx, Reporter(stderr=io.StringIO()).progress).execute(plan)
        if connect:
            self.account.gg.connect_core(f"deeplens-{name}", **core)

    def deploy(self, timeout: float = 60, **options):
        ctx, target = self.target()
        plan = target.plan_deploy_fleet("Lobby", **options)
        result = None if plan.is_noop else Executor(ctx, Reporter(stderr=io.StringIO()).progress).execute(plan)
        outcome = (
            target.wait_for_fleet("Lobby", DeploymentRef.from_variables(result.variables), timeout,
                                  Reporter(stderr=self.progress))
            if result
            else None
        )
        return plan, outcome


@pytest.fixture
def fleet(v2_account, settings_for, package, tmp_path) -> Fleet:
    return Fleet(v2_account, settings_for, package, tmp_path)


def deployment_params(plan) -> dict:
    [step] = [s for a in plan.actions for s in a.steps if isinstance(s, ApiCall) and s.operation == "create_deployment"]
    return dict(step.params)


def test_fleet_deployment_targets_the_group_with_rollout_rate_and_abort_criteria(fleet):
    for name in ("Cam1", "Cam2"):
        fleet.add(name)

    plan, outcome = fleet.deploy(rollout_per_minute=10, abort_failure_percent=20.0)

    params = deployment_params(plan)
    assert params["targetArn"] == GROUP_ARN
    assert params["iotJobConfiguration"] == {
        "jobExecutionsRolloutConfig": {"maximumPerMinute": 10},
        "abortConfig": {"criteriaList": [{"failureType": "ALL", "action": "CANCEL", "thresholdPercentage": 20.0,
                                          "minNumberOfExecutedThings": 2}]}}
    assert params["components"]["aws.greengrass.Nucleus"] == {"componentVersion": "2.14.3"}
    assert outcome.status == "succeeded"
    assert outcome.detail == "2 of 2 succeeded, 0 failed, 0 pending"
    assert {d["status"] for d in outcome.extra["devices"].values()} == {"SUCCEEDED"}


def test_the_nucleus_is_not_pinned_when_devices_run_different_versions(fleet):
    fleet.add("Cam1", nucleus_version="2.14.3")
    fleet.add("Cam2", nucleus_version="2.12.0")

    plan, _ = fleet.deploy()

    assert list(deployment_params(plan)["components"]) == [COMPONENT]


def test_per_device_outcomes_name_each_failure_and_its_reason(fleet):
    fleet.add("Cam1")
    fleet.add("Cam2", behaviour="fail")
    fleet.add("Cam3")

    _, outcome = fleet.deploy()

    assert outcome.status == "failed"
    assert outcome.detail == "2 of 3 succeeded, 1 failed, 0 pending"
    assert outcome.errors == ("deeplens-Cam2: FAILED: COMPONENT_BROKEN: FAILED_ROLLBACK_COMPLETE: "
                              "com.deeplens.FaceCrops is broken",)
    assert (outcome.extra["succeeded"], outcome.extra["failed"], outcome.extra["pending"]) == (2, 1, 0)
    assert "fleet Lobby: 2 succeeded, 1 failed, 0 pending" in fleet.progress.getvalue()


def test_devices_that_do_not_answer_are_reported_pending_at_the_timeout(fleet):
    fleet.add("Cam1")
    fleet.add("Cam2", behaviour="offline")
    fleet.add("Cam3", connect=False)

    _, outcome = fleet.deploy(timeout=30)

    assert outcome.status == "timed_out"
    assert outcome.detail == "1 of 3 succeeded, 0 failed, 2 pending after 30s: deeplens-Cam2, deeplens-Cam3"


def test_a_rollout_crossing_the_abort_threshold_is_canceled_and_reported(fleet):
    for name in ("Cam1", "Cam2", "Cam3"):
        fleet.add(name, behaviour="fail")
    for name in ("Cam4", "Cam5"):
        fleet.add(name)
    fleet.add("Cam6", behaviour="offline")

    _, outcome = fleet.deploy(abort_failure_percent=50.0)

    assert outcome.status == "failed"
    assert outcome.detail == "2 of 6 succeeded, 3 failed, 1 canceled, 0 pending (rollout aborted)"
    assert outcome.extra["devices"]["deeplens-Cam6"]["status"] == "CANCELED"


def test_an_unchanged_fleet_gets_no_new_deployment(fleet):
    fleet.add("Cam1")
    fleet.deploy(rollout_per_minute=10)

    plan, outcome = fleet.deploy(rollout_per_minute=10)
    changed, _ = fleet.deploy(rollout_per_minute=20)

    assert plan.is_noop and outcome is None
    assert changed.actions[-1].verb == "update" and "rollout settings differ" in changed.actions[-1].reason


def test_an_unknown_fleet_is_an_error_naming_it(fleet):
    with pytest.raises(DeeplensError, match="fleet Nowhere: no such IoT thing group"):
        fleet.target()[1].plan_deploy_fleet("Nowhere")


def test_deploy_fleet_command_reports_counts_in_json(fleet, run_cli):
    for name in ("Cam1", "Cam2"):
        fleet.add(name)

    result = run_cli("--output", "json", "deploy", "--fleet", "Lobby", "--rollout-per-minute", "5",
                     "--abort-failure-percent", "50", env={"DEEPLENS_BUCKET": "deeplens-test-face-crops",
                                                           "DEEPLENS_DEPLOY_POLL_S": "0.01"})

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["fleet"] == "Lobby"
    assert (document["deployment"]["succeeded"], document["deployment"]["failed"]) == (2, 0)
    assert set(document["deployment"]["devices"]) == {"deeplens-Cam1", "deeplens-Cam2"}


def test_deploy_fleet_command_exits_3_when_a_device_fails(fleet, run_cli):
    fleet.add("Cam1")
    fleet.add("Cam2", behaviour="reject")

    result = run_cli("deploy", "--fleet", "Lobby", env={"DEEPLENS_BUCKET": "deeplens-test-face-crops",
                                                        "DEEPLENS_DEPLOY_POLL_S": "0.01"})

    assert result.exit_code == 3
    assert "1 of 2 succeeded, 1 failed" in result.stderr
    assert "deeplens-Cam2: REJECTED" in result.stdout


def test_device_and_fleet_together_are_a_usage_error_before_any_aws_call(run_cli, aws_env):
    result = run_cli("deploy", "--device", "Cam", "--fleet", "Lobby", env={"DEEPLENS_BUCKET": "deeplens-x-crops"})

    assert result.exit_code == 2
    assert "--device and --fleet are exclusive" in result.stderr
