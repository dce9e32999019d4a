"""SIGTERM while the detector is busy: the real ``python -m edge_function run`` process stops without waiting for the
frame in progress, however long it takes, and no crop captured before the stop is lost.

The nucleus sends SIGTERM and kills the component 5 s later (the component gives the upload flush 3 s of that,
``DEEPLENS_FLUSH_TIMEOUT_S=3``). CenterFace takes 3-7 s a frame under qemu on arm64; a slow board takes over 2 s.
Here the slowness is injected from outside the product code: a ``sitecustomize`` module on the process' path wraps
``edge_function.detectors.make_detector`` so that, after a few real CenterFace frames, every ``detect()`` first
sleeps ``SLOW_FRAME_S``, an hour (``time.sleep`` resumes after a signal handler, PEP 475, like a long C call), and wraps
``SpoolingUploader.submit`` to write each crop's key to a ledger (one ``O_APPEND`` write per crop) so the test
knows every crop the process captured. S3 is a moto server, or a closed port for the outage case.

The verdict does not depend on the machine's speed: a process that waited for the frame would not exit within the
hang guard (a minute, against an hour-long frame); how long SIGTERM to exit took is printed (``-s``), a figure
for the nucleus' 5 s, not an assertion.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import boto3
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUCKET = "deeplens-faces-stop"
SLOW_FRAME_S = 3600.0  # a frame that never ends while the test runs
FAST_FRAMES = 3  # real CenterFace frames before the detector turns slow (and not before a first crop was sent)
# The component's Run sets 3 s; here the flush may take a minute, because a loaded machine's upload to moto can
# outlast 3 s (exit 1, crops spooled: seen under load). A flush returns as soon as the crops are up.
FLUSH_TIMEOUT_S = "60"
HANG_GUARD_S = 120.0  # SIGTERM to exit takes the flush at most (returning once the crops are up), however loaded

SLOW_DETECTOR_HOOK = '''
import os
import time

from edge_function import detectors, uploader

_ledger = os.open(os.environ["STOP_TEST_LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
_slow_marker = os.environ["STOP_TEST_SLOW_MARKER"]
_fast_frames = int(os.environ["STOP_TEST_FAST_FRAMES"])
_slow_frame_s = float(os.environ["STOP_TEST_SLOW_FRAME_S"])
_make_detector = detectors.make_detector
_submit = uploader.SpoolingUploader.submit
_submitted = []  # keys submitted so far: the detector turns slow only once a crop has been captured


class _SlowDetector(object):
    def __init__(self, inner):
        self._inner = inner
        self.name = inner.name
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        if self.calls > _fast_frames and _submitted:
            with open(_slow_marker, "a") as marker:
                marker.write("%d\\n" % self.calls)
            time.sleep(_slow_frame_s)
        return self._inner.detect(image)


def _make_slow_detector(*args, **kwargs):
    return _SlowDetector(_make_detector(*args, **kwargs))


def _ledger_submit(self, item):
    os.write(_ledger, (item.key + "\\n").encode("utf-8"))
    _submitted.append(item.key)
    _submit(self, item)


detectors.make_detector = _make_slow_detector
uploader.SpoolingUploader.submit = _ledger_submit
'''


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def spool_entries(spool_dir):
    """(keys of complete jpg+json entries, names of any other files) in the spool folder."""
    names = set(os.listdir(spool_dir)) if os.path.isdir(spool_dir) else set()
    keys, other = [], []
    for name in sorted(names):
        stem, extension = os.path.splitext(name)
        if extension == ".json" and stem + ".jpg" in names:
            with open(os.path.join(spool_dir, name)) as entry:
                keys.append(json.load(entry)["key"])
        elif not (extension == ".jpg" and stem + ".json" in names) and name != ".deeplens-spool":
            other.append(name)
    return keys, other


def wait_for(condition, timeout_s, what, process):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    _, stderr = process.communicate()
    pytest.fail("%s did not happen within %.0f s; stderr:\n%s" % (what, timeout_s, stderr[-3000:]))


@pytest.fixture
def looping_face_folder(astronaut_frames):
    """Four 1280x720 frames with one real face (scikit-image's astronaut), replayed forever as the camera."""
    return astronaut_frames(4)


@pytest.mark.parametrize("s3_state", ["reachable", "unreachable"])
def test_sigterm_during_a_slow_frame_exits_in_time_and_loses_no_crop(s3_state, edge_env, moto_server, tmp_path,
                                                                    looping_face_folder):
    client = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    endpoint = moto_server if s3_state == "reachable" else "http://127.0.0.1:%d" % free_port()
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SLOW_DETECTOR_HOOK)
    ledger, slow_marker, spool_dir = tmp_path / "ledger.txt", tmp_path / "slow.txt", str(tmp_path / "spool")
    env = dict(edge_env, PYTHONPATH=str(hook) + os.pathsep + REPO, AWS_ENDPOINT_URL_S3=endpoint,
               STOP_TEST_LEDGER=str(ledger), STOP_TEST_SLOW_MARKER=str(slow_marker),
               STOP_TEST_FAST_FRAMES=str(FAST_FRAMES), STOP_TEST_SLOW_FRAME_S=str(SLOW_FRAME_S),
               DEEPLENS_SPOOL_DIR=spool_dir, DEEPLENS_FLUSH_TIMEOUT_S=FLUSH_TIMEOUT_S,
               DEEPLENS_MOTION_GATE="off", DEEPLENS_BEST_FACE_TIMEOUT_S="0.1", DEEPLENS_COOLDOWN_S="0",
               DEEPLENS_MAX_UPLOADS_PER_TRACK="100", DEEPLENS_MAX_UPLOADS_PER_MINUTE="1000")
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_function", "run", "--source", looping_face_folder, "--loop-source", "true",
         "--detector", "centerface", "--bucket", BUCKET, "--device", "slow-board"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(slow_marker.exists, 5 * HANG_GUARD_S, "the detector's first slow frame", process)
        time.sleep(0.5)  # well inside the slow frame
        captured_before_stop = ledger.read_text().split() if ledger.exists() else []
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        exited = True
        try:
            _, stderr = process.communicate(timeout=HANG_GUARD_S)
        except subprocess.TimeoutExpired:
            exited = False
            process.kill()
            _, stderr = process.communicate()
        stop_s = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    print("%s: SIGTERM to exit %.2f s, exit code %d" % (s3_state, stop_s, process.returncode))

    assert captured_before_stop, "no crop was captured before the stop: the test would prove nothing"
    assert exited, "still running %.0f s after SIGTERM (waiting for the frame?); stderr:\n%s" % (stop_s, stderr[-3000:])
    assert "Traceback" not in stderr, stderr[-3000:]
    captured = ledger.read_text().split()  # also what the shutdown sent for the live track
    assert set(captured_before_stop) <= set(captured)
    uploaded = {obj["Key"] for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    spooled, other_files = spool_entries(spool_dir)
    assert other_files == [], "half-written spool files: %s" % other_files
    lost = [key for key in captured if key not in uploaded and key not in spooled]
    assert lost == [], "crops neither in the bucket nor in the spool: %s" % lost
    if s3_state == "reachable":
        assert process.returncode == 0, stderr[-3000:]  # documented: clean stop, every crop uploaded
        assert spooled == [] and set(captured) == uploaded
    else:
        assert process.returncode == 1, stderr[-3000:]  # documented: crops left in the spool
        assert uploaded == set() and sorted(spooled) == sorted(captured)
        assert "crops not uploaded; they wait in %s" % spool_dir in stderr
