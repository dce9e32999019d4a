"""`deeplens-cli demo` (Greengrass V2, the default) end to end: moto plus the in-process Greengrass V2 control
plane, the real commands, the simulated nucleus running the published recipe and artifact, the results.

One demo run through `deeplens_cli.cli.main` with `--output json` and no `--greengrass` (so the default
target is what runs) is shared by the tests of this module; each asserts one promise of the issue.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.demo.demo_runs import KEY_LAYOUT, DemoRun, port_is_closed, run_demo

FRAMES = 40
TIME_LIMIT_S = 60


@pytest.fixture(scope="module")
def demo(small_clip, tmp_path_factory, child_pids) -> DemoRun:
    return run_demo(["--source", str(small_clip.directory), "--max-frames", str(FRAMES)],
                    tmp_path_factory.mktemp("demo-v2") / "out", {
                        "AWS_PROFILE": "broken",  # would fail every call if the demo used it
                        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # and this would send every call nowhere
                        "AWS_ENDPOINT_URL_GREENGRASSV2": "http://127.0.0.1:9",
                        "PIP_INDEX_URL": "http://127.0.0.1:9/simple"},  # an Install that downloads would fail
                    child_pids)


@pytest.fixture(scope="module")
def document(demo) -> dict[str, Any]:
    return demo.document()


def test_v2_is_the_default_and_finishes_within_the_time_limit(demo, document):
    assert document["greengrass"] == "v2"
    assert demo.seconds < TIME_LIMIT_S and document["timings_s"]["total"] < TIME_LIMIT_S
    assert "group_id" not in document, "a V1 notion"


def test_runs_the_real_v2_commands(demo):
    stderr = demo.stderr
    assert demo.commands_not_run("v2") == []
    assert "create\tgg-component/com.deeplens.FaceCrops@1.0.0\t" in stderr, "deploy published the component"
    assert "sha256 matches the recorded digest" in stderr, "the nucleus checked the artifact it downloaded"


def test_the_simulated_nucleus_ran_the_published_component(document):
    deployment = document["deployment"]
    assert deployment["status"] == "COMPLETED" and deployment["verified_on_device"] is True
    assert deployment["component"] == "com.deeplens.FaceCrops" and deployment["component_version"] == "1.0.0"
    assert deployment["artifacts"] == [
        "s3://deeplens-demo-faces/greengrass-artifacts/com.deeplens.FaceCrops/1.0.0/deeplens_edge.zip"]
    assert document["device_run"]["exit_code"] == 0
    assert document["device_run"]["peak_rss_mb"] > 0
    [device] = [d for d in document["status"]["devices"] if d["name"] == "MyDevice"]
    assert device and document["status"]["ok"] is True


def test_install_used_the_demos_environment_and_downloaded_nothing(demo, document):
    install = (Path(demo.out) / "install.log").read_text()
    assert "uses the packages in" in install and "nothing is downloaded" in install
    assert "creating" not in install, "the lock's venv was not built"
    assert document["device_run"]["install_s"] < 30, "a venv pointed at the demo's packages, not a pip install"


def test_the_component_processed_the_frame_budget(document, small_clip):
    assert document["source"]["kind"] == "directory"
    assert document["counts"]["frames"] == FRAMES
    assert document["counts"]["messages"] >= 1 and document["counts"]["messages_with_faces"] >= 1


def test_crops_land_in_the_emulated_bucket_uploaded_with_token_exchange_credentials(document):
    keys = document["keys"]
    assert 2 <= len(keys) <= 4, "one crop per person in view (three appearances), not one per frame"
    for item in keys:
        assert KEY_LAYOUT.match(item["key"]), item["key"]
        assert item["content_type"] == "image/jpeg"
        assert item["metadata"]["device"] == document["thing_name"]
        assert item["metadata"]["detector"] in ("yunet", "centerface"), "the OpenCV detector a V2 device runs"


def test_ipc_messages_reach_the_local_stand_in_on_the_v2_topic(demo, document):
    outputs = document["outputs"]
    messages = [json.loads(line) for line in Path(outputs["messages"]).read_text().splitlines()]
    assert len(messages) == document["counts"]["messages"]
    assert {m["topic"] for m in messages} == {f"deeplens/{document['thing_name']}/infer"}
    assert Path(outputs["contact_sheet"]).exists() and len(outputs["crops"]) == len(document["keys"])


def test_leaves_no_process_port_or_environment_behind(demo, document):
    assert port_is_closed(document["emulator"]["endpoint"])
    assert port_is_closed(document["emulator"]["greengrassv2_endpoint"])
    assert demo.children == [], "no component process (or anything else) is still running"
    assert demo.environment_after == demo.environment_before
