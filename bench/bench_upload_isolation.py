"""Does a slow S3 slow the camera loop down? Loop fps with 1 s of injected S3 latency vs none.

Same run, same frames, same simulated detector (a fixed ``--detector-ms`` of work per frame), faces that
the gate sends often (best-face timeout 0.5 s, no per-track limit, no cooldown, no per-minute cap) so the
uploader always has work; only the S3 latency changes:

  ours   EdgeLoop + SpoolingUploader: the loop only calls submit(); one worker thread waits on S3
         (a full queue spills to the disk spool). Goal: fps with latency >= 95 % of fps without.
  seed   the original sample's structure: put_object called inside the loop for every face of every
         frame, synchronously.

Run: python bench/bench_upload_isolation.py [--seconds S] [--latency-s L] [--detector-ms MS]
"""

import argparse
import io
import logging
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy  # noqa: E402

from edge_function import gate, loop, publish, settings  # noqa: E402
from edge_function.detectors import Detection  # noqa: E402
from edge_function.uploader import SpoolingUploader  # noqa: E402

FACES = [(300.0, 300.0, 480.0, 520.0), (1200.0, 350.0, 1370.0, 560.0)]


class LatentS3:
    """An S3 stand-in whose every PutObject takes ``latency_s``."""

    def __init__(self, latency_s):
        self.latency_s = latency_s
        self.puts = 0
        self._lock = threading.Lock()

    def put_object(self, **params):
        time.sleep(self.latency_s)
        with self._lock:
            self.puts += 1
        return {}


def busy_wait(seconds):
    """Detector work that occupies a core (a sleep would flatter the threaded design)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def detections():
    return [Detection("face", 0.93, box) for box in FACES]


def ours(latency_s, seconds, detector_s, frame, workdir):
    env = {"DEEPLENS_BUCKET": "deeplens-bench", "DEEPLENS_SPOOL_DIR": os.path.join(workdir, "spool-%g" % latency_s),
           "AWS_IOT_THING_NAME": "deeplens_bench", "DEEPLENS_DETECTOR": "opencv",
           "DEEPLENS_BEST_FACE_TIMEOUT_S": "0.5", "DEEPLENS_MAX_UPLOADS_PER_TRACK": "1000000",
           "DEEPLENS_COOLDOWN_S": "0", "DEEPLENS_MAX_UPLOADS_PER_MINUTE": "1000000"}
    config = settings.load_settings(env)
    client = LatentS3(latency_s)
    upload = SpoolingUploader(config.bucket, config.spool_dir, client=client)
    edge = loop.EdgeLoop(config, upload, publish.StdoutPublisher(io.StringIO()),
                         face_gate=gate.FaceGate(gate.gate_config_from_settings(config)), open_components=lambda: None)
    frames = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        busy_wait(detector_s)
        edge.process_frame(frame, detections())
        frames += 1
    elapsed = time.perf_counter() - started
    stats = upload.stats()
    edge.finish(0.0)
    return frames / elapsed, stats


def seed(latency_s, seconds, detector_s, frame):
    import cv2

    client = LatentS3(latency_s)
    frames = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        busy_wait(detector_s)
        for index, detection in enumerate(detections()):
            x0, y0, x1, y1 = (int(v) for v in detection.box)
            ok, jpeg = cv2.imencode(".jpg", frame[y0 - 25:y1 + 25, x0 - 25:x1 + 25], [cv2.IMWRITE_JPEG_QUALITY, 90])
            client.put_object(Bucket="b", Key="faces/%d_%d.jpg" % (int(time.time()), index), Body=jpeg.tobytes())
        frames += 1
    return frames / (time.perf_counter() - started), client.puts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--latency-s", type=float, default=1.0)
    parser.add_argument("--detector-ms", type=float, default=30.0)
    args = parser.parse_args()
    logging.getLogger("edge_function").setLevel(logging.ERROR)  # the deliberately unflushed spool warns
    detector_s = args.detector_ms / 1000.0
    frame = numpy.random.RandomState(0).randint(0, 255, size=(1080, 1920, 3)).astype(numpy.uint8)
    print("loop fps with %.1f s S3 latency vs none; %.0f ms simulated detector, 2 faces, %.0f s per run"
          % (args.latency_s, args.detector_ms, args.seconds))
    with tempfile.TemporaryDirectory() as workdir:
        fast, fast_stats = ours(0.0, args.seconds, detector_s, frame, workdir)
        slow, slow_stats = ours(args.latency_s, args.seconds, detector_s, frame, workdir)
    print("ours  no latency: %6.2f fps   (crops captured %d, uploaded %d)"
          % (fast, fast_stats["captured"], fast_stats["uploaded"]))
    print("ours  %.1f s S3   : %6.2f fps   (crops captured %d, uploaded %d, spooled %d, queue %d)"
          % (args.latency_s, slow, slow_stats["captured"], slow_stats["uploaded"], slow_stats["spooled"],
             slow_stats["queue_depth"]))
    print("ours  ratio      : %6.1f %%   (goal >= 95 %%)" % (100.0 * slow / fast))
    seed_fast, seed_fast_puts = seed(0.0, args.seconds, detector_s, frame)
    seed_slow, seed_slow_puts = seed(args.latency_s, args.seconds, detector_s, frame)
    print("seed  no latency: %6.2f fps   (puts %d)" % (seed_fast, seed_fast_puts))
    print("seed  %.1f s S3   : %6.2f fps   (puts %d)" % (args.latency_s, seed_slow, seed_slow_puts))
    print("seed  ratio      : %6.1f %%" % (100.0 * seed_slow / seed_fast))


if __name__ == "__main__":
    main()
