"""`destroy` for Greengrass V1 devices: everything deeplens-cli created goes, in the order AWS accepts; the
bucket and its face crops stay; a device the tool did not register is left alone; nothing happens unconfirmed."""

from __future__ import annotations

import pytest
from fake_greengrassv2 import v2_account  # noqa: F401 - registers the fixture

import deeplens_cli.targets.greengrass_v1.target as v1_target
from deeplens_cli.engine.executor import ExecutionError
from tests.support.greengrass_v1 import ScriptedStatus, action, create_v1_roles, fail_call

pytestmark = pytest.mark.usefixtures("shared_botocore_models")  # one botocore model loader per module

BUCKET = "deeplens-test-face-crops"
ENV = {"DEEPLENS_BUCKET": BUCKET}


def leftovers(account):
    """Everything of ours that could be left behind, by kind (empty lists when nothing is)."""
    iot, gg, lam = account.client("iot"), account.client("greengrass"), account.client("lambda")
    return {
        "things": iot.list_things()["things"],
        "certificates": iot.list_certificates()["certificates"],
        "policies": iot.list_policies()["policies"],
        "groups": gg.list_groups()["Groups"],
        "core definitions": gg.list_core_definitions()["Definitions"],
        "function definitions": gg.list_function_definitions()["Definitions"],
        "resource definitions": gg.list_resource_definitions()["Definitions"],
        "subscription definitions": gg.list_subscription_definitions()["Definitions"],
        "functions": lam.list_functions()["Functions"],
    }


def nothing_left(account):
    return {kind: items for kind, items in leftovers(account).items() if items} == {}


def deploy_one_device(account, run_cli, tmp_path, monkeypatch):
    create_v1_roles(account.client("iam"))
    monkeypatch.setattr(v1_target, "status_source_for", lambda ctx: ScriptedStatus("Success"))
    s3 = account.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="faces/11_24/2_50/1795920000_abc-1.jpg", Body=b"\xff\xd8face")
    for args in (("register-device", "--name", "MyDevice", "--greengrass", "v1", "--out", str(tmp_path / "bundle")),
                 ("deploy", "--device", "MyDevice")):
        result = run_cli(*args, env=ENV)
        assert result.exit_code == 0, result.stderr
    return account


@pytest.fixture
def deployed_cli(v2_account, run_cli, tmp_path, monkeypatch):  # noqa: F811 - the fixture imported above
    """A registered and deployed V1 device (through the CLI) and a bucket holding face crops, in an account where
    both targets answer (moto for V1, the fake Greengrass V2 endpoint for V2), as `destroy` asks both."""
    return deploy_one_device(v2_account, run_cli, tmp_path, monkeypatch)


def test_destroy_where_greengrass_v2_does_not_answer_still_removes_everything(aws, run_cli, tmp_path, monkeypatch):
    """moto has no Greengrass V2 (404 "Not yet implemented"): the V2 side has nothing to remove, the rest goes."""
    account = deploy_one_device(aws, run_cli, tmp_path, monkeypatch)

    result = run_cli("destroy", "--yes", env=ENV)

    assert result.exit_code == 0, result.stderr
    assert nothing_left(account), leftovers(account)


class TestDestroyCommand:

    def test_everything_of_ours_goes_and_the_face_crops_stay(self, deployed_cli, run_cli):
        result = run_cli("destroy", "--yes", env=ENV)
        assert result.exit_code == 0, result.stderr
        assert nothing_left(deployed_cli), leftovers(deployed_cli)
        keys = [o["Key"] for o in deployed_cli.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]]
        assert keys == ["faces/11_24/2_50/1795920000_abc-1.jpg"]
        assert "face crops were kept" in result.stdout

    def test_one_device_leaves_the_shared_function(self, deployed_cli, run_cli):
        result = run_cli("destroy", "--device", "MyDevice", "--yes", env=ENV)
        assert result.exit_code == 0, result.stderr
        left = {kind: items for kind, items in leftovers(deployed_cli).items() if items}
        assert list(left) == ["functions"]

    def test_a_second_destroy_has_nothing_to_do(self, deployed_cli, run_cli, recorded_aws):
        assert run_cli("destroy", "--yes", env=ENV).exit_code == 0
        recorded_aws.clear()
        again = run_cli("destroy", "--yes", env=ENV)
        assert again.exit_code == 0, again.stderr
        assert recorded_aws.mutating == []

    def test_without_yes_and_without_a_terminal_nothing_is_deleted(self, deployed_cli, run_cli):
        before = leftovers(deployed_cli)
        result = run_cli("destroy", env=ENV)
        assert result.exit_code == 2
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "--yes" in errors[0] and result.stderr.rstrip().endswith(errors[0])
        assert leftovers(deployed_cli) == before


class TestDestroyPlan:

    def test_deployments_are_reset_before_the_group_is_deleted(self, world):
        device = world.register()
        world.deploy(device)
        plan = world.target().plan_destroy(device)
        group = action(plan, "greengrass-group/")
        assert [s.describe() for s in group.steps] == ["greengrass:reset_deployments", "greengrass:delete_group"]
        assert plan.actions[0] is group  # before the definitions it references

    def test_certificates_are_detached_and_deactivated_before_deletion(self, world):
        device = world.register()
        certificate = action(world.target().plan_destroy(device), "iot-certificate/")
        assert [s.describe() for s in certificate.steps] == [
            "iot:detach_thing_principal", "iot:detach_policy", "iot:update_certificate", "iot:delete_certificate"]

    def test_policy_and_thing_deletion_wait_while_iot_still_detaches(self, world):
        # DetachPolicy / DetachThingPrincipal complete asynchronously on real AWS: right after them IoT may still
        # refuse to delete the policy or the thing. The teardown waits (injected sleep) instead of failing.
        device = world.register()
        iot = world.ctx.client("iot")
        policy_refusals = fail_call(iot, "DeletePolicy", "DeleteConflictException",
                                    "The policy cannot be deleted as the policy is attached to one or more principals",
                                    status=409, times=2)
        thing_refusals = fail_call(iot, "DeleteThing", "InvalidRequestException",
                                   "Cannot delete. Thing has attached principals", times=1)
        world.apply(world.target().plan_destroy(device))
        assert (policy_refusals, thing_refusals) == ([2], [1])
        assert world.iot.list_policies()["policies"] == []
        assert world.iot.list_things()["things"] == []

    def test_an_interrupted_registration_is_cleaned_up_too(self, world, tmp_path):
        fail_call(world.ctx.client("greengrass"), "CreateGroup", "AccessDeniedException",
                  "not authorized to perform: greengrass:CreateGroup", status=403, times=1)
        with pytest.raises(ExecutionError):
            world.apply(world.target().plan_register_device("MyDevice", str(tmp_path / "bundle")))
        (device,) = world.target().list_devices()
        world.apply(world.target().plan_destroy(device))
        world.apply(world.target().plan_destroy(None))
        assert nothing_left(world.aws), leftovers(world.aws)

    def test_a_deeplens_registered_by_the_console_is_left_alone(self, world):
        gg = world.gg
        core = gg.create_core_definition(Name="console", InitialVersion={"Cores": [{
            "Id": "core", "ThingArn": "arn:aws:iot:us-east-1:123456789012:thing/deeplens_ConsoleRegisteredDevice1",
            "CertificateArn": "arn:aws:iot:us-east-1:123456789012:cert/abc", "SyncShadow": True}]})
        gg.create_group(Name="LobbyCam", InitialVersion={"CoreDefinitionVersionArn": core["LatestVersionArn"]})
        (device,) = world.target().list_devices()
        assert device.details == {"managed": False}
        plan = world.target().plan_destroy(device)
        assert plan.is_noop
        assert "left in place" in plan.actions[0].reason

    def test_nothing_is_read_as_deleted_when_it_is_already_gone(self, world):
        device = world.register()
        world.apply(world.target().plan_destroy(device))
        assert world.target().plan_destroy(device).is_noop
