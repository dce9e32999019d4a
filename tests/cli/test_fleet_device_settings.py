"""Per-device settings: `devices: {Cam7: {detection: {threshold: 0.7}}}` in deeplens.yaml reaches that device only.

Greengrass V2: a `configurationUpdate.merge` in that device's own deployment, on top of the fleet's component
version - alternating deploys of two cameras with different settings publish no new component version.
Greengrass V1: the function environment in the device's own group.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from deeplens_cli.cli.output import Reporter
from deeplens_cli.engine.executor import Executor
from deeplens_cli.engine.plan import ApiCall
from deeplens_cli.errors import ConfigError
from deeplens_cli.settings.config import load_settings
from deeplens_cli.targets.greengrass_v1.project import function_environment
from deeplens_cli.targets.greengrass_v2 import GreengrassV2Target
from deeplens_cli.targets.package import Package, build_package

try:
    from tests.cli.fake_greengrassv2 import v2_account  # noqa: F401 - a fixture
except ImportError:
    from fake_greengrassv2 import v2_account  # noqa: F401

COMPONENT = "com.deeplens.FaceCrops"
CONFIG = """
bucket: deeplens-test-face-crops
region: us-east-1
detection:
  threshold: 0.5
devices:
  CamA: {detection: {threshold: 0.7}}
  CamB: {detection: {threshold: 0.6, margin: 0.3}}
"""


@pytest.fixture(scope="module")
def package() -> Package:
    return build_package()


def settings_from(tmp_path: Path, text: str = CONFIG):
    path = tmp_path / "deeplens.yaml"
    path.write_text(text)
    return load_settings(path, environ={})


def created_deployment(plan) -> dict | None:
    steps = [s for a in plan.actions for s in a.steps if isinstance(s, ApiCall) and s.operation == "create_deployment"]
    return dict(steps[0].params) if steps else None


def test_a_device_section_overrides_only_that_device(tmp_path):
    settings = settings_from(tmp_path)

    assert settings["detection.threshold"] == 0.5
    assert settings.for_device("CamA")["detection.threshold"] == 0.7
    assert settings.for_device("CamB")["detection.margin"] == 0.3
    assert settings.for_device("CamC") is settings


@pytest.mark.parametrize("section, message", [
    ("devices: {CamA: {bucket: other}}", "same for every device"),
    ("devices: {CamA: {detection: {threshold: 7}}}", "detection.threshold"),
    ("devices: {CamA: {detection: {treshold: 0.7}}}", "unknown key"),
    ("devices: [CamA]", "must map device names"),
])
def test_a_bad_device_section_is_a_config_error(tmp_path, section, message):
    with pytest.raises(ConfigError, match=message):
        settings_from(tmp_path, "bucket: deeplens-test-face-crops\n" + section + "\n")


def test_alternating_deploys_of_two_cameras_publish_no_new_component_version(v2_account, package, tmp_path):
    settings = settings_from(tmp_path)
    ctx = v2_account.context(settings)
    target = GreengrassV2Target(ctx, settings, package)
    executor = Executor(ctx, Reporter(stderr=io.StringIO()).progress)
    devices = {}
    for name in ("CamA", "CamB", "CamC"):
        executor.execute(target.plan_register_device(name, str(tmp_path / name)))
        v2_account.gg.connect_core(f"deeplens-{name}")
        devices[name] = next(d for d in target.list_devices() if d.name == name)

    merges = {}
    for name in ("CamA", "CamB", "CamA", "CamB", "CamC"):
        plan = target.plan_deploy(devices[name])
        params = created_deployment(plan)
        if params is not None:
            executor.execute(plan)
            merges[name] = (params["targetArn"], params["components"][COMPONENT]["configurationUpdate"])

    gg = v2_account.client("greengrassv2")
    versions = gg.list_component_versions(
        arn=f"arn:aws:greengrass:us-east-1:123456789012:components:{COMPONENT}")["componentVersions"]
    assert [v["componentVersion"] for v in versions] == ["1.0.0"]
    target_a, update_a = merges["CamA"]
    target_b, update_b = merges["CamB"]
    assert target_a.endswith(":thing/deeplens-CamA") and target_b.endswith(":thing/deeplens-CamB")
    assert json.loads(update_a["merge"]) == {"Environment": {"DEEPLENS_THRESHOLD": "0.7"}}
    assert json.loads(update_b["merge"]) == {"Environment": {"DEEPLENS_MARGIN": "0.3", "DEEPLENS_THRESHOLD": "0.6"}}
    assert update_a["reset"] == [""]  # the fleet's defaults first, then the device's own values
    assert "merge" not in merges["CamC"][1]  # no section: the fleet's settings, nothing merged
    # the second deploy of each camera found its deployment unchanged: no new deployment either
    assert len(gg.list_deployments(historyFilter="ALL")["deployments"]) == 3


def test_a_device_cannot_set_what_the_fleet_leaves_to_the_device_defaults(v2_account, package, tmp_path):
    settings = settings_from(
        tmp_path, "bucket: deeplens-test-face-crops\ndevices: {CamA: {detection: {threshold: 0.7}}}\n"
    )
    target = GreengrassV2Target(v2_account.context(settings), settings, package)

    with pytest.raises(ConfigError, match="DEEPLENS_THRESHOLD"):
        target._device_configuration("CamA")


def test_greengrass_v1_puts_the_device_settings_in_that_device_group_function_environment(tmp_path):
    settings = settings_from(tmp_path)

    assert function_environment(settings, "CamA")["DEEPLENS_THRESHOLD"] == "0.7"
    assert function_environment(settings, "CamC")["DEEPLENS_THRESHOLD"] == "0.5"
    assert function_environment(settings)["DEEPLENS_THRESHOLD"] == "0.5"  # the Lambda function's own: the fleet's
