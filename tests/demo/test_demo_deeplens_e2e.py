"""`deeplens-cli demo --device-profile deeplens`: the V2 demo with the simulated core device as a stock DeepLens
(deeplens_cli/demo/deeplens_device.py): the component's Install takes the DeepLens profile, Run uses the awscam
camera and face model (our stand-in), and the crops reach the emulated bucket. One run shared by the tests.

What the demo cannot show (Python 3.7 and the lock resolved for it) is the device lab's: tests/device_lab/
test_deeplens_lab.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.demo.demo_runs import DemoRun, run_demo

FRAMES = 30


@pytest.fixture(scope="module")
def demo(small_clip, tmp_path_factory, child_pids) -> DemoRun:
    return run_demo(["--device-profile", "deeplens", "--source", str(small_clip.directory), "--max-frames",
                     str(FRAMES)], tmp_path_factory.mktemp("demo-deeplens") / "out",
                    {"PIP_INDEX_URL": "http://127.0.0.1:9/simple"},  # an Install that downloads would fail
                    child_pids)


def test_the_component_installs_with_the_deeplens_profile_the_bundle_recorded(demo):
    assert demo.code == 0, demo.stderr[-3000:]
    install = (Path(demo.out) / "install.log").read_text()
    assert "device profile deeplens" in install
    assert "nothing is downloaded" in install


def test_run_uses_the_awscam_camera_and_face_model_and_uploads_crops(demo):
    log = (Path(demo.out) / "function.log").read_text()
    assert "source=awscam detector=awscam" in log, log[-3000:]
    assert "detector awscam-ssd" in log
    document = demo.document()
    assert document["device_run"]["exit_code"] == 0
    assert document["keys"], "no crop reached the emulated bucket"


def test_a_v1_demo_refuses_the_deeplens_profile_with_a_hint(run_cli):
    code, _, stderr = run_cli("demo", "--greengrass", "v1", "--device-profile", "deeplens")
    assert code == 2 and "--device-profile deeplens needs --greengrass v2" in stderr
