"""A Greengrass V1-ready emulated account, and the V1 target driven the way the CLI drives it.

`gg_account` is the `aws_plain` account (moto without the AWS managed policies, ~0.8 s cheaper per test) plus
the three roles the V1 target reads (group role, Greengrass service role, Lambda execution role), created
directly; the register-roles planner itself is tested in tests/cli/test_register_roles.py. Tests that need the
real register-roles state (status) use `aws` instead.

`world` (a V1World) runs the target's planners and the Executor on that account. The core's deployment reports
are scripted: `ScriptedStatus` plays one script across every poll; `v1_core` (a V1CoreReports) keeps each
deployment's own history, as a real core does, and is installed where the CLI builds its status source.

Product modules are imported inside functions (the Python 3.7 edge run loads this plugin too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import pytest

from tests.support.settings import REGION, TEST_BUCKET, make_settings

if TYPE_CHECKING:
    from deeplens_cli.engine.executor import ExecutionResult
    from deeplens_cli.engine.plan import Plan
    from deeplens_cli.targets.base import Device
    from deeplens_cli.targets.greengrass_v1 import GreengrassV1Target
    from tests.support.aws_accounts import MockedAws

BUCKET = TEST_BUCKET
__all__ = ["REGION", "BUCKET", "make_settings"]  # re-exported for tests/cli/v1_support.py


def v1_roles() -> dict[str, tuple[str, str]]:
    """Role name -> (path, service principal) of the roles the V1 target reads."""
    from deeplens_cli.account.roles import GROUP_ROLE
    from deeplens_cli.targets.greengrass_v1 import LAMBDA_ROLE, SERVICE_ROLE

    return {GROUP_ROLE: ("/", "greengrass.amazonaws.com"),
            SERVICE_ROLE: ("/", "greengrass.amazonaws.com"),
            LAMBDA_ROLE: ("/service-role/", "lambda.amazonaws.com")}


def create_v1_roles(iam: Any, names: tuple[str, ...] | None = None) -> None:
    roles = v1_roles()
    for name in names or tuple(roles):
        path, service = roles[name]
        iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}))


def prepare_account(account: MockedAws) -> MockedAws:
    """What `register-roles` leaves behind that the V1 target relies on: the roles and the bucket."""
    create_v1_roles(account.client("iam"))
    account.client("s3").create_bucket(Bucket=BUCKET)
    return account


@pytest.fixture
def gg_account(aws_plain: MockedAws) -> MockedAws:
    return prepare_account(aws_plain)


@pytest.fixture(scope="class")
def gg_account_class(aws_plain_class: MockedAws) -> MockedAws:
    """`gg_account` shared by the tests of one class: arrange once (a registration costs ~0.5 s), inspect many."""
    return prepare_account(aws_plain_class)


class ScriptedStatus:
    """A deployment status source that answers from a script: each call pops the next state, the last one
    repeats. `calls` records (group_id, deployment_id) so tests can see which deployment was polled."""

    def __init__(self, *states: str | Mapping[str, Any]) -> None:
        self.script = [s if isinstance(s, Mapping) else {"DeploymentStatus": s} for s in states] or \
            [{"DeploymentStatus": "InProgress"}]
        self.calls: list[tuple[str, str]] = []

    def __call__(self, group_id: str, deployment_id: str) -> Mapping[str, Any]:
        self.calls.append((group_id, deployment_id))
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]


@dataclass
class V1World:
    """One mocked account with the V1 roles, and helpers that run the target the way the commands do."""

    aws: MockedAws
    tmp: Path
    settings_values: dict[str, Any] = field(default_factory=dict)
    status: ScriptedStatus = field(default_factory=lambda: ScriptedStatus("Success"))

    def __post_init__(self) -> None:
        self.ctx = self.aws.context(self.settings)
        self._clients: dict[str, Any] = {}

    @property
    def settings(self) -> Any:
        return make_settings(**self.settings_values)

    def reconfigure(self, **values: Any) -> None:
        self.settings_values.update(values)

    def target(self, **overrides: Any) -> GreengrassV1Target:
        from deeplens_cli.targets.greengrass_v1 import GreengrassV1Target

        return GreengrassV1Target(self.ctx, self.settings, deployment_status=self.status, **overrides)

    def apply(self, plan: Plan) -> ExecutionResult | None:
        from deeplens_cli.cli.output import Reporter
        from deeplens_cli.engine.executor import Executor

        return None if plan.is_noop else Executor(self.ctx, Reporter(stderr=ProgressSink()).progress).execute(plan)

    def register(self, name: str = "MyDevice", out: Path | None = None) -> Device:
        out = out or self.tmp / f"bundle-{name}"
        self.apply(self.target().plan_register_device(name, str(out)))
        return self.device(name)

    def device(self, name: str = "MyDevice") -> Device:
        (device,) = [d for d in self.target().list_devices() if d.name == name]
        return device

    def deploy(self, device: Device, force: bool = False) -> tuple[Plan, ExecutionResult | None]:
        plan = self.target().plan_deploy(device, force)
        return plan, self.apply(plan)

    def mutating_calls_of(self, run: Callable[[], Any]) -> list[tuple[str, str]]:
        self.ctx.recorder.calls.clear()
        run()
        return list(self.ctx.recorder.mutating)

    def client(self, service: str) -> Any:
        """One boto3 client per service for the whole test (faults registered on it stay registered)."""
        if service not in self._clients:
            self._clients[service] = self.aws.client(service)
        return self._clients[service]

    @property
    def gg(self) -> Any:
        return self.client("greengrass")

    @property
    def iot(self) -> Any:
        return self.client("iot")

    @property
    def lam(self) -> Any:
        return self.client("lambda")


class ProgressSink:
    """A stderr stand-in that keeps what was written (progress lines) for assertions."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.lines.append(text)
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False


@pytest.fixture
def world(gg_account: MockedAws, tmp_path: Path) -> V1World:
    return V1World(gg_account, tmp_path)


def action(plan: Plan, resource_prefix: str) -> Any:
    (found,) = [a for a in plan.actions if a.resource.startswith(resource_prefix)]
    return found


def group_definition(gg: Any, group_id: str) -> dict[str, Any]:
    group = gg.get_group(GroupId=group_id)
    return gg.get_group_version(GroupId=group_id, GroupVersionId=group["LatestVersion"])["Definition"]


def definition_items(gg: Any, version_arn: str) -> list[dict[str, Any]]:
    from deeplens_cli.targets.greengrass_v1.groups import DEFINITION_KINDS, parse_definition_arn

    kind, definition_id, version = parse_definition_arn(version_arn)
    label = DEFINITION_KINDS[kind]
    response = getattr(gg, f"get_{label.lower()}_definition_version")(
        **{f"{label}DefinitionId": definition_id, f"{label}DefinitionVersionId": version})
    return response["Definition"][f"{label}s"]


def fail_call(client: Any, operation: str, code: str, message: str, status: int = 400,
              times: int | None = None) -> list[int]:
    """Make `client.<operation>` answer with an AWS error (botocore before-call short-circuit), `times` times
    (None: always). Returns a one-item list counting the failures served."""
    from botocore.awsrequest import AWSResponse

    served = [0]

    def answer(**_: Any) -> Any:
        if times is not None and served[0] >= times:
            return None
        served[0] += 1
        response = AWSResponse("https://example.invalid", status, {}, None)
        return response, {"Error": {"Code": code, "Message": message},
                          "ResponseMetadata": {"HTTPStatusCode": status}}

    client.meta.events.register(f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}", answer)
    return served


def answer_call(client: Any, operation: str, parsed: Mapping[str, Any], status: int = 200) -> list[int]:
    """Make `client.<operation>` answer `parsed` (what a real endpoint would) without asking moto."""
    from botocore.awsrequest import AWSResponse

    served = [0]

    def answer(**_: Any) -> Any:
        served[0] += 1
        return AWSResponse("https://example.invalid", status, {}, None), {
            **parsed, "ResponseMetadata": {"HTTPStatusCode": status}}

    client.meta.events.register(f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}", answer)
    return served


class V1CoreReports:
    """What a Greengrass V1 core reports for each deployment: a new deployment follows `script` (its last answer
    repeats); a deployment keeps its own history, so an old failed deployment still reads as failed."""

    def __init__(self) -> None:
        self.script: list[dict[str, Any]] = [{"DeploymentStatus": "Success"}]
        self.by_deployment: dict[str, list[dict[str, Any]]] = {}

    def will_report(self, *states: str | dict[str, Any]) -> None:
        self.script = [s if isinstance(s, dict) else {"DeploymentStatus": s} for s in states]

    def __call__(self, group_id: str, deployment_id: str) -> dict[str, Any]:
        answers = self.by_deployment.setdefault(deployment_id, list(self.script))
        return answers.pop(0) if len(answers) > 1 else answers[0]


@pytest.fixture
def v1_core(monkeypatch: pytest.MonkeyPatch) -> V1CoreReports:
    """A V1CoreReports that answers every status poll of the V1 targets the CLI builds."""
    import deeplens_cli.targets.greengrass_v1.target as v1_target

    reports = V1CoreReports()
    monkeypatch.setattr(v1_target, "status_source_for", lambda ctx: reports)
    return reports
