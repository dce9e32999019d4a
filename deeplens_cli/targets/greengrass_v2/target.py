"""The Greengrass V2 `Target`: the state one instance holds (AWS context, settings, the component build)
and the device list; each concern is a sibling module whose class this one combines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deeplens_cli.aws import collect
from deeplens_cli.policies import partition_for
from deeplens_cli.targets import iot as device_iot
from deeplens_cli.targets.base import TARGET_ATTRIBUTE, Device
from deeplens_cli.targets.greengrass_v2 import component as comp
from deeplens_cli.targets.greengrass_v2.naming import TARGET

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.config import Settings
    from deeplens_cli.package import Package


from deeplens_cli.targets.greengrass_v2.deploy import Deploying
from deeplens_cli.targets.greengrass_v2.destroy import Destroying
from deeplens_cli.targets.greengrass_v2.fleet import Fleets
from deeplens_cli.targets.greengrass_v2.provisioning import ClaimProvisioning
from deeplens_cli.targets.greengrass_v2.publish import Publishing
from deeplens_cli.targets.greengrass_v2.register import Registration
from deeplens_cli.targets.greengrass_v2.status import Reporting


class GreengrassV2Target(Registration, Publishing, Deploying, Fleets, ClaimProvisioning, Reporting, Destroying):
    """Greengrass V2: IoT thing + certificate + policy per device, one component, thing/thing-group deployments."""

    name = TARGET

    def __init__(self, ctx: AwsContext, settings: Settings, package: Package | None = None) -> None:
        self.ctx = ctx
        self.settings = settings
        self._package = package  # tests pass a prebuilt zip; otherwise package.build_package() on first use
        self._build: comp.ComponentBuild | None = None

    # -- small helpers ------------------------------------------------------------------------------------

    @property
    def partition(self) -> str:
        return partition_for(self.ctx.region)

    @property
    def component_name(self) -> str:
        return self.settings["greengrass.component_name"]

    def component(self) -> comp.ComponentBuild:
        if self._build is None:
            self._build = comp.build_component(self.settings, self._package)
        return self._build

    def _component_arn(self, version: str | None = None) -> str:
        return comp.component_arn(self.partition, self.ctx.region, self.ctx.account_id, self.component_name, version)

    # -- devices ------------------------------------------------------------------------------------------

    def list_devices(self) -> list[Device]:
        things = collect(self.ctx.client("iot"), "list_things", "things", attributeName=TARGET_ATTRIBUTE,
                         attributeValue=TARGET, PaginationConfig={"PageSize": device_iot.LIST_THINGS_PAGE})
        return sorted((device_iot.device_from_thing(thing, TARGET) for thing in things), key=lambda d: d.name)

