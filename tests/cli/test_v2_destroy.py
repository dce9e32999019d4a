"""`destroy` for Greengrass V2: per device the deployments (canceled, then deleted), the core device record, the
certificate (detached, deactivated, deleted), the policy and the thing; with every V2 device gone also the fleet
deployments, the empty fleets and the component versions with their artifacts. Face crops are never touched."""

from __future__ import annotations

import io

import pytest

from deeplens_cli.cli.output import Reporter
from deeplens_cli.engine.executor import Executor
from deeplens_cli.targets.greengrass_v2 import GreengrassV2Target
from deeplens_cli.targets.package import Package, build_package

try:
    from tests.cli.fake_greengrassv2 import v2_account  # noqa: F401 - a fixture
except ImportError:
    from fake_greengrassv2 import v2_account  # noqa: F401

BUCKET = "deeplens-test-face-crops"
COMPONENT = "com.deeplens.FaceCrops"
ENV = {"DEEPLENS_BUCKET": BUCKET, "DEEPLENS_DEPLOY_POLL_S": "0.01", "COLUMNS": "200"}


@pytest.fixture(scope="module")
def package() -> Package:
    return build_package()


@pytest.fixture
def deployed(v2_account, settings_for, package, tmp_path):
    """Cam and Door registered in fleet Lobby, connected, Cam deployed to directly and the fleet deployed to;
    a face crop already in the bucket."""
    settings = settings_for()
    ctx = v2_account.context(settings)
    target = GreengrassV2Target(ctx, settings, package)

    def apply(plan):
        return Executor(ctx, Reporter(stderr=io.StringIO()).progress).execute(plan)

    for name in ("Cam", "Door"):
        apply(target.plan_register_device(name, str(tmp_path / name), fleet="Lobby"))
        v2_account.gg.connect_core(f"deeplens-{name}", polls_until_done=100)  # deployments stay ACTIVE
    cam = next(d for d in target.list_devices() if d.name == "Cam")
    apply(target.plan_deploy(cam))
    apply(target.plan_deploy_fleet("Lobby"))
    v2_account.client("s3").put_object(Bucket=BUCKET, Key="faces/11_24/10_00/1732442400_abc-1.jpg", Body=b"face")
    return target


def things(account) -> list[str]:
    return sorted(t["thingName"] for t in account.client("iot").list_things()["things"])


def test_destroying_one_device_removes_all_of_its_resources(deployed, v2_account, run_cli):
    iot = v2_account.client("iot")
    [principal] = iot.list_thing_principals(thingName="deeplens-Cam")["principals"]

    result = run_cli("destroy", "--device", "Cam", "--yes", env=ENV)

    assert result.exit_code == 0, result.stderr
    assert things(v2_account) == ["deeplens-Door"]
    assert principal.rsplit("/", 1)[-1] not in [c["certificateId"] for c in iot.list_certificates()["certificates"]]
    assert "deeplens-v2-core-Cam" not in [p["policyName"] for p in iot.list_policies()["policies"]]
    assert "deeplens-Cam" not in v2_account.gg.cores
    targets = {d["targetArn"].rsplit("/", 1)[-1] for d in v2_account.gg.deployments.values()}
    assert targets == {"Lobby"}  # the thing's deployment is gone, the fleet's stays for Door
    assert v2_account.gg.operations("CancelDeployment") == ["CancelDeployment"]  # it was ACTIVE
    assert v2_account.gg.components  # Door still runs the component
    assert "bucket deeplens-test-face-crops and its face crops were kept" in result.stdout


def test_destroying_everything_also_removes_component_versions_artifacts_and_empty_fleets(deployed, v2_account,
                                                                                         run_cli):
    result = run_cli("destroy", "--yes", env=ENV)

    assert result.exit_code == 0, result.stderr
    assert things(v2_account) == []
    assert v2_account.client("iot").list_thing_groups()["thingGroups"] == []
    assert v2_account.gg.deployments == {} and v2_account.gg.components == {} and v2_account.gg.cores == {}
    keys = [o["Key"] for o in v2_account.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == ["faces/11_24/10_00/1732442400_abc-1.jpg"]


def test_a_second_destroy_has_nothing_to_do(deployed, v2_account, settings_for, package, run_cli):
    run_cli("destroy", "--yes", env=ENV)
    ctx = v2_account.context(settings_for())

    plan = GreengrassV2Target(ctx, settings_for(), package).plan_destroy(None)
    again = run_cli("destroy", "--yes", env=ENV)

    assert plan.is_noop and ctx.recorder.mutating == []
    assert again.exit_code == 0


def test_what_deeplens_cli_did_not_create_is_left_alone(deployed, v2_account, settings_for, package):
    iot = v2_account.client("iot")
    iot.create_thing(thingName="someone-elses")
    iot.add_thing_to_thing_group(thingGroupName="Lobby", thingName="someone-elses")
    v2_account.client("greengrassv2").create_component_version(
        inlineRecipe=(
            '{"RecipeFormatVersion": "2020-01-25", "ComponentName": "com.deeplens.FaceCrops", "ComponentVersion": '
            '"9.0.0"}'
        )
    )
    for device in deployed.list_devices():
        Executor(deployed.ctx, Reporter(stderr=io.StringIO()).progress).execute(deployed.plan_destroy(device))

    plan = GreengrassV2Target(v2_account.context(settings_for()), settings_for(), package).plan_destroy(None)

    kept = {a.resource: a.reason for a in plan.actions if a.verb == "noop"}
    assert kept == {"iot-thing-group/Lobby": "kept: it still has members",
                    f"gg-component/{COMPONENT}@9.0.0": "kept: not published by deeplens-cli"}
    assert f"gg-component/{COMPONENT}@1.0.0" in [a.resource for a in plan.actions if a.verb == "delete"]


def test_destroy_dry_run_lists_the_steps_in_safe_order(deployed, run_cli, v2_account):
    result = run_cli("destroy", "--device", "Cam", "--dry-run", env=ENV)

    assert result.exit_code == 0, result.stderr
    order = [line.split("\t")[1] for line in result.stdout.splitlines() if line.startswith("delete\t")]  # text output
    kinds = [resource.split("/")[0] for resource in order]
    assert kinds == ["gg-deployment", "gg-core-device", "iot-certificate", "iot-policy", "iot-thing"]
    assert things(v2_account) == ["deeplens-Cam", "deeplens-Door"]


def test_certificate_teardown_detaches_and_deactivates_before_deleting(deployed, v2_account):
    cam = next(d for d in deployed.list_devices() if d.name == "Cam")

    plan = deployed.plan_destroy(cam)

    [certificate] = [a for a in plan.actions if a.resource.startswith("iot-certificate/")]
    assert [s.operation for s in certificate.steps] == ["detach_thing_principal", "detach_policy",
                                                        "update_certificate", "delete_certificate"]
    assert certificate.steps[2].params["newStatus"] == "INACTIVE"
