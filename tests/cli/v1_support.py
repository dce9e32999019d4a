"""Fixtures and helpers shared by the Greengrass V1 tests (tests/cli/test_v1_*.py, test_status.py).

A test module makes a fixture available by importing its function (`from v1_support import world_fixture`);
fixtures are registered under their short names (`world`, `gg_account`, ...), so test arguments do not shadow
the imported names.

`gg_account` is the shared `aws_plain` fixture (moto without the AWS managed policies, ~0.8 s cheaper per test)
plus the three roles the V1 target reads (group role, Greengrass service role, Lambda execution role), created
directly; the register-roles planner itself is tested in test_register_roles.py. Tests that need the real
register-roles state (status) use the shared `aws` fixture instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

import pytest

from deeplens_cli.executor import ExecutionResult, Executor
from deeplens_cli.output import Reporter
from deeplens_cli.plan import Plan
from deeplens_cli.roles import GROUP_ROLE
from deeplens_cli.targets.base import Device
from deeplens_cli.targets.greengrass_v1 import LAMBDA_ROLE, SERVICE_ROLE, GreengrassV1Target

if TYPE_CHECKING:
    from conftest import MockedAws  # the tests/conftest.py fixtures' account object

REGION = "us-east-1"
BUCKET = "deeplens-test-face-crops"

ROLES = {GROUP_ROLE: ("/", "greengrass.amazonaws.com"),
         SERVICE_ROLE: ("/", "greengrass.amazonaws.com"),
         LAMBDA_ROLE: ("/service-role/", "lambda.amazonaws.com")}


def make_settings(**values: Any) -> Any:
    """Validated settings from the defaults, the test region and bucket, and `values` (dotted keys as '__').

    (tests/conftest.py has the same helper; importing `conftest` by name is ambiguous next to tests/edge/.)
    """
    from deeplens_cli.config import Settings, defaults

    return Settings(values=defaults()).replace(**{"region": REGION, "bucket": BUCKET, **values})


def create_v1_roles(iam: Any, names: tuple[str, ...] = tuple(ROLES)) -> None:
    for name in names:
        path, service = ROLES[name]
        iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}))


def prepare_account(account: MockedAws) -> MockedAws:
    """What `register-roles` leaves behind that the V1 target relies on: the roles and the bucket."""
    create_v1_roles(account.client("iam"))
    account.client("s3").create_bucket(Bucket=BUCKET)
    return account


@pytest.fixture(name="gg_account")
def gg_account_fixture(aws_plain: MockedAws) -> MockedAws:
    return prepare_account(aws_plain)


@pytest.fixture(name="gg_account_class", scope="class")
def gg_account_class_fixture(aws_plain_class: MockedAws) -> MockedAws:
    """`gg_account` shared by the tests of one class: arrange once (a registration costs ~0.5 s), inspect many."""
    return prepare_account(aws_plain_class)


@pytest.fixture(name="shared_botocore_models", scope="module")
def shared_botocore_models_fixture() -> Iterator[None]:
    """Every botocore session of a test module shares one model loader (and its cache).

    Each AwsContext is a new boto3 Session, and each session parses the service models again - IoT's and
    Greengrass's are large - which costs ~0.4 s per context, i.e. per CLI invocation in a test. botocore makes
    the loader lazily with `create_loader(data_path)`; answering that with one shared loader changes nothing
    but the parsing. A module opts in by importing `shared_botocore_models_fixture` and the autouse
    `fast_botocore_models_fixture`.
    """
    import botocore.session

    from deeplens_cli.aws import shared_loader

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", shared_loader)  # also for clients made outside AwsContext
        yield


@pytest.fixture(name="fast_botocore_models", autouse=True)
def fast_botocore_models_fixture(shared_botocore_models: None) -> None:
    """Autouse in every module that imports it (all the V1 test modules do)."""


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
    """One mocked account with the V1 roles, and helpers that run the target the way devices.py does."""

    aws: MockedAws
    tmp: Path
    settings_values: dict[str, Any] = field(default_factory=dict)
    status: ScriptedStatus = field(default_factory=lambda: ScriptedStatus("Success"))

    def __post_init__(self) -> None:
        self.ctx = self.aws.context(self.settings)

    @property
    def settings(self) -> Any:
        return make_settings(**self.settings_values)

    def reconfigure(self, **values: Any) -> None:
        self.settings_values.update(values)

    def target(self, **overrides: Any) -> GreengrassV1Target:
        return GreengrassV1Target(self.ctx, self.settings, deployment_status=self.status, **overrides)

    def apply(self, plan: Plan) -> ExecutionResult | None:
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

    @cached_property
    def gg(self) -> Any:
        return self.aws.client("greengrass")

    @cached_property
    def iot(self) -> Any:
        return self.aws.client("iot")

    @cached_property
    def lam(self) -> Any:
        return self.aws.client("lambda")


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


@pytest.fixture(name="world")
def world_fixture(gg_account: MockedAws, tmp_path: Path) -> V1World:
    return V1World(gg_account, tmp_path)


def action(plan: Plan, resource_prefix: str) -> Any:
    (found,) = [a for a in plan.actions if a.resource.startswith(resource_prefix)]
    return found


def group_definition(gg: Any, group_id: str) -> dict[str, Any]:
    group = gg.get_group(GroupId=group_id)
    return gg.get_group_version(GroupId=group_id, GroupVersionId=group["LatestVersion"])["Definition"]


def definition_items(gg: Any, version_arn: str) -> list[dict[str, Any]]:
    from deeplens_cli.targets.greengrass_v1 import DEFINITION_KINDS, parse_definition_arn

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
