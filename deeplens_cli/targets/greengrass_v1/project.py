"""A Greengrass V1 "project" as data: the function (pinned version, configuration), the GPU and model
resources and the results subscription deeplens-cli puts into a device's group, alongside what is already there.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from deeplens_cli.errors import DeeplensError
from deeplens_cli.targets.greengrass_v1.groups import DEFINITION_KINDS, GroupState, function_name_of

# Ids of what deeplens-cli puts into a group (Greengrass ids: [a-zA-Z0-9:_-]+). Anything else in the group
# (the DeepLens admin functions, a user's own resources) is kept as it is.
FUNCTION_ID = "deeplens-cli-edge-function"
GPU_RESOURCE_ID = "deeplens-cli-gpu"
MODEL_RESOURCE_ID = "deeplens-cli-model"
SUBSCRIPTION_ID = "deeplens-cli-infer"
GPU_DEVICE = "/dev/dri/renderD128"  # the DeepLens GPU, as in the device's own group.json
MODEL_DESTINATION = "/deeplens-cli/models"  # where an ML model resource is unpacked inside the container


class ProjectContent:
    """What deeplens-cli puts into a device's group, computed from the settings and the group's current content."""

    def function_environment(self, device_name: str | None = None) -> dict[str, str]:
        """The function's environment in one device's group: the settings with that device's `devices:` section
        on top (each V1 device has a group of its own, so this reaches that device only)."""
        from deeplens_cli.package import edge_environment

        model_path = None
        if self.settings["model.s3_uri"]:
            model_path = f"{self.model_destination}/{os.path.basename(self.settings['model.artifact_path'])}"
        settings = self.settings.for_device(device_name) if device_name else self.settings
        return edge_environment(settings, on_deeplens=True, model_path=model_path)

    @property
    def model_destination(self) -> str:
        return f"{MODEL_DESTINATION}/{self.settings['model.name']}"

    def _current_items(self, group: GroupState, kind: str) -> list[dict[str, Any]]:
        arn = group.definition.get(f"{DEFINITION_KINDS[kind]}DefinitionVersionArn")
        return self._definition_items(arn) if arn else []

    def _is_our_function(self, function: Mapping[str, Any]) -> bool:
        return function.get("Id") == FUNCTION_ID or \
            function_name_of(str(function.get("FunctionArn", ""))) == self.settings["function.name"]

    def _desired_functions(self, group: GroupState, version_arn: Any, device_name: str | None = None) -> list[dict[str, Any]]:
        if isinstance(version_arn, str) and version_arn.endswith(":$LATEST"):
            raise DeeplensError("refusing to pin $LATEST", "Greengrass V1 needs a published version")
        others = [f for f in self._current_items(group, "functions") if not self._is_our_function(f)]
        return others + [{"Id": FUNCTION_ID, "FunctionArn": version_arn,
                          "FunctionConfiguration": self._function_configuration(group, device_name)}]

    def _gpu_resource_id(self, group: GroupState) -> str:
        for resource in self._current_items(group, "resources"):
            data = resource.get("ResourceDataContainer", {}).get("LocalDeviceResourceData", {})
            if data.get("SourcePath") == GPU_DEVICE and resource.get("Id") != GPU_RESOURCE_ID:
                return str(resource["Id"])  # the device's own GPU resource (a DeepLens group has one): share it
        return GPU_RESOURCE_ID

    def _function_configuration(self, group: GroupState, device_name: str | None = None) -> dict[str, Any]:
        access = [{"ResourceId": self._gpu_resource_id(group), "Permission": "rw"}]
        if self.settings["model.s3_uri"]:
            access.append({"ResourceId": MODEL_RESOURCE_ID, "Permission": "ro"})
        configuration: dict[str, Any] = {
            "Pinned": True,  # long-lived: the loop starts with the core, as DeepLens projects do
            "MemorySize": self.settings["function.memory_mb"] * 1024,  # Greengrass V1 counts KB
            "Timeout": self.settings["function.timeout_s"],
            "EncodingType": "json",
            "Environment": {
                "Variables": self.function_environment(device_name),
                "ResourceAccessPolicies": access,
                "AccessSysfs": True,
                "Execution": {"IsolationMode": "GreengrassContainer"},
            },
        }
        if self.settings["function.lambda_runtime"]:
            configuration["FunctionRuntimeOverride"] = self.settings["function.runtime"]
        return configuration

    def _desired_resources(self, group: GroupState) -> list[dict[str, Any]]:
        ours = {GPU_RESOURCE_ID, MODEL_RESOURCE_ID}
        resources = [r for r in self._current_items(group, "resources") if r.get("Id") not in ours]
        if self._gpu_resource_id(group) == GPU_RESOURCE_ID:
            resources.append({"Id": GPU_RESOURCE_ID, "Name": GPU_RESOURCE_ID, "ResourceDataContainer": {
                "LocalDeviceResourceData": {"SourcePath": GPU_DEVICE, "GroupOwnerSetting": {"AutoAddGroupOwner": True}}}})
        if self.settings["model.s3_uri"]:
            resources.append({"Id": MODEL_RESOURCE_ID, "Name": MODEL_RESOURCE_ID, "ResourceDataContainer": {
                "S3MachineLearningModelResourceData": {"S3Uri": self.settings["model.s3_uri"],
                                                       "DestinationPath": self.model_destination}}})
        return resources

    def _desired_subscriptions(self, group: GroupState, version_arn: Any, thing: str) -> list[dict[str, Any]]:
        def ours(subscription: Mapping[str, Any]) -> bool:
            ends = (str(subscription.get("Source", "")), str(subscription.get("Target", "")))
            return subscription.get("Id") == SUBSCRIPTION_ID or \
                any(function_name_of(end) == self.settings["function.name"] for end in ends)

        others = [s for s in self._current_items(group, "subscriptions") if not ours(s)]
        return others + [{"Id": SUBSCRIPTION_ID, "Source": version_arn, "Subject": f"$aws/things/{thing}/infer",
                          "Target": "cloud"}]
