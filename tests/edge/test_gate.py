"""gate.py: one crop per person, the best one, within cooldown and the per-minute cap."""

import random

import numpy
import pytest

from edge_function import gate
from edge_function.detectors import Detection
from tests.support.clock import FakeClock

FACE = (800.0, 400.0, 960.0, 600.0)        # 160x200 px, well inside a 1920x1080 frame
OTHER_FACE = (200.0, 300.0, 330.0, 470.0)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def frame(make_frame):
    return make_frame(boxes=[FACE, OTHER_FACE])


def make_gate(clock, **overrides):
    return gate.FaceGate(gate.GateConfig(**overrides), clock=clock, wall_clock=lambda: clock.now + 1.7e9)


def face(box, score=0.9):
    return Detection("face", score, box)


def play(face_gate, clock, frame, detections_per_frame, fps=10.0):
    """Feed frames at ``fps``; returns [(time, crop)] for every crop the gate released."""
    released = []
    for detections in detections_per_frame:
        for crop in face_gate.process(frame, detections):
            released.append((clock.now, crop))
        clock.now += 1.0 / fps
    return released


def test_one_person_standing_in_view_gives_one_upload(clock, frame):
    face_gate = make_gate(clock, best_face_timeout_s=4.0)
    released = play(face_gate, clock, frame, [[face(FACE)]] * 600)  # one minute at 10 fps
    assert len(released) == 1
    when, crop = released[0]
    assert when - 1000.0 == pytest.approx(4.0, abs=0.11)  # the best-face timeout, not the end of the minute
    assert face_gate.flush() == []  # and nothing more owed at shutdown


def test_a_short_visit_is_sent_when_the_track_ends(clock, frame):
    face_gate = make_gate(clock, best_face_timeout_s=4.0, track_lost_s=1.0)
    released = play(face_gate, clock, frame, [[face(FACE)]] * 20 + [[]] * 20)
    assert len(released) == 1
    when, _ = released[0]
    assert 1002.8 < when <= 1003.05  # last seen at t=1.9 s, then unseen for more than 1 s


def test_two_people_give_two_uploads(clock, frame):
    face_gate = make_gate(clock)
    released = play(face_gate, clock, frame, [[face(FACE), face(OTHER_FACE)]] * 100)
    assert len(released) == 2
    assert {crop.track_id for _, crop in released} == {1, 2}
    assert {crop.detection.box for _, crop in released} == {FACE, OTHER_FACE}


def test_a_walking_person_stays_one_track(clock, frame):
    face_gate = make_gate(clock)
    walk = [[face((100.0 + 8 * i, 400.0, 260.0 + 8 * i, 600.0))] for i in range(150)]
    assert len(play(face_gate, clock, frame, walk)) == 1
    assert face_gate.counters["tracks"] == 1


def test_best_crop_prefers_off_edge_then_larger_then_higher_score(clock, make_frame):
    frames = [make_frame(seed=i) for i in range(5)]
    edge_big = (0.0, 300.0, 300.0, 700.0)            # touches the left border
    inside = (10.0, 310.0, 250.0, 650.0)               # smaller but fully visible
    inside_larger = (10.0, 300.0, 270.0, 680.0)        # > 10 % more area
    inside_slightly_larger = (10.0, 300.0, 275.0, 685.0)  # < 10 % more area, only +0.03 score
    inside_surer = (10.0, 300.0, 272.0, 682.0)         # similar area, +0.08 score
    sequence = [
        face(edge_big, 0.99), face(inside, 0.8), face(inside_larger, 0.8),
        face(inside_slightly_larger, 0.83), face(inside_surer, 0.88),
    ]
    face_gate = make_gate(clock, best_face_timeout_s=60.0)
    for frame, detection in zip(frames, sequence, strict=True):
        assert face_gate.process(frame, [detection]) == []
        clock.now += 0.1
    (crop,) = face_gate.flush()
    assert crop.detection.box == inside_surer
    x0, y0, x1, y1 = crop.rect
    assert numpy.array_equal(crop.image, frames[4][y0:y1, x0:x1])  # cut from the frame it was seen in
    assert crop.frame_size == (1920, 1080)
    assert crop.captured_at == pytest.approx(1000.4 + 1.7e9)


def test_a_sharper_crop_wins_a_tie_and_a_blurrier_one_does_not(clock, make_frame):
    import cv2

    sharp = make_frame(boxes=[FACE], seed=1)
    blurred = cv2.GaussianBlur(sharp, (15, 15), 5)
    for order, expected in (((blurred, sharp), sharp), ((sharp, blurred), sharp)):
        face_gate = make_gate(clock, best_face_timeout_s=60.0)
        for frame in order:
            face_gate.process(frame, [face(FACE)])
            clock.now += 0.1
        (crop,) = face_gate.flush()
        x0, y0, x1, y1 = crop.rect
        assert numpy.array_equal(crop.image, expected[y0:y1, x0:x1])


def test_crop_is_a_copy_that_later_drawing_cannot_change(clock, frame):
    face_gate = make_gate(clock)
    face_gate.process(frame, [face(FACE)])
    frame[:] = 255  # e.g. a preview drawing on the caller's frame afterwards
    (crop,) = face_gate.flush()
    assert crop.image.max() < 255


def test_threshold_and_minimum_size(clock, frame):
    face_gate = make_gate(clock, threshold=0.6)
    tiny = (1000.0, 100.0, 1038.0, 140.0)  # 38 px: under 40 px at 1080p
    released = play(face_gate, clock, frame, [[face(FACE, 0.55), face(tiny, 0.95)]] * 20 + [[]] * 20)
    assert released == []
    assert face_gate.counters["below_threshold"] == 20
    assert face_gate.counters["too_small"] == 20


@pytest.mark.parametrize("height, side, sent", [(720, 28, True), (720, 25, False), (1080, 41, True), (1080, 38, False)])
def test_automatic_minimum_face_size_scales_with_frame_height(clock, make_frame, height, side, sent):
    small_frame = make_frame(width=height * 16 // 9, height=height)
    face_gate = make_gate(clock)
    box = (300.0, 200.0, 300.0 + side, 200.0 + side)
    face_gate.process(small_frame, [face(box)])
    assert bool(face_gate.flush()) is sent


def test_explicit_minimum_face_size(clock, frame):
    face_gate = make_gate(clock, min_face_px=250)
    face_gate.process(frame, [face(FACE)])  # 160 px
    assert face_gate.flush() == []


def test_cooldown_spaces_the_uploads_of_a_long_track(clock, frame):
    face_gate = make_gate(clock, max_uploads_per_track=3, best_face_timeout_s=1.0, cooldown_s=5.0)
    released = play(face_gate, clock, frame, [[face(FACE)]] * 300)  # 30 s
    times = [when for when, _ in released]
    assert len(times) == 3
    assert all(later - earlier >= 5.0 - 1e-9 for earlier, later in zip(times, times[1:], strict=False))
    assert {crop.track_id for _, crop in released} == {1}


def test_a_face_reappearing_where_it_was_lost_within_the_cooldown_is_the_same_track(clock, frame):
    face_gate = make_gate(clock, best_face_timeout_s=1.0, track_lost_s=0.5, cooldown_s=10.0)
    # seen 2 s, gone 3 s (detector misses, person turns away), back 2 s: still one upload
    released = play(face_gate, clock, frame, [[face(FACE)]] * 20 + [[]] * 30 + [[face(FACE)]] * 20)
    assert len(released) == 1
    # after the cooldown the same place is a new person
    released += play(face_gate, clock, frame, [[]] * 100 + [[face(FACE)]] * 20)
    assert len(released) == 2
    assert released[0][1].track_id != released[1][1].track_id


def test_per_minute_cap_holds_across_many_people(clock, frame):
    face_gate = make_gate(clock, max_uploads_per_minute=5, track_lost_s=0.2)
    visits = []
    for person in range(30):  # 30 different people, one every 2 s, each in a different place
        x, y = 50.0 + 180 * (person % 10), 50.0 + 300 * (person // 10)
        visits += [[face((x, y, x + 120, y + 150))]] * 5 + [[]] * 15
    released = play(face_gate, clock, frame, visits)
    assert len(released) == 5
    assert face_gate.counters["rate_limited"] == 25


def test_a_live_track_waits_for_the_cap_instead_of_losing_its_crop(clock, frame):
    face_gate = make_gate(clock, max_uploads_per_minute=1, best_face_timeout_s=1.0)
    released = play(face_gate, clock, frame, [[face(FACE), face(OTHER_FACE)]] * 700)  # 70 s
    assert len(released) == 2
    first, second = [when for when, _ in released]
    assert second - first >= 60.0


def test_send_window_never_exceeds_the_cap_in_any_minute():
    rng = random.Random(4)
    window = gate.SendWindow(per_minute=7)
    now, sent = 0.0, []
    for _ in range(5000):
        now += rng.expovariate(1.0)
        if window.try_take(now):
            sent.append(now)
    assert len(sent) > 7 * 50  # it does let traffic through
    for index in range(len(sent) - 7):
        assert sent[index + 7] - sent[index] >= 60.0


def test_flush_sends_live_tracks_best_crop_once(clock, frame):
    face_gate = make_gate(clock)
    play(face_gate, clock, frame, [[face(FACE), face(OTHER_FACE)]] * 10)
    assert len(face_gate.flush()) == 2
    assert face_gate.flush() == []
    assert face_gate.live_tracks == 0


def test_gate_config_comes_from_settings():
    from edge_function import settings

    config = settings.load_settings({"DEEPLENS_BUCKET": "deeplens-x", "DEEPLENS_COOLDOWN_S": "3"})
    gate_config = gate.gate_config_from_settings(config)
    assert gate_config.cooldown_s == 3.0
    assert gate_config.threshold == 0.6
    assert gate_config.min_face_px is None


def test_the_gate_exposes_the_detections_it_kept_for_the_frame(clock, frame):
    face_gate = make_gate(clock, threshold=0.6)
    assert face_gate.kept == []
    strong, weak = face(FACE, 0.9), face(OTHER_FACE, 0.59)
    face_gate.process(frame, [strong, weak])
    assert face_gate.kept == [strong]
    face_gate.process(frame, [])
    assert face_gate.kept == []


def test_gate_defaults_are_the_settings_defaults():
    from edge_function import settings

    config = settings.load_settings({"DEEPLENS_BUCKET": "face-crops", "DEEPLENS_DETECTOR": "centerface"})
    assert gate.GateConfig() == gate.gate_config_from_settings(config)
