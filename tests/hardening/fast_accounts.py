"""Cheap fresh emulated accounts for tests that need many of them (crash convergence, the bad-input table).

A test module uses these fixtures by importing them (pytest finds fixtures in the module's namespace):
`from fast_accounts import fresh_account_fixture, lean_managed_policies_fixture, shared_models_fixture`.
Not a conftest.py on purpose: test helpers in other folders import `conftest` by module name, and a second
conftest module named `conftest` would shadow theirs.

* `lean_managed_policies` - moto loads only the AWS managed policies the DeepLens roles attach. A fresh account
  then costs milliseconds instead of ~0.7 s for all ~1,500 policies.
* `shared_models` - every botocore session shares one model loader. Each CLI run builds a new boto3 Session,
  and parsing the IoT, Greengrass and Lambda models again costs ~0.4 s a run; only the parsing is shared.
* `fresh_account()` - a context manager giving a new, empty account (moto resets its backends when a mock
  starts and no other mock is active).
"""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest

REGION = "us-east-1"


def deeplens_managed_policy_names() -> set[str]:
    from deeplens_cli.config import Settings, defaults
    from deeplens_cli.roles import S3_FULL_ACCESS, desired_roles

    settings = Settings(values=defaults()).replace(bucket="deeplens-placeholder", region=REGION)
    return {arn.rsplit("/", 1)[-1] for spec in desired_roles(settings, REGION)
            for arn in spec.managed_policies} | {S3_FULL_ACCESS}


@pytest.fixture(name="lean_managed_policies")
def lean_managed_policies_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto.iam.models as iam_models

    everything = json.loads(iam_models.aws_managed_policies_data)
    monkeypatch.setattr(iam_models, "aws_managed_policies_data",
                        json.dumps({name: everything[name] for name in deeplens_managed_policy_names()}))


@pytest.fixture(name="shared_models")
def shared_models_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.session

    from deeplens_cli.aws import shared_loader

    monkeypatch.setattr(botocore.session, "create_loader", shared_loader)


@pytest.fixture(name="fresh_account")
def fresh_account_fixture(aws_env: dict[str, str], lean_managed_policies: None,
                          shared_models: None) -> Callable[[], Any]:
    from moto import mock_aws

    return lambda: mock_aws(config={"iam": {"load_aws_managed_policies": True}})
