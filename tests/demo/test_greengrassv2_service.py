"""The in-process Greengrass V2 control plane: checked against botocore's model both ways, and a core whose
progress a simulated nucleus reports (behaviour "external", the demo)."""

from __future__ import annotations

import pytest

from deeplens_cli.simulator.greengrassv2_service import FakeGreengrassV2, ModelCheck, ModelMismatch

THING_ARN = "arn:aws:iot:us-east-1:123456789012:thing/MyDevice"


@pytest.fixture(scope="module")
def model() -> ModelCheck:
    return ModelCheck()


def test_routes_come_from_the_models_http_traits(model: ModelCheck) -> None:
    assert model.routes["DescribeComponent"] == ("GET", ["greengrass", "v2", "components", "{arn}", "metadata"])
    assert model.routes["CancelDeployment"] == ("POST", ["greengrass", "v2", "deployments", "{deploymentId}", "cancel"])


def test_a_request_member_the_model_lacks_is_refused(model: ModelCheck) -> None:
    with pytest.raises(ModelMismatch, match="deploymentTarget"):
        model.check_request("CreateDeployment", (), {}, {"targetArn": THING_ARN, "deploymentTarget": "x"})


def test_query_values_are_typed_and_validated(model: ModelCheck) -> None:
    model.check_request("ListDeployments", (), {"historyFilter": "ALL", "maxResults": "10"}, {})
    with pytest.raises(ModelMismatch, match="maxResults"):
        model.check_request("ListDeployments", (), {"maxResults": "0"}, {})  # the model's minimum is 1
    with pytest.raises(ModelMismatch, match="colour"):
        model.check_request("ListDeployments", (), {"colour": "red"}, {})


def test_an_answer_outside_the_model_is_refused(model: ModelCheck) -> None:
    with pytest.raises(ModelMismatch, match="lifecycleStateDetails"):  # min length 1: AWS never sends ""
        model.check_response("ListInstalledComponents", {"installedComponents": [
            {"componentName": "c", "lifecycleState": "RUNNING", "lifecycleStateDetails": ""}]})
    with pytest.raises(ModelMismatch, match="coreVersion"):
        model.check_response("GetCoreDevice", {"coreVersion": 2})
    model.check_response("GetCoreDevice", {"coreDeviceThingName": "t", "coreVersion": "2.14.3",
                                           "lastStatusUpdateTimestamp": 1.7e9})


def test_an_external_core_takes_its_deployment_and_reports_it() -> None:
    service = FakeGreengrassV2(s3=None, iot=None)
    service.connect_core("MyDevice", behaviour="external")
    answer = service.create_deployment({}, {"targetArn": THING_ARN, "components": {
        "aws.greengrass.Nucleus": {"componentVersion": "2.14.3"}}})
    [(deployment_id, components)] = service.take_deployments("MyDevice")
    assert deployment_id == answer["deploymentId"] and "aws.greengrass.Nucleus" in components
    assert service.take_deployments("MyDevice") == []  # taken once
    listed = service.list_effective_deployments("MyDevice", {}, {})["effectiveDeployments"]
    assert listed[0]["coreDeviceExecutionStatus"] == "IN_PROGRESS"  # the service does not advance it itself
    service.report_component("MyDevice", "com.example.C", "1.0.0", "RUNNING", deployment_id=deployment_id)
    service.report_deployment("MyDevice", deployment_id, "COMPLETED", "SUCCESSFUL")
    listed = service.list_effective_deployments("MyDevice", {}, {})["effectiveDeployments"]
    assert listed[0]["coreDeviceExecutionStatus"] == "COMPLETED"
    installed = service.list_installed_components("MyDevice", {}, {})["installedComponents"]
    assert installed[0]["lifecycleState"] == "RUNNING"
    service.model.check_response("ListInstalledComponents", {"installedComponents": installed})


def test_public_components_are_not_found_rather_than_invalid() -> None:
    service = FakeGreengrassV2(s3=None, iot=None)
    from deeplens_cli.simulator.greengrassv2_service import ApiError

    with pytest.raises(ApiError) as raised:
        service.list_component_versions("arn:aws:greengrass:us-east-1:aws:components:aws.greengrass.LogManager", {}, {})
    assert raised.value.code == "ResourceNotFoundException"
