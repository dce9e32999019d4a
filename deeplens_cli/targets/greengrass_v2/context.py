"""The state every Greengrass V2 concern shares, as one typed value passed explicitly to each concern's functions.

One `V2Context` lives as long as one `GreengrassV2Target` (target.py): the AWS context and settings it was made
with, the component build (made on first use: building it packages the edge function), and the reads a run
with many devices makes only once (the role alias and endpoints, the thing groups already known to exist).
The concern modules (register, publish, deploy, fleet, provisioning, status, destroy) take it as their first
argument instead of reaching each other through `self`, so what each one reads is visible in its signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from deeplens_cli.account.policies import partition_for
from deeplens_cli.targets.greengrass_v2 import component as comp

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.settings.config import Settings
    from deeplens_cli.targets.package import Package


@dataclass
class V2Context:
    """What one Greengrass V2 target instance knows and caches."""

    ctx: AwsContext
    settings: Settings
    package: Package | None = None  # tests pass a prebuilt zip; otherwise package.build_package() on first use
    build: comp.ComponentBuild | None = None  # the component, built on first use (`component()`)
    shared_reads: tuple[str, str, str] | None = None  # (role alias, data endpoint, credential endpoint)
    known_groups: set[str] = field(default_factory=set)  # thing groups seen to exist in this run

    @property
    def partition(self) -> str:
        return partition_for(self.ctx.region)

    @property
    def component_name(self) -> str:
        return self.settings["greengrass.component_name"]

    def component(self) -> comp.ComponentBuild:
        if self.build is None:
            self.build = comp.build_component(self.settings, self.package)
        return self.build

    def component_arn(self, version: str | None = None) -> str:
        return comp.component_arn(self.partition, self.ctx.region, self.ctx.account_id, self.component_name, version)
