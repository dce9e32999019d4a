"""Bad input on the device (rows of bad_input_table.TABLE): `python -m edge_function run` refuses bad settings
with exit 2; conditions met at run time (no frames, S3 throttling or refusing, a full disk) are logged and
the loop carries on."""

from __future__ import annotations

import errno
import io
import logging
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.hardening.bad_input_table import BUCKET, expect, expect_log
from tests.support.aws_faults import Faults
from tests.support.polling import wait_for

# ---------------------------------------------------------------------------------------------- the device


def edge_main(capsys: pytest.CaptureFixture[str], args: list[str], env: dict[str, str]) -> tuple[int, str]:
    from edge_function.__main__ import main

    capsys.readouterr()
    code = main(args, env=env)
    return code, capsys.readouterr().err


@pytest.fixture
def edge_env(aws_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**aws_env, "DEEPLENS_SPOOL_DIR": str(tmp_path / "spool")}


def frames_folder(tmp_path: Path) -> str:
    import cv2
    import numpy

    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "frame_0.jpg"), numpy.zeros((120, 160, 3), numpy.uint8))
    return str(folder)


def test_edge_threshold_out_of_range(capsys: pytest.CaptureFixture[str], edge_env: dict[str, str],
                                     tmp_path: Path) -> None:
    code, err = edge_main(capsys, ["run", "--source", frames_folder(tmp_path), "--detector", "opencv",
                                   "--bucket", BUCKET, "--threshold", "1.5"], edge_env)
    expect("edge-threshold-out-of-range", code, err)
    assert not Path(edge_env["DEEPLENS_SPOOL_DIR"]).exists()  # stopped before anything was set up


def test_edge_setting_not_a_number(capsys: pytest.CaptureFixture[str], edge_env: dict[str, str],
                                   tmp_path: Path) -> None:
    env = {**edge_env, "DEEPLENS_THRESHOLD": "high", "DEEPLENS_BUCKET": BUCKET}
    code, err = edge_main(capsys, ["run", "--source", frames_folder(tmp_path), "--detector", "opencv"], env)
    expect("edge-setting-not-a-number", code, err)
    assert not Path(edge_env["DEEPLENS_SPOOL_DIR"]).exists()


def test_edge_bucket_missing(capsys: pytest.CaptureFixture[str], edge_env: dict[str, str], tmp_path: Path) -> None:
    code, err = edge_main(capsys, ["run", "--source", frames_folder(tmp_path), "--detector", "opencv"], edge_env)
    expect("edge-bucket-missing", code, err)
    assert not Path(edge_env["DEEPLENS_SPOOL_DIR"]).exists()


def test_edge_unknown_source(capsys: pytest.CaptureFixture[str], edge_env: dict[str, str], tmp_path: Path) -> None:
    code, err = edge_main(capsys, ["run", "--source", str(tmp_path / "no-such.mp4"), "--detector", "opencv",
                                   "--bucket", BUCKET], edge_env)
    expect("edge-unknown-source", code, err)
    assert not Path(edge_env["DEEPLENS_SPOOL_DIR"]).exists()


def test_edge_unreadable_video(capsys: pytest.CaptureFixture[str], edge_env: dict[str, str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2048))  # an MP4 header, then noise
    code, err = edge_main(capsys, ["run", "--source", str(broken), "--detector", "opencv", "--bucket", BUCKET],
                          edge_env)
    expect("edge-unreadable-video", code, err)
    assert not Path(edge_env["DEEPLENS_SPOOL_DIR"]).exists()


def test_edge_awscam_off_device(capsys: pytest.CaptureFixture[str], edge_env: dict[str, str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "awscam", None)  # `import awscam` fails, as off a DeepLens
    code, err = edge_main(capsys, ["run", "--source", "awscam", "--detector", "opencv", "--bucket", BUCKET], edge_env)
    expect("edge-awscam-off-device", code, err)
    assert not Path(edge_env["DEEPLENS_SPOOL_DIR"]).exists()


class SilentCamera:
    """The DeepLens camera through `awscam.getLastFrame()`: no frame for `silent` calls, then frames."""

    def __init__(self, silent: int) -> None:
        import numpy

        self.silent = silent
        self.calls = 0
        self.frame = numpy.full((120, 160, 3), 90, numpy.uint8)

    def getLastFrame(self) -> tuple[bool, Any]:  # noqa: N802 - the device API's name
        self.calls += 1
        if self.calls <= self.silent:
            return False, None
        return True, self.frame


class NoFaces:
    name = "no-faces"

    def detect(self, frame: Any) -> list[Any]:
        return []


def test_edge_camera_no_frame(caplog: pytest.LogCaptureFixture, edge_env: dict[str, str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_function import loop, publish, settings, sources

    monkeypatch.setattr(loop, "READ_BACKOFF_INITIAL_S", 0.001)
    monkeypatch.setattr(loop, "READ_BACKOFF_MAX_S", 0.002)
    camera = SilentCamera(silent=loop.MAX_READ_FAILURES + 1)
    config = settings.load_settings({**edge_env, "DEEPLENS_BUCKET": BUCKET, "DEEPLENS_MAX_FRAMES": "3",
                                     "DEEPLENS_SOURCE": "awscam", "DEEPLENS_DETECTOR": "awscam"})
    opened = []

    def open_components() -> tuple[Any, Any]:
        opened.append(sources.AwscamSource(camera))
        return opened[-1], NoFaces()

    uploader = Stub()
    edge = loop.EdgeLoop(config, uploader, publish.StdoutPublisher(io.StringIO()), open_components=open_components)
    supervisor = loop.Supervisor(edge.run_once, threading.Event(), initial_backoff_s=0.01)
    with caplog.at_level(logging.ERROR, logger="edge_function.loop"):
        supervisor.run()
    expect_log("edge-camera-no-frame", caplog.records)
    assert supervisor.restarts == 1 and len(opened) == 2  # the source was reopened, not a second thread started
    assert edge.frames == 3  # and the loop carried on once frames came back
    assert threading.active_count() < 20


class Stub:
    """An uploader that takes crops and reports counters (the camera test needs no S3)."""

    def submit(self, item: Any) -> None:
        raise AssertionError("no face, no crop")

    def stats(self) -> dict[str, Any]:
        return {}

    def close(self, deadline_s: float = 0.0) -> bool:
        return True


def crop_item(index: int) -> Any:
    from edge_function.uploader import UploadItem

    return UploadItem(f"faces/1_1/1_1/1700000000_{index:04d}.jpg", b"\xff\xd8" + bytes(2000) + b"\xff\xd9",
                      {"device": "hardening"})


def test_edge_s3_slowdown(caplog: pytest.LogCaptureFixture, tmp_path: Path, aws_env: dict[str, str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 throttles the device: botocore retries (its backoff recorded, not slept), the crop is parked in the
    spool and the worker probes until S3 accepts again. Capture never waits; every crop arrives once."""
    import types

    import boto3
    import botocore.endpoint
    from moto import mock_aws

    from edge_function.uploader import SpoolingUploader, make_s3_client

    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=lambda seconds: None))
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        client = make_s3_client()
        faults = Faults().fail("s3", "PutObject", "SlowDown", "Please reduce your request rate.", status=503,
                               times=9)  # three crops' worth of botocore attempts (3 each)
        faults.install(client.meta.events)
        uploader = SpoolingUploader(BUCKET, str(tmp_path / "spool"), client=client, retry_initial_s=0.01,
                                    retry_max_s=0.05)
        with caplog.at_level(logging.WARNING, logger="edge_function.uploader"):
            for index in range(10):
                uploader.submit(crop_item(index))  # never blocks, whatever S3 answers
            assert wait_for(lambda: uploader.stats()["uploaded"] == 10), "condition not reached in time"
            assert uploader.close(5.0)
        stats = uploader.stats()
        keys = [o["Key"] for o in boto3.client("s3", region_name="us-east-1").list_objects_v2(
            Bucket=BUCKET)["Contents"]]
    expect_log("edge-s3-slowdown", caplog.records)
    assert faults.sends[("s3", "PutObject")] > 10 and stats["spooled"] >= 1  # throttled, parked, retried
    assert sorted(keys) == sorted(crop_item(i).key for i in range(10))  # every crop exactly once
    assert stats["dropped"] == 0 and os.listdir(tmp_path / "spool") == [".deeplens-spool"]  # only the marker


def test_edge_spool_in_source(capsys: pytest.CaptureFixture[str], edge_env: dict[str, str], tmp_path: Path) -> None:
    """The spool used to clean up the folder it was given: with --spool-dir = --source it deleted the user's files."""
    source = frames_folder(tmp_path)
    before = sorted(os.listdir(source))
    code, err = edge_main(capsys, ["run", "--source", source, "--detector", "opencv", "--bucket", BUCKET,
                                   "--spool-dir", source], edge_env)
    expect("edge-spool-in-source", code, err)
    assert sorted(os.listdir(source)) == before


def test_edge_s3_refused_crop(caplog: pytest.LogCaptureFixture, tmp_path: Path, aws_env: dict[str, str]) -> None:
    """A crop spooled before a prefix change is refused (403) for good: quarantined and logged once, and the
    crops behind it are uploaded (the seed retried it forever and uploaded nothing else)."""
    import boto3
    from moto import mock_aws

    from edge_function.spool import Spool
    from edge_function.uploader import SpoolingUploader, UploadItem, make_s3_client

    old = crop_item(0)
    Spool(str(tmp_path / "spool"), 10 ** 6).add(UploadItem("old-" + old.key, old.body, old.metadata))
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        client = make_s3_client()
        Faults().fail("s3", "PutObject", "AccessDenied", "Access Denied", status=403, times=1).install(
            client.meta.events)
        uploader = SpoolingUploader(BUCKET, str(tmp_path / "spool"), client=client, retry_initial_s=0.01)
        with caplog.at_level(logging.ERROR, logger="edge_function.uploader"):
            for index in range(1, 4):
                uploader.submit(crop_item(index))
            assert wait_for(lambda: uploader.stats()["uploaded"] == 3), "condition not reached in time"
            assert uploader.close(5.0)
    expect_log("edge-s3-refused-crop", caplog.records)
    assert uploader.stats()["quarantined"] == 1
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1


def test_edge_spool_disk_full(
    caplog: pytest.LogCaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 is down, so crops go to the spool, and the disk is full: the spool's sidecar write hits the real
    ENOSPC of /dev/full. The crop is dropped and counted, no half-written entry stays, capture goes on."""
    import builtins

    from edge_function import spool as spool_module
    from edge_function import uploader as uploader_module

    real_open = builtins.open

    def full_disk_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "w" in mode and str(path).endswith(".json.tmp"):
            return real_open("/dev/full", mode, *args, **kwargs)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(spool_module, "open", full_disk_open, raising=False)

    class DeadS3:
        def put_object(self, **_: Any) -> None:
            raise ConnectionError("S3 unreachable")

    spool = tmp_path / "spool"
    up = uploader_module.SpoolingUploader(BUCKET, str(spool), client=DeadS3(), queue_size=1, retry_initial_s=60)
    with caplog.at_level(logging.ERROR, logger="edge_function.spool"):
        for index in range(5):
            up.submit(crop_item(index))  # returns at once even though nothing can be stored
        assert wait_for(lambda: up.stats()["dropped"] >= 4), "condition not reached in time"
    line = expect_log("edge-spool-disk-full", caplog.records)
    assert errno.errorcode[errno.ENOSPC] == "ENOSPC" and "[Errno 28]" in line
    up.close(0.5)
    stats = up.stats()
    assert stats["dropped"] == 5 and stats["uploaded"] == 0  # every crop accounted for
    assert sorted(os.listdir(spool)) == [".deeplens-spool"]  # the spool's marker; no half entry, no temporary file
