"""The deploy contract every target keeps, written once and run for each row of the registry's TargetSpec table.

- nothing changed: a second deploy plans nothing and makes not one mutating call;
- --force: deploys the same project again with exactly one call, the one that starts a deployment;
- --dry-run: shows the deployment and changes nothing;
- a failed last deployment is retried without changes, and without publishing anything again;
- a deploy interrupted midway is finished by the next run, with nothing made twice.

The drivers (tests/support/target_drivers.py) run each target as the CLI does, on its emulated account.
Target-specific behaviour stays in tests/cli/test_v1_*.py and test_v2_*.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deeplens_cli.engine.executor import ExecutionError
from deeplens_cli.targets import names
from deeplens_cli.targets.greengrass_v1 import naming as v1_naming
from deeplens_cli.targets.greengrass_v2 import naming as v2_naming
from deeplens_cli.targets.registry import TARGET_NAMES, TARGET_SPECS
from tests.support.target_drivers import DRIVERS, TargetDriver

pytestmark = pytest.mark.usefixtures("shared_botocore_models")

BUCKET_ENV = {"DEEPLENS_BUCKET": "deeplens-test-face-crops", "DEEPLENS_DEPLOY_POLL_S": "0.01", "COLUMNS": "200"}


@pytest.fixture(params=TARGET_NAMES)
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> TargetDriver:
    return DRIVERS[request.param](request, tmp_path)


def deployment_action(run_plan):
    return run_plan.actions[-1]


def test_every_registered_target_has_a_driver() -> None:
    assert sorted(DRIVERS) == sorted(TARGET_NAMES)


def test_the_registry_has_one_row_per_target_name() -> None:
    """The settings schema reads the names from targets/names.py (it may not import the table); the table's rows
    and the target packages' own TARGET must be those names, once each."""
    assert tuple(spec.name for spec in TARGET_SPECS) == names.TARGET_NAMES
    assert names.DEFAULT_TARGET in names.TARGET_NAMES
    assert (v1_naming.TARGET, v2_naming.TARGET) == names.TARGET_NAMES


def test_nothing_changed_means_no_mutating_call_and_no_deployment(driver: TargetDriver) -> None:
    device = driver.register()
    first = driver.deploy(device)
    assert first.outcome.status == "succeeded", first.outcome
    made = driver.inventory(device)

    again = driver.deploy(device)

    assert again.plan.is_noop and again.outcome is None
    assert again.mutating == []
    assert driver.up_to_date_words in deployment_action(again.plan).reason
    assert driver.inventory(device) == made and made["deployments"] == 1


def test_force_deploys_the_same_project_again_with_one_call(driver: TargetDriver) -> None:
    device = driver.register()
    first = driver.deploy(device)
    made = driver.inventory(device)

    forced = driver.deploy(device, force=True)

    assert forced.mutating == [driver.deployment_call]  # nothing published or versioned again
    assert deployment_action(forced.plan).verb != "noop" and "--force" in deployment_action(forced.plan).reason
    assert forced.outcome.status == "succeeded" and forced.outcome.deployment_id
    assert forced.outcome.deployment_id != first.outcome.deployment_id
    assert driver.inventory(device) == {**made, "deployments": 2}


def test_dry_run_shows_the_deployment_and_changes_nothing(driver: TargetDriver, run_cli, recorded_aws) -> None:
    device = driver.register()
    before = driver.inventory(device)
    recorded_aws.clear()  # the registration's contexts

    result = run_cli("deploy", "--device", device.name, "--dry-run", env=BUCKET_ENV)

    assert result.exit_code == 0, result.stderr
    assert driver.deployment_resource(device) in result.stdout and driver.first_deploy_words in result.stdout
    assert recorded_aws.contexts and recorded_aws.mutating == []
    assert driver.inventory(device) == before
    assert set(before.values()) == {0}, before  # registered, never deployed: nothing published yet


def test_a_failed_last_deployment_is_retried_without_publishing_again(driver: TargetDriver) -> None:
    device = driver.register()
    driver.fail_deployments(device)
    failed = driver.deploy(device)
    assert failed.outcome.status == "failed", failed.outcome
    driver.heal(device)

    retried = driver.deploy(device)

    assert deployment_action(retried.plan).verb != "noop"
    assert driver.failed_last_words(device) in deployment_action(retried.plan).reason
    assert retried.mutating == [driver.deployment_call]
    assert retried.outcome.status == "succeeded", retried.outcome


def test_an_interrupted_deploy_is_finished_by_the_next_run_with_nothing_made_twice(driver: TargetDriver) -> None:
    device = driver.register()
    service, operation = driver.interrupted_call
    driver.interrupt_next_run_at(driver.interrupted_call)

    with pytest.raises(ExecutionError, match=operation):
        driver.deploy(device)
    done_before = [call for call in driver.last_mutating if call != driver.interrupted_call]
    assert done_before, "the interruption came before any change: it tests nothing"

    resumed = driver.deploy(device)

    assert resumed.outcome.status == "succeeded", resumed.outcome
    assert not set(resumed.mutating) & set(done_before), "the re-run repeated what the first run had done"
    assert driver.interrupted_call in resumed.mutating
    counts = driver.inventory(device)
    assert set(counts.values()) == {1}, counts  # one of each: nothing made twice, nothing missing
    assert driver.deploy(device).plan.is_noop
