"""End to end on the real CLI path: IAM, IoT and S3 on a moto server (`AWS_ENDPOINT_URL`), Greengrass V2 on the fake
endpoint (`AWS_ENDPOINT_URL_GREENGRASSV2`), every command through `deeplens_cli.cli.main` - the HTTP requests a
user's machine would send. The simulated core joins with the device bundle, as install.sh would make it."""

from __future__ import annotations

import fnmatch
import hashlib
import json

import pytest

try:
    from tests.cli.fake_greengrassv2 import FakeGreengrassV2, share_botocore_loader
except ImportError:
    from fake_greengrassv2 import FakeGreengrassV2, share_botocore_loader

BUCKET = "deeplens-e2e-face-crops"
KEY = "greengrass-artifacts/com.deeplens.FaceCrops/1.0.0/deeplens_edge.zip"


@pytest.fixture
def emulated(moto_server, monkeypatch):
    import boto3

    share_botocore_loader(monkeypatch)
    fake = FakeGreengrassV2(s3=boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1"),
                            iot=boto3.client("iot", endpoint_url=moto_server, region_name="us-east-1"))
    env = {"AWS_ENDPOINT_URL": moto_server, "AWS_ENDPOINT_URL_GREENGRASSV2": fake.serve(), "DEEPLENS_BUCKET": BUCKET,
           "DEEPLENS_DEPLOY_POLL_S": "0.05"}
    yield fake, env, boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1"), \
        boto3.client("iam", endpoint_url=moto_server, region_name="us-east-1")
    fake.close()


def test_register_roles_register_device_deploy_and_status(emulated, run_cli, tmp_path):
    fake, env, s3, iam = emulated

    roles = run_cli("register-roles", env=env)
    device = run_cli("register-device", "--name", "Cam", "--greengrass", "v2", "--out", str(tmp_path / "Cam"), env=env)
    fake.connect_core("deeplens-Cam", bundle=tmp_path / "Cam")  # what running install.sh on the device leads to
    deploy = run_cli("--output", "json", "deploy", "--device", "Cam", env=env)
    status = run_cli("--output", "json", "status", "--device", "Cam", env=env)
    again = run_cli("deploy", "--device", "Cam", env=env)

    assert roles.exit_code == 0, roles.stderr
    assert device.exit_code == 0, device.stderr
    assert deploy.exit_code == 0, deploy.stderr
    outcome = json.loads(deploy.stdout)["deployment"]
    assert (outcome["status"], outcome["component_state"]) == ("succeeded", "RUNNING")
    assert status.exit_code == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    assert report["devices"][0]["status"]["health"] == "ok"
    assert report["projects"][0]["latest_version"] == "1.0.0"
    assert again.exit_code == 0 and "nothing changed: no new deployment" in again.stdout

    assert [op for op in fake.calls if op.startswith("Create")] == ["CreateComponentVersion", "CreateDeployment"]
    artifact = s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
    recipe = fake.components[("com.deeplens.FaceCrops", "1.0.0")]["recipe"]
    assert recipe["Manifests"][0]["Artifacts"][0]["URI"] == f"s3://{BUCKET}/{KEY}"
    assert hashlib.sha256(artifact).hexdigest() == fake.components[("com.deeplens.FaceCrops", "1.0.0")]["tags"][
        "deeplens-artifact-sha256"]

    # The device downloads the artifact with the token exchange role: register-roles must grant exactly this key.
    policy = iam.get_role_policy(RoleName="DeepLensGreengrassV2TokenExchangeRole",
                                 PolicyName="DeepLensGreengrassV2Access")["PolicyDocument"]
    assert _allows(policy, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/{KEY}")
    assert _allows(policy, "s3:PutObject", f"arn:aws:s3:::{BUCKET}/faces/11_24/10_00/1732442400_x-1.jpg")


def _allows(policy: dict, action: str, resource: str) -> bool:
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if (
            statement["Effect"] == "Allow"
            and action in actions
            and any(fnmatch.fnmatchcase(resource, r) for r in resources)
        ):
            return True
    return False
