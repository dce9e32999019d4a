"""Drivers for the target contract tests (tests/cli/test_target_contract.py): one per row of the registry's
TargetSpec table, each running a target the way the CLI does - `registry.make_target`, the Executor, the
target's own wait - on that target's emulated account.

What a driver knows about its target is only what the contract cannot say generically: which emulated account
it needs, how its device is made to fail a deployment, which API call starts a deployment, the words its
plans use, and an inventory of what a deploy creates (so a test can prove nothing was made twice). Adding a
target means adding a driver here and a row to DRIVERS; test_every_registered_target_has_a_driver fails until
then.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from deeplens_cli.cli.output import Reporter
from deeplens_cli.engine.executor import Executor
from deeplens_cli.engine.plan import Plan
from deeplens_cli.targets.base import DeploymentOutcome, DeploymentRef, Device
from deeplens_cli.targets.registry import make_target
from tests.support.greengrass_v1 import fail_call
from tests.support.settings import make_settings

Call = tuple[str, str]  # (service, operation), as AwsContext.recorder keeps them


@dataclass
class DeployRun:
    plan: Plan
    outcome: DeploymentOutcome | None  # None when the plan was a no-op (nothing started, nothing to wait for)
    mutating: list[Call]  # every mutating call the run made, planning included


@dataclass
class TargetDriver:
    """The contract's view of one target on its emulated account."""

    target_name: str
    account: Any  # MockedAws or the V2 EmulatedAccount: .context(settings), .client(service)
    tmp_path: Path
    deployment_call: Call  # the one call that starts a deployment
    interrupted_call: Call  # a mutating call in the middle of a first deploy, to interrupt it
    up_to_date_words: str  # in the reason of the deployment action of a plan with nothing to do
    first_deploy_words: str  # in the dry-run plan of a device never deployed
    pending_failures: list[Call] = field(default_factory=list)
    last_mutating: list[Call] = field(default_factory=list)

    def context(self) -> Any:
        ctx = self.account.context(make_settings())
        for service, operation in self.pending_failures:
            fail_call(ctx.client(service), operation, "AccessDeniedException",
                      f"not authorized to perform: {service}:{operation}", status=403, times=1)
        self.pending_failures.clear()
        return ctx

    def register(self, name: str = "Cam") -> Device:
        ctx = self.context()
        target = make_target(self.target_name, ctx, make_settings())
        plan = target.plan_register_device(name, str(self.tmp_path / f"bundle-{name}"))
        Executor(ctx, Reporter(stderr=io.StringIO()).progress).execute(plan)
        device = next(d for d in target.list_devices() if d.name == name)
        self.connected(device)
        return device

    def deploy(self, device: Device, force: bool = False) -> DeployRun:
        """plan -> execute -> wait, on a fresh context (as a CLI run); raises what the Executor raises."""
        ctx = self.context()
        target = make_target(self.target_name, ctx, make_settings())
        plan = target.plan_deploy(device, force)
        if plan.is_noop:
            return DeployRun(plan, None, list(ctx.recorder.mutating))
        try:
            result = Executor(ctx, Reporter(stderr=io.StringIO()).progress).execute(plan)
        finally:
            self.last_mutating = list(ctx.recorder.mutating)
        outcome = target.wait_for_deployment(device, DeploymentRef.from_variables(result.variables), 60,
                                             Reporter(stderr=io.StringIO()))
        return DeployRun(plan, outcome, list(ctx.recorder.mutating))

    def interrupt_next_run_at(self, call: Call) -> None:
        """The next run's `call` is denied once (AccessDenied), as a run stopped midway."""
        self.pending_failures.append(call)

    # -- what only the target knows ------------------------------------------------------------------------

    def connected(self, device: Device) -> None:
        """The device came online after registration (a core that answers deployments)."""

    def fail_deployments(self, device: Device) -> None:
        raise NotImplementedError

    def heal(self, device: Device) -> None:
        raise NotImplementedError

    def failed_last_words(self, device: Device) -> str:
        raise NotImplementedError

    def deployment_resource(self, device: Device) -> str:
        raise NotImplementedError

    def inventory(self, device: Device) -> dict[str, int]:
        """How many of each thing a deploy makes exist now (one clean deploy makes one of each)."""
        raise NotImplementedError


class GreengrassV1Driver(TargetDriver):
    """Greengrass V1 on moto; the core's deployment reports are the `v1_core` fixture's script."""

    def __init__(self, account: Any, tmp_path: Path, core: Any) -> None:
        super().__init__("v1", account, tmp_path, deployment_call=("greengrass", "CreateDeployment"),
                         interrupted_call=("greengrass", "CreateGroupVersion"),
                         up_to_date_words="version already deployed", first_deploy_words="deploy the new version")
        self.core = core

    def fail_deployments(self, device: Device) -> None:
        self.core.will_report("InProgress", {"DeploymentStatus": "Failure", "ErrorMessage": "device offline"})

    def heal(self, device: Device) -> None:
        self.core.will_report("InProgress", "Success")

    def failed_last_words(self, device: Device) -> str:
        return "the last deployment of this version failed"

    def deployment_resource(self, device: Device) -> str:
        return f"greengrass-deployment/{device.group_name}"

    def inventory(self, device: Device) -> dict[str, int]:
        gg, lam = self.account.client("greengrass"), self.account.client("lambda")
        counts = {kind: len(getattr(gg, f"list_{kind}_definitions")()["Definitions"])
                  for kind in ("function", "resource", "subscription")}
        counts["deployments"] = len(gg.list_deployments(GroupId=device.group_id)["Deployments"])
        functions = lam.list_functions()["Functions"]
        counts["functions"] = len(functions)
        counts["function versions"] = sum(
            len([v for v in lam.list_versions_by_function(FunctionName=f["FunctionName"])["Versions"]
                 if v["Version"] != "$LATEST"]) for f in functions)
        return counts


class GreengrassV2Driver(TargetDriver):
    """Greengrass V2 on moto plus the fake Greengrass V2 endpoint (tests/cli/fake_greengrassv2.py)."""

    def __init__(self, account: Any, tmp_path: Path) -> None:
        super().__init__("v2", account, tmp_path, deployment_call=("greengrassv2", "CreateDeployment"),
                         interrupted_call=("greengrassv2", "CreateDeployment"),
                         up_to_date_words="already has this component set", first_deploy_words="first deployment")

    def connected(self, device: Device) -> None:
        self.account.gg.connect_core(device.thing_name, bundle=self.tmp_path / f"bundle-{device.name}")

    def fail_deployments(self, device: Device) -> None:
        self.account.gg.cores[device.thing_name].behaviour = "fail"

    def heal(self, device: Device) -> None:
        self.account.gg.cores[device.thing_name].behaviour = "healthy"

    def failed_last_words(self, device: Device) -> str:
        return f"ended FAILED on {device.thing_name}"

    def deployment_resource(self, device: Device) -> str:
        return f"gg-deployment/{device.thing_name}"

    def inventory(self, device: Device) -> dict[str, int]:
        gg = self.account.gg
        return {"component versions": len(gg.operations("CreateComponentVersion")),
                "deployments": len(gg.operations("CreateDeployment"))}


def v1_driver(request: pytest.FixtureRequest, tmp_path: Path) -> TargetDriver:
    return GreengrassV1Driver(request.getfixturevalue("gg_account"), tmp_path, request.getfixturevalue("v1_core"))


def v2_driver(request: pytest.FixtureRequest, tmp_path: Path) -> TargetDriver:
    return GreengrassV2Driver(request.getfixturevalue("v2_account"), tmp_path)


DRIVERS: dict[str, Callable[[pytest.FixtureRequest, Path], TargetDriver]] = {"v1": v1_driver, "v2": v2_driver}
