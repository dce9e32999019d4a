"""A Greengrass V1 "project" as data: the function (pinned version, configuration), the GPU and model
resources and the results subscription deeplens-cli puts into a device's group, alongside what is already there.

Pure, as V2's `component.py`: `desired_project(settings, current, ...)` is a function of the settings and the
group's current content (`groups.GroupContent`, read by the caller) and returns a frozen `DesiredProject`. No AWS
call and nothing written here; deploy compares the result with the group and plans the differences.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from deeplens_cli.errors import DeeplensError
from deeplens_cli.targets.greengrass_v1.groups import GroupContent, function_name_of
from deeplens_cli.targets.package import edge_environment

if TYPE_CHECKING:
    from deeplens_cli.settings.config import Settings

# Ids of what deeplens-cli puts into a group (Greengrass ids: [a-zA-Z0-9:_-]+). Anything else in the group
# (the DeepLens admin functions, a user's own resources) is kept as it is.
FUNCTION_ID = "deeplens-cli-edge-function"
GPU_RESOURCE_ID = "deeplens-cli-gpu"
MODEL_RESOURCE_ID = "deeplens-cli-model"
SUBSCRIPTION_ID = "deeplens-cli-infer"
GPU_DEVICE = "/dev/dri/renderD128"  # the DeepLens GPU, as in the device's own group.json
MODEL_DESTINATION = "/deeplens-cli/models"  # where an ML model resource is unpacked inside the container


Item = dict[str, Any]


@dataclass(frozen=True)
class DesiredProject:
    """The definitions a device's group should hold: ours, next to every item that is not ours, kept as it is."""

    functions: tuple[Item, ...]
    resources: tuple[Item, ...]
    subscriptions: tuple[Item, ...]


def desired_project(settings: Settings, current: GroupContent, version_arn: Any, thing: str,
                    device_name: str | None = None) -> DesiredProject:
    """What deploy puts into `thing`'s group: the function pinned at `version_arn` (a published version, or the
    plan's Ref to the one being published; never `$LATEST`), its resources and the results subscription."""
    return DesiredProject(
        functions=tuple(desired_functions(settings, current, version_arn, device_name)),
        resources=tuple(desired_resources(settings, current)),
        subscriptions=tuple(desired_subscriptions(settings, current, version_arn, thing)),
    )


def function_environment(settings: Settings, device_name: str | None = None) -> dict[str, str]:
    """The function's environment in one device's group: the settings with that device's `devices:` section
    on top (each V1 device has a group of its own, so this reaches that device only)."""
    model_path = None
    if settings["model.s3_uri"]:
        model_path = f"{model_destination(settings)}/{os.path.basename(settings['model.artifact_path'])}"
    device_settings = settings.for_device(device_name) if device_name else settings
    return edge_environment(device_settings, on_deeplens=True, model_path=model_path)


def model_destination(settings: Settings) -> str:
    return f"{MODEL_DESTINATION}/{settings['model.name']}"


def is_our_function(settings: Settings, function: Mapping[str, Any]) -> bool:
    return function.get("Id") == FUNCTION_ID or \
        function_name_of(str(function.get("FunctionArn", ""))) == settings["function.name"]


def desired_functions(settings: Settings, current: GroupContent, version_arn: Any,
                      device_name: str | None = None) -> list[Item]:
    if isinstance(version_arn, str) and version_arn.endswith(":$LATEST"):
        raise DeeplensError("refusing to pin $LATEST", "Greengrass V1 needs a published version")
    others = [dict(f) for f in current.functions if not is_our_function(settings, f)]
    return others + [{"Id": FUNCTION_ID, "FunctionArn": version_arn,
                      "FunctionConfiguration": function_configuration(settings, current, device_name)}]


def gpu_resource_id(current: GroupContent) -> str:
    for resource in current.resources:
        data = resource.get("ResourceDataContainer", {}).get("LocalDeviceResourceData", {})
        if data.get("SourcePath") == GPU_DEVICE and resource.get("Id") != GPU_RESOURCE_ID:
            return str(resource["Id"])  # the device's own GPU resource (a DeepLens group has one): share it
    return GPU_RESOURCE_ID


def function_configuration(settings: Settings, current: GroupContent,
                           device_name: str | None = None) -> dict[str, Any]:
    access = [{"ResourceId": gpu_resource_id(current), "Permission": "rw"}]
    if settings["model.s3_uri"]:
        access.append({"ResourceId": MODEL_RESOURCE_ID, "Permission": "ro"})
    configuration: dict[str, Any] = {
        "Pinned": True,  # long-lived: the loop starts with the core, as DeepLens projects do
        "MemorySize": settings["function.memory_mb"] * 1024,  # Greengrass V1 counts KB
        "Timeout": settings["function.timeout_s"],
        "EncodingType": "json",
        "Environment": {
            "Variables": function_environment(settings, device_name),
            "ResourceAccessPolicies": access,
            "AccessSysfs": True,
            "Execution": {"IsolationMode": "GreengrassContainer"},
        },
    }
    if settings["function.lambda_runtime"]:
        configuration["FunctionRuntimeOverride"] = settings["function.runtime"]
    return configuration


def desired_resources(settings: Settings, current: GroupContent) -> list[Item]:
    ours = {GPU_RESOURCE_ID, MODEL_RESOURCE_ID}
    resources = [dict(r) for r in current.resources if r.get("Id") not in ours]
    if gpu_resource_id(current) == GPU_RESOURCE_ID:
        resources.append({"Id": GPU_RESOURCE_ID, "Name": GPU_RESOURCE_ID, "ResourceDataContainer": {
            "LocalDeviceResourceData": {"SourcePath": GPU_DEVICE,
                                        "GroupOwnerSetting": {"AutoAddGroupOwner": True}}}})
    if settings["model.s3_uri"]:
        resources.append({"Id": MODEL_RESOURCE_ID, "Name": MODEL_RESOURCE_ID, "ResourceDataContainer": {
            "S3MachineLearningModelResourceData": {"S3Uri": settings["model.s3_uri"],
                                                   "DestinationPath": model_destination(settings)}}})
    return resources


def desired_subscriptions(settings: Settings, current: GroupContent, version_arn: Any, thing: str) -> list[Item]:
    def ours(subscription: Mapping[str, Any]) -> bool:
        ends = (str(subscription.get("Source", "")), str(subscription.get("Target", "")))
        return subscription.get("Id") == SUBSCRIPTION_ID or \
            any(function_name_of(end) == settings["function.name"] for end in ends)

    others = [dict(s) for s in current.subscriptions if not ours(s)]
    return others + [{"Id": SUBSCRIPTION_ID, "Source": version_arn, "Subject": f"$aws/things/{thing}/infer",
                      "Target": "cloud"}]
