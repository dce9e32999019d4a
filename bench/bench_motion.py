"""What a quiet hour costs: CPU of the edge loop with the motion gate on/off, for CenterFace and YuNet.

Run from the repository root:  python bench/bench_motion.py [--seconds 120] [--fps 10] [--regions]

The clip is mostly an empty room with people passing, built at run time like the demo clip
(deeplens_cli/simulator/clip.py: the room and the two portraits that ship with scikit-image), plus sensor noise
and a slow auto-exposure drift so the motion gate has something real to ignore. Timeline (seconds of a 120 s clip,
scaled to --seconds): person A walks across the room in 10-13.5, person B in 40-43, A and B together in 70-74,
A comes in at 100, stands still from 101.5 to 106.5 and leaves by 108. 13 % of the frames have someone in them.

Each combination runs the real ``EdgeLoop`` (motion gate -> detector -> face gate -> JPEG crops) frame by frame
on a simulated clock (one frame period per frame, as if the camera ran in real time), with a counting
uploader instead of S3. CPU time is ``time.process_time`` of the whole process (all threads, OpenCV's included)
minus the time spent rendering the frames. Printed per combination:

* CPU seconds per minute of video, and the share of it with the gate on against the gate off (goal <= 1/5);
* detector calls and CPU ms per detected frame (goal: YuNet <= 1/2 of CenterFace);
* crops uploaded and which people they show (goal: the same people with the gate on as off).

No assertions: figures vary with the machine and its load; compare runs on the same machine.
"""

import argparse
import os
import sys
import tempfile
import time

import cv2
import numpy

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from deeplens_cli.simulator import clip as demo_clip  # noqa: E402
from edge_function import detector_choice, detectors, gate, geometry, loop, settings  # noqa: E402

SIZE = (1280, 720)
CLIP_SECONDS = 120.0
#: (person, portrait, start s, end s, enter placement, leave placement, still from s, still until s) on the
#: 120 s timeline; a placement is (centre x, centre y, scale) as in clip.py.
PASSES = (
    ("A", "astronaut", 10.0, 13.5, (0.08, 0.55, 1.0), (0.92, 0.50, 1.1), None, None),
    ("B", "cameraman", 40.0, 43.0, (0.88, 0.45, 1.6), (0.12, 0.45, 1.7), None, None),
    ("A", "astronaut", 70.0, 74.0, (0.10, 0.50, 1.1), (0.70, 0.52, 1.2), None, None),
    ("B", "cameraman", 70.5, 74.0, (0.92, 0.42, 1.8), (0.45, 0.40, 1.9), None, None),
    ("A", "astronaut", 100.0, 108.0, (0.05, 0.50, 1.2), (0.95, 0.50, 1.2), 101.5, 106.5),
)


class RenderedClip:
    """A frame source that renders the clip frame by frame (never all of it in memory) and keeps the CPU time
    spent rendering, so it can be taken out of the loop's figure."""

    name = "bench-clip"

    def __init__(self, seconds, fps, clock):
        self.total = int(round(seconds * fps))
        self.fps = fps
        self.scale = seconds / CLIP_SECONDS
        self.clock = clock
        self.index = 0
        self.exhausted = False
        self.render_cpu = 0.0
        self.true_boxes = []  # per frame: [(person, box)]
        self._room = demo_clip._room(SIZE[0], SIZE[1], seed=7)
        self._portraits = {name: (p, p.load()) for name, p in demo_clip.PORTRAITS.items()}
        rng = numpy.random.default_rng(3)
        self._noise = [rng.normal(0.0, 3.0, (SIZE[1], SIZE[0], 3)).astype(numpy.float32) for _ in range(4)]

    def _placement(self, t, start, end, enter, leave, still_from, still_until):
        if still_from is not None:
            moving = (still_from - start) + (end - still_until)
            if t < still_from:
                walked = t - start
            elif t < still_until:
                walked = still_from - start
            else:
                walked = (still_from - start) + (t - still_until)
            progress = walked / moving
        else:
            progress = (t - start) / (end - start)
        return tuple(a + (b - a) * progress for a, b in zip(enter, leave, strict=True))

    def read(self):
        if self.index >= self.total:
            self.exhausted = True
            return False, None
        started = time.process_time()
        t = self.index / self.fps / self.scale  # seconds on the 120 s timeline
        exposure = 1.0 + 0.05 * numpy.sin(2 * numpy.pi * t / 60.0)  # slow auto-exposure drift
        frame = self._room.copy()
        boxes = []
        for person, portrait_name, start, end, enter, leave, still_from, still_until in PASSES:
            if not start <= t <= end:
                continue
            portrait, image = self._portraits[portrait_name]
            placement = self._placement(t, start, end, enter, leave,
                                        still_from, still_until)
            box = demo_clip._paste(frame, image, portrait.face, placement)
            if box is not None:
                boxes.append((person, box))
        noisy = frame.astype(numpy.float32) * exposure + self._noise[self.index % len(self._noise)]
        frame = numpy.clip(noisy, 0, 255).astype(numpy.uint8)
        self.true_boxes.append(boxes)
        self.index += 1
        self.clock.now += 1.0 / self.fps
        self.render_cpu += time.process_time() - started
        return True, frame

    def close(self):
        pass


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class CountingUploader:
    """Takes the crops instead of S3; remembers each one's box and the frame it was submitted at."""

    def __init__(self, source):
        self.source = source
        self.items = []

    def submit(self, item):
        box = tuple(float(v) for v in item.metadata["box"].split(","))
        self.items.append((self.source.index - 1, box))

    def stats(self):
        return {"captured": len(self.items)}

    def close(self, deadline_s):
        return True


class NullPublisher:
    def publish(self, topic, message):
        return True

    def close(self):
        pass


class TimedDetector:
    """The real detector, with its call count and CPU time."""

    def __init__(self, detector):
        self.detector = detector
        self.name = detector.name
        self.calls = 0
        self.cpu = 0.0

    def detect(self, image):
        started = time.process_time()
        try:
            return self.detector.detect(image)
        finally:
            self.calls += 1
            self.cpu += time.process_time() - started


def person_of(source, frame_index, box):
    """Which person a crop shows: the one whose true box overlapped it most in the last few seconds."""
    best, best_iou = None, 0.3
    first = max(0, frame_index - int(6 * source.fps))
    for boxes in source.true_boxes[first:frame_index + 1]:
        for person, true_box in boxes:
            overlap = geometry.iou(box, true_box)
            if overlap > best_iou:
                best, best_iou = person, overlap
    return best or "?"


def run(kind, gate_on, seconds, fps, spool_dir, regions=False):
    clock = Clock()
    config = settings.load_settings({
        "DEEPLENS_BUCKET": "bench-bucket", "DEEPLENS_DETECTOR": kind, "DEEPLENS_SPOOL_DIR": spool_dir,
        "DEEPLENS_MOTION_GATE": "on" if gate_on else "off", "DEEPLENS_MOTION_REGIONS": "on" if regions else "off",
        "AWS_IOT_THING_NAME": "bench",
    })
    source = RenderedClip(seconds, fps, clock)
    detector = TimedDetector(detectors.make_detector(kind))
    uploader = CountingUploader(source)
    face_gate = gate.FaceGate(gate.gate_config_from_settings(config), clock=clock, wall_clock=clock)
    edge = loop.EdgeLoop(config, uploader, NullPublisher(), face_gate=face_gate, clock=clock,
                         open_source=lambda: source, open_detector=lambda: detector)

    class Stop:
        def is_set(self):
            return False

    started = time.process_time()
    edge.run_once(Stop())
    edge.finish(1.0)
    cpu = time.process_time() - started - source.render_cpu
    people = [person_of(source, index, box) for index, box in uploader.items]
    frames_with_people = sum(1 for boxes in source.true_boxes if boxes)
    return {
        "cpu_per_min": cpu * 60.0 / seconds, "calls": detector.calls, "frames": source.total,
        "detector_ms_per_call": 1000.0 * detector.cpu / max(1, detector.calls), "crops": len(uploader.items),
        "people": "".join(sorted(set(people))), "crop_people": ",".join(people), "threshold": config.threshold,
        "busy": frames_with_people / float(source.total), "skipped": edge.motion.counters["frames_skipped"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=CLIP_SECONDS, help="clip length in seconds (default 120)")
    parser.add_argument("--fps", type=float, default=10.0, help="frames per second (default 10)")
    parser.add_argument("--regions", action="store_true", help="also run the gate in regions mode")
    args = parser.parse_args()

    kinds = ["centerface"]
    choice = detector_choice.choose_cpu_detector()
    if choice.kind == "yunet":
        kinds.append("yunet")
    else:
        print("YuNet not measured: %s" % choice.reason)
    print("Motion gate benchmark: %.0f s at %.0f fps, %dx%d, OpenCV %s, %d CPUs, cv2 threads %d" % (
        args.seconds, args.fps, SIZE[0], SIZE[1], cv2.__version__, os.cpu_count() or 0, cv2.getNumThreads()))
    modes = [("off", False, False), ("on", True, False)]
    if args.regions:
        modes.append(("regions", True, True))
    results = {}
    with tempfile.TemporaryDirectory() as spool_dir:
        for kind in kinds:
            for label, gate_on, regions in modes:
                results[kind, label] = run(kind, gate_on, args.seconds, args.fps, spool_dir, regions)
    first = next(iter(results.values()))
    print("frames with a person in view: %.0f %%" % (100.0 * first["busy"]))
    print()
    header = ("detector", "gate", "thr", "CPU s/min", "vs off", "det calls", "skipped", "ms/det call",
              "crops", "people", "crops show")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for (kind, label), r in results.items():
        off = results[kind, "off"]["cpu_per_min"]
        print("| %s | %s | %.2f | %.1f | %.2f | %d/%d | %d | %.1f | %d | %s | %s |" % (
            kind, label, r["threshold"], r["cpu_per_min"], r["cpu_per_min"] / off if off else 0.0, r["calls"],
            r["frames"], r["skipped"], r["detector_ms_per_call"], r["crops"], r["people"], r["crop_people"]))
    if ("yunet", "off") in results:
        ratio = results["yunet", "off"]["detector_ms_per_call"] / results["centerface", "off"]["detector_ms_per_call"]
        print()
        print("YuNet / CenterFace CPU per detected frame (gate off, same frames): %.2f" % ratio)


if __name__ == "__main__":
    main()
