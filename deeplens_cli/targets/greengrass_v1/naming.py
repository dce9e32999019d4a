"""Greengrass V1 names (derived from account, region and device name, so a re-run finds what an interrupted
run created), the roles DeepLens uses, and the core's minimal IoT policy.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from deeplens_cli.targets.names import V1

TARGET = V1
SERVICE_ROLE = "AWSDeepLensGreengrassRole"  # the Greengrass service role DeepLens associates with the account
LAMBDA_ROLE = "AWSDeepLensLambdaRole"


def thing_name_for(account: str, region: str, device_name: str) -> str:
    """`deeplens_` + 22 URL-safe characters, the shape of DeepLens thing names, derived from the device name so a
    re-run finds what an interrupted run created (the id is not the name, as on DeepLens)."""
    digest = hashlib.sha256(f"{account}:{region}:{device_name}".encode()).digest()[:16]
    return "deeplens_" + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def group_name_for(device_name: str) -> str:
    return f"deeplens-{device_name}"


def policy_name_for(thing_name: str) -> str:
    return f"{thing_name}-core-policy"  # starts with "deeplens": the DeepLens service policy attaches only those


def definition_name(thing_name: str, kind: str) -> str:
    return f"{thing_name}-{kind}"


def core_policy(partition: str, region: str, account: str, thing_name: str, group_id: str) -> dict[str, Any]:
    """The minimal Greengrass V1 core IoT policy (GGDG device-auth.md), scoped to this core and its group.

    Topics: the core's shadow and `$aws/things/<thing>/infer`, where the function's messages leave the core.
    """
    iot = f"arn:{partition}:iot:{region}:{account}"
    deployments = f"arn:{partition}:greengrass:{region}:{account}:/greengrass/groups/{group_id}/deployments"
    thing_arn = f"{iot}:thing/{thing_name}"
    encoded_thing = thing_arn.replace(":", "%3A").replace("/", "%2F")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["iot:Connect"], "Resource": ["*"]},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
             "Resource": [f"{iot}:topic/$aws/things/{thing_name}/*", f"{iot}:topic/$aws/things/{thing_name}-*"]},
            {"Effect": "Allow", "Action": ["iot:Subscribe"],
             "Resource": [f"{iot}:topicfilter/$aws/things/{thing_name}/*",
                          f"{iot}:topicfilter/$aws/things/{thing_name}-*"]},
            {"Effect": "Allow", "Action": ["iot:GetThingShadow", "iot:UpdateThingShadow", "iot:DeleteThingShadow"],
             "Resource": [thing_arn, f"{thing_arn}-*"]},
            {"Effect": "Allow", "Action": ["greengrass:AssumeRoleForGroup", "greengrass:CreateCertificate"],
             "Resource": ["*"]},
            {"Effect": "Allow", "Action": ["greengrass:GetDeployment", "greengrass:GetDeploymentArtifacts"],
             "Resource": [f"{deployments}/*"]},
            {"Effect": "Allow", "Action": ["greengrass:UpdateCoreDeploymentStatus"],
             "Resource": [f"{deployments}/*/cores/{encoded_thing}"]},
            {"Effect": "Allow", "Action": ["greengrass:GetConnectivityInfo", "greengrass:UpdateConnectivityInfo"],
             "Resource": [thing_arn]},
        ],
    }


