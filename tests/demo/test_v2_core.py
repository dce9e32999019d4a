"""The simulated Greengrass V2 core device: takes its deployment from the control plane, runs our component with
the simulated nucleus, skips AWS-provided components, and reports what happened as a device does."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import PurePosixPath

import pytest

from deeplens_cli.simulator.greengrassv2_service import FakeGreengrassV2
from deeplens_cli.simulator.nucleus import ComponentUser, DeviceIdentity, HostRunner, Nucleus
from deeplens_cli.simulator.v2_core import SimulatedV2Core
from tests.support.archives import zip_of
from tests.support.polling import wait_for

THING = "deeplens-Cam"
THING_ARN = f"arn:aws:iot:us-east-1:123456789012:thing/{THING}"
URI = "s3://bucket/com.example.Thing/1.0.0/thing.zip"


@pytest.fixture
def cloud() -> tuple[FakeGreengrassV2, dict[str, bytes]]:
    bucket = {URI: zip_of({"thing/run.sh": "echo running\n"})}
    service = FakeGreengrassV2(s3=None, iot=None)
    recipe = {"RecipeFormatVersion": "2020-01-25", "ComponentName": "com.example.Thing", "ComponentVersion": "1.0.0",
              "Manifests": [{"Platform": {"os": "linux"},
                             "Lifecycle": {"Install": "echo installing", "Run": "sleep 30"},
                             "Artifacts": [{"URI": URI, "Unarchive": "ZIP",
                                            "Digest": base64.b64encode(hashlib.sha256(bucket[URI]).digest()).decode(),
                                            "Algorithm": "SHA-256"}]}]}
    service.components[("com.example.Thing", "1.0.0")] = {"recipe": recipe}
    service.connect_core(THING, behaviour="external")
    return service, bucket


@pytest.fixture
def core(cloud, tmp_path):
    service, bucket = cloud
    nucleus = Nucleus(device=DeviceIdentity(THING, "us-east-1", root=PurePosixPath(str(tmp_path / "gg"))),
                      runner=HostRunner(), user=ComponentUser("me", os.getuid(), os.getgid()), logs=tmp_path / "logs",
                      chown=False, stop_grace_s=0.5)
    device = SimulatedV2Core(service, THING, lambda b, k: bucket[f"s3://{b}/{k}"], nucleus, poll_s=0.02)
    yield device
    device.stop()


def _deploy(service: FakeGreengrassV2, **extra: dict) -> str:
    components = {"com.example.Thing": {"componentVersion": "1.0.0"}, **extra}
    return service.create_deployment({}, {"targetArn": THING_ARN, "components": components})["deploymentId"]


def _effective(service: FakeGreengrassV2, deployment_id: str) -> dict:
    def reported() -> dict | None:
        [record] = [r for r in service.list_effective_deployments(THING, {}, {})["effectiveDeployments"]
                    if r["deploymentId"] == deployment_id]
        return record if record["coreDeviceExecutionStatus"] not in ("QUEUED", "IN_PROGRESS") else None

    record = wait_for(reported, interval=0.05)
    assert record, "the device never reported"
    return record


def test_runs_our_component_skips_aws_components_and_reports_running(cloud, core):
    service, _ = cloud
    core.start()
    deployment_id = _deploy(service, **{"aws.greengrass.LogManager": {"componentVersion": "2.3.7"},
                                        "aws.greengrass.Nucleus": {"componentVersion": "2.14.3"}})

    record = _effective(service, deployment_id)

    assert record["coreDeviceExecutionStatus"] == "COMPLETED"
    assert sorted(core.skipped) == ["aws.greengrass.LogManager", "aws.greengrass.Nucleus"]
    installed = {c["componentName"]: c for c in service.list_installed_components(THING, {}, {})["installedComponents"]}
    assert installed["com.example.Thing"]["lifecycleState"] == "RUNNING"
    assert set(installed) == {"com.example.Thing"}, "skipped components are not reported as installed"
    run = core.current_run()
    assert run.running.alive() and "installing" in run.install_log_path.read_text()


def test_an_artifact_changed_after_publish_fails_the_deployment(cloud, core):
    service, bucket = cloud
    bucket[URI] += b"changed"
    core.start()
    deployment_id = _deploy(service)

    record = _effective(service, deployment_id)

    assert record["coreDeviceExecutionStatus"] == "FAILED"
    assert "ARTIFACT_CHECKSUM_MISMATCH" in record["reason"]
    assert core.current_run() is None
    [broken] = service.list_installed_components(THING, {}, {})["installedComponents"]
    assert broken["lifecycleState"] == "BROKEN"
