"""Read-only lookups of what the account and the devices report, shared by deploy, fleet, status and destroy:
the device list, a thing's ARN, its core device record, the deployments made to a target and those a device
reports, its installed components, a fleet's members, and whether a fleet's IoT job failed somewhere.

No lookup here changes anything, and none depends on another concern module, so every concern can import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from deeplens_cli.aws import collect, maybe
from deeplens_cli.targets import iot as device_iot
from deeplens_cli.targets.base import TARGET_ATTRIBUTE, Device
from deeplens_cli.targets.greengrass_v2.naming import TARGET
from deeplens_cli.targets.iot import NOT_FOUND

if TYPE_CHECKING:
    from deeplens_cli.targets.greengrass_v2.context import V2Context

JOB_FAILURES = ("FAILED", "TIMED_OUT", "REJECTED")  # IoT job execution states of a device that did not make it


def list_devices(v2: V2Context) -> list[Device]:
    """Every thing carrying our target attribute, by device name."""
    things = collect(v2.ctx.client("iot"), "list_things", "things", attributeName=TARGET_ATTRIBUTE,
                     attributeValue=TARGET, PaginationConfig={"PageSize": device_iot.LIST_THINGS_PAGE})
    return sorted((device_iot.device_from_thing(thing, TARGET) for thing in things), key=lambda d: d.name)


def thing_arn(v2: V2Context, thing: str) -> str:
    return v2.ctx.client("iot").describe_thing(thingName=thing)["thingArn"]


def core_device(v2: V2Context, thing: str) -> dict[str, Any] | None:
    """get_core_device, or None while the nucleus has never connected."""
    return maybe(lambda: v2.ctx.client("greengrassv2").get_core_device(coreDeviceThingName=thing), NOT_FOUND)


def latest_deployment(v2: V2Context, target_arn: str) -> dict[str, Any] | None:
    gg = v2.ctx.client("greengrassv2")
    latest = collect(v2.ctx.client("greengrassv2"), "list_deployments", "deployments", targetArn=target_arn,
                     historyFilter="LATEST_ONLY")
    if not latest:
        return None
    return gg.get_deployment(deploymentId=latest[0]["deploymentId"])


def effective_deployment(v2: V2Context, thing: str, deployment_id: str) -> dict[str, Any] | None:
    for effective in effective_deployments(v2, thing):
        if effective.get("deploymentId") == deployment_id:
            return effective
    return None


def effective_deployments(v2: V2Context, thing: str) -> list[dict[str, Any]]:
    found = maybe(lambda: collect(v2.ctx.client("greengrassv2"), "list_effective_deployments",
                                  "effectiveDeployments", coreDeviceThingName=thing), NOT_FOUND)
    return found or []


def installed_components(v2: V2Context, thing: str) -> list[dict[str, Any]]:
    found = maybe(lambda: collect(v2.ctx.client("greengrassv2"), "list_installed_components",
                                  "installedComponents", coreDeviceThingName=thing), NOT_FOUND)
    return found or []


def fleet_members(v2: V2Context, fleet: str) -> list[str]:
    return sorted(collect(v2.ctx.client("iot"), "list_things_in_thing_group", "things", thingGroupName=fleet,
                          PaginationConfig={"PageSize": device_iot.LIST_THINGS_PAGE}))


def failed_in_job(v2: V2Context, deployment: Mapping[str, Any]) -> str | None:
    """A member on which a fleet deployment failed, from the IoT job's execution summaries: one call per
    failure state (a page of one is enough to know), whatever the fleet."""
    job_id = deployment.get("iotJobId")
    if not job_id:
        return None
    iot = v2.ctx.client("iot")
    for state in JOB_FAILURES:
        page = maybe(lambda state=state: iot.list_job_executions_for_job(jobId=job_id, status=state, maxResults=1),
                     NOT_FOUND)
        for summary in (page or {}).get("executionSummaries") or []:
            thing = str(summary.get("thingArn", "")).rsplit("/", 1)[-1]
            return f"deployment {deployment['deploymentId']} ended {state} on {thing}"
    return None
