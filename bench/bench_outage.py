"""S3 down for a long stretch while the device loop runs flat out: memory, spool cap, a kill -9, a refused entry,
recovery, and where every crop went.

The real device process (`python -m edge_function run --source awscam --detector awscam`) runs against a
stand-in `awscam` module (put first on PYTHONPATH) whose camera answers at once and whose "model" finds four
faces that appear and vanish every 0.1 s at new places, so the gate sends about 20 crops a second and the
loop runs at full CPU rate (run 2 sees one face, ~5 crops a second, so part of what run 1 spooled outlives
the restart and the exactly-once check covers crops from before the kill). S3 is a moto server (versioned bucket,
so a crop uploaded twice shows as two versions) behind `s3_fault_proxy.py`, the device's endpoint, which closes
every connection during the outage and answers 403 AccessDenied for keys under an old prefix.

  1. run 1   outage; RSS and spool size sampled; then SIGKILL (no flush, no goodbye)
  2. disk    what run 1 left: complete spool entries, half-written files; then one entry under the old prefix is
             added (as if spooled before a `prefix` change: S3 refuses it for good)
  3. run 2   restarted on the same spool, outage continues; then the proxy lets requests through; run 2 drains
             the spool (quarantining the refused entry) while it keeps capturing; SIGTERM once the spool is empty;
             its final counters are read from its last stats log line
  4. bucket  every object and its versions
  5. crops   a ledger the device process writes itself (LEDGER_HOOK, one O_APPEND write per event, so it survives
             the kill) lists every crop captured, every spool entry and every eviction: each crop is uploaded,
             quarantined, dropped (evicted by the cap), left in the spool, or lost. Lost must be 0 but for the
             crop in flight at the kill.

Figures: crops captured / uploaded / spooled / quarantined / dropped / lost, entries recovered after the kill,
RSS over time, spool bytes against the cap, seconds from S3's return to an empty spool, duplicate uploads.

Run: python bench/bench_outage.py [--outage-s 60] [--restart-outage-s 5] [--spool-max-mb 2]
tests/hardening/test_outage_durability.py runs the same harness for a few seconds and asserts on it.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "deeplens-outage-crops"

# A DeepLens camera and face model that cost nothing: the loop runs at full rate. Faces come and go every
# PERIOD_S (wall clock), OUTAGE_FACES at a time, each appearance somewhere new, so every appearance is a new
# track and ends in one crop. The frame is noise, so crops compress like real ones (tens of KB), not like flat
# colour.
FAKE_AWSCAM = '''
import os
import time
import numpy

PERIOD_S = 0.1
FACES = int(os.environ.get("OUTAGE_FACES", "4"))
_FRAME = numpy.random.RandomState(7).randint(0, 255, (480, 640, 3)).astype(numpy.uint8)


def getLastFrame():
    return True, _FRAME


class Model(object):
    def __init__(self, model_path, loading_config, runtime=0):
        self.model_path = model_path

    def doInference(self, frame):
        return {"t": time.time()}

    def parseResult(self, model_type, raw):
        phase = int(raw["t"] / PERIOD_S)
        if phase % 2:
            return {"ssd": []}
        shift = (phase // 2) % 5 * 12
        faces = []
        for index in range(FACES):
            x = 20 + index * 70 + shift
            y = 40 + (index % 2) * 120 + shift
            faces.append({"label": 1, "prob": 0.95, "xmin": x, "ymin": y, "xmax": x + 50, "ymax": y + 60})
        return {"ssd": faces}
'''

# Loaded by the device process (it is first on PYTHONPATH): appends to a ledger file, with one O_APPEND write each
# (which survives a kill -9), every crop handed to the uploader, every spool entry written (its stem and key) and
# every entry the cap evicts. The bench counts crops from it; the uploader's own counters die with a kill -9.
LEDGER_HOOK = '''
import json
import os

_LEDGER = os.environ.get("OUTAGE_LEDGER")
if _LEDGER:
    from edge_function import spool, uploader

    _fd = os.open(_LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _note(*words):
        os.write(_fd, (" ".join(words) + "\\n").encode("utf-8"))

    _submit = uploader.SpoolingUploader.submit

    def submit(self, item):
        _note("captured", item.key)
        _submit(self, item)

    _write = spool._write_durably

    def write_durably(path, data, sync_folder=True):
        _write(path, data, sync_folder)
        name = os.path.basename(path)
        if name.endswith(".json") and os.path.basename(os.path.dirname(path)) != spool.QUARANTINE:
            _note("spooled", name[:-5], json.loads(data.decode("utf-8"))["key"])

    _enforce = spool.Spool._enforce_cap

    def enforce_cap(self):
        before = list(self._entries)
        _enforce(self)
        for stem in before[:len(before) - len(self._entries)]:
            _note("evicted", stem)

    uploader.SpoolingUploader.submit = submit
    spool._write_durably = write_durably
    spool.Spool._enforce_cap = enforce_cap
'''

OLD_PREFIX = "old-faces"  # a prefix the device's grant no longer covers: S3 answers 403 AccessDenied


@dataclass
class Ledger:
    """What the device process did, from the ledger file (see LEDGER_HOOK)."""

    captured: list[str] = field(default_factory=list)
    spooled: dict[str, str] = field(default_factory=dict)  # stem -> key
    evicted_stems: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Ledger:
        ledger = cls()
        for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
            words = line.split(" ")
            if words[0] == "captured" and len(words) == 2:
                ledger.captured.append(words[1])
            elif words[0] == "spooled" and len(words) == 3:
                ledger.spooled[words[1]] = words[2]
            elif words[0] == "evicted" and len(words) == 2:
                ledger.evicted_stems.append(words[1])
        return ledger


STATS_LINE = re.compile(r"frames=(?P<frames>\d+) fps=(?P<fps>[\d.]+) gate=.* uploads=(?P<uploads>\{.*\})")


@dataclass
class Samples:
    """RSS (MB) and spool bytes of one process, sampled while it runs."""

    rss_mb: list[float] = field(default_factory=list)
    spool_bytes: list[int] = field(default_factory=list)
    steady_from: int = 0  # the first sample taken once the loop had captured a crop (start-up over)

    @property
    def rss_growth_mb(self) -> float:
        """RSS at the end minus RSS half way through, or once the first crop was captured if that came later (a
        loaded machine starts slower): start-up imports are over by then, so a leak shows here."""
        start = max(self.steady_from, len(self.rss_mb) // 2)
        if len(self.rss_mb) < 4 or start >= len(self.rss_mb):
            return 0.0
        return round(self.rss_mb[-1] - self.rss_mb[start], 1)

    def to_dict(self) -> dict[str, Any]:
        rss = self.rss_mb or [0.0]
        return {"samples": len(self.rss_mb), "rss_mb_max": round(max(rss), 1), "rss_mb_last": round(rss[-1], 1),
                "rss_growth_mb_second_half": self.rss_growth_mb, "spool_bytes_max": max(self.spool_bytes or [0])}


@dataclass
class OutageFigures:
    spool_cap_bytes: int
    run1_seconds: float
    run1: Samples
    left_by_kill: dict[str, Any]
    run2_outage_seconds: float
    run2: Samples
    run2_exit_code: int | None
    run2_stats: dict[str, Any]
    run2_frames: int
    run2_fps: float
    recovery_seconds: float | None
    recovered_keys: list[str]  # keys of the complete entries run 1 left, oldest first
    bucket_versions: dict[str, int]  # key -> number of versions
    crops: dict[str, int] = field(default_factory=dict)  # the whole scenario's accounting (see crop_accounting)
    lost_keys: list[str] = field(default_factory=list)
    quarantined_keys: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return sum(1 for versions in self.bucket_versions.values() if versions > 1)

    def to_dict(self) -> dict[str, Any]:
        recovered_uploaded = [key for key in self.recovered_keys if key in self.bucket_versions]
        return {
            "spool_cap_bytes": self.spool_cap_bytes,
            "run1": {"seconds": self.run1_seconds, **self.run1.to_dict(), "left_by_kill": self.left_by_kill},
            "run2": {
                "outage_seconds": self.run2_outage_seconds,
                **self.run2.to_dict(),
                "exit_code": self.run2_exit_code,
                "frames": self.run2_frames,
                "fps": self.run2_fps,
                "counters": self.run2_stats,
                "recovery_seconds": self.recovery_seconds,
            },
            "bucket": {
                "objects": len(self.bucket_versions),
                "duplicates": self.duplicates,
                "from_run1_uploaded": len(recovered_uploaded),
                "from_run1_dropped": len(self.recovered_keys) - len(recovered_uploaded),
            },
            "crops": self.crops,
            "lost_keys": self.lost_keys,
            "quarantined_keys": self.quarantined_keys,
        }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def spool_bytes(spool: Path) -> int:
    total = 0
    for entry in os.scandir(spool) if spool.is_dir() else ():
        try:
            total += entry.stat().st_size
        except OSError:
            pass  # removed while we looked
    return total


def complete_entries(spool: Path) -> tuple[list[str], int]:
    """(keys of complete entries, oldest first; number of other files: half-written or orphaned)."""
    names = sorted(os.listdir(spool)) if spool.is_dir() else []
    present = set(names)
    keys, other = [], 0
    for name in names:
        if name.endswith(".json") and name[:-5] + ".jpg" in present:
            keys.append(json.loads((spool / name).read_text(encoding="utf-8"))["key"])
        elif not (name.endswith(".jpg") and name[:-4] + ".json" in present):
            other += 1
    return keys, other


def quarantined_keys(spool: Path) -> list[str]:
    folder = spool / "quarantine"
    names = sorted(os.listdir(folder)) if folder.is_dir() else []
    return [json.loads((folder / name).read_text(encoding="utf-8"))["key"] for name in names if name.endswith(".json")]


def plant_old_prefix_entry(spool: Path) -> str:
    """A crop spooled under a prefix the device's grant no longer covers (written by the spool's own code, after
    the kill, so it is the newest entry and survives run 2's evictions: run 2 must get past it to drain)."""
    import cv2
    import numpy

    from edge_function.spool import Spool
    from edge_function.uploader import UploadItem

    pixels = numpy.random.RandomState(3).randint(0, 255, (96, 96, 3)).astype(numpy.uint8)
    key = f"{OLD_PREFIX}/11_30/06_00/1764482400_old-0.jpg"
    Spool(str(spool), 10 ** 9).add(UploadItem(key, cv2.imencode(".jpg", pixels)[1].tobytes(), {"device": "outage-cam"}))
    return key


def crop_accounting(run1: Ledger, run2: Ledger, on_disk_after_kill: list[str], bucket: dict[str, int],
                    quarantined: list[str], left_in_spool: list[str], planted: str) -> tuple[dict[str, int], list[str]]:
    """Every crop the two runs captured: uploaded, quarantined, dropped (evicted by the cap), still spooled, or lost.

    `lost_in_kill` are run 1's crops that are neither on disk after the kill nor in the bucket nor evicted: the
    crop(s) in flight when the kill came. `lost` is the same over the whole scenario."""
    captured = run1.captured + run2.captured
    key_of = {**run1.spooled, **run2.spooled}  # stems keep counting up across runs: never reused
    run1_evicted = {key_of[stem] for stem in run1.evicted_stems if stem in key_of}
    # an entry evicted while its upload was in flight still landed: uploaded, not dropped
    dropped = (run1_evicted | {key_of[stem] for stem in run2.evicted_stems if stem in key_of}) - set(bucket)
    kill_known = set(on_disk_after_kill) | set(bucket) | run1_evicted
    lost_in_kill = [key for key in run1.captured if key not in kill_known]
    accounted = set(bucket) | dropped | set(quarantined) | set(left_in_spool)
    lost = [key for key in captured if key not in accounted]
    figures = {
        "captured": len(captured), "captured_run1": len(run1.captured), "captured_run2": len(run2.captured),
        "uploaded": sum(1 for key in captured if key in bucket),
        "spooled": len(set(run1.spooled.values()) | set(run2.spooled.values()) - {planted}),
        "quarantined": len(quarantined), "dropped": len([key for key in captured if key in dropped]),
        "left_in_spool": len(left_in_spool), "lost_in_kill": len(lost_in_kill), "lost": len(lost),
    }
    return figures, lost


class Sampler(threading.Thread):
    def __init__(self, pid: int, spool: Path, every_s: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.spool, self.every_s = pid, spool, every_s
        self.samples = Samples()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            rss = rss_mb(self.pid)
            if rss is not None:
                self.samples.rss_mb.append(rss)
            self.samples.spool_bytes.append(spool_bytes(self.spool))
            self.stop.wait(self.every_s)

    def finish(self) -> Samples:
        self.stop.set()
        self.join()
        return self.samples


def device_env(work: Path, port: int, spool: Path, spool_max_mb: float) -> dict[str, str]:
    """The device's environment; OUTAGE_LEDGER is set per run."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AWS_", "DEEPLENS_")) and key not in ("SVCUID", "PYTHONPATH")}
    env.update({
        "PYTHONPATH": os.pathsep.join([str(work / "device"), str(ROOT)]),
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
        "AWS_CONFIG_FILE": str(work / "aws-config"), "AWS_SHARED_CREDENTIALS_FILE": str(work / "aws-credentials"),
        "AWS_IOT_THING_NAME": "outage-cam",
        "DEEPLENS_SOURCE": "awscam", "DEEPLENS_DETECTOR": "awscam", "DEEPLENS_BUCKET": BUCKET,
        "DEEPLENS_SPOOL_DIR": str(spool), "DEEPLENS_SPOOL_MAX_MB": str(spool_max_mb), "DEEPLENS_QUEUE_SIZE": "4",
        "DEEPLENS_TRACK_LOST_S": "0.05", "DEEPLENS_COOLDOWN_S": "0", "DEEPLENS_MAX_UPLOADS_PER_MINUTE": "100000",
        "DEEPLENS_PUBLISH_INTERVAL_S": "5", "DEEPLENS_FLUSH_TIMEOUT_S": "20", "DEEPLENS_LOG_LEVEL": "INFO",
        # The fake SSD reports faces whatever the picture shows; crops at full rate need a detection on every frame.
        "DEEPLENS_MOTION_GATE": "off",
    })
    return env


def start_device(env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as stderr:
        return subprocess.Popen([sys.executable, "-m", "edge_function", "run"], cwd=str(ROOT), env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr)


def final_stats(log: Path) -> tuple[int, float, dict[str, Any]]:
    matches = list(STATS_LINE.finditer(log.read_text(encoding="utf-8", errors="replace")))
    if not matches:
        raise RuntimeError(f"no stats line in {log}")
    last = matches[-1]
    return int(last["frames"]), float(last["fps"]), ast.literal_eval(last["uploads"])


def _until_captured(ledger: Path, crops: int, process: subprocess.Popen, timeout_s: float) -> None:
    """Wait until the device process' ledger lists `crops` captured crops (or it exits, or `timeout_s` passes)."""
    deadline = time.monotonic() + timeout_s
    while len(Ledger.read(ledger).captured) < crops and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)


def run_outage(work: Path, outage_s: float = 4.0, restart_outage_s: float = 1.5, spool_max_mb: float = 0.5,
               drain_timeout_s: float = 60.0, online_s: float = 1.0, sample_every_s: float = 0.1,
               run2_faces: int = 1, run1_min_crops: int = 0, run2_min_crops: int = 0) -> OutageFigures:
    """The whole scenario in `work` (a fresh folder); see the module docstring.

    Each outage lasts its seconds and, when `run1_min_crops` / `run2_min_crops` are given, at least until the
    run's ledger lists that many captured crops: the tests count crops, not seconds, so a loaded machine that
    captures slower still reaches the spool cap (a run that captures nothing within `drain_timeout_s` ends there).
    """
    import boto3
    from moto.server import ThreadedMotoServer
    from s3_fault_proxy import S3FaultProxy

    (work / "device").mkdir(parents=True)
    (work / "device" / "awscam.py").write_text(FAKE_AWSCAM, encoding="utf-8")
    (work / "device" / "sitecustomize.py").write_text(LEDGER_HOOK, encoding="utf-8")
    spool = work / "spool"
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per upload otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    proxy = S3FaultProxy(server.get_host_and_port()[1])  # the device's endpoint: outages and refusals injected here
    proxy.start()
    try:
        s3 = boto3.client("s3", endpoint_url="http://%s:%d" % server.get_host_and_port(), region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        proxy.refused_prefixes = (OLD_PREFIX + "/",)
        proxy.mode = "down"  # S3 unreachable: connections closed without an answer
        env = device_env(work, proxy.port, spool, spool_max_mb)

        # 1. run 1: outage, then kill -9
        run1 = start_device({**env, "OUTAGE_LEDGER": str(work / "run1.ledger")}, work / "run1.log")
        sampler = Sampler(run1.pid, spool, sample_every_s)
        sampler.start()
        _until_captured(work / "run1.ledger", 1, run1, drain_timeout_s)
        sampler.samples.steady_from = len(sampler.samples.rss_mb)
        time.sleep(outage_s)
        _until_captured(work / "run1.ledger", run1_min_crops, run1, drain_timeout_s)
        run1.send_signal(signal.SIGKILL)
        run1.wait()
        run1_samples = sampler.finish()

        # 2. what the kill left on disk
        recovered_keys, half_written = complete_entries(spool)
        left = {"complete_entries": len(recovered_keys), "other_files": half_written, "bytes": spool_bytes(spool)}
        planted = plant_old_prefix_entry(spool)  # as if a run before a `prefix` change had left it

        # 3. run 2: restart during the outage, then S3 comes back
        run2 = start_device({**env, "OUTAGE_FACES": str(run2_faces), "OUTAGE_LEDGER": str(work / "run2.ledger")},
                            work / "run2.log")
        sampler = Sampler(run2.pid, spool, sample_every_s)
        sampler.start()
        _until_captured(work / "run2.ledger", 1, run2, drain_timeout_s)
        sampler.samples.steady_from = len(sampler.samples.rss_mb)
        time.sleep(restart_outage_s)
        _until_captured(work / "run2.ledger", run2_min_crops, run2, drain_timeout_s)
        proxy.mode = "up"
        back = time.monotonic()
        recovery_s = None
        while time.monotonic() - back < drain_timeout_s and run2.poll() is None:
            if not any(name.endswith(".json") for name in os.listdir(spool)):
                recovery_s = round(time.monotonic() - back, 2)
                break
            time.sleep(0.05)
        time.sleep(online_s)  # capture and upload online for a moment, as a recovered device does
        run2.send_signal(signal.SIGTERM)
        try:
            run2.wait(timeout=60)
        except subprocess.TimeoutExpired:
            run2.kill()
            run2.wait()
        run2_samples = sampler.finish()
        frames, fps, stats = final_stats(work / "run2.log")
        versions: dict[str, int] = {}
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET):
            for version in page.get("Versions", []):
                versions[version["Key"]] = versions.get(version["Key"], 0) + 1
    finally:
        proxy.stop()
        server.stop()
    quarantined = quarantined_keys(spool)
    left_in_spool, _ = complete_entries(spool)
    crops, lost = crop_accounting(Ledger.read(work / "run1.ledger"), Ledger.read(work / "run2.ledger"),
                                  recovered_keys, versions, [key for key in quarantined if key != planted],
                                  left_in_spool, planted)
    crops["quarantined_old_prefix"] = int(planted in quarantined)
    return OutageFigures(
        spool_cap_bytes=int(spool_max_mb * 1024 * 1024), run1_seconds=outage_s, run1=run1_samples, left_by_kill=left,
        run2_outage_seconds=restart_outage_s, run2=run2_samples, run2_exit_code=run2.returncode, run2_stats=stats,
        run2_frames=frames, run2_fps=fps, recovery_seconds=recovery_s,
        recovered_keys=[key for key in recovered_keys if key != planted], bucket_versions=versions, crops=crops,
        lost_keys=lost, quarantined_keys=quarantined)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage-s", type=float, default=60.0, help="run 1: seconds of outage before kill -9")
    parser.add_argument(
        "--restart-outage-s", type=float, default=5.0, help="run 2: seconds of outage before S3 returns"
    )
    parser.add_argument("--spool-max-mb", type=float, default=2.0)
    parser.add_argument("--run2-faces", type=int, default=1, help="faces per appearance in run 2 (run 1: 4)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="deeplens-outage-") as work:
        figures = run_outage(Path(work), options.outage_s, options.restart_outage_s, options.spool_max_mb,
                             run2_faces=options.run2_faces)
    report = figures.to_dict()
    run1, run2, bucket = report["run1"], report["run2"], report["bucket"]
    counters = run2["counters"]
    print(f"spool cap: {figures.spool_cap_bytes} bytes ({options.spool_max_mb:g} MB)")
    print(
        f"run 1  outage {run1['seconds']:g} s, then kill -9: RSS max {run1['rss_mb_max']} MB "
        f"(+{run1['rss_growth_mb_second_half']} MB over the second half), "
        f"spool max {run1['spool_bytes_max']} bytes; left {run1['left_by_kill']['complete_entries']} complete entries "
        f"and {run1['left_by_kill']['other_files']} other files"
    )
    print(
        f"run 2  outage {run2['outage_seconds']:g} s more, then S3 back: {run2['frames']} frames at {run2['fps']} fps; "
        f"captured {counters['captured']}, spooled {counters['spooled']}, uploaded {counters['uploaded']}, "
        f"dropped {counters['dropped']} (spool left {counters['spool_items']}); RSS max {run2['rss_mb_max']} MB "
        f"(+{run2['rss_growth_mb_second_half']} MB over the second half); "
        f"spool max {run2['spool_bytes_max']} bytes; spool empty {run2['recovery_seconds']} s after S3 returned; "
        f"exit {run2['exit_code']}"
    )
    print(f"bucket {bucket['objects']} objects, {bucket['duplicates']} uploaded twice; of run 1's entries "
          f"{bucket['from_run1_uploaded']} uploaded, {bucket['from_run1_dropped']} dropped (oldest first)")
    crops = report["crops"]
    print(f"crops  captured {crops['captured']} (run 1 {crops['captured_run1']}, run 2 {crops['captured_run2']}), "
          f"uploaded {crops['uploaded']}, spooled {crops['spooled']}, quarantined {crops['quarantined']} "
          f"(+ the refused old-prefix entry: {crops['quarantined_old_prefix']}), dropped {crops['dropped']}, "
          f"left in spool {crops['left_in_spool']}, lost {crops['lost']} (in the kill: {crops['lost_in_kill']})")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
