"""`deploy` to a Greengrass V1 device: the project (pinned function version, GPU, subscription) as a new group
version and a NewDeployment; nothing written when nothing changed; the device's verdict decides the exit code."""

from __future__ import annotations

import json

import pytest

import deeplens_cli.targets.greengrass_v1.target as v1_target
from deeplens_cli.cli.output import Reporter
from deeplens_cli.errors import DeeplensError
from deeplens_cli.targets.base import DeploymentRef
from deeplens_cli.targets.greengrass_v1.project import (
    FUNCTION_ID,
    GPU_DEVICE,
    GPU_RESOURCE_ID,
    MODEL_RESOURCE_ID,
    SUBSCRIPTION_ID,
)
from tests.support.greengrass_v1 import (
    ProgressSink,
    ScriptedStatus,
    V1World,
    action,
    answer_call,
    definition_items,
    fail_call,
    group_definition,
)

pytestmark = pytest.mark.usefixtures("shared_botocore_models")  # one botocore model loader per module

BUCKET_ENV = {"DEEPLENS_BUCKET": "deeplens-test-face-crops"}
MODEL_URI = "s3://deeplens-models/face/model.tar.gz"


def only(items):
    (item,) = items
    return item


def project(world, device):
    """(function entry, resources, subscriptions) of the group's latest version."""
    definition = group_definition(world.gg, device.group_id)
    functions = definition_items(world.gg, definition["FunctionDefinitionVersionArn"])
    resources = definition_items(world.gg, definition["ResourceDefinitionVersionArn"])
    subscriptions = definition_items(world.gg, definition["SubscriptionDefinitionVersionArn"])
    ours = only([f for f in functions if f["Id"] == FUNCTION_ID])
    return ours, functions, resources, subscriptions


def deployments(world, device):
    return world.gg.list_deployments(GroupId=device.group_id)["Deployments"]


@pytest.fixture
def device(world):
    return world.register("MyDevice")


@pytest.fixture(scope="class")
def deployed(gg_account_class, tmp_path_factory):
    """One first deployment shared by a class of read-only tests: (world, device, plan, result)."""
    world = V1World(gg_account_class, tmp_path_factory.mktemp("deploy"))
    device = world.register("MyDevice")
    plan, result = world.deploy(device)
    return world, device, plan, result


class TestFirstDeploy:

    def test_the_published_version_is_pinned_never_latest(self, deployed):
        world, device, _, result = deployed
        ours, _, _, _ = project(world, device)
        assert ours["FunctionArn"] == result.variables["function_version_arn"]
        assert ours["FunctionArn"].endswith(":deeplens-face-crops:1")
        configuration = ours["FunctionConfiguration"]
        assert configuration["Pinned"] is True
        assert configuration["MemorySize"] == 1024 * 1024  # function.memory_mb in KB
        assert configuration["Timeout"] == 600
        assert configuration["Environment"]["Execution"]["IsolationMode"] == "GreengrassContainer"
        assert "FunctionRuntimeOverride" not in configuration

    def test_settings_and_model_reach_the_device_as_environment(self, deployed):
        world, device, _, _ = deployed
        variables = project(world, device)[0]["FunctionConfiguration"]["Environment"]["Variables"]
        assert variables["DEEPLENS_BUCKET"] == "deeplens-test-face-crops"
        assert variables["DEEPLENS_MODEL_NAME"] == "deeplens-face-detection"
        assert variables["DEEPLENS_MODEL_PATH"] == "/opt/awscam/artifacts/mxnet_deploy_ssd_FP16_FUSED.xml"

    def test_the_function_may_use_the_gpu(self, deployed):
        world, device, _, _ = deployed
        ours, _, resources, _ = project(world, device)
        gpu = only(resources)
        assert gpu["ResourceDataContainer"]["LocalDeviceResourceData"]["SourcePath"] == GPU_DEVICE
        assert ours["FunctionConfiguration"]["Environment"]["ResourceAccessPolicies"] == [
            {"ResourceId": gpu["Id"], "Permission": "rw"}]

    def test_inference_results_go_to_the_cloud_topic_of_the_thing(self, deployed):
        world, device, _, result = deployed
        subscription = only(project(world, device)[3])
        assert subscription == {"Id": SUBSCRIPTION_ID, "Source": result.variables["function_version_arn"],
                                "Subject": f"$aws/things/{device.thing_name}/infer", "Target": "cloud"}

    def test_the_new_group_version_keeps_the_core_and_is_deployed(self, deployed):
        world, device, plan, result = deployed
        definition = group_definition(world.gg, device.group_id)
        core = only(definition_items(world.gg, definition["CoreDefinitionVersionArn"]))
        assert core["ThingArn"] == device.thing_arn
        deployment = only(deployments(world, device))
        assert deployment["DeploymentType"] == "NewDeployment"
        assert deployment["DeploymentId"] == result.variables["deployment_id"]
        assert deployment["GroupArn"].endswith(f"/versions/{result.variables['group_version_id']}")

    def test_the_wait_ends_in_the_device_verdict(self, deployed):
        world, device, _, result = deployed
        world.status.script = [{"DeploymentStatus": "InProgress"}, {"DeploymentStatus": "Building"},
                               {"DeploymentStatus": "Success"}]
        sink = ProgressSink()
        sleeps_before = len(world.aws.sleeps)
        outcome = world.target().wait_for_deployment(
            device, DeploymentRef.from_variables(result.variables), 60, Reporter(stderr=sink)
        )
        assert outcome.status == "succeeded"
        assert world.status.calls[-1] == (device.group_id, result.variables["deployment_id"])
        progress = "".join(sink.lines)
        assert "InProgress" in progress and "Building" in progress and "Success" in progress
        assert world.aws.sleeps[sleeps_before:] == [5.0, 5.0]  # deploy.poll_s between polls, via the injected sleep


class TestRedeploy:

    def test_a_changed_setting_publishes_and_deploys_a_new_version(self, world, device):
        world.deploy(device)
        world.reconfigure(detection__threshold=0.8)
        plan, result = world.deploy(device)
        ours, _, _, subscriptions = project(world, device)
        assert ours["FunctionArn"].endswith(":2")
        assert ours["FunctionConfiguration"]["Environment"]["Variables"]["DEEPLENS_THRESHOLD"] == "0.8"
        assert only(subscriptions)["Source"].endswith(":2")  # the version-1 subscription is gone
        assert len(deployments(world, device)) == 2
        assert action(plan, "greengrass-resource-definition").verb == "noop"

    def test_a_device_only_setting_changes_the_group_not_only_lambda(self, world, device):
        world.deploy(device)
        world.reconfigure(function__memory_mb=512)
        world.deploy(device)
        assert project(world, device)[0]["FunctionConfiguration"]["MemorySize"] == 512 * 1024

@pytest.fixture(scope="class")
def arranged(gg_account_class, tmp_path_factory):
    """A DeepLens group already holding the DeepLens admin function, its own GPU resource and a subscription,
    then deployed to: (world, device, admin function, gpu resource, subscription)."""
    world = V1World(gg_account_class, tmp_path_factory.mktemp("foreign"))
    device = world.register("MyDevice")
    gg = world.gg
    admin = {"Id": "deeplens-admin", "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:deeplens-admin:7",
             "FunctionConfiguration": {"Pinned": True, "MemorySize": 65536, "Timeout": 30}}
    functions = gg.create_function_definition(Name="admin", InitialVersion={"Functions": [admin]})
    gpu = {"Id": "deeplens-gpu-by-console", "Name": "gpu", "ResourceDataContainer": {
        "LocalDeviceResourceData": {"SourcePath": GPU_DEVICE, "GroupOwnerSetting": {"AutoAddGroupOwner": True}}}}
    resources = gg.create_resource_definition(Name="console", InitialVersion={"Resources": [gpu]})
    shadow = {"Id": "admin-shadow", "Source": admin["FunctionArn"], "Subject": "shadow/#", "Target": "GGShadowService"}
    subscriptions = gg.create_subscription_definition(Name="console", InitialVersion={"Subscriptions": [shadow]})
    definition = group_definition(gg, device.group_id)
    gg.create_group_version(GroupId=device.group_id, CoreDefinitionVersionArn=definition["CoreDefinitionVersionArn"],
                            FunctionDefinitionVersionArn=functions["LatestVersionArn"],
                            ResourceDefinitionVersionArn=resources["LatestVersionArn"],
                            SubscriptionDefinitionVersionArn=subscriptions["LatestVersionArn"])
    world.deploy(device)
    return world, device, admin, gpu, shadow


class TestForeignContent:
    """What a DeepLens group already holds is kept; ours is added next to it."""

    def test_functions_that_are_not_ours_are_kept(self, arranged):
        world, device, admin, _, _ = arranged
        _, functions, _, _ = project(world, device)
        assert admin in functions and len(functions) == 2

    def test_the_devices_own_gpu_resource_is_shared_not_duplicated(self, arranged):
        world, device, _, gpu, _ = arranged
        ours, _, resources, _ = project(world, device)
        assert resources == [gpu]
        assert ours["FunctionConfiguration"]["Environment"]["ResourceAccessPolicies"][0]["ResourceId"] == gpu["Id"]
        assert GPU_RESOURCE_ID not in {r["Id"] for r in resources}

    def test_subscriptions_that_are_not_ours_are_kept(self, arranged):
        world, device, _, _, shadow = arranged
        subscriptions = project(world, device)[3]
        assert shadow in subscriptions and len(subscriptions) == 2

    def test_the_definitions_are_new_versions_of_the_groups_own(self, arranged):
        world, device, _, _, _ = arranged
        admin_definition = only(
            [d for d in world.gg.list_function_definitions()["Definitions"] if d["Name"] == "admin"]
        )
        assert group_definition(world.gg, device.group_id)["FunctionDefinitionVersionArn"] == \
            admin_definition["LatestVersionArn"]


class TestModelAndRuntime:

    def test_an_s3_model_becomes_an_ml_resource_the_function_reads(self, world, device):
        world.reconfigure(model__s3_uri=MODEL_URI)
        world.deploy(device)
        ours, _, resources, _ = project(world, device)
        model = only([r for r in resources if r["Id"] == MODEL_RESOURCE_ID])
        data = model["ResourceDataContainer"]["S3MachineLearningModelResourceData"]
        assert data["S3Uri"] == MODEL_URI
        environment = ours["FunctionConfiguration"]["Environment"]
        assert {"ResourceId": MODEL_RESOURCE_ID, "Permission": "ro"} in environment["ResourceAccessPolicies"]
        assert environment["Variables"]["DEEPLENS_MODEL_PATH"] == \
            f"{data['DestinationPath']}/mxnet_deploy_ssd_FP16_FUSED.xml"

    def test_a_declared_lambda_runtime_runs_on_the_device_as_its_own_python(self, world, device):
        world.reconfigure(function__lambda_runtime="python3.12")
        world.deploy(device)
        assert project(world, device)[0]["FunctionConfiguration"]["FunctionRuntimeOverride"] == "python3.7"
        assert world.lam.get_function(FunctionName="deeplens-face-crops")["Configuration"]["Runtime"] == "python3.12"


class TestServiceRole:

    def test_an_emulator_without_the_api_is_skipped_visibly(self, world, device):
        plan, _ = world.deploy(device)
        service = action(plan, "greengrass-service-role")
        assert service.verb == "noop" and "not supported by this endpoint" in service.reason

    def test_a_missing_association_is_made_with_the_greengrass_role(self, world, device):
        gg = world.ctx.client("greengrass")
        answer_call(gg, "GetServiceRoleForAccount", {})
        associated = answer_call(gg, "AssociateServiceRoleToAccount", {"AssociatedAt": "2026-11-24T00:00:00Z"})
        plan, _ = world.deploy(device)
        service = action(plan, "greengrass-service-role")
        assert service.verb == "create"
        assert service.steps[0].params["RoleArn"].endswith(":role/AWSDeepLensGreengrassRole")
        assert associated == [1]

    def test_an_existing_association_is_left_alone(self, world, device):
        answer_call(world.ctx.client("greengrass"), "GetServiceRoleForAccount",
                    {"RoleArn": "arn:aws:iam::123456789012:role/Existing", "AssociatedAt": "2020-01-01T00:00:00Z"})
        plan, _ = world.deploy(device)
        assert action(plan, "greengrass-service-role").verb == "noop"

    def test_access_denied_is_not_mistaken_for_a_missing_api(self, world, device):
        fail_call(world.ctx.client("greengrass"), "GetServiceRoleForAccount", "AccessDeniedException",
                  "User is not authorized to perform: greengrass:GetServiceRoleForAccount on resource: *", status=403)
        from botocore.exceptions import ClientError

        with pytest.raises(ClientError, match="AccessDenied"):
            world.target().plan_deploy(device)


class TestRefusals:

    def test_a_group_without_a_core_is_refused_before_any_change(self, world, device):
        world.gg.create_group_version(GroupId=device.group_id)  # latest version: no core
        with pytest.raises(DeeplensError, match="has no core") as raised:
            world.mutating_calls_of(lambda: world.target().plan_deploy(device))
        assert "register" in raised.value.hint
        assert world.lam.list_functions()["Functions"] == []

    def test_a_device_without_a_group_is_refused(self, world, device):
        from dataclasses import replace

        with pytest.raises(DeeplensError, match="no Greengrass group"):
            world.target().plan_deploy(replace(device, group_id=None))


# ---------------------------------------------------------------------------------------------- the command


@pytest.fixture
def cli_device(gg_account, run_cli, tmp_path):
    result = run_cli("register-device", "--name", "MyDevice", "--greengrass", "v1", "--out", str(tmp_path / "b"),
                     env=BUCKET_ENV)
    assert result.exit_code == 0, result.stderr
    return gg_account


def script_status(monkeypatch, *states):
    source = ScriptedStatus(*states)
    monkeypatch.setattr(v1_target, "status_source_for", lambda ctx: source)
    return source


class TestDeployCommand:

    def test_success_exits_0_and_reports_the_deployment(self, cli_device, run_cli, recorded_aws, monkeypatch):
        script_status(monkeypatch, "InProgress", "Success")
        result = run_cli("--output", "json", "deploy", "--device", "MyDevice", env=BUCKET_ENV)
        assert result.exit_code == 0, result.stderr
        document = json.loads(result.stdout)
        assert document["deployment"]["status"] == "succeeded"
        assert document["changed"] is True
        assert "Success" in result.stderr  # progress on stderr

    def test_a_second_deploy_writes_nothing(self, cli_device, run_cli, recorded_aws, monkeypatch):
        script_status(monkeypatch, "Success")
        assert run_cli("deploy", "--device", "MyDevice", env=BUCKET_ENV).exit_code == 0
        recorded_aws.clear()
        again = run_cli("deploy", "--device", "MyDevice", env=BUCKET_ENV)
        assert again.exit_code == 0, again.stderr
        assert recorded_aws.mutating == []
        assert "nothing changed" in again.stdout

    def test_failure_exits_3_with_the_error_and_its_details(self, cli_device, run_cli, recorded_aws, monkeypatch):
        script_status(monkeypatch, "InProgress", {
            "DeploymentStatus": "Failure", "ErrorMessage": "Greengrass core failed to download the function",
            "ErrorDetails": [{"DetailedErrorCode": "GG-402", "DetailedErrorMessage": "AccessDenied on the artifact"}]})
        result = run_cli("deploy", "--device", "MyDevice", env=BUCKET_ENV)
        assert result.exit_code == 3
        assert "Greengrass core failed to download the function" in result.stdout
        assert "GG-402: AccessDenied on the artifact" in result.stdout
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("error: deployment ") and "GG-402" in last

    def test_a_device_that_never_answers_times_out_with_exit_4(self, cli_device, run_cli, recorded_aws, monkeypatch):
        script_status(monkeypatch, "InProgress")
        result = run_cli("deploy", "--device", "MyDevice", "--timeout", "20",
                         env={**BUCKET_ENV, "DEEPLENS_DEPLOY_POLL_S": "5"})
        assert result.exit_code == 4
        assert "did not finish in time" in result.stderr
        assert sum(recorded_aws.sleeps) == 20 and recorded_aws.sleeps == [5.0] * 4

    def test_after_a_timeout_a_rerun_waits_for_the_pending_deployment(self, cli_device, run_cli, recorded_aws,
                                                                       monkeypatch):
        script_status(monkeypatch, "InProgress")
        assert run_cli("deploy", "--device", "MyDevice", "--timeout", "10", env=BUCKET_ENV).exit_code == 4
        recorded_aws.clear()
        source = script_status(monkeypatch, "InProgress", "InProgress", "Success")  # plan, status, then the wait

        again = run_cli("deploy", "--device", "MyDevice", env=BUCKET_ENV)

        assert again.exit_code == 0, again.stderr
        assert recorded_aws.mutating == []  # nothing redeployed: the pending deployment was waited for
        assert "still InProgress: waiting for it" in again.stderr
        assert "succeeded" in again.stdout
        assert len({deployment for _, deployment in source.calls}) == 1

    def test_no_wait_returns_after_starting(self, cli_device, run_cli, monkeypatch):
        source = script_status(monkeypatch, "InProgress")
        result = run_cli("deploy", "--device", "MyDevice", "--no-wait", env=BUCKET_ENV)
        assert result.exit_code == 0, result.stderr
        assert "deployment started" in result.stdout
        assert source.calls == []  # nothing polled

    def test_an_unknown_device_is_named_and_exits_1(self, cli_device, run_cli):
        result = run_cli("deploy", "--device", "Nope", env=BUCKET_ENV)
        assert result.exit_code == 1
        assert "no device named 'Nope'" in result.stderr and "MyDevice" in result.stderr

    def test_an_ambiguous_name_lists_the_candidates(self, cli_device, run_cli, tmp_path):
        # A DeepLens registered by the console whose group is also called "MyDevice".
        console_registered_group(cli_device, "MyDevice")
        result = run_cli("deploy", "--device", "MyDevice", env=BUCKET_ENV)
        assert result.exit_code == 1
        assert "ambiguous" in result.stderr
        assert "deeplens_ConsoleRegisteredDevice1" in result.stderr
        assert "deeplens_" in result.stderr.replace("deeplens_ConsoleRegisteredDevice1", "")

    def test_a_device_registered_by_the_console_is_found_by_its_group_name(self, cli_device, run_cli, monkeypatch):
        console_registered_group(cli_device, "LobbyCam")
        script_status(monkeypatch, "Success")
        result = run_cli("--output", "json", "deploy", "--device", "LobbyCam", env=BUCKET_ENV)
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["device"]["thing_name"] == "deeplens_ConsoleRegisteredDevice1"


def test_world_fixture_is_isolated(world):
    assert isinstance(world, V1World) and world.target().list_devices() == []


def test_a_wait_counts_the_larger_of_clock_time_and_injected_sleeps():
    from deeplens_cli.targets.waiting import WaitClock

    now = [100.0]
    slept: list[float] = []
    clock = WaitClock(slept.append, lambda: now[0])
    clock.wait(5.0)  # an injected sleep that returns at once: the clock did not move
    assert (clock.elapsed(), slept) == (5.0, [5.0])
    now[0] += 30.0  # a slow API call: the clock moved more than the sleeps
    assert clock.elapsed() == 30.0


def console_registered_group(session, group_name):
    """A DeepLens registered by its console: a Greengrass V1 group named `group_name` whose core is the thing
    deeplens_ConsoleRegisteredDevice1 (no deeplens-cli attributes on any thing)."""
    gg = session.client("greengrass")
    thing = "arn:aws:iot:us-east-1:123456789012:thing/deeplens_ConsoleRegisteredDevice1"
    core = gg.create_core_definition(Name="console", InitialVersion={"Cores": [{
        "Id": "core", "ThingArn": thing, "CertificateArn": "arn:aws:iot:us-east-1:123456789012:cert/abc",
        "SyncShadow": True}]})
    gg.create_group(Name=group_name, InitialVersion={"CoreDefinitionVersionArn": core["LatestVersionArn"]})
