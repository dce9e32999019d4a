"""`deeplens-cli demo --greengrass v1` end to end: emulator, the real commands, the simulated DeepLens, the results.

One demo run (through `deeplens_cli.cli.main`, as the console script runs it) with `--source` pointing at a
folder of images and `--output json` is shared by the tests of this module; each asserts one promise of the
issue. The run starts with a profile and config files in the environment that would break any AWS call, to
show the demo never uses them.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.demo.demo_runs import KEY_LAYOUT, DemoRun, port_is_closed, run_demo, run_main

FRAMES = 40
TIME_LIMIT_S = 60


@pytest.fixture(scope="module")
def demo(small_clip, tmp_path_factory, child_pids) -> DemoRun:
    bogus = tmp_path_factory.mktemp("bogus-aws")
    (bogus / "config").write_text("[profile broken]\ncredential_process = /bin/false\n")
    return run_demo(["--greengrass", "v1", "--source", str(small_clip.directory), "--max-frames", str(FRAMES)],
                    tmp_path_factory.mktemp("demo") / "out", {
                        "AWS_PROFILE": "broken",  # would fail every call if the demo used it
                        "AWS_CONFIG_FILE": str(bogus / "config"),
                        "AWS_SHARED_CREDENTIALS_FILE": str(bogus / "credentials"),
                        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # and this would send every call nowhere
                        "DEEPLENS_BUCKET": "someone-elses-bucket"}, child_pids)


@pytest.fixture(scope="module")
def document(demo) -> dict[str, Any]:
    return demo.document()


def test_succeeds_within_the_time_limit(demo, document):
    assert demo.seconds < TIME_LIMIT_S
    assert document["ok"] is True
    assert document["timings_s"]["total"] < TIME_LIMIT_S


def test_runs_the_real_commands_with_progress_on_stderr(demo):
    stderr = demo.stderr
    assert demo.commands_not_run("v1") == []
    assert "create\tiam-role/AWSDeepLensGreengrassGroupRole\t" in stderr, "the sub-step's plan, as plain rows"
    assert stderr.count("iam-role/AWSDeepLensGreengrassGroupRole") == 1, "each plan is printed once"
    assert "matches CodeSha256" in stderr, "the device checked the package before running it"


def test_the_deployment_is_verified_and_reported_by_the_simulated_device(document):
    deployment = document["deployment"]
    assert deployment["status"] == "Success" and deployment["verified_on_device"] is True
    assert deployment["handler"] == "edge_function.lambda_function.function_handler"
    assert re.match(r"^arn:aws:lambda:us-east-1:\d{12}:function:deeplens-face-crops:\d+$", deployment["function"])
    assert document["device_run"]["exit_code"] == 0
    assert document["device_run"]["peak_rss_mb"] > 0
    device = [d for d in document["status"]["devices"] if d["name"] == "MyDevice"]
    assert device and document["status"]["ok"] is True


def test_the_device_processed_the_frame_budget_from_the_folder(document, small_clip):
    assert document["source"]["kind"] == "directory"
    assert document["source"]["spec"] == str(small_clip.directory.resolve())
    assert document["counts"]["frames"] == FRAMES
    assert document["counts"]["messages"] >= 1
    assert document["counts"]["messages_with_faces"] >= 1


def test_crops_land_in_the_emulated_bucket_under_the_workshop_layout(document):
    keys = document["keys"]
    assert 2 <= len(keys) <= 4, "one crop per person in view (three appearances), not one per frame"
    assert document["counts"]["crops"] == len(keys)
    for item in keys:
        assert KEY_LAYOUT.match(item["key"]), item["key"]
        assert item["content_type"] == "image/jpeg"
        assert float(item["metadata"]["confidence"]) >= 0.5
        assert item["metadata"]["device"] == document["thing_name"]
        assert item["metadata"]["detector"] == "awscam-ssd", "the device ran its awscam detector on the shim"
    assert len({item["key"] for item in keys}) == len(keys)


def test_out_dir_holds_the_crops_a_contact_sheet_and_annotated_frames(demo, document):
    import cv2

    outputs = document["outputs"]
    assert Path(outputs["dir"]) == demo.out
    crops = [Path(p) for p in outputs["crops"]]
    assert len(crops) == len(document["keys"])
    assert all(cv2.imread(str(p)) is not None for p in crops)
    sheet = cv2.imread(outputs["contact_sheet"])
    assert outputs["contact_sheet"].endswith(".png") and sheet is not None and sheet.shape[0] > 100
    assert outputs["annotated_frames"] and all(Path(p).exists() for p in outputs["annotated_frames"])
    summary = json.loads(Path(outputs["summary"]).read_text())
    assert summary["keys"] == document["keys"]
    messages = Path(outputs["messages"]).read_text().splitlines()
    assert len(messages) == document["counts"]["messages"]
    assert all(json.loads(line)["topic"] == f"$aws/things/{document['thing_name']}/infer" for line in messages)


def test_leaves_no_process_port_or_environment_behind(demo, document):
    assert port_is_closed(document["emulator"]["endpoint"])
    assert demo.children == [], "no device process (or anything else) is still running"
    assert not Path(f"/proc/{document['device_run']['pid']}").exists(), "the device process is gone"
    assert demo.environment_after == demo.environment_before, "the user's AWS settings are restored"
    assert document["bucket"] == "deeplens-demo-faces", "the demo's own bucket, not DEEPLENS_BUCKET"


def test_a_second_run_may_reuse_its_own_output_folder_but_not_someone_elses(demo, tmp_path):
    code, _, stderr = run_main(["demo", "--out", str(tmp_path), "--source", str(tmp_path / "missing")])
    assert code == 2 and "does not exist" in stderr
    (tmp_path / "notes.txt").write_text("mine")
    code, _, stderr = run_main(["demo", "--out", str(tmp_path)])
    assert code == 2 and "is not a previous demo's output" in stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_keep_running_serves_the_emulator_until_interrupted(tmp_path, aws_env, child_pids):
    """The default clip path, with --keep-running: the emulator answers while the demo waits, then goes away."""
    import boto3

    from deeplens_cli.cli.app import App
    from deeplens_cli.cli.output import Reporter
    from deeplens_cli.demo import run_demo

    stdout, stderr = io.StringIO(), io.StringIO()
    seen: dict[str, Any] = {}

    def while_running() -> None:  # stands in for the user's other shell, then for Ctrl-C
        endpoint = re.search(r"export AWS_ENDPOINT_URL=(\S+)", stdout.getvalue()).group(1)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="demo",
                          aws_secret_access_key="demo")
        seen["endpoint"] = endpoint
        seen["keys"] = [o["Key"] for o in s3.list_objects_v2(Bucket="deeplens-demo-faces").get("Contents", [])]
        raise KeyboardInterrupt

    app = App(reporter=Reporter(output="text", stdout=stdout, stderr=stderr))
    result = run_demo(app, "Lobby-Cam", None, str(tmp_path / "out"), 5, keep_running=True, fps=30,
                      wait_forever=while_running)

    assert result.source.kind == "clip" and result.frames_served == 5
    assert seen["endpoint"] == result.endpoint
    assert [k for k in seen["keys"] if k.startswith("faces/")] == [k["key"] for k in result.keys]
    assert "Lobby-Cam" in stdout.getvalue() and "Press Ctrl-C" in stdout.getvalue()
    assert port_is_closed(result.endpoint)
    assert child_pids() == []
