"""The Greengrass V1 `Target`: the state one instance holds (AWS context, settings, the deployment status
source, caches) and the device list; each concern is a sibling module whose class this one combines.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable

from deeplens_cli.aws import collect, maybe
from deeplens_cli.errors import DeeplensError
from deeplens_cli.policies import partition_for
from deeplens_cli.targets import iot as device_iot
from deeplens_cli.targets.base import TARGET_ATTRIBUTE, Device
from deeplens_cli.targets.greengrass_v1.deploy import DeploymentStatusSource, status_source_for
from deeplens_cli.targets.greengrass_v1.naming import TARGET, group_name_for
from deeplens_cli.targets.iot import PENDING_ATTRIBUTE

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.config import Settings
    from deeplens_cli.package import Package


from deeplens_cli.targets.greengrass_v1.deploy import Deploying
from deeplens_cli.targets.greengrass_v1.destroy import Destroying
from deeplens_cli.targets.greengrass_v1.groups import GroupReading
from deeplens_cli.targets.greengrass_v1.lambda_publish import LambdaPublishing
from deeplens_cli.targets.greengrass_v1.project import ProjectContent
from deeplens_cli.targets.greengrass_v1.register import Registration
from deeplens_cli.targets.greengrass_v1.status import Reporting


class GreengrassV1Target(Registration, LambdaPublishing, ProjectContent, Deploying, Reporting, Destroying,
                         GroupReading):
    """`Target` implementation for DeepLens / Greengrass V1 cores (see the module docstring)."""

    name = TARGET

    def __init__(self, ctx: AwsContext, settings: Settings,
                 deployment_status: DeploymentStatusSource | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.settings = settings
        self.deployment_status = deployment_status or status_source_for(ctx)
        self.clock = clock
        self._package: Package | None = None
        self._definition_cache: dict[str, list[dict[str, Any]]] = {}

    # -- small accessors ----------------------------------------------------------------------------------

    @property
    def iot(self) -> Any:
        return self.ctx.client("iot")

    @property
    def gg(self) -> Any:
        return self.ctx.client("greengrass")

    @property
    def lam(self) -> Any:
        return self.ctx.client("lambda")

    @property
    def partition(self) -> str:
        return partition_for(self.ctx.region)

    def thing_arn(self, thing_name: str) -> str:
        return f"arn:{self.partition}:iot:{self.ctx.region}:{self.ctx.account_id}:thing/{thing_name}"

    def role_arn(self, role_name: str) -> str:
        """ARN of a role register-roles creates; a clear error (before any change) when it is missing."""
        role = maybe(lambda: self.ctx.client("iam").get_role(RoleName=role_name), ("NoSuchEntity",))
        if role is None:
            raise DeeplensError(f"IAM role {role_name} does not exist",
                                "run `deeplens-cli register-roles` first")
        return role["Role"]["Arn"]

    # -- devices ------------------------------------------------------------------------------------------

    def list_devices(self) -> list[Device]:
        """Our registered things (attribute deeplens_target=v1), plus groups whose core is a `deeplens_` thing
        that we did not register (devices registered by the DeepLens console)."""
        things = collect(self.iot, "list_things", "things", attributeName=TARGET_ATTRIBUTE, attributeValue=TARGET)
        groups = collect(self.gg, "list_groups", "Groups")
        by_name = {group["Name"]: group for group in groups if "Name" in group}
        devices: list[Device] = []
        claimed: set[str] = set()
        for thing in things:
            device = device_iot.device_from_thing(thing, TARGET, managed=True)
            if device.details.get("registration") == device_iot.INCOMPLETE:
                group = by_name.get(group_name_for((thing.get("attributes") or {}).get(PENDING_ATTRIBUTE, "")))
            else:
                group = by_name.get(group_name_for(device.name))
            if group:
                claimed.add(group["Id"])
                device = replace(device, group_id=group["Id"], group_name=group["Name"])
            devices.append(device)
        ours = {d.thing_name for d in devices}
        for group in groups:
            if group["Id"] in claimed or not group.get("LatestVersion"):
                continue
            core = self._group_core(group["Id"], group["LatestVersion"])
            thing_name = core["ThingArn"].rsplit("/", 1)[-1] if core else ""
            if thing_name.startswith("deeplens_") and thing_name not in ours:
                devices.append(Device(name=group["Name"], target=TARGET, thing_name=thing_name,
                                      thing_arn=core["ThingArn"], group_id=group["Id"], group_name=group["Name"],
                                      details={"managed": False}))
        return devices

