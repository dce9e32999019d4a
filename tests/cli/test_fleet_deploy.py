"""Fleet deployments in bulk: waiting reads the rollout's IoT job execution summaries and ListCoreDevices filtered
by the group - never one call per member per poll - and an unchanged `deploy --fleet` re-run costs the same
calls for 10 members as for 120."""

from __future__ import annotations

import io
from collections import Counter

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

FLEET = "Lobby"


@pytest.fixture(scope="module")
def package() -> Package:
    return build_package()


def add_members(account, count: int, start: int = 0, **core) -> None:
    iot = account.client("iot")
    if start == 0:
        iot.create_thing_group(thingGroupName=FLEET)
    for number in range(start, start + count):
        thing = f"deeplens-Cam{number:04d}"
        iot.create_thing(thingName=thing, attributePayload={"attributes": {
            "deeplens_target": "v2", "deeplens_name": f"Cam{number:04d}"}})
        iot.add_thing_to_thing_group(thingGroupName=FLEET, thingName=thing)
        account.gg.connect_core(thing, **core)


def deploy_and_wait(account, settings, package, poll_counts: list[int] | None = None, force: bool = False):
    ctx = account.context(settings)
    target = GreengrassV2Target(ctx, settings, package)
    plan = target.plan_deploy_fleet(FLEET, force=force)
    planned = len(ctx.recorder.calls)
    if plan.is_noop:
        return planned, None, ctx
    result = Executor(ctx, Reporter(stderr=io.StringIO()).progress).execute(plan)
    before = len(ctx.recorder.calls)
    # simulated time (the context's sleep only records): 1 s is 100 polls at the tests' deploy.poll_s of 0.01 s
    outcome = target.wait_for_fleet(FLEET, DeploymentRef.from_variables(result.variables), 1,
                                    Reporter(stderr=io.StringIO()))
    if poll_counts is not None:
        poll_counts.append(len(ctx.recorder.calls) - before)
    return planned, outcome, ctx


def test_a_fleet_wait_reads_the_job_and_the_core_list_not_each_member(v2_account, settings_for, package):
    settings = settings_for(deploy__poll_s=0.01)
    add_members(v2_account, 40)

    _, outcome, ctx = deploy_and_wait(v2_account, settings, package)

    assert outcome.status == "succeeded" and outcome.extra["succeeded"] == 40
    operations = Counter(op for _, op in ctx.recorder.calls)
    assert operations["ListEffectiveDeployments"] == 0 and operations["GetCoreDevice"] <= 40  # pin: first deploy only
    assert operations["ListJobExecutionsForJob"] >= 1 and operations["ListCoreDevices"] >= 1


def test_the_cost_of_a_wait_does_not_grow_with_the_fleet(v2_account, settings_for, package):
    settings = settings_for(deploy__poll_s=0.01)
    add_members(v2_account, 10)
    small: list[int] = []
    deploy_and_wait(v2_account, settings, package, small)
    add_members(v2_account, 110, start=10)
    large: list[int] = []
    _, outcome, _ = deploy_and_wait(v2_account, settings, package, large, force=True)

    assert outcome.status == "succeeded" and outcome.extra["succeeded"] == 120
    # 110 more members: one more page of ListCoreDevices per poll (100 a page) and of the member list,
    # nothing per member
    assert large[0] - small[0] <= 120 // 25


def test_failed_members_are_read_one_by_one_for_their_reason_and_only_they(v2_account, settings_for, package):
    settings = settings_for(deploy__poll_s=0.01)
    add_members(v2_account, 6)
    add_members(v2_account, 2, start=6, behaviour="fail")

    _, outcome, ctx = deploy_and_wait(v2_account, settings, package)

    assert outcome.status == "failed" and outcome.extra["failed"] == 2
    assert Counter(op for _, op in ctx.recorder.calls)["ListEffectiveDeployments"] == 2
    assert all("COMPONENT_BROKEN" in error for error in outcome.errors)


def test_an_unchanged_fleet_re_run_costs_the_same_for_10_and_120_members(v2_account, settings_for, package):
    settings = settings_for(deploy__poll_s=0.01)
    add_members(v2_account, 10)
    deploy_and_wait(v2_account, settings, package)
    at_10, outcome, _ = deploy_and_wait(v2_account, settings, package)
    assert outcome is None  # nothing changed

    add_members(v2_account, 110, start=10)
    at_120, outcome, ctx = deploy_and_wait(v2_account, settings, package)

    assert outcome is None and at_120 == at_10
    assert not ctx.recorder.mutating
