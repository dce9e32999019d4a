"""Greengrass V2 names: the thing and policy of a device, the marks on what deeplens-cli created, and
the device's minimal IoT policy.
"""

from __future__ import annotations

from typing import Any

from deeplens_cli.targets.greengrass_v2 import component as comp
from deeplens_cli.targets.names import V2

TARGET = V2
THING_PREFIX = "deeplens-"
POLICY_PREFIX = "deeplens-v2-core-"
MANAGED_GROUP_ATTRIBUTE = "deeplens_cli"  # on thing groups created by register-device --fleet
MANAGED = "managed"


def thing_name(device_name: str) -> str:
    return f"{THING_PREFIX}{device_name}"


def policy_name(device_name: str) -> str:
    return f"{POLICY_PREFIX}{device_name}"


# ---------------------------------------------------------------------------------------------- IoT policy


def core_policy(partition: str, region: str, account: str, thing: str, role_alias: str) -> dict[str, Any]:
    """The minimal IoT policy of a Greengrass V2 core, for one thing (AWS IoT Greengrass V2 Developer Guide,
    "Minimal AWS IoT policy for AWS IoT Greengrass V2 core devices", device-auth.html).

    MQTT: connect as the thing (`T`, and `T#N` for the extra connections the nucleus opens), health reports,
    jobs (deployments arrive as IoT jobs), shadows, and the results topic. Credentials: AssumeRoleWithCertificate
    on our role alias only. Greengrass data plane: the four actions nucleus 2.5+ needs.
    """
    iot = f"arn:{partition}:iot:{region}:{account}"
    things = f"$aws/things/{thing}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect",
             "Resource": [f"{iot}:client/{thing}", f"{iot}:client/{thing}#*"]},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": [
                f"{iot}:topic/{things}/greengrass/health/json",
                f"{iot}:topic/{things}/greengrassv2/health/json",
                f"{iot}:topic/{things}/jobs/*",
                f"{iot}:topic/{things}/shadow/*",
                f"{iot}:topic/{comp.results_topic(thing)}",
            ]},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [
                f"{iot}:topicfilter/{things}/jobs/*",
                f"{iot}:topicfilter/{things}/shadow/*",
            ]},
            {"Effect": "Allow", "Action": "iot:AssumeRoleWithCertificate",
             "Resource": f"{iot}:rolealias/{role_alias}"},
            {"Effect": "Allow", "Action": [
                "greengrass:GetComponentVersionArtifact",
                "greengrass:ResolveComponentCandidates",
                "greengrass:GetDeploymentConfiguration",
                "greengrass:ListThingGroupsForCoreDevice",
            ], "Resource": "*"},
        ],
    }

