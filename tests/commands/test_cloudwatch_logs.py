"""What deploy must send so `logs` has something to read: the V2 LogManager entry and the V1 logger definition,
checked against botocore's service models and moto's Greengrass V1."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from deeplens_cli.account.policies import NUCLEUS_LOG_ACTIONS
from deeplens_cli.targets import cloudwatch_logs as cwl
from deeplens_cli.targets.greengrass_v2 import component as comp


def test_deployment_carries_the_log_manager_only_when_asked():
    without = comp.deployment_components("com.deeplens.FaceCrops", "1.0.4")
    with_logs = comp.deployment_components("com.deeplens.FaceCrops", "1.0.4", log_manager_version="2.3.10")

    assert cwl.LOG_MANAGER not in without
    entry = with_logs[cwl.LOG_MANAGER]
    assert entry["componentVersion"] == "2.3.10"
    merge = json.loads(entry["configurationUpdate"]["merge"])
    uploader = merge["logsUploaderConfiguration"]
    assert uploader["componentLogsConfigurationMap"] == {"com.deeplens.FaceCrops": {"minimumLogLevel": "INFO"}}
    assert uploader["systemLogsConfiguration"] == {"uploadToCloudWatch": "true", "minimumLogLevel": "WARN"}
    assert all(isinstance(v, str) for v in (merge["periodicUploadIntervalSec"],))  # numbers as strings


def test_the_deployment_passes_botocores_greengrassv2_request_validation():
    client = boto3.client("greengrassv2", region_name="us-east-1")
    components = comp.deployment_components("com.deeplens.FaceCrops", "1.0.4", ("aws.greengrass.Nucleus", "2.14.3"),
                                            log_manager_version="2.3.10")
    with Stubber(client) as stub:
        stub.add_response("create_deployment", {"deploymentId": "d-1"})
        client.create_deployment(targetArn="arn:aws:iot:us-east-1:123456789012:thing/cam-a", components=components)
        stub.assert_no_pending_responses()


def test_a_redeploy_with_the_same_log_manager_is_not_a_change():
    desired = comp.deployment_components("c", "1.0.0", log_manager_version="2.3.10")
    echoed = {"components": json.loads(json.dumps(desired)), "deploymentPolicies": comp.DEPLOYMENT_POLICIES}
    echoed["components"][cwl.LOG_MANAGER]["configurationUpdate"]["merge"] = json.dumps(
        cwl.log_manager_configuration("c"), indent=1)  # the service may re-serialise the JSON
    assert comp.deployment_differences(echoed, desired) == []
    assert cwl.deployed_log_manager_version(echoed["components"]) == "2.3.10"


def test_latest_log_manager_version_asks_for_the_public_component_highest_first():
    client = boto3.client("greengrassv2", region_name="eu-west-1")
    with Stubber(client) as stub:
        stub.add_response(
            "list_component_versions",
            {
                "componentVersions": [
                    {
                        "componentName": cwl.LOG_MANAGER,
                        "componentVersion": "2.3.10",
                        "arn": "arn:aws:greengrass:eu-west-1:aws:components:x:versions:2.3.10",
                    }
                ]
            },
            {"arn": "arn:aws:greengrass:eu-west-1:aws:components:aws.greengrass.LogManager", "maxResults": 1},
        )
        assert cwl.latest_log_manager_version(client, "aws", "eu-west-1") == "2.3.10"


def test_the_token_exchange_role_grants_exactly_the_four_actions_the_log_manager_needs():
    assert sorted(NUCLEUS_LOG_ACTIONS) == ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams",
                                           "logs:PutLogEvents"]


@pytest.mark.parametrize("cloudwatch", [True, False])
def test_the_v1_logger_definition_passes_botocores_request_validation(cloudwatch):
    # moto's Greengrass V1 has no logger definitions ("Not yet implemented"), so the request is checked against
    # botocore's model (the client validates before the stub answers) and its content here.
    gg = boto3.client("greengrass", region_name="us-east-1")
    version_arn = "arn:aws:greengrass:us-east-1:123456789012:/greengrass/definition/loggers/L1/versions/V1"
    with Stubber(gg) as stub:
        stub.add_response(
            "create_logger_definition",
            {"LatestVersionArn": version_arn},
            {
                "Name": "deeplens-cam-a-loggers",
                "InitialVersion": cwl.v1_logger_definition_version(cloudwatch),
            },
        )
        assert cwl.create_v1_logger_definition(gg, "deeplens-cam-a-loggers", cloudwatch) == version_arn
    loggers = cwl.v1_logger_definition_version(cloudwatch)["Loggers"]
    to_cloud = {(lg["Component"], lg["Level"]) for lg in loggers if lg["Type"] == "AWSCloudWatch"}
    assert to_cloud == ({("Lambda", "INFO"), ("GreengrassSystem", "WARN")} if cloudwatch else set())
    assert all(lg.get("Space") for lg in loggers if lg["Type"] == "FileSystem")
    assert len({lg["Id"] for lg in loggers}) == len(loggers)


def test_stream_names_are_recognised_per_thing():
    component, system = cwl.v2_log_sources("us-east-1", "com.deeplens.FaceCrops", "cam:a")
    assert component.group == "/aws/greengrass/UserComponent/us-east-1/com.deeplens.FaceCrops"
    assert system.group == "/aws/greengrass/GreengrassSystemComponent/us-east-1/System"
    assert component.matches("/2026/11/30/thing/cam+a")  # the log manager writes ':' as '+'
    assert not component.matches("/2026/11/30/thing/cam+ab")


def test_a_redeploy_keeps_the_log_manager_version_the_device_runs():
    client = boto3.client("greengrassv2", region_name="us-east-1")
    with Stubber(client) as stub:  # no call expected: the pinned version is reused
        current = {cwl.LOG_MANAGER: {"componentVersion": "2.3.7"}}
        assert cwl.log_manager_version_for(client, "aws", "us-east-1", current) == "2.3.7"
        stub.add_response("list_component_versions", {"componentVersions": []})
        assert cwl.log_manager_version_for(client, "aws", "us-east-1", {}) is None


def test_no_log_manager_in_the_region_means_none_not_an_error():
    client = boto3.client("greengrassv2", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("list_component_versions", service_error_code="ResourceNotFoundException",
                              http_status_code=404)
        assert cwl.latest_log_manager_version(client, "aws", "us-east-1") is None
