"""The uploader against S3 faults injected by a real HTTP proxy in front of a moto server (bench/s3_fault_proxy.py).

Outages (no answer, 5xx, throttling, a hanging endpoint) are told apart from refusals of one object (403 after a
prefix change, metadata botocore cannot send, a broken JPEG): an outage spools and probes with backoff, a refusal
quarantines that one crop, logs it once and moves on.
"""

import json
import logging
import os
import sys
import time

import pytest

from edge_function import uploader
from edge_function.spool import Spool
from edge_function.uploader import SpoolingUploader, UploadItem
from tests.support.polling import HANG_GUARD_S, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bench"))

from s3_fault_proxy import S3FaultProxy  # noqa: E402

BUCKET = "deeplens-faces-test"
FAST = {"retry_initial_s": 0.05, "retry_max_s": 0.2}


def jpeg(seed=0):
    import cv2
    import numpy

    pixels = numpy.random.RandomState(seed).randint(0, 255, (40, 40, 3)).astype(numpy.uint8)
    return cv2.imencode(".jpg", pixels)[1].tobytes()


def crop(n, prefix="faces"):
    return UploadItem("%s/11_14/22_13/1700000000_test-%d.jpg" % (prefix, n), jpeg(n), {"track-id": str(n)})


@pytest.fixture
def faulty_s3(moto_server):
    """(proxy, client through the proxy, direct client) with the bucket created."""
    import boto3

    direct = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    direct.create_bucket(Bucket=BUCKET)
    proxy = S3FaultProxy(int(moto_server.rsplit(":", 1)[1]))
    proxy.start()
    # the proxy's faults answer at once (a closed connection, a 503); botocore's timeouts only guard a hang, long
    # enough that a loaded machine's slow moto answer is never mistaken for an outage
    client = uploader.make_s3_client(endpoint_url=proxy.url, max_attempts=2, connect_timeout=10, read_timeout=30)
    yield proxy, client, direct
    proxy.stop()


def keys_in(direct, prefix=""):
    pages = direct.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


# --- item 2: a refused entry does not stop the others --------------------------------------------------

def test_an_old_prefix_entry_s3_refuses_is_quarantined_and_new_crops_flow(faulty_s3, tmp_path, caplog):
    proxy, client, direct = faulty_s3
    spool_dir = str(tmp_path / "spool")
    left = Spool(spool_dir, max_bytes=10 ** 7)  # a previous run, before `prefix` changed
    for n in range(2):
        assert left.add(crop(n, prefix="old-faces"))
    proxy.refused_prefixes = ("old-faces/",)  # the device's grant now covers only faces/*
    with caplog.at_level(logging.INFO, logger="edge_function"):
        up = SpoolingUploader(BUCKET, spool_dir, client=client, **FAST)
        for n in range(20):
            up.submit(crop(n))
        assert wait_for(lambda: up.stats()["uploaded"] == 20), up.stats()
        assert up.close(HANG_GUARD_S)
    stats = up.stats()
    assert stats["quarantined"] == 2 and stats["failed"] == 0 and stats["dropped"] == 0
    assert keys_in(direct) == sorted(crop(n).key for n in range(20))
    assert proxy.count("PUT", "old-faces/") == 2  # each refused entry tried once, never again
    refused = [r.getMessage() for r in caplog.records if "refused, quarantined" in r.getMessage()]
    assert len(refused) == 2 and all("AccessDenied" in line for line in refused)
    assert len(os.listdir(os.path.join(spool_dir, "quarantine"))) == 4


def test_a_sidecar_with_numeric_metadata_is_quarantined_not_retried(faulty_s3, tmp_path):
    proxy, client, direct = faulty_s3
    spool_dir = tmp_path / "spool"
    Spool(str(spool_dir), max_bytes=10 ** 7).add(crop(0))
    sidecar = next(spool_dir.glob("*.json"))
    sidecar.write_text(json.dumps({"key": crop(0).key, "metadata": {"score": 0.97}}))  # botocore: AttributeError
    up = SpoolingUploader(BUCKET, str(spool_dir), client=client, **FAST)
    up.submit(crop(1))
    assert wait_for(lambda: up.stats()["uploaded"] == 1)
    assert up.close(HANG_GUARD_S)
    assert up.stats()["quarantined"] == 1
    assert keys_in(direct) == [crop(1).key]


def test_a_broken_jpeg_never_reaches_s3(faulty_s3, tmp_path):
    proxy, client, direct = faulty_s3
    whole = crop(1)
    up = SpoolingUploader(BUCKET, str(tmp_path / "spool"), client=client, **FAST)
    up.submit(UploadItem("faces/empty.jpg", b"", {}))
    up.submit(UploadItem("faces/truncated.jpg", whole.body[:200], {}))
    up.submit(whole)
    assert up.close(HANG_GUARD_S)
    assert keys_in(direct) == [whole.key]
    assert up.stats()["quarantined"] == 2
    assert proxy.count("PUT") == 1


@pytest.mark.parametrize("fault", ["down", "503"])
def test_outages_are_spooled_not_quarantined(faulty_s3, tmp_path, fault):
    proxy, client, direct = faulty_s3
    proxy.mode = fault
    up = SpoolingUploader(BUCKET, str(tmp_path / "spool"), client=client, **FAST)
    for n in range(5):
        up.submit(crop(n))
    assert wait_for(lambda: up.stats()["spool_items"] == 5)
    assert up.stats()["quarantined"] == 0 and not up.stats()["online"]
    proxy.mode = "up"
    assert wait_for(lambda: up.stats()["uploaded"] == 5)
    assert up.close(HANG_GUARD_S)
    assert keys_in(direct) == sorted(crop(n).key for n in range(5))


# --- item 3: offline crops go to disk at once ----------------------------------------------------------

def test_while_offline_a_new_crop_is_on_disk_within_moments(faulty_s3, tmp_path):
    proxy, client, direct = faulty_s3
    proxy.mode = "down"
    # the next probe is half an hour away or more: a crop that waited for it in memory would never reach the disk
    # within the hang guard
    up = SpoolingUploader(BUCKET, str(tmp_path / "spool"), client=client, retry_initial_s=3600, retry_max_s=7200)
    up.submit(crop(0))
    assert wait_for(lambda: not up.stats()["online"])
    for n in range(1, 6):
        up.submit(crop(n))
    assert wait_for(lambda: up.stats()["spool_items"] == 6), up.stats()
    assert up.stats()["queue_depth"] == 0
    up.close(0.1)


# --- item 4: no flapping when the spool cannot take anything ------------------------------------------

def test_an_unwritable_spool_does_not_make_the_uploader_flap(faulty_s3, tmp_path, caplog):
    proxy, client, direct = faulty_s3
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    proxy.mode = "down"
    with caplog.at_level(logging.INFO, logger="edge_function"):
        up = SpoolingUploader(BUCKET, str(blocker / "spool"), client=client, queue_size=4,
                              retry_initial_s=0.2, retry_max_s=1.0)
        for n in range(3):
            up.submit(crop(n))
            time.sleep(0.3)
        time.sleep(2.0)
        attempts_offline = proxy.count("PUT")
        back = [r for r in caplog.records if "reachable again" in r.getMessage()]
        assert back == []  # never "online" without an upload that S3 accepted
        # backoff 0.2, 0.4, 0.8, 1.0 s (x0.5-1 jitter) over ~3 s, 2 attempts each: not one try per step
        assert attempts_offline <= 16, attempts_offline
        proxy.mode = "up"
        assert wait_for(lambda: up.stats()["uploaded"] == 3), up.stats()
    assert len([r for r in caplog.records if "reachable again" in r.getMessage()]) == 1
    assert keys_in(direct) == sorted(crop(n).key for n in range(3))
    up.close(1.0)


# --- item 6: attempts, a hanging endpoint, an honest close() -------------------------------------------

def test_max_attempts_counts_every_attempt(faulty_s3, tmp_path):
    proxy, _client, direct = faulty_s3
    proxy.mode = "503"
    client = uploader.make_s3_client(endpoint_url=proxy.url, max_attempts=3)
    up = SpoolingUploader(BUCKET, str(tmp_path / "spool"), client=client, retry_initial_s=30, retry_max_s=60)
    up.submit(crop(0))
    assert wait_for(lambda: up.stats()["spool_items"] == 1)
    assert proxy.count("PUT") == 3
    up.close(0.1)


def test_a_hanging_endpoint_shows_offline_and_new_crops_go_to_disk(faulty_s3, tmp_path):
    proxy, _client, direct = faulty_s3
    proxy.mode = "hang"  # held until the mode changes
    # botocore's own timeouts are an hour: only the uploader's stall detection can notice the hang in time
    client = uploader.make_s3_client(endpoint_url=proxy.url, max_attempts=2, connect_timeout=1, read_timeout=3600)
    up = SpoolingUploader(BUCKET, str(tmp_path / "spool"), client=client, stall_after_s=0.3, **FAST)
    up.submit(crop(0))
    assert wait_for(lambda: proxy.count("PUT") == 1)
    assert wait_for(lambda: not up.stats()["online"])  # the seed said online while it hung
    for n in range(1, 4):
        up.submit(crop(n))
    assert wait_for(lambda: up.stats()["spool_items"] == 3)  # to disk while the upload still hangs
    assert proxy.mode == "hang"
    proxy.mode = "up"
    assert wait_for(lambda: up.stats()["uploaded"] == 4), up.stats()
    assert up.close(HANG_GUARD_S)


def test_legacy_botocore_without_retry_modes_gets_legacy_retries(monkeypatch):
    """botocore < 1.15 knows only ``max_attempts`` (retries after the first) and refuses ``mode``."""
    from botocore import config as botocore_config
    from botocore.exceptions import InvalidRetryConfigurationError

    def validate_like_botocore_1_14(self, retries):
        for key in retries:
            if key != "max_attempts":
                raise InvalidRetryConfigurationError(retry_config_option=key, valid_options="max_attempts")

    monkeypatch.setattr(botocore_config.Config, "_validate_retry_configuration", validate_like_botocore_1_14)
    legacy = uploader.retry_config(3)
    assert legacy == {"max_attempts": 2}  # 2 retries after the first attempt: 3 in all
    assert botocore_config.Config(retries=legacy).retries == legacy  # accepted where "mode" was refused
