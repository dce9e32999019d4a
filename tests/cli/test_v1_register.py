"""`register-device --greengrass v1`: the DeepLens registration steps 1-3 as IoT + Greengrass V1 resources and a
device bundle; re-runs are no-ops, and an interrupted registration converges on the next run."""

from __future__ import annotations

import json
import re
import stat

import pytest

from deeplens_cli.account.roles import GROUP_ROLE
from deeplens_cli.engine.executor import ExecutionError
from deeplens_cli.errors import DeeplensError
from deeplens_cli.targets.greengrass_v1 import GreengrassV1Target, thing_name_for
from deeplens_cli.targets.greengrass_v1.core_bundle import ROOT_CA_URL
from deeplens_cli.targets.greengrass_v1.naming import policy_name_for
from deeplens_cli.targets.iot import PENDING_ATTRIBUTE
from tests.support.greengrass_v1 import V1World, definition_items, fail_call, group_definition

pytestmark = pytest.mark.usefixtures("shared_botocore_models")  # one botocore model loader per module


def only(items):
    (item,) = items
    return item


def things(world):
    return world.iot.list_things()["things"]


def certificates(world):
    return world.iot.list_certificates()["certificates"]


def named(definitions, suffix):
    return [d for d in definitions if d["Name"].endswith(suffix)]


@pytest.fixture(scope="class")
def registered(gg_account_class, tmp_path_factory):
    """One registration shared by a class of read-only tests: (world, device, bundle folder)."""
    tmp = tmp_path_factory.mktemp("register")
    world = V1World(gg_account_class, tmp)
    device = world.register("MyDevice", tmp / "bundle")
    return world, device, tmp / "bundle"


class TestFreshRegistration:

    def test_the_thing_is_named_like_a_deeplens_and_carries_the_device_name(self, registered):
        world, device, _ = registered
        assert re.fullmatch(r"deeplens_[A-Za-z0-9_-]{22}", device.thing_name)
        attributes = world.iot.describe_thing(thingName=device.thing_name)["attributes"]
        assert attributes == {"deeplens_name": "MyDevice", "deeplens_target": "v1"}
        assert device.thing_name == thing_name_for(world.ctx.account_id, "us-east-1", "MyDevice")

    def test_one_active_certificate_is_attached_to_the_thing(self, registered):
        world, device, _ = registered
        principal = only(world.iot.list_thing_principals(thingName=device.thing_name)["principals"])
        certificate_id = principal.rsplit("/", 1)[1]
        described = world.iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]
        assert described["status"] == "ACTIVE"
        assert len(certificates(world)) == 1

    def test_the_minimal_core_policy_is_attached_and_scoped_to_the_group(self, registered):
        world, device, _ = registered
        principal = only(world.iot.list_thing_principals(thingName=device.thing_name)["principals"])
        policy = only(world.iot.list_attached_policies(target=principal)["policies"])
        assert policy["policyName"] == policy_name_for(device.thing_name)
        assert policy["policyName"].startswith("deeplens")  # the only names the DeepLens service may attach
        document = json.loads(world.iot.get_policy(policyName=policy["policyName"])["policyDocument"])
        actions = {a for statement in document["Statement"] for a in statement["Action"]}
        assert {"greengrass:AssumeRoleForGroup", "greengrass:GetDeployment", "greengrass:UpdateCoreDeploymentStatus",
                "iot:Connect", "iot:Publish"} <= actions
        resources = [r for statement in document["Statement"] for r in statement["Resource"]]
        assert any(f"/greengrass/groups/{device.group_id}/deployments/" in r for r in resources)
        assert not any("/groups/*" in r for r in resources)

    def test_the_group_holds_a_core_of_this_thing_and_certificate(self, registered):
        world, device, _ = registered
        group = world.gg.get_group(GroupId=device.group_id)
        assert group["Name"] == "deeplens-MyDevice" == device.group_name
        definition = world.gg.get_group_version(
            GroupId=device.group_id, GroupVersionId=group["LatestVersion"]
        )["Definition"]

        core = only(definition_items(world.gg, definition["CoreDefinitionVersionArn"]))
        principal = only(world.iot.list_thing_principals(thingName=device.thing_name)["principals"])
        assert core["ThingArn"] == device.thing_arn
        assert core["CertificateArn"] == principal

    def test_the_group_role_is_associated(self, registered):
        world, device, _ = registered
        role_arn = world.aws.client("iam").get_role(RoleName=GROUP_ROLE)["Role"]["Arn"]
        assert world.gg.get_associated_role(GroupId=device.group_id)["RoleArn"] == role_arn

    def test_the_bundle_holds_keys_certificate_and_core_config(self, registered):
        world, device, bundle = registered
        principal = only(world.iot.list_thing_principals(thingName=device.thing_name)["principals"])
        certificate_id = principal.rsplit("/", 1)[1]
        prefix = certificate_id[:10]
        pem = world.iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]["certificatePem"]
        assert (bundle / "certs" / f"{prefix}.cert.pem").read_text() == pem
        assert "PRIVATE KEY" in (bundle / "certs" / f"{prefix}.private.key").read_text()
        assert "PUBLIC KEY" in (bundle / "certs" / f"{prefix}.public.key").read_text()
        config = json.loads((bundle / "config" / "config.json").read_text())
        assert config["coreThing"]["thingArn"] == device.thing_arn
        assert config["coreThing"]["certPath"] == f"{prefix}.cert.pem"
        assert config["coreThing"]["keyPath"] == f"{prefix}.private.key"
        assert config["coreThing"]["ggHost"] == "greengrass-ats.iot.us-east-1.amazonaws.com"
        assert config["coreThing"]["iotHost"].endswith("amazonaws.com")
        assert ROOT_CA_URL in (bundle / "README.txt").read_text()

    def test_the_private_key_and_the_bundle_folder_are_private(self, registered):
        _, _, bundle = registered
        (key,) = (bundle / "certs").glob("*.private.key")
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE(bundle.stat().st_mode) & 0o077 == 0
        assert stat.S_IMODE((bundle / "certs").stat().st_mode) & 0o077 == 0


class TestSecrets:

    def test_the_private_key_is_never_in_the_plan_or_the_result(self, world, tmp_path):
        target = world.target()
        plan = target.plan_register_device("MyDevice", str(tmp_path / "bundle"))
        result = world.apply(plan)
        (key_file,) = (tmp_path / "bundle" / "certs").glob("*.private.key")
        key = key_file.read_text().strip().splitlines()[1]  # a line of the key body
        documents = json.dumps(plan.to_dict(), default=str) + json.dumps(result.to_dict(), default=str)
        assert key not in documents and "PRIVATE KEY" not in documents
        assert "PRIVATE KEY" not in json.dumps(result.variables, default=str)

    def test_the_cli_never_prints_the_private_key(self, gg_account, run_cli, tmp_path):
        result = run_cli("--output", "json", "register-device", "--name", "MyDevice", "--greengrass", "v1",
                         "--out", str(tmp_path / "bundle"), env={"DEEPLENS_BUCKET": "deeplens-test-face-crops"})
        assert result.exit_code == 0, result.stderr
        document = json.loads(result.stdout)  # exactly one JSON document
        assert document["bundle"] == str(tmp_path / "bundle")
        (key_file,) = (tmp_path / "bundle" / "certs").glob("*.private.key")
        body = key_file.read_text().strip().splitlines()[1]
        assert body not in result.stdout + result.stderr
        assert "PRIVATE KEY" not in result.stdout + result.stderr


class TestRerun:

    def test_registering_an_existing_device_again_changes_nothing(self, gg_account, run_cli, recorded_aws, tmp_path):
        env = {"DEEPLENS_BUCKET": "deeplens-test-face-crops"}
        first = run_cli("register-device", "--name", "MyDevice", "--greengrass", "v1", "--out", str(tmp_path / "a"),
                        env=env)
        assert first.exit_code == 0, first.stderr
        recorded_aws.clear()
        again = run_cli("register-device", "--name", "MyDevice", "--greengrass", "v1", "--out", str(tmp_path / "b"),
                        env=env)
        assert again.exit_code == 0, again.stderr
        assert "already registered" in again.stdout and "nothing to do" in again.stdout
        assert recorded_aws.mutating == []
        assert not (tmp_path / "b").exists()

    def test_an_existing_bundle_folder_is_refused_before_any_aws_call(
        self, gg_account, run_cli, recorded_aws, tmp_path
    ):
        (tmp_path / "bundle").mkdir()
        (tmp_path / "bundle" / "old.key").write_text("an earlier key")
        result = run_cli("register-device", "--name", "MyDevice", "--greengrass", "v1", "--out",
                         str(tmp_path / "bundle"), env={"DEEPLENS_BUCKET": "deeplens-test-face-crops"})
        assert result.exit_code == 2
        assert "already exists" in result.stderr
        assert recorded_aws.mutating == []
        assert (tmp_path / "bundle" / "old.key").read_text() == "an earlier key"

    @pytest.mark.parametrize("out", ["a", "b"], ids=["same-out", "new-out"])
    def test_an_interrupted_registration_converges_through_the_cli(
        self, gg_account, run_cli, tmp_path, monkeypatch, out
    ):
        import deeplens_cli.aws as aws_module

        real = aws_module.make_context
        denied_once = []

        def make_context(settings, sleep=None):
            ctx = real(settings, sleep=sleep)
            if not denied_once:
                denied_once.append(fail_call(ctx.client("greengrass"), "CreateGroup", "AccessDeniedException",
                                             "not authorized to perform: greengrass:CreateGroup on resource: *",
                                             status=403, times=1))
            return ctx

        monkeypatch.setattr(aws_module, "make_context", make_context)
        env = {"DEEPLENS_BUCKET": "deeplens-test-face-crops"}
        first = run_cli("register-device", "--name", "MyDevice", "--greengrass", "v1", "--out", str(tmp_path / "a"),
                        env=env)
        assert first.exit_code == 1
        assert "greengrass:CreateGroup" in first.stderr and "re-running converges" in first.stderr
        second = run_cli("register-device", "--name", "MyDevice", "--greengrass", "v1", "--out", str(tmp_path / out),
                         env=env)
        assert second.exit_code == 0, second.stderr
        iot, gg = gg_account.client("iot"), gg_account.client("greengrass")
        assert len(iot.list_things()["things"]) == 1
        assert len(iot.list_certificates()["certificates"]) == 1  # kept (same --out) or replaced (new --out)
        assert len(gg.list_groups()["Groups"]) == 1 and len(gg.list_core_definitions()["Definitions"]) == 1
        assert len(list((tmp_path / out / "certs").glob("*.private.key"))) == 1

    def test_dry_run_creates_nothing(self, gg_account, run_cli, tmp_path):
        result = run_cli("--output", "json", "register-device", "--name", "MyDevice", "--greengrass", "v1", "--dry-run",
                         "--out", str(tmp_path / "bundle"), env={"DEEPLENS_BUCKET": "deeplens-test-face-crops"})
        assert result.exit_code == 0, result.stderr
        document = json.loads(result.stdout)
        assert document["dry_run"] is True
        assert "greengrass-group/deeplens-MyDevice" in [a["resource"] for a in document["plan"]["actions"]]
        assert gg_account.client("iot").list_things()["things"] == []
        assert not (tmp_path / "bundle").exists()


class TestInterruptedRegistration:
    """AccessDenied half way (after the thing, certificate, bundle and core exist), then a re-run."""

    @pytest.fixture
    def interrupted(self, world, tmp_path):
        target = world.target()
        denied = fail_call(world.ctx.client("greengrass"), "CreateGroup", "AccessDeniedException",
                           "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: "
                           "greengrass:CreateGroup on resource: *", status=403, times=1)
        with pytest.raises(ExecutionError) as raised:
            world.apply(target.plan_register_device("MyDevice", str(tmp_path / "bundle")))
        assert denied == [1]
        return world, raised.value

    def test_the_failure_names_the_action_and_what_was_done(self, interrupted):
        _, error = interrupted
        assert "greengrass:CreateGroup" in error.message
        assert "re-running converges" in error.message

    def test_the_half_registered_device_is_listed_as_incomplete(self, interrupted):
        world, _ = interrupted
        device = only(world.target().list_devices())
        assert device.name == "MyDevice (incomplete)"
        assert world.iot.describe_thing(thingName=device.thing_name)["attributes"][PENDING_ATTRIBUTE] == "MyDevice"
        with pytest.raises(DeeplensError, match="not fully registered"):
            world.target().plan_deploy(device)

    def test_a_rerun_with_the_same_bundle_keeps_its_certificate(self, interrupted, tmp_path):
        world, _ = interrupted
        certificate = only(certificates(world))
        plan = world.target().plan_register_device("MyDevice", str(tmp_path / "bundle"))
        assert {a.resource.split("/")[0]: a.verb for a in plan.actions}["iot-certificate"] == "noop"
        world.apply(plan)
        assert only(certificates(world))["certificateId"] == certificate["certificateId"]
        self.assert_one_complete_registration(world)

    def test_a_rerun_to_a_new_bundle_replaces_the_orphaned_certificate(self, interrupted, tmp_path):
        world, _ = interrupted
        old = only(certificates(world))["certificateId"]
        world.apply(world.target().plan_register_device("MyDevice", str(tmp_path / "bundle-2")))
        new = only(certificates(world))
        assert new["certificateId"] != old and new["status"] == "ACTIVE"
        assert list((tmp_path / "bundle-2" / "certs").glob(f"{new['certificateId'][:10]}.private.key"))
        self.assert_one_complete_registration(world)

    def test_a_second_rerun_has_nothing_left_to_do(self, interrupted, tmp_path):
        world, _ = interrupted
        world.apply(world.target().plan_register_device("MyDevice", str(tmp_path / "bundle")))
        again = world.target().plan_register_device("MyDevice", str(tmp_path / "bundle"))
        assert again.is_noop, [a.to_dict() for a in again.changes]

    def test_a_certificate_issued_but_never_attached_is_found_through_the_bundle(self, world, tmp_path):
        fail_call(world.ctx.client("iot"), "AttachThingPrincipal", "AccessDeniedException",
                  "not authorized to perform: iot:AttachThingPrincipal", status=403, times=1)
        with pytest.raises(ExecutionError):
            world.apply(world.target().plan_register_device("Other", str(tmp_path / "bundle-o")))
        issued = only(certificates(world))
        plan = world.target().plan_register_device("Other", str(tmp_path / "bundle-o"))
        kept = [a for a in plan.actions if a.resource == f"iot-certificate/{issued['certificateId'][:10]}"]
        assert [a.verb for a in kept] == ["update"] and "not attached" in kept[0].reason
        world.apply(plan)
        assert only(certificates(world))["certificateId"] == issued["certificateId"]
        thing = only(things(world))["thingName"]
        assert only(world.iot.list_thing_principals(thingName=thing)["principals"]) == issued["certificateArn"]

    @staticmethod
    def assert_one_complete_registration(world):
        thing = only(things(world))
        assert thing["attributes"] == {"deeplens_name": "MyDevice", "deeplens_target": "v1"}
        group = only(world.gg.list_groups()["Groups"])
        core_definition = only(world.gg.list_core_definitions()["Definitions"])
        assert only(world.iot.list_policies()["policies"])["policyName"] == policy_name_for(thing["thingName"])
        device = world.device("MyDevice")
        assert device.group_id == group["Id"]

        core = only(definition_items(world.gg, group_definition(world.gg, group["Id"])["CoreDefinitionVersionArn"]))
        assert core["CertificateArn"] == only(certificates(world))["certificateArn"]
        assert (
            core_definition["LatestVersionArn"]
            == group_definition(world.gg, group["Id"])["CoreDefinitionVersionArn"]
        )
        principal = only(world.iot.list_thing_principals(thingName=thing["thingName"])["principals"])
        assert only(world.iot.list_attached_policies(target=principal)["policies"])


class TestPreconditions:

    def test_a_folder_holding_another_bundle_is_never_written_to(self, world, tmp_path):
        world.register("First", tmp_path / "shared")
        before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "shared").rglob("*"))
        from deeplens_cli.errors import ConfigError

        with pytest.raises(ConfigError, match="already holds files of thing deeplens_"):
            world.target().plan_register_device("Second", str(tmp_path / "shared"))
        assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "shared").rglob("*")) == before
        assert len(things(world)) == 1

    def test_the_bundle_manifest_names_thing_and_certificate_but_no_secret(self, world, tmp_path):
        device = world.register("MyDevice", tmp_path / "bundle")
        manifest = json.loads((tmp_path / "bundle" / "deeplens-bundle.json").read_text())
        principal = only(world.iot.list_thing_principals(thingName=device.thing_name)["principals"])
        assert manifest["thing_name"] == device.thing_name and manifest["certificate_arn"] == principal
        assert "KEY" not in json.dumps(manifest)

    def test_without_the_group_role_nothing_is_created(self, world, tmp_path):
        world.aws.client("iam").delete_role(RoleName=GROUP_ROLE)
        with pytest.raises(DeeplensError, match=GROUP_ROLE) as raised:
            world.target().plan_register_device("MyDevice", str(tmp_path / "bundle"))
        assert "register-roles" in raised.value.hint
        assert things(world) == []

    def test_fleets_are_a_greengrass_v2_feature(self, world, tmp_path):
        from deeplens_cli.errors import ConfigError

        with pytest.raises(ConfigError, match="v2"):
            GreengrassV1Target(world.ctx, world.settings).plan_register_device("MyDevice", str(tmp_path), fleet="lobby")
