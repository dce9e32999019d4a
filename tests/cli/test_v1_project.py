"""The Greengrass V1 project as data (`project.desired_project`): a pure function of the settings and the group's
current content - what deploy then compares with the group. No AWS here."""

from __future__ import annotations

import pytest

from deeplens_cli.errors import DeeplensError
from deeplens_cli.targets.greengrass_v1.groups import GroupContent
from deeplens_cli.targets.greengrass_v1.project import (
    FUNCTION_ID,
    GPU_DEVICE,
    GPU_RESOURCE_ID,
    SUBSCRIPTION_ID,
    desired_project,
)
from tests.support.settings import make_settings

VERSION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:deeplens-face-crops:3"
OLD_VERSION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:deeplens-face-crops:2"
ADMIN_FUNCTION = {"Id": "admin", "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:deeplens-admin:1"}
DEVICE_GPU = {"Id": "device-gpu", "Name": "gpu", "ResourceDataContainer": {
    "LocalDeviceResourceData": {"SourcePath": GPU_DEVICE}}}


def test_an_empty_group_gets_the_pinned_function_our_gpu_resource_and_the_results_subscription():
    project = desired_project(make_settings(function__name="deeplens-face-crops"), GroupContent(), VERSION_ARN,
                              "deeplens_thing")

    (function,) = project.functions
    assert function["Id"] == FUNCTION_ID and function["FunctionArn"] == VERSION_ARN
    assert function["FunctionConfiguration"]["Pinned"] is True
    assert [r["Id"] for r in project.resources] == [GPU_RESOURCE_ID]
    assert project.subscriptions == ({"Id": SUBSCRIPTION_ID, "Source": VERSION_ARN,
                                      "Subject": "$aws/things/deeplens_thing/infer", "Target": "cloud"},)


def test_what_is_not_ours_is_kept_ours_replaced_and_the_device_gpu_shared():
    current = GroupContent(
        functions=(ADMIN_FUNCTION, {"Id": "old", "FunctionArn": OLD_VERSION_ARN}),
        resources=(DEVICE_GPU,),
        subscriptions=({"Id": "s", "Source": OLD_VERSION_ARN, "Subject": "x", "Target": "cloud"},),
    )
    project = desired_project(make_settings(function__name="deeplens-face-crops"), current, VERSION_ARN, "t")

    assert [f["Id"] for f in project.functions] == ["admin", FUNCTION_ID]
    assert project.resources == (DEVICE_GPU,)  # the device's own GPU resource, not a second one
    access = project.functions[1]["FunctionConfiguration"]["Environment"]["ResourceAccessPolicies"]
    assert access == [{"ResourceId": "device-gpu", "Permission": "rw"}]
    assert [s["Id"] for s in project.subscriptions] == [SUBSCRIPTION_ID]


def test_latest_is_never_pinned():
    with pytest.raises(DeeplensError, match=r"\$LATEST"):
        desired_project(make_settings(), GroupContent(), "arn:aws:lambda:r:1:function:f:$LATEST", "t")
