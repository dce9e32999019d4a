"""Greengrass V2 teardown: a device's deployments, core device record, certificates, policy and thing; with no
device left, the fleets' claims (claim_teardown.py), the fleets, component versions and artifacts deeplens-cli
created.

Functions of the shared `V2Context` (context.py). Uses publish (`component_versions`) and the shared lookups of
reads.py (the device list, a thing's ARN and core device, a fleet's members).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from deeplens_cli.aws import collect, maybe
from deeplens_cli.engine.plan import Action, ApiCall, Plan, Step, noop
from deeplens_cli.errors import DeeplensError
from deeplens_cli.targets import iot as device_iot
from deeplens_cli.targets.artifacts import artifact_bucket
from deeplens_cli.targets.base import Device
from deeplens_cli.targets.greengrass_v2 import component as comp
from deeplens_cli.targets.greengrass_v2.claim_teardown import claim_fleets, plan_claim_teardown
from deeplens_cli.targets.greengrass_v2.naming import (
    MANAGED,
    MANAGED_GROUP_ATTRIBUTE,
    POLICY_PREFIX,
    THING_PREFIX,
)
from deeplens_cli.targets.greengrass_v2.publish import component_versions
from deeplens_cli.targets.greengrass_v2.reads import core_device, fleet_members, list_devices, thing_arn
from deeplens_cli.targets.registration import certificate_resource

if TYPE_CHECKING:
    from deeplens_cli.targets.greengrass_v2.context import V2Context


def plan_destroy(v2: V2Context, device: Device | None) -> Plan:
    if device is None:
        return _plan_shared_teardown(v2)
    iot = v2.ctx.client("iot")
    thing = device.thing_name
    plan = Plan(f"destroy {device.name} (Greengrass V2)")
    target_arn = device.thing_arn or thing_arn(v2, thing)
    for deployment in collect(v2.ctx.client("greengrassv2"), "list_deployments", "deployments",
                              targetArn=target_arn, historyFilter="ALL"):
        plan.add(_deployment_teardown(deployment))
    if core_device(v2, thing) is not None:
        plan.add(Action(f"gg-core-device/{thing}", "delete", "Greengrass core device record", (
            ApiCall("greengrassv2", "delete_core_device", {"coreDeviceThingName": thing},
                    ignore_codes=("ResourceNotFoundException",)),
        )))
    for principal in collect(iot, "list_thing_principals", "principals", thingName=thing):
        resource = certificate_resource(principal.rsplit('/', 1)[-1])
        if ":cert/" in principal:
            steps = device_iot.certificate_teardown(principal, device_iot.attached_policies(iot, principal),
                                                    thing=thing)
        else:
            steps = (ApiCall("iot", "detach_thing_principal", {"thingName": thing, "principal": principal},
                             ignore_codes=device_iot.NOT_FOUND),)
        plan.add(Action(resource, "delete", f"certificate of {thing}", steps))
    # the policy name comes from the thing name: also right for an incomplete registration
    policy = device_iot.policy_teardown(iot, POLICY_PREFIX + thing[len(THING_PREFIX):], "core device policy")
    if policy is not None:
        plan.add(policy)
    plan.add(device_iot.thing_teardown(thing, f"device {device.name}"))
    return plan


def _plan_shared_teardown(v2: V2Context) -> Plan:
    """The shared teardown, where an endpoint that cannot be reached is an error - never read as "this API is
    not here" (which devices.destroy skips quietly), or the component and its artifacts would be left behind
    by a run that says there was nothing to do."""
    import botocore.exceptions as bce

    try:
        return _plan_shared_resources(v2)
    except (bce.EndpointConnectionError, bce.ConnectTimeoutError, bce.ReadTimeoutError) as exc:
        url = getattr(exc, "kwargs", {}).get("endpoint_url") or "the Greengrass V2 endpoint"
        raise DeeplensError(f"cannot reach {url} to remove the Greengrass V2 component and fleets",
                            "check the network and AWS_ENDPOINT_URL[_GREENGRASSV2], then run destroy again "
                            "(nothing shared was removed)") from exc


def _plan_shared_resources(v2: V2Context) -> Plan:
    """With no V2 device left (devices.destroy plans this after every device's own teardown, in the same run):
    fleet deployments, fleets we created that hold no other thing, component versions, artifacts."""
    iot = v2.ctx.client("iot")
    gg = v2.ctx.client("greengrassv2")
    plan = Plan("destroy Greengrass V2 shared resources")
    for fleet in claim_fleets(v2):  # first: once its template is gone, no claim registers a camera into a fleet
        plan.extend(plan_claim_teardown(v2, fleet))
    for deployment in collect(v2.ctx.client("greengrassv2"), "list_deployments", "deployments", historyFilter="ALL"):
        if ":thinggroup/" in deployment.get("targetArn", "") and \
                deployment.get("deploymentName") == v2.settings["project.name"]:
            plan.add(_deployment_teardown(deployment))
    ours = {device.thing_name for device in list_devices(v2)}  # all being destroyed in the same run
    for group in collect(v2.ctx.client("iot"), "list_thing_groups", "thingGroups"):
        described = iot.describe_thing_group(thingGroupName=group["groupName"])
        properties = described.get("thingGroupProperties") or {}
        attributes = (properties.get("attributePayload") or {}).get("attributes") or {}
        if attributes.get(MANAGED_GROUP_ATTRIBUTE) != MANAGED:
            continue
        if set(fleet_members(v2, group["groupName"])) - ours:
            plan.add(noop(f"iot-thing-group/{group['groupName']}", "kept: it still has members"))
            continue
        plan.add(Action(f"iot-thing-group/{group['groupName']}", "delete", "empty fleet created by deeplens-cli", (
            ApiCall("iot", "delete_thing_group", {"thingGroupName": group["groupName"]},
                    ignore_codes=("ResourceNotFoundException",)),
        )))
    for entry in component_versions(v2):
        arn = entry.get("arn") or v2.component_arn(entry["componentVersion"])
        tags = gg.describe_component(arn=arn).get("tags") or {}
        if tags.get(comp.TAG_MANAGED) != MANAGED:
            plan.add(noop(f"gg-component/{v2.component_name}@{entry['componentVersion']}",
                          "kept: not published by deeplens-cli"))
            continue
        plan.add(Action(f"gg-component/{v2.component_name}@{entry['componentVersion']}", "delete",
                        "component version published by deeplens-cli", (
                            ApiCall("greengrassv2", "delete_component", {"arn": arn},
                                    ignore_codes=("ResourceNotFoundException",)),
                        )))
    bucket = artifact_bucket(v2.settings)
    prefix = f"{v2.settings['greengrass.artifact_prefix']}{v2.component_name}/"
    keys = [o["Key"] for o in maybe(lambda: collect(v2.ctx.client("s3"), "list_objects_v2", "Contents",
                                                    Bucket=bucket, Prefix=prefix),
                                    ("NoSuchBucket",)) or []]
    if keys:
        batches = [keys[i:i + 1000] for i in range(0, len(keys), 1000)]
        plan.add(Action(f"s3-objects/s3://{bucket}/{prefix}", "delete",
                        f"{len(keys)} component artifact(s); face crops are not touched", tuple(
                            ApiCall("s3", "delete_objects", {"Bucket": bucket, "Delete": {
                                "Objects": [{"Key": k} for k in batch], "Quiet": True}}) for batch in batches)))
    return plan


def _deployment_teardown(deployment: Mapping[str, Any]) -> Action:
    """Cancel an active deployment (a deleted-but-active one would keep its IoT job running), then delete it."""
    deployment_id = deployment["deploymentId"]
    steps: list[Step] = []
    if deployment.get("deploymentStatus") == "ACTIVE":
        steps.append(ApiCall("greengrassv2", "cancel_deployment", {"deploymentId": deployment_id},
                             ignore_codes=("ResourceNotFoundException", "ConflictException")))
    steps.append(ApiCall("greengrassv2", "delete_deployment", {"deploymentId": deployment_id},
                         ignore_codes=("ResourceNotFoundException",)))
    reason = f"deployment {deployment.get('deploymentName') or ''} to {deployment.get('targetArn')}"
    return Action(f"gg-deployment/{deployment_id}", "delete", reason.replace("  ", " "), tuple(steps))


