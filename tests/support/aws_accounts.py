"""Emulated AWS accounts in this process (moto's `mock_aws`): per test, per class, or many cheap fresh ones.

* `aws` - moto with AWS managed policies loaded, because the DeepLens roles attach managed policies by ARN and
  moto refuses unknown ARNs: the real documents of those the roles attach, not all ~1,600 (loading every one
  costs ~0.7 s an account; `moto_server` and the class accounts load the same set). Use it for planners and
  executors.
* `aws_plain` - moto without the managed policies (~0.7 s cheaper a test), for tests that attach none.
* `aws_class` / `aws_plain_class` - one account shared by the tests of a class (arrange once, inspect many).
* `fresh_account()` - a context manager giving a new, empty account in milliseconds, for tests that need
  many (crash convergence, the bad-input table): moto loads only the managed policies the DeepLens roles
  attach (`lean_managed_policies`) and every botocore session shares one model loader (`shared_models`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

from tests.support.environment import fake_aws_environment
from tests.support.settings import REGION, make_settings

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.settings.config import Settings


@dataclass
class MockedAws:
    """What the account fixtures return: clients on the mocked account and AwsContexts that never really sleep."""

    region: str = REGION
    sleeps: list[float] = field(default_factory=list)  # every delay an AwsContext asked for, in order

    def client(self, service: str) -> Any:
        """A plain boto3 client on the mocked account, for arranging and inspecting state in tests."""
        import boto3

        return boto3.client(service, region_name=self.region)

    def context(self, settings: Settings | None = None) -> AwsContext:
        """An AwsContext as the CLI builds it, with `sleep` recorded into `self.sleeps` instead of waiting."""
        from deeplens_cli.aws import make_context

        return make_context(settings or make_settings(region=self.region), sleep=self.sleeps.append)


@pytest.fixture
def aws(aws_env: dict[str, str], lean_managed_policies: None) -> Iterator[MockedAws]:
    """moto's in-process mock with AWS managed policies loaded (the DeepLens roles attach them by ARN): the real
    documents of those the roles attach, not all ~1,600 (`lean_managed_policies`: 0.7 s less per test)."""
    from moto import mock_aws

    with mock_aws(config={"iam": {"load_aws_managed_policies": True}}):
        yield MockedAws()


@pytest.fixture
def aws_plain(aws_env: dict[str, str]) -> Iterator[MockedAws]:
    """moto without AWS managed policies, for tests that attach none (S3, IoT, Lambda...).

    Loading the ~1,300 managed policies costs about 0.7 s per test, and moto pays it as soon as any service
    touches its IAM backend (S3 does), so tests that do not need them should use this instead of `aws`.
    """
    from moto import mock_aws

    with mock_aws(config={"iam": {"load_aws_managed_policies": False}}):
        yield MockedAws()


@pytest.fixture(scope="class")
def aws_class(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockedAws]:
    """Like `aws`, but one mocked account shared by every test of a test class (arrange once, inspect many).

    State one test changes is seen by the next, so tests should only read, or leave the account as they found
    it. Moto IAM with managed policies costs about a second per fresh account, which is what this saves.
    Do not mix with `moto_server` in the same class (the in-process mock would answer the server's calls).
    """
    yield from _class_account(tmp_path_factory, managed_policies=True)


@pytest.fixture(scope="class")
def aws_plain_class(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockedAws]:
    """`aws_plain` (no managed policies) shared by the tests of a class; same rules as `aws_class`."""
    yield from _class_account(tmp_path_factory, managed_policies=False)


def _class_account(tmp_path_factory: pytest.TempPathFactory, managed_policies: bool) -> Iterator[MockedAws]:
    from moto import mock_aws

    with pytest.MonkeyPatch.context() as patch:
        fake_aws_environment(patch, tmp_path_factory)
        load_only_deeplens_managed_policies(patch)
        with mock_aws(config={"iam": {"load_aws_managed_policies": managed_policies}}):
            yield MockedAws()


def deeplens_managed_policy_names() -> set[str]:
    """The AWS managed policies the DeepLens roles attach (by name), read from the roles planner itself."""
    from deeplens_cli.account.roles import S3_FULL_ACCESS, desired_roles
    from deeplens_cli.settings.config import Settings, defaults

    settings = Settings(values=defaults()).replace(bucket="deeplens-placeholder", region=REGION)
    return {arn.rsplit("/", 1)[-1] for spec in desired_roles(settings, REGION)
            for arn in spec.managed_policies} | {S3_FULL_ACCESS}


def load_only_deeplens_managed_policies(patch: pytest.MonkeyPatch) -> None:
    """moto loads only the managed policies the DeepLens roles attach (their real documents, from moto's data): a
    fresh account costs milliseconds instead of ~0.7 s for all ~1,600 policies."""
    import moto.iam.models as iam_models

    everything = json.loads(iam_models.aws_managed_policies_data)
    names = deeplens_managed_policy_names() | FOREIGN_MANAGED_POLICIES
    patch.setattr(iam_models, "aws_managed_policies_data", json.dumps({name: everything[name] for name in names}))


# Managed policies DeepLens never attaches that tests attach to show a user's own grants are left alone, or that
# other provisioning (fleet claims) attaches.
FOREIGN_MANAGED_POLICIES = {"CloudWatchLogsReadOnlyAccess", "AWSIoTThingsRegistration"}


@pytest.fixture
def lean_managed_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    """See `load_only_deeplens_managed_policies`; for one test (`aws`, `moto_server`, `fresh_account`)."""
    load_only_deeplens_managed_policies(monkeypatch)


@pytest.fixture
def fresh_account(aws_env: dict[str, str], lean_managed_policies: None,
                  shared_models: None) -> Callable[[], Any]:
    """`with fresh_account(): ...` - a new, empty account (moto resets its backends when a mock starts and no
    other mock is active), so one test can compare several runs each from scratch."""
    from moto import mock_aws

    return lambda: mock_aws(config={"iam": {"load_aws_managed_policies": True}})
