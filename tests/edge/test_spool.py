"""spool.py: a folder the spool owns, durable entries, monotonic order, quarantine, unwritable folders.

Read-only and full folders are real tmpfs mounts (`tmpfs`, tests/support/filesystems.py; root only, and CI runs as
root and must not skip them).
"""

import errno
import json
import logging
import os
import subprocess
import sys
import time

import pytest

from edge_function import spool as spool_module
from edge_function.spool import Spool, SpoolFolderError, jpeg_problem
from edge_function.uploader import UploadItem
from tests.support.filesystems import remount
from tests.support.polling import HANG_GUARD_S, wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def jpeg(seed=0, side=48):
    import cv2
    import numpy

    pixels = numpy.random.RandomState(seed).randint(0, 255, (side, side, 3)).astype(numpy.uint8)
    return cv2.imencode(".jpg", pixels)[1].tobytes()


def crop(n, prefix="faces"):
    return UploadItem("%s/11_14/22_13/1700000000_test-%d.jpg" % (prefix, n), jpeg(n), {"track-id": str(n)})


# --- item 1: the spool owns its folder and touches nothing else ------------------------------------------

def test_a_folder_with_other_files_is_refused_and_left_intact(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, data in (("me.jpg", b"\xff\xd8\xff photo"), ("settings.json", b"{}"), ("draft.tmp", b"draft")):
        (photos / name).write_bytes(data)
    with pytest.raises(SpoolFolderError) as refused:
        Spool(str(photos), max_bytes=10 ** 6)
    assert "DEEPLENS_SPOOL_DIR" in str(refused.value) and "me.jpg" in str(refused.value)
    assert sorted(os.listdir(str(photos))) == ["draft.tmp", "me.jpg", "settings.json"]


def test_the_spool_claims_a_new_folder_and_never_removes_files_it_did_not_write(tmp_path):
    folder = tmp_path / "spool"
    first = Spool(str(folder), max_bytes=10 ** 6)
    assert first.add(crop(1))
    assert (folder / spool_module.MARKER).exists()
    # someone drops their own files into the claimed folder; a crash left one of ours half written
    (folder / "notes.json").write_bytes(b"mine")
    (folder / "holiday.jpg").write_bytes(b"mine")
    (folder / "draft.tmp").write_bytes(b"mine")
    (folder / "00000000000000000007.jpg.tmp").write_bytes(b"half")
    (folder / "00000000000000000008.jpg").write_bytes(b"orphan without sidecar")
    again = Spool(str(folder), max_bytes=10 ** 6)
    assert len(again) == 1
    left = set(os.listdir(str(folder)))
    assert {"notes.json", "holiday.jpg", "draft.tmp"} <= left
    assert "00000000000000000007.jpg.tmp" not in left and "00000000000000000008.jpg" not in left


def test_a_spool_left_by_an_older_version_is_adopted(tmp_path):
    folder = tmp_path / "spool"
    folder.mkdir()
    legacy = "01700000000000000000-42-0"
    (folder / (legacy + ".jpg")).write_bytes(jpeg())
    (folder / (legacy + ".json")).write_text(json.dumps({"key": "faces/a.jpg", "metadata": {}}))
    spool = Spool(str(folder), max_bytes=10 ** 6)
    assert spool.oldest().key == "faces/a.jpg"
    assert spool.add(crop(2))
    assert spool.stems() == (legacy, "01700000000000000001")  # numbering continues after the legacy entry


def test_the_run_refuses_a_spool_folder_that_is_or_is_inside_the_source(tmp_path):
    """The real process: `--spool-dir` = `--source` used to delete the user's photos and exit 0."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "me.jpg").write_bytes(jpeg())
    (photos / "draft.tmp").write_bytes(b"draft")
    for spool_dir in (photos, photos / "spool"):
        done = subprocess.run(
            [sys.executable, "-m", "edge_function", "run", "--source", str(photos), "--detector", "opencv",
             "--bucket", "deeplens-faces-test", "--spool-dir", str(spool_dir), "--max-frames", "1"],
            cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert "DEEPLENS_SPOOL_DIR" in done.stderr and "--source" in done.stderr
        assert sorted(os.listdir(str(photos))) == ["draft.tmp", "me.jpg"]


# --- item 5: durable entries, verified JPEGs ------------------------------------------------------------

def test_each_entry_is_fsynced_file_and_folder_before_it_counts(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def recording_fsync(descriptor):
        synced.append(os.readlink("/proc/self/fd/%d" % descriptor))
        real_fsync(descriptor)

    spool = Spool(str(tmp_path / "spool"), max_bytes=10 ** 6)
    monkeypatch.setattr(os, "fsync", recording_fsync)
    assert spool.add(crop(1))
    folder = str(tmp_path / "spool")
    stem = spool.stems()[0]
    assert os.path.join(folder, stem + ".jpg.tmp") in synced  # the JPEG's bytes
    assert os.path.join(folder, stem + ".json.tmp") in synced  # the sidecar's bytes (the commit point)
    assert synced[-1] == folder  # then the folder entry, so the rename survives a power cut


@pytest.mark.parametrize("body, problem", [
    (b"", "empty"),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 100, "truncated"),
    (b"GIF89a" + b"\x00" * 100, "not a JPEG"),
])
def test_broken_jpegs_are_recognised(body, problem):
    assert problem in jpeg_problem(body)


def test_a_whole_jpeg_and_its_truncation(tmp_path):
    whole = jpeg()
    assert jpeg_problem(whole) is None
    assert "truncated" in jpeg_problem(whole[: len(whole) // 2])


# --- item 6: monotonic order ----------------------------------------------------------------------------

def test_spool_order_is_capture_order_even_when_the_clock_jumps_back(tmp_path, monkeypatch):
    spool = Spool(str(tmp_path / "spool"), max_bytes=10 ** 6)
    clock = [1700000000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    assert spool.add(crop(1))
    clock[0] -= 3600  # NTP corrects the clock by an hour backwards
    assert spool.add(crop(2))
    restarted = Spool(str(tmp_path / "spool"), max_bytes=10 ** 6)
    clock[0] -= 3600
    assert restarted.add(crop(3))
    keys = []
    while True:
        entry = restarted.oldest()
        if entry is None:
            break
        keys.append(entry.key)
        restarted.remove(entry.stem)
    assert keys == [crop(n).key for n in (1, 2, 3)]


def test_evictions_are_logged_as_well_as_counted(tmp_path, caplog):
    size = len(crop(0).body) + 200
    spool = Spool(str(tmp_path / "spool"), max_bytes=int(size * 2.5))
    with caplog.at_level(logging.WARNING, logger="edge_function.spool"):
        for n in range(5):
            spool.add(crop(n))
    assert spool.dropped >= 2
    assert any("oldest crops are dropped" in record.getMessage() for record in caplog.records)


# --- items 4 and 6: folders that cannot be written -----------------------------------------------------

def test_a_full_disk_leaves_no_tmp_files_and_logs_once(tmpfs, caplog):
    folder = tmpfs(64)
    spool = Spool(str(folder / "spool"), max_bytes=10 ** 7)
    with caplog.at_level(logging.ERROR, logger="edge_function.spool"):
        results = [spool.add(UploadItem("faces/%d.jpg" % n, jpeg(n, side=96), {})) for n in range(60)]
    assert True in results and False in results  # it filled up
    assert not [name for name in os.listdir(str(folder / "spool")) if name.endswith(".tmp")]
    assert not spool.can_write
    assert spool.dropped == results.count(False)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "DEEPLENS_SPOOL_DIR" in errors[0].getMessage()
    assert "No space left" in errors[0].getMessage()


def test_a_read_only_spool_is_not_drained_again_at_every_start(tmpfs, caplog):
    folder = tmpfs(1024)
    writer = Spool(str(folder / "spool"), max_bytes=10 ** 6)
    for n in range(3):
        assert writer.add(crop(n))
    remount(folder, "ro")
    with caplog.at_level(logging.ERROR, logger="edge_function.spool"):
        reader = Spool(str(folder / "spool"), max_bytes=10 ** 6)
    assert reader.read_only and not reader.can_write
    assert reader.oldest() is None  # nothing to upload: it could never be removed afterwards
    assert reader.pending() == 3  # ... but it is not forgotten either
    assert any("read-only" in r.getMessage() and "DEEPLENS_SPOOL_DIR" in r.getMessage() for r in caplog.records)


def test_a_spool_folder_that_cannot_be_created_does_not_stop_anything(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    with caplog.at_level(logging.ERROR, logger="edge_function.spool"):
        spool = Spool(str(blocker / "spool"), max_bytes=10 ** 6)
    assert not spool.available and not spool.add(crop(1)) and spool.dropped == 1
    message = caplog.records[0].getMessage()
    assert "DEEPLENS_SPOOL_DIR" in message and os.strerror(errno.ENOTDIR) in message


def test_a_read_only_spool_is_reported_by_close_and_not_uploaded_again(tmpfs, s3, bucket):
    """The seed uploaded a read-only spool's entries at every start (it could not remove them) and close() said
    all was well."""
    from edge_function.uploader import SpoolingUploader

    folder = tmpfs(1024)
    writer = Spool(str(folder / "spool"), max_bytes=10 ** 6)
    for n in range(2):
        assert writer.add(crop(n))
    remount(folder, "ro")
    up = SpoolingUploader(bucket, str(folder / "spool"), client=s3)
    up.submit(crop(5))
    assert not up.close(5.0)  # two crops still wait on a disk it cannot change
    assert [obj["Key"] for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", [])] == [crop(5).key]


def test_the_recovery_log_counts_what_is_left(tmp_path, s3, bucket, caplog):
    from edge_function.uploader import SpoolingUploader

    class DownThenUp:
        down = True

        def put_object(self, **params):
            if self.down:
                raise ConnectionError("no route to S3")
            return s3.put_object(**params)

    client = DownThenUp()
    up = SpoolingUploader(bucket, str(tmp_path / "spool"), client=client, retry_initial_s=0.05, retry_max_s=0.1)
    with caplog.at_level(logging.INFO, logger="edge_function.uploader"):
        for n in range(3):
            up.submit(crop(n))
        assert wait_for(lambda: up.stats()["spool_items"] >= 3)
        client.down = False
        assert up.close(HANG_GUARD_S)
    (line,) = [r.getMessage() for r in caplog.records if "reachable again" in r.getMessage()]
    assert "2 spooled crops left to upload" in line  # the probe took the first of the three
