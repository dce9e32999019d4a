"""Test fixtures around the Greengrass V2 control plane, which lives in the product
(`deeplens_cli.simulator.greengrassv2_service`, also used by `deeplens-cli demo --greengrass v2`).

Import the fixture into a test module (`from fake_greengrassv2 import v2_account`) to use it there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import pytest

from deeplens_cli.simulator.greengrassv2_service import (  # noqa: F401 - re-exported for the tests
    ACCOUNT,
    CoreDeviceRecord,
    FakeGreengrassV2,
)


def prepare_v2_account(aws_clients: Callable[[str], Any], bucket: str = "deeplens-test-face-crops",
                       role: str = "DeepLensGreengrassV2TokenExchangeRole",
                       alias: str = "DeepLensGreengrassV2TokenExchangeRoleAlias") -> None:
    """What `register-roles` leaves behind for V2 (the bucket, the token exchange role and its alias), made
    directly so target tests do not depend on roles.py."""
    aws_clients("s3").create_bucket(Bucket=bucket)
    arn = aws_clients("iam").create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Principal": {"Service": "credentials.iot.amazonaws.com"},
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    aws_clients("iot").create_role_alias(roleAlias=alias, roleArn=arn, credentialDurationSeconds=3600)


@dataclass
class EmulatedAccount:
    """moto's in-process account (IAM, IoT, S3, STS) plus the fake Greengrass V2 endpoint next to it."""

    gg: FakeGreengrassV2
    gg_url: str  # its endpoint (AWS_ENDPOINT_URL_GREENGRASSV2)
    region: str = "us-east-1"
    sleeps: list[float] = field(default_factory=list)  # every delay a context asked for (nothing really waits)

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=self.region)

    def context(self, settings: Any) -> Any:
        from deeplens_cli.aws import make_context

        return make_context(settings, sleep=self.sleeps.append)


def share_botocore_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every boto3 Session parses the service models again (IoT's alone takes ~0.1 s); the CLI makes a new session
    per command. Tests share the one data loader deeplens_cli.aws keeps, also for clients they make themselves."""
    import botocore.session

    from deeplens_cli.aws import shared_loader

    monkeypatch.setattr(botocore.session, "create_loader", shared_loader)


@pytest.fixture
def v2_account(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatedAccount]:
    """moto (without AWS managed policies: V2 needs none, and loading them costs a second per test) and the fake
    Greengrass V2 endpoint, with the bucket, token exchange role and role alias in place.

    Import it into a test module (`from fake_greengrassv2 import v2_account`) to use it there."""
    from moto import mock_aws

    share_botocore_loader(monkeypatch)
    with mock_aws():
        import boto3

        fake = FakeGreengrassV2(s3=boto3.client("s3", region_name="us-east-1"),
                                iot=boto3.client("iot", region_name="us-east-1"))
        url = fake.serve()
        monkeypatch.setenv("AWS_ENDPOINT_URL_GREENGRASSV2", url)
        account = EmulatedAccount(gg=fake, gg_url=url)
        prepare_v2_account(account.client)
        try:
            yield account
        finally:
            fake.close()


@pytest.fixture
def claim_account(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto with the one AWS managed policy a provisioning role attaches, the fake Greengrass V2 endpoint (for
    register-device --name), and what register-roles leaves behind for V2; yields boto3 (its clients reach moto).

    Import it into a test module (`from fake_greengrassv2 import claim_account`) to use it there."""
    import boto3
    import moto.iam.models as iam_models
    from moto import mock_aws

    everything = json.loads(iam_models.aws_managed_policies_data)
    monkeypatch.setattr(iam_models, "aws_managed_policies_data",
                        json.dumps({"AWSIoTThingsRegistration": everything["AWSIoTThingsRegistration"]}))
    share_botocore_loader(monkeypatch)
    with mock_aws(config={"iam": {"load_aws_managed_policies": True}}):
        fake = FakeGreengrassV2(s3=boto3.client("s3", region_name="us-east-1"),
                                iot=boto3.client("iot", region_name="us-east-1"))
        monkeypatch.setenv("AWS_ENDPOINT_URL_GREENGRASSV2", fake.serve())
        prepare_v2_account(lambda service: boto3.client(service, region_name="us-east-1"))
        try:
            yield boto3
        finally:
            fake.close()
