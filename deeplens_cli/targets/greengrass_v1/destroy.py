"""Greengrass V1 teardown: a device's group (deployments reset), definitions, certificates, policy and thing;
with no device left, the function and its code objects.

Functions of the target's `V1Context`; a device's certificates are found and retired through `register`, the
function's code prefix is `lambda_publish.code_prefix`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deeplens_cli.aws import collect, error_code, maybe
from deeplens_cli.engine.plan import Action, ApiCall, Plan, Step, noop
from deeplens_cli.targets import iot as device_iot
from deeplens_cli.targets.artifacts import artifact_bucket
from deeplens_cli.targets.base import Device
from deeplens_cli.targets.greengrass_v1.groups import DEFINITION_KINDS
from deeplens_cli.targets.greengrass_v1.lambda_publish import code_prefix
from deeplens_cli.targets.greengrass_v1.naming import policy_name_for
from deeplens_cli.targets.greengrass_v1.register import device_certificates, retire_device_certificate
from deeplens_cli.targets.iot import NOT_FOUND

if TYPE_CHECKING:
    from deeplens_cli.targets.greengrass_v1.context import V1Context


def plan_destroy(v1: V1Context, device: Device | None) -> Plan:
    if device is None:
        return _plan_destroy_shared(v1)
    plan = Plan(f"destroy {device.name} (Greengrass V1)")
    if not device.details.get("managed", True):
        plan.add(noop(f"greengrass-group/{device.group_name}", "not registered by deeplens-cli; left in place"))
        return plan
    thing = device.thing_name
    if device.group_id:
        group_resource = f"greengrass-group/{device.group_name}"
        if maybe(lambda: v1.gg.get_group(GroupId=device.group_id), NOT_FOUND) is None:
            plan.add(noop(group_resource, "already gone"))
        else:
            deployments = collect(v1.gg, "list_deployments", "Deployments", GroupId=device.group_id)
            steps: list[Step] = []
            if any(d.get("DeploymentType") != "ResetDeployment" for d in deployments):
                # Reset first: Greengrass keeps a deployed group's state on the core otherwise. moto's server
                # has no route for `$reset` and answers a bare HTML 404; nothing else ever answers "404".
                steps.append(ApiCall("greengrass", "reset_deployments", {"GroupId": device.group_id, "Force": True},
                                     ignore_codes=("404", "IdNotFoundException")))
            steps.append(ApiCall("greengrass", "delete_group", {"GroupId": device.group_id},
                                 ignore_codes=("IdNotFoundException", "404")))
            plan.add(Action(group_resource, "delete", "reset deployments, then delete the group", tuple(steps),
                            details={"group_id": device.group_id}))
    for label in DEFINITION_KINDS.values():
        for definition in collect(v1.gg, f"list_{label.lower()}_definitions", "Definitions"):
            if str(definition.get("Name", "")).startswith(f"{thing}-"):
                plan.add(Action(f"greengrass-{label.lower()}-definition/{definition['Name']}", "delete",
                                "created for this device", (
                                    ApiCall("greengrass", f"delete_{label.lower()}_definition",
                                            {f"{label}DefinitionId": definition["Id"]},
                                            ignore_codes=("IdNotFoundException", "404")),
                                )))
    for certificate in device_certificates(v1, thing):
        plan.add(retire_device_certificate(v1, thing, certificate, "the device's certificate"))
    policy = device_iot.policy_teardown(v1.iot, policy_name_for(thing), "the core's IoT policy")
    if policy is not None:
        plan.add(policy)
    if maybe(lambda: v1.iot.describe_thing(thingName=thing), NOT_FOUND) is not None:
        plan.add(device_iot.thing_teardown(thing, f"the IoT thing of {device.name}"))
    return plan


def _plan_destroy_shared(v1: V1Context) -> Plan:
    """Once no V1 device is left: the Lambda function with all its versions."""
    plan = Plan("destroy Greengrass V1 shared resources")
    function_name = v1.settings["function.name"]
    resource = f"lambda-function/{function_name}"
    if maybe(lambda: v1.lam.get_function(FunctionName=function_name), ("ResourceNotFoundException",)) is None:
        plan.add(noop(resource, "already gone"))
    else:
        plan.add(Action(resource, "delete", "the edge function and all its published versions", (
            ApiCall("lambda", "delete_function", {"FunctionName": function_name},
                    ignore_codes=("ResourceNotFoundException",)),
        )))
    plan.extend(_plan_delete_code_objects(v1))
    return plan


def _plan_delete_code_objects(v1: V1Context) -> Plan:
    """The function zips publish uploaded (our own content-addressed prefix; never the face crops)."""
    plan = Plan("function code objects")
    bucket = artifact_bucket(v1.settings)
    prefix = code_prefix(v1.settings)
    try:
        keys = [o["Key"] for o in collect(v1.ctx.client("s3"), "list_objects_v2", "Contents",
                                            Bucket=bucket, Prefix=prefix)]
    except Exception as exc:
        if error_code(exc) != "NoSuchBucket":
            raise
        keys = []
    for key in keys:
        plan.add(Action(f"s3-object/s3://{bucket}/{key}", "delete", "published function code", (
            ApiCall("s3", "delete_object", {"Bucket": bucket, "Key": key}),
        )))
    return plan
