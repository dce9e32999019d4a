"""The motion gate: run the face detector only when something in the picture moved.

On a CPU board the detector is the loop's whole cost, and a door camera looks at an empty hallway for
hours. Comparing a small grey copy of each frame with a background costs well under a millisecond, so the
loop asks this module first and skips the detector on still frames.

How a frame is judged (all on a copy about ``ANALYSIS_WIDTH`` pixels wide):

1. **Grey, small, blurred.** The green channel, area-averaged down to the analysis width, then a 5x5 blur:
   most sensor noise is gone before any comparison is made.
2. **Brightness-compensated.** Auto-exposure and a dimming or flickering light change the whole picture at
   once. The frame is scaled so its mean brightness equals the background's before comparing, so a global
   change of light is no motion.
3. **Per-pixel noise allowance.** The background keeps, per pixel, a running mean and a running mean
   absolute deviation. A pixel moved when it differs from the mean by more than
   ``max(threshold, NOISE_FACTOR * deviation)``: a pixel that keeps changing by itself (a flickering lamp,
   leaves, a screen) earns a larger allowance, a quiet wall keeps the plain threshold.
4. **Regions.** Moved pixels are dilated so the parts of one person join, then grouped into connected
   regions; regions smaller than ``min_area`` (a fraction of the frame) are noise. The frame has motion when
   any region is left.
5. **Adaptation.** The background mean follows every frame slowly (``BACKGROUND_RATE``) and moved pixels
   even more slowly, so a person walking past does not burn in, while a moved chair becomes background within
   seconds. The deviation always learns at the full rate (see ``_adapt``).

A person who stops moving fades into the background, so a full detection runs at least every
``full_detection_interval_s`` whatever the motion says. On frames where nothing moved the loop keeps the
previous frame's detections: the picture is the same, so they still hold, and the tracker downstream does
not lose a still person between two full detections.

Only numpy and OpenCV are used, on the caller's thread (no thread of its own), Python 3.7 syntax.
"""

import collections
import time
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy

#: Width of the grey copy that is compared (pixels). A 40 px face at 1280x720 is 10 px here.
ANALYSIS_WIDTH = 320
#: Weight of the newest frame in the background's running mean and deviation.
BACKGROUND_RATE = 0.05
#: Moved pixels update the background at this fraction of ``BACKGROUND_RATE``.
MOVING_RATE_FACTOR = 0.1
#: A pixel moved when it is this many running deviations away from the background (and over the threshold).
NOISE_FACTOR = 4.0
#: Regions are padded by this fraction of their size on each side before detection: a moving body's face
#: may sit just outside the pixels that changed.
REGION_PADDING = 0.25
#: When the padded regions cover more than this fraction of the frame, one full detection is cheaper.
FULL_FRAME_AREA = 0.5

MODES = ("off", "on", "regions")

Box = Tuple[float, float, float, float]


class MotionConfig(collections.namedtuple("MotionConfig", "mode threshold min_area full_detection_interval_s")):
    """Motion gate parameters.

    ``mode``: ``off`` (detect on every frame), ``on`` (detect on the whole frame when something moved) or
    ``regions`` (detect only inside the regions that moved, boxes mapped back to frame pixels);
    ``threshold``: grey-level difference (0-255) that counts as change; ``min_area``: smallest moving region,
    as a fraction of the frame area; ``full_detection_interval_s``: longest time between two full-frame
    detections, so a person standing still is still seen.
    """

    __slots__ = ()


MotionConfig.__new__.__defaults__ = ("on", 25.0, 0.001, 5.0)


class MotionDecision(collections.namedtuple("MotionDecision", "detect full regions")):
    """What to do with one frame: ``detect`` False skips the detector; ``full`` True runs it on the whole
    frame; otherwise it runs only on ``regions``, boxes (x0, y0, x1, y1) in frame pixels."""

    __slots__ = ()


SKIP = MotionDecision(False, False, ())
FULL = MotionDecision(True, True, ())


def config_from_settings(settings: Any) -> MotionConfig:
    """The motion part of ``settings.Settings``."""
    mode = "off" if not settings.motion_gate else ("regions" if settings.motion_regions else "on")
    return MotionConfig(mode, settings.motion_threshold, settings.motion_min_area, settings.motion_full_detection_s)


class MotionDetector:
    """Judges frames one at a time against an adaptive background (see the module docstring)."""

    def __init__(self, threshold: float = 25.0, min_area: float = 0.001) -> None:
        if not 0.0 < threshold <= 255.0:
            raise ValueError("motion threshold must be in (0, 255], got %r" % (threshold,))
        if not 0.0 <= min_area < 1.0:
            raise ValueError("motion minimum area must be in [0, 1), got %r" % (min_area,))
        self.threshold = float(threshold)
        self.min_area = float(min_area)
        self._mean: Optional[numpy.ndarray] = None
        self._deviation: Optional[numpy.ndarray] = None
        self._frame_size: Tuple[int, int] = (0, 0)
        self._kernel: Any = None

    def reset(self) -> None:
        """Forget the background (a new source, a new frame size)."""
        self._mean = self._deviation = None

    def _grey(self, frame: numpy.ndarray) -> numpy.ndarray:
        """The small, blurred grey copy that is compared. The green channel stands for brightness (it carries
        most of the luminance) and every other pixel of it is read before area-averaging: converting and
        averaging the whole 720p frame cost 0.8 ms here, this 0.1 ms, which matters on frames the gate skips."""
        import cv2

        height, width = frame.shape[:2]
        scale = min(1.0, float(ANALYSIS_WIDTH) / width)
        small_size = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))
        channel = frame[:, :, 1] if frame.ndim == 3 else frame
        step = max(1, width // (2 * ANALYSIS_WIDTH))
        sampled = numpy.ascontiguousarray(channel[::step, ::step])
        if sampled.shape[1] != small_size[0] or sampled.shape[0] != small_size[1]:
            sampled = cv2.resize(sampled, small_size, interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(sampled.astype(numpy.float32), (5, 5), 0)

    def regions(self, frame: numpy.ndarray) -> List[Box]:
        """The regions of ``frame`` that moved, as boxes in frame pixels (empty: no motion).

        The first frame (and the first after a size change) only seeds the background and reports no motion;
        the caller's full detection covers it.
        """
        import cv2

        height, width = frame.shape[:2]
        grey = self._grey(frame)
        if self._mean is None or self._frame_size != (width, height):
            self._frame_size = (width, height)
            self._mean = grey
            self._deviation = numpy.zeros_like(grey)
            self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
            return []
        mean, deviation = self._mean, self._deviation
        grey = _match_light(grey, mean)
        difference = cv2.absdiff(grey, mean)
        allowance = numpy.maximum(deviation * NOISE_FACTOR, self.threshold)
        moved = (difference > allowance).astype(numpy.uint8)
        self._adapt(grey, difference, moved)
        if not moved.any():
            return []
        moved = cv2.dilate(moved, self._kernel, iterations=2)
        count, _labels, stats, _centroids = cv2.connectedComponentsWithStats(moved, connectivity=8)
        small_h, small_w = grey.shape[:2]
        min_pixels = self.min_area * small_w * small_h
        x_scale = float(width) / small_w
        y_scale = float(height) / small_h
        boxes = []
        for label in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[label])
            if area < max(1.0, min_pixels):
                continue
            boxes.append((x * x_scale, y * y_scale, (x + w) * x_scale, (y + h) * y_scale))
        return boxes

    def _adapt(self, grey: numpy.ndarray, difference: numpy.ndarray, moved: numpy.ndarray) -> None:
        """Move the background towards this frame: quickly where still, slowly where something moved."""
        rate = numpy.where(moved > 0, BACKGROUND_RATE * MOVING_RATE_FACTOR, BACKGROUND_RATE).astype(numpy.float32)
        self._mean += rate * (grey - self._mean)
        # The deviation always learns at the full rate, so a pixel that keeps changing by itself earns its larger
        # allowance within seconds; behind a passing person it rises briefly and decays as quickly.
        self._deviation += BACKGROUND_RATE * (difference - self._deviation)


def _match_light(grey: numpy.ndarray, background: numpy.ndarray) -> numpy.ndarray:
    """``grey`` mapped by the gain and offset that best fit it to ``background`` (least squares).

    Auto-exposure and lamps change every pixel together, roughly as ``new = gain * old + offset``; undoing the
    fitted change leaves only what changed locally. A person covering part of the frame pulls the fit a little,
    which the threshold absorbs. A flat background (no contrast to fit a gain on) gets the offset only.
    """
    grey_mean = float(grey.mean())
    background_mean = float(background.mean())
    centred_background = background - background_mean
    variance = float(numpy.mean(centred_background * centred_background))
    gain = 1.0
    if variance > 4.0:
        gain = float(numpy.mean(centred_background * (grey - grey_mean))) / variance
        gain = min(4.0, max(0.25, gain))
    return (grey - grey_mean) / gain + background_mean


def pad_regions(regions: Sequence[Box], frame_w: int, frame_h: int) -> List[Box]:
    """Regions grown by ``REGION_PADDING`` per side, clamped to the frame, overlapping ones merged."""
    padded = []
    for x0, y0, x1, y1 in regions:
        pad_x = (x1 - x0) * REGION_PADDING
        pad_y = (y1 - y0) * REGION_PADDING
        padded.append([max(0.0, x0 - pad_x), max(0.0, y0 - pad_y),
                       min(float(frame_w), x1 + pad_x), min(float(frame_h), y1 + pad_y)])
    merged = True
    while merged:
        merged = False
        for i in range(len(padded)):
            for j in range(i + 1, len(padded)):
                a, b = padded[i], padded[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    padded[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del padded[j]
                    merged = True
                    break
            if merged:
                break
    return [tuple(box) for box in padded]  # type: ignore


class MotionGate:
    """Decides, frame by frame, whether and where the detector runs; counts what it decided.

    ``counters``: ``frames_detected`` (the detector ran, on the frame or on regions), ``frames_skipped``
    (nothing moved), ``full_detections`` (the detector ran on the whole frame: first frame, motion in
    ``on`` mode, large regions or the periodic full detection).
    """

    def __init__(self, config: Optional[MotionConfig] = None, clock: Optional[Callable[[], float]] = None) -> None:
        self.config = config = config or MotionConfig()
        if config.mode not in MODES:
            raise ValueError("motion gate mode must be one of %s, got %r" % (", ".join(MODES), config.mode))
        if config.full_detection_interval_s <= 0:
            raise ValueError("full detection interval must be > 0 s, got %r" % (config.full_detection_interval_s,))
        self._clock = clock or time.monotonic
        self._motion = MotionDetector(config.threshold, config.min_area)
        self._last_full: Optional[float] = None
        self.counters = collections.OrderedDict(
            (name, 0) for name in ("frames_detected", "frames_skipped", "full_detections"))

    @property
    def enabled(self) -> bool:
        return self.config.mode != "off"

    def reset(self) -> None:
        """A new source: forget the background and detect fully on its first frame."""
        self._motion.reset()
        self._last_full = None

    def decide(self, frame: numpy.ndarray, now: Optional[float] = None) -> MotionDecision:
        """Whether to run the detector on ``frame``, and on what."""
        now = self._clock() if now is None else now
        if not self.enabled:
            return self._count(FULL, now)
        regions = self._motion.regions(frame)
        if self._last_full is None or now - self._last_full >= self.config.full_detection_interval_s:
            return self._count(FULL, now)
        if not regions:
            return self._count(SKIP, now)
        if self.config.mode == "on":
            return self._count(FULL, now)
        frame_h, frame_w = frame.shape[:2]
        padded = pad_regions(regions, frame_w, frame_h)
        covered = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in padded)
        if covered > FULL_FRAME_AREA * frame_w * frame_h:
            return self._count(FULL, now)
        return self._count(MotionDecision(True, False, tuple(padded)), now)

    def _count(self, decision: MotionDecision, now: float) -> MotionDecision:
        if not decision.detect:
            self.counters["frames_skipped"] += 1
            return decision
        self.counters["frames_detected"] += 1
        if decision.full:
            self.counters["full_detections"] += 1
            self._last_full = now
        return decision


def detect_in_regions(detector: Any, frame: numpy.ndarray, regions: Sequence[Box]) -> List[Any]:
    """Run ``detector`` on each region of ``frame``; its boxes shifted back to frame pixels."""
    found = []
    for x0, y0, x1, y1 in regions:
        left, top = int(x0), int(y0)
        crop = frame[top:int(numpy.ceil(y1)), left:int(numpy.ceil(x1))]
        if crop.shape[0] < 8 or crop.shape[1] < 8:
            continue
        for detection in detector.detect(crop):
            bx0, by0, bx1, by1 = detection.box
            found.append(detection._replace(box=(bx0 + left, by0 + top, bx1 + left, by1 + top)))
    found.sort(key=lambda d: d.score, reverse=True)
    return found


def outside_regions(detections: Sequence[Any], regions: Sequence[Box]) -> List[Any]:
    """The detections whose box centre lies in none of ``regions`` (still faces to carry over)."""
    kept = []
    for detection in detections:
        x0, y0, x1, y1 = detection.box
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        if not any(r[0] <= cx <= r[2] and r[1] <= cy <= r[3] for r in regions):
            kept.append(detection)
    return kept
