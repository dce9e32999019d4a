"""Loop overhead per frame OUTSIDE the detector, at 1920x1080 with a face in view (goal: <= 5 ms).

Measures ``EdgeLoop.process_frame`` (gate with tracking and best-crop choice, crop + JPEG when a crop is
due, uploader.submit, message building/publishing, preview hand-over) with a fake detector result (a
fixed face box) and an S3 client that returns at once, so neither model nor network time is counted.
Between frames the bench sleeps ``--detector-ms`` (not counted) the way the loop waits for the detector:
on a DeepLens the SSD runs on the GPU, so the CPU is free for the uploader and preview threads then.

Scenarios:
  steady       default settings: one face standing in view (publish once a second, no preview)
  busy         publish every frame + preview of every frame (resized to 858 px on the caller's thread,
               encoded by the preview thread)
  worst        as busy, and the face grows every frame, so the gate cuts a new best crop every frame

Run: python bench/bench_loop.py [--frames N] [--detector-ms MS]
"""

import argparse
import io
import os
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy  # noqa: E402

from edge_function import gate, loop, publish, settings  # noqa: E402
from edge_function.detectors import Detection  # noqa: E402
from edge_function.preview import PreviewWriter  # noqa: E402
from edge_function.uploader import SpoolingUploader  # noqa: E402


class InstantS3:
    def put_object(self, **params):
        return {}


def make_frame():
    rng = numpy.random.RandomState(0)
    frame = rng.randint(0, 255, size=(1080, 1920, 3)).astype(numpy.uint8)
    return frame


def run(name, frames, publish_every_frame, preview, growing, workdir, detector_s, report=True):
    env = {"DEEPLENS_BUCKET": "deeplens-bench", "DEEPLENS_SPOOL_DIR": os.path.join(workdir, name),
           "AWS_IOT_THING_NAME": "deeplens_bench", "DEEPLENS_DETECTOR": "opencv",
           "DEEPLENS_PUBLISH_INTERVAL_S": "0" if publish_every_frame else "1"}
    config = settings.load_settings(env)
    upload = SpoolingUploader(config.bucket, config.spool_dir, client=InstantS3())
    # max_fps high: every frame pays the preview hand-over (a resize to 858 px), the worst case
    writer = PreviewWriter(os.path.join(workdir, name + ".jpg"), max_fps=1e6) if preview else None
    edge = loop.EdgeLoop(config, upload, publish.StdoutPublisher(io.StringIO()), writer,
                         face_gate=gate.FaceGate(gate.gate_config_from_settings(config)),
                         open_components=lambda: None)
    frame = make_frame()
    timings = []
    for index in range(frames):
        grow = (index % 200) * 1.0 if growing else 0.0
        detections = [Detection("face", 0.93, (860.0 - grow, 420.0 - grow, 1060.0 + grow, 660.0 + grow))]
        started = time.perf_counter()
        edge.process_frame(frame, detections)
        timings.append((time.perf_counter() - started) * 1000.0)
        time.sleep(detector_s)
        if index % 500 == 0:
            edge.publisher = publish.StdoutPublisher(io.StringIO())  # keep the in-memory stdout small
    edge.finish(2.0)
    timings.sort()
    if not report:
        return
    print("%-7s frames=%5d  median=%6.3f ms  p90=%6.3f ms  p99=%6.3f ms  max=%6.2f ms  mean=%6.3f ms  crops=%d"
          % (name, frames, statistics.median(timings), timings[int(0.9 * len(timings))],
             timings[int(0.99 * len(timings))], timings[-1], statistics.mean(timings),
             upload.stats()["captured"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--detector-ms", type=float, default=20.0)
    args = parser.parse_args()
    detector_s = args.detector_ms / 1000.0
    print("edge loop overhead per 1920x1080 frame, detector and network excluded (goal <= 5 ms); "
          "%.0f ms detector pause between frames" % args.detector_ms)
    print("python %s, %d CPUs, threads alive at start: %d" % (sys.version.split()[0], os.cpu_count() or 0,
                                                            threading.active_count()))
    with tempfile.TemporaryDirectory() as workdir:
        # warm-up (first OpenCV calls, page faults): not reported
        run("warmup", 100, True, True, True, workdir, detector_s, report=False)
        run("steady", args.frames, False, False, False, workdir, detector_s)
        run("busy", args.frames, True, True, False, workdir, detector_s)
        run("worst", args.frames, True, True, True, workdir, detector_s)


if __name__ == "__main__":
    main()
