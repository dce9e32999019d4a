"""Benchmark the offline CenterFace detector: speed per frame and accuracy on the LFW-subset protocol.

Run from the repository root:  python bench/bench_detector.py [--seconds S]

Prints, for CenterFace through cv2.dnn with the default settings (640 px input width, floor 0.3):
* milliseconds per frame (median, p90) and frames per second at 1920x1080, 1280x720 (the issue's target:
  <= 66 ms) and 300x300, each measured on the astronaut image placed in a gray frame, after warm-up;
* recall and false-positive rate on the LFW-subset protocol of research/offline_detectors.md section 3
  at thresholds 0.3, 0.5 and 0.7 (target: recall >= 0.95 at the gate's threshold).
No assertions: figures vary with the machine and its load; compare runs on the same machine.
"""

import argparse
import os
import statistics
import sys
import time

import cv2
import numpy
import skimage.data

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from edge_function.detectors import CenterFaceDetector  # noqa: E402

THRESHOLDS = (0.3, 0.5, 0.7)


def astronaut_frame(width, height):
    """The astronaut (512x512) fitted into a gray frame of the given size, centred."""
    astronaut = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    side = min(512, width, height)
    if side != 512:
        astronaut = cv2.resize(astronaut, (side, side), interpolation=cv2.INTER_AREA)
    frame = numpy.full((height, width, 3), 127, numpy.uint8)
    top, left = (height - side) // 2, (width - side) // 2
    frame[top:top + side, left:left + side] = astronaut
    return frame


def lfw_canvases():
    """25x25 LFW crops upscaled (cubic) to 100x100 in the middle of a 200x200 gray(127) canvas."""
    canvases = []
    for patch in skimage.data.lfw_subset():
        pixels = numpy.clip(patch * 255.0, 0, 255).astype(numpy.uint8)
        canvas = numpy.full((200, 200), 127, numpy.uint8)
        canvas[50:150, 50:150] = cv2.resize(pixels, (100, 100), interpolation=cv2.INTER_CUBIC)
        canvases.append(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
    return canvases[:100], canvases[100:]


def time_detector(detector, frame, seconds, min_runs=10, warmup=2):
    for _ in range(warmup):
        detector.detect(frame)
    timings = []
    started = time.perf_counter()
    while len(timings) < min_runs or time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        faces = detector.detect(frame)
        timings.append((time.perf_counter() - t0) * 1000.0)
        if len(timings) >= 200:
            break
    timings.sort()
    p90 = timings[min(len(timings) - 1, int(round(0.9 * (len(timings) - 1))))]
    return statistics.median(timings), p90, len(timings), len(faces)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="time budget per frame size (default 4)")
    args = parser.parse_args()

    print("CenterFace (cv2.dnn) benchmark")
    print("  OpenCV %s, numpy %s, cv2 threads %d, CPUs %d" % (
        cv2.__version__, numpy.__version__, cv2.getNumThreads(), os.cpu_count() or 0))

    t0 = time.perf_counter()
    detector = CenterFaceDetector()
    print("  model load: %.0f ms (%s)" % ((time.perf_counter() - t0) * 1000.0, detector.model_path))
    print("  input width %d, score floor %.2f" % (detector.input_width, detector.score_floor))
    print()
    print("Speed (astronaut in a gray frame; %d warm-up calls, then >= 10 runs or %.0f s):" % (2, args.seconds))
    print("  %-10s %-10s %10s %10s %8s %6s %6s" % ("frame", "net input", "median ms", "p90 ms", "fps", "runs", "faces"))
    for width, height in ((1920, 1080), (1280, 720), (300, 300)):
        frame = astronaut_frame(width, height)
        median, p90, runs, faces = time_detector(detector, frame, args.seconds)
        print("  %-10s %-10s %10.1f %10.1f %8.1f %6d %6d" % (
            "%dx%d" % (width, height), "%dx%d" % detector.input_size(width, height),
            median, p90, 1000.0 / median, runs, faces))
    print()

    faces, non_faces = lfw_canvases()
    t0 = time.perf_counter()
    face_scores = [max([d.score for d in detector.detect(image)] or [0.0]) for image in faces]
    other_scores = [max([d.score for d in detector.detect(image)] or [0.0]) for image in non_faces]
    elapsed = time.perf_counter() - t0
    print("LFW-subset protocol (100 faces, 100 non-faces, 200x200 canvases; %.1f ms per image):" % (
        elapsed * 1000.0 / 200))
    print("  %-10s %8s %8s" % ("threshold", "recall", "FP rate"))
    for threshold in THRESHOLDS:
        recall = sum(score >= threshold for score in face_scores) / float(len(face_scores))
        false_positives = sum(score >= threshold for score in other_scores) / float(len(other_scores))
        print("  %-10.1f %8.2f %8.2f" % (threshold, recall, false_positives))


if __name__ == "__main__":
    main()
