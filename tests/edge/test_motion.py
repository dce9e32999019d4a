"""motion.py: the motion gate runs the detector only on frames (and regions) where something moved."""

import numpy
import pytest

from edge_function import motion
from edge_function.detectors import Detection

WIDTH, HEIGHT = 640, 360  # analysed at 320 px wide, like a 1280x720 frame


def room(seed=0):
    """A textured, static 'empty room' (BGR), like a real scene with edges and flat walls."""
    rng = numpy.random.default_rng(seed)
    base = rng.integers(40, 200, size=(HEIGHT // 20, WIDTH // 20), dtype=numpy.uint8)
    import cv2

    scene = cv2.resize(base, (WIDTH, HEIGHT), interpolation=cv2.INTER_NEAREST)
    scene = cv2.GaussianBlur(scene, (9, 9), 0)
    return numpy.dstack([scene, scene, scene])


_NOISE = [numpy.random.default_rng(seed).normal(0.0, 6.0, (HEIGHT, WIDTH, 3)).astype(numpy.float32)
          for seed in range(8)]


def noisy(frame, rng):
    """``frame`` plus fresh-looking sensor noise (sigma 6 grey levels; a shifted pick of 8 noise fields)."""
    noise = numpy.roll(_NOISE[int(rng.integers(8))], int(rng.integers(WIDTH)), axis=1)
    return numpy.clip(frame.astype(numpy.float32) + noise, 0, 255).astype(numpy.uint8)


def feed(detector, frames):
    return [detector.regions(frame) for frame in frames]


def test_static_scene_with_camera_noise_has_no_motion():
    rng = numpy.random.default_rng(1)
    scene = room()
    detector = motion.MotionDetector()
    results = feed(detector, [noisy(scene, rng) for _ in range(60)])
    assert results == [[] for _ in range(60)]


def test_moving_patch_is_motion_and_its_region_is_where_the_patch_is():
    rng = numpy.random.default_rng(2)
    scene = room()
    detector = motion.MotionDetector()
    feed(detector, [noisy(scene, rng) for _ in range(10)])
    for step in range(5):
        frame = noisy(scene, rng)
        x0 = 150 + step * 20
        frame[100:200, x0:x0 + 60] = (250, 250, 250)
        regions = detector.regions(frame)
        assert len(regions) == 1
        rx0, ry0, rx1, ry1 = regions[0]
        # The region covers the patch (and, after the first step, the place it just left), and not much else.
        assert rx0 <= x0 + 4 and rx1 >= x0 + 60 - 4 and ry0 <= 104 and ry1 >= 196
        assert rx0 >= x0 - 40 and rx1 <= x0 + 60 + 20 and ry0 >= 85 and ry1 <= 215


@pytest.mark.parametrize("kind", ["brightening", "dimming_with_offset", "flicker"])
def test_global_lighting_changes_are_no_motion(kind):
    rng = numpy.random.default_rng(3)
    scene = room().astype(numpy.float32)
    detector = motion.MotionDetector()
    frames = []
    for i in range(60):
        if kind == "brightening":  # auto-exposure ramping up by 60 %
            lit = scene * (1.0 + 0.01 * i)
        elif kind == "dimming_with_offset":  # a lamp going down, plus a sensor black level shift
            lit = scene * (1.0 - 0.008 * i) + 0.5 * i
        else:  # mains flicker: +-12 % every other frame
            lit = scene * (1.12 if i % 2 else 0.88)
        frames.append(noisy(numpy.clip(lit, 0, 255).astype(numpy.uint8), rng))
    assert feed(detector, frames) == [[] for _ in range(60)]


def test_a_region_that_flickers_by_itself_stops_being_motion():
    """A blinking lamp or a screen: the per-pixel allowance grows where the picture keeps changing."""
    rng = numpy.random.default_rng(4)
    scene = room()
    detector = motion.MotionDetector()
    results = []
    for i in range(200):
        frame = noisy(scene, rng)
        frame[25:55, 25:55] = 60 if i % 2 else 120
        results.append(detector.regions(frame))
    assert any(results[:20])
    assert results[-50:] == [[] for _ in range(50)]


def test_small_regions_under_min_area_are_noise():
    scene = room()
    detector = motion.MotionDetector(min_area=0.01)
    detector.regions(scene)
    frame = scene.copy()
    frame[50:70, 50:70] = 255  # 0.17 % of the frame
    assert detector.regions(frame) == []


def test_settings_are_validated():
    with pytest.raises(ValueError):
        motion.MotionDetector(threshold=0)
    with pytest.raises(ValueError):
        motion.MotionGate(motion.MotionConfig(mode="sometimes"))
    with pytest.raises(ValueError):
        motion.MotionGate(motion.MotionConfig(full_detection_interval_s=0))


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_gate_skips_still_frames_and_runs_full_detection_periodically():
    clock = Clock()
    gate = motion.MotionGate(motion.MotionConfig(mode="on", full_detection_interval_s=2.0), clock)
    scene = room()
    decisions = []
    for _ in range(40):  # 5 s at 8 fps
        decisions.append(gate.decide(scene))
        clock.now += 0.125
    full_at = [i for i, d in enumerate(decisions) if d.detect]
    assert full_at == [0, 16, 32]
    assert all(decisions[i].full for i in full_at)
    assert gate.counters == {"frames_detected": 3, "frames_skipped": 37, "full_detections": 3}


def test_gate_off_detects_every_frame():
    gate = motion.MotionGate(motion.MotionConfig(mode="off"), Clock())
    scene = room()
    assert all(gate.decide(scene).full for _ in range(5))
    assert gate.counters["frames_skipped"] == 0


def test_gate_in_regions_mode_gives_padded_regions_in_frame_pixels():
    clock = Clock()
    gate = motion.MotionGate(motion.MotionConfig(mode="regions"), clock)
    scene = room()
    assert gate.decide(scene).full  # first frame: full detection
    clock.now += 0.1
    frame = scene.copy()
    frame[150:200, 300:350] = 255
    decision = gate.decide(frame)
    assert decision.detect and not decision.full and len(decision.regions) == 1
    x0, y0, x1, y1 = decision.regions[0]
    assert x0 < 300 < 350 < x1 and y0 < 150 < 200 < y1
    assert x1 - x0 < 150 and y1 - y0 < 150


def test_huge_motion_in_regions_mode_becomes_one_full_detection():
    clock = Clock()
    gate = motion.MotionGate(motion.MotionConfig(mode="regions"), clock)
    scene = room()
    gate.decide(scene)
    clock.now += 0.1
    frame = scene.copy()
    frame[:, : WIDTH * 3 // 4] = 255 - frame[:, : WIDTH * 3 // 4]
    assert gate.decide(frame).full


class OffsetDetector:
    """Finds one face at a fixed place of whatever image it is given, and records the image sizes."""

    def __init__(self):
        self.shapes = []

    def detect(self, image):
        self.shapes.append(image.shape[:2])
        return [Detection("face", 0.9, (10.0, 20.0, 50.0, 70.0))]


def test_region_detections_are_mapped_back_to_frame_pixels():
    detector = OffsetDetector()
    frame = numpy.zeros((HEIGHT, WIDTH, 3), numpy.uint8)
    found = motion.detect_in_regions(detector, frame, [(100.0, 50.0, 400.0, 350.0)])
    assert detector.shapes == [(300, 300)]
    assert [d.box for d in found] == [(110.0, 70.0, 150.0, 120.0)]


def test_outside_regions_keeps_faces_away_from_motion():
    still = Detection("face", 0.8, (0.0, 0.0, 40.0, 40.0))
    moving = Detection("face", 0.8, (500.0, 500.0, 540.0, 540.0))
    assert motion.outside_regions([still, moving], [(480.0, 480.0, 600.0, 600.0)]) == [still]
