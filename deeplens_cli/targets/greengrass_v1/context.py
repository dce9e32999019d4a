"""What every Greengrass V1 concern shares, as one typed value: the AWS context, the settings, where deployment
status comes from, the clock, and the reads cached for the life of one target (definition versions, the group
listing, the built function zip).

The concern modules (register, lambda_publish, deploy, status, destroy, devices) are plain functions that take a
`V1Context` first; `target.py` builds one per `GreengrassV1Target` and delegates to them. Nothing here plans or
writes: this module only names the state and the read-only account facts (ARNs, the roles register-roles made).

Deployment status seam: moto's `GetDeploymentStatus` answers `InProgress` forever, and there is no DeepLens in a
test, so where a deployment's status comes from is a `DeploymentStatusSource` (by default the API; tests pass a
scripted one, or replace `target.status_source_for`, which the facade calls when none is given).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from deeplens_cli.account.policies import partition_for
from deeplens_cli.aws import maybe
from deeplens_cli.errors import DeeplensError
from deeplens_cli.targets.iot import thing_arn_for

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.settings.config import Settings
    from deeplens_cli.targets.package import Package


class DeploymentStatusSource(Protocol):
    """Where deployment status comes from: `(group_id, deployment_id) -> GetDeploymentStatus response`.

    The response needs `DeploymentStatus` (InProgress | Building | Success | Failure) and, on failure,
    `ErrorMessage` and `ErrorDetails` ([{DetailedErrorCode, DetailedErrorMessage}]).
    """

    def __call__(self, group_id: str, deployment_id: str) -> Mapping[str, Any]: ...


class ApiDeploymentStatus:
    """The real source: Greengrass `GetDeploymentStatus`, as the device reported it to the cloud."""

    def __init__(self, ctx: AwsContext) -> None:
        self.ctx = ctx

    def __call__(self, group_id: str, deployment_id: str) -> Mapping[str, Any]:
        return self.ctx.client("greengrass").get_deployment_status(GroupId=group_id, DeploymentId=deployment_id)


def api_status_source(ctx: AwsContext) -> DeploymentStatusSource:
    return ApiDeploymentStatus(ctx)


@dataclass
class V1Context:
    """The state one Greengrass V1 target holds; each concern function reads it, only the caches change."""

    ctx: AwsContext
    settings: Settings
    deployment_status: DeploymentStatusSource
    clock: Callable[[], float] = time.monotonic
    # Definition versions are immutable: each is read once per target (a plan consults them several times).
    definition_cache: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Every group by name (V1 has no lookup by name): one listing per target, for the status views.
    group_listing: dict[str, dict[str, Any]] | None = None
    built_package: Package | None = None  # the function zip, built once per target (lambda_publish.package)

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
        return thing_arn_for(self.ctx.region, self.ctx.account_id, thing_name)

    def role_arn(self, role_name: str) -> str:
        """ARN of a role register-roles creates; a clear error (before any change) when it is missing."""
        role = maybe(lambda: self.ctx.client("iam").get_role(RoleName=role_name), ("NoSuchEntity",))
        if role is None:
            raise DeeplensError(f"IAM role {role_name} does not exist",
                                "run `deeplens-cli register-roles` first")
        return role["Role"]["Arn"]
