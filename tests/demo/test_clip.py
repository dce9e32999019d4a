"""The demo clip: built offline from bundled images, deterministic, and telling the story the gate needs.

Faces must come and go (no-face frames, one face moving and growing, a second face at the same time, the
first face back elsewhere after a gap) and be findable by a real detector where the clip says they are.
"""

from __future__ import annotations

import numpy
import pytest

from deeplens_cli.simulator.clip import FRAME_NAME, build_clip


def _iou(a, b):
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def test_writes_one_numbered_jpeg_per_frame_at_the_requested_size(small_clip):
    import cv2

    names = sorted(p.name for p in small_clip.directory.iterdir())
    assert names == [FRAME_NAME.format(i) for i in range(small_clip.frame_count)]
    frame = cv2.imread(str(small_clip.frame_path(0)))
    assert frame.shape == (small_clip.size[1], small_clip.size[0], 3)
    assert len(small_clip.faces) == small_clip.frame_count


def test_is_deterministic_for_a_seed(tmp_path):
    first = build_clip(tmp_path / "a", frame_count=6, size=(320, 180), seed=3)
    second = build_clip(tmp_path / "b", frame_count=6, size=(320, 180), seed=3)
    other = build_clip(tmp_path / "c", frame_count=6, size=(320, 180), seed=4)
    assert [first.frame_path(i).read_bytes() for i in range(6)] == [second.frame_path(i).read_bytes() for i in range(6)]
    assert first.frame_path(0).read_bytes() != other.frame_path(0).read_bytes()


def test_the_story_empty_one_face_two_faces_gap_and_back(small_clip):
    counts = [len(boxes) for boxes in small_clip.faces]
    assert counts[0] == 0 and counts[-1] == 0, "starts and ends without a face"
    assert 2 in counts, "two people in view at once (two tracks)"
    first_face = counts.index(1)
    last_face = len(counts) - 1 - counts[::-1].index(1)
    gap = [i for i in range(first_face, last_face) if counts[i] == 0]
    assert gap, "a gap without faces between the first and the last appearance"
    before, after = small_clip.faces[gap[0] - 1][0], small_clip.faces[gap[-1] + 1][0]
    assert _iou(before, after) == 0, "the person comes back somewhere else"


def test_faces_move_and_grow_within_an_appearance(small_clip):
    boxes = [b[0] for b in small_clip.faces if len(b) >= 1][:8]
    widths = [b[2] - b[0] for b in boxes]
    assert boxes[0][0] != boxes[-1][0], "moves"
    assert widths[-1] > widths[0], "grows"
    for a, b in zip(boxes, boxes[1:], strict=False):
        assert _iou(a, b) > 0.5, "moves little from one frame to the next, so one track follows it"


def test_true_boxes_are_inside_the_frame(small_clip):
    width, height = small_clip.size
    for boxes in small_clip.faces:
        for x0, y0, x1, y1 in boxes:
            assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


@pytest.mark.parametrize("index_of", [lambda c: c.index(1), lambda c: c.index(2)])
def test_an_offline_detector_finds_the_faces_where_the_clip_says(small_clip, index_of):
    import cv2

    from edge_function.detectors import CenterFaceDetector

    counts = [len(boxes) for boxes in small_clip.faces]
    index = index_of(counts)
    frame = cv2.imread(str(small_clip.frame_path(index)))
    found = [d.box for d in CenterFaceDetector().detect(frame) if d.score >= 0.5]
    assert len(found) == counts[index]
    for truth in small_clip.faces[index]:
        assert max(_iou(truth, box) for box in found) > 0.4


def test_a_faceless_frame_has_no_detection(small_clip):
    import cv2

    from edge_function.detectors import CenterFaceDetector

    frame = cv2.imread(str(small_clip.frame_path(0)))
    assert [d for d in CenterFaceDetector().detect(frame) if d.score >= 0.5] == []
    assert frame.std() > 5, "the background is not a flat colour"
    assert not numpy.array_equal(frame, cv2.imread(str(small_clip.frame_path(small_clip.frame_count // 2))))


def test_rejects_an_empty_clip(tmp_path):
    with pytest.raises(ValueError):
        build_clip(tmp_path, frame_count=0)
