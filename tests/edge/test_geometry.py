"""geometry: model space -> frame space, crop rectangles, overlap, edges and sharpness."""

import math

import cv2
import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_function import geometry

frame_sizes = st.tuples(st.integers(1, 4000), st.integers(1, 4000))
coordinates = st.floats(-5000, 5000, allow_nan=False)


@st.composite
def boxes(draw, min_size=0.0):
    x0, y0 = draw(coordinates), draw(coordinates)
    w = draw(st.floats(min_size, 3000))
    h = draw(st.floats(min_size, 3000))
    return (x0, y0, x0 + w, y0 + h)


# -- scale_model_box ---------------------------------------------------------------------------


def test_ssd_box_scales_to_a_1080p_frame_by_frame_over_input_ratio():
    assert geometry.scale_model_box(100, 100, 200, 150, 1920, 1080, 300, 300) == pytest.approx(
        (640.0, 360.0, 1280.0, 540.0)
    )


def test_ssd_box_scales_to_the_858x480_project_stream():
    assert geometry.scale_model_box(150, 150, 300, 300, 858, 480, 300, 300) == pytest.approx(
        (429.0, 240.0, 858.0, 480.0)
    )


def test_x_is_not_offset_by_xmin_a_second_time():
    # The DeepLens sample computed xscale*xmin + xmin = 740 here.
    x0, _, _, _ = geometry.scale_model_box(100, 0, 110, 10, 1920, 1080, 300, 300)
    assert x0 == pytest.approx(640.0)


def test_y_scale_uses_float_division():
    # Python 2's 1080 / 300 == 3 would give 300 instead of 360.
    _, y0, _, _ = geometry.scale_model_box(0, 100, 10, 110, 1920, 1080, 300, 300)
    assert y0 == pytest.approx(360.0)


def test_zero_model_input_size_is_rejected():
    with pytest.raises(ValueError):
        geometry.scale_model_box(0, 0, 1, 1, 100, 100, 0, 300)


@given(frame_sizes, st.tuples(st.integers(1, 1000), st.integers(1, 1000)))
def test_the_whole_model_input_maps_to_the_whole_frame(frame, model_input):
    (fw, fh), (iw, ih) = frame, model_input
    assert geometry.scale_model_box(0, 0, iw, ih, fw, fh, iw, ih) == pytest.approx((0, 0, fw, fh))


@given(frame_sizes, st.floats(0, 300), st.floats(0, 300))
def test_scaling_keeps_relative_position_on_non_square_frames(frame, x, y):
    fw, fh = frame
    x0, y0, _, _ = geometry.scale_model_box(x, y, 300, 300, fw, fh, 300, 300)
    assert x0 / fw == pytest.approx(x / 300.0)
    assert y0 / fh == pytest.approx(y / 300.0)


# -- sizes, IoU, edges -------------------------------------------------------------------------


def test_box_size_and_min_side():
    assert geometry.box_size((10, 20, 50, 100)) == (40.0, 80.0)
    assert geometry.min_side((10, 20, 50, 100)) == 40.0


def test_reversed_box_has_zero_size():
    assert geometry.box_size((50, 50, 10, 10)) == (0.0, 0.0)
    assert geometry.min_side((50, 50, 10, 10)) == 0.0


def test_iou_of_identical_disjoint_and_half_shifted_boxes():
    a = (0, 0, 10, 10)
    assert geometry.iou(a, a) == pytest.approx(1.0)
    assert geometry.iou(a, (20, 20, 30, 30)) == 0.0
    # overlap 5x10 = 50, union 150
    assert geometry.iou(a, (5, 0, 15, 10)) == pytest.approx(1.0 / 3.0)


def test_iou_with_an_empty_box_is_zero():
    assert geometry.iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0
    assert geometry.iou((0, 0, 10, 10), (5, 5, 5, 5)) == 0.0


@given(boxes(), boxes())
def test_iou_is_symmetric_and_between_zero_and_one(a, b):
    value = geometry.iou(a, b)
    assert 0.0 <= value <= 1.0 + 1e-9
    assert value == pytest.approx(geometry.iou(b, a))


@pytest.mark.parametrize(
    "box, touches",
    [
        ((100, 100, 200, 200), False),
        ((1, 100, 200, 200), True),
        ((100, 2, 200, 200), True),
        ((100, 100, 639, 200), True),
        ((100, 100, 200, 478.5), True),
        ((3, 3, 637, 477), False),
    ],
)
def test_touches_edge_within_two_pixels_by_default(box, touches):
    assert geometry.touches_edge(box, 640, 480) is touches


def test_touches_edge_tolerance_is_configurable():
    assert geometry.touches_edge((8, 100, 200, 200), 640, 480, tolerance=10) is True
    assert geometry.touches_edge((8, 100, 200, 200), 640, 480, tolerance=0) is False


# -- clamp_box ---------------------------------------------------------------------------------


def test_clamp_box_clips_to_the_frame():
    assert geometry.clamp_box((-10, -5, 50, 700), 640, 480) == (0.0, 0.0, 50.0, 480.0)


def test_clamp_box_outside_the_frame_is_none():
    assert geometry.clamp_box((700, 10, 800, 50), 640, 480) is None
    assert geometry.clamp_box((10, 10, float("nan"), 50), 640, 480) is None


# -- crop_rect / crop --------------------------------------------------------------------------


def test_crop_rect_grows_each_side_by_the_margin():
    assert geometry.crop_rect((100, 100, 200, 150), 640, 480, margin=0.2) == (80, 90, 220, 160)


def test_crop_rect_without_margin_rounds_outwards():
    assert geometry.crop_rect((10.4, 20.6, 30.2, 40.5), 640, 480, margin=0.0) == (10, 20, 31, 41)


def test_crop_rect_is_clamped_at_the_frame_border():
    assert geometry.crop_rect((0, 0, 100, 100), 640, 480, margin=0.5) == (0, 0, 150, 150)
    assert geometry.crop_rect((600, 400, 640, 480), 640, 480, margin=0.5) == (580, 360, 640, 480)


@pytest.mark.parametrize(
    "box",
    [
        (700, 100, 800, 200),  # right of the frame
        (-300, -300, -100, -100),  # above-left of the frame
        (100, 100, 100, 200),  # zero width
        (200, 100, 100, 200),  # reversed
        (0, 0, float("inf"), 10),
        (float("nan"), 0, 10, 10),
    ],
)
def test_crop_rect_is_none_when_nothing_is_left(box):
    assert geometry.crop_rect(box, 640, 480) is None


def test_negative_margin_is_rejected():
    with pytest.raises(ValueError):
        geometry.crop_rect((10, 10, 20, 20), 640, 480, margin=-0.1)


@given(boxes(), frame_sizes, st.floats(0, 1))
def test_crop_rect_is_always_a_non_empty_rectangle_inside_the_frame(box, frame, margin):
    fw, fh = frame
    rect = geometry.crop_rect(box, fw, fh, margin)
    if rect is None:
        return
    x0, y0, x1, y1 = rect
    assert all(isinstance(v, int) for v in rect)
    assert 0 <= x0 < x1 <= fw
    assert 0 <= y0 < y1 <= fh


@given(boxes(min_size=1.0), frame_sizes, st.floats(0, 1))
def test_crop_rect_contains_the_visible_part_of_the_box(box, frame, margin):
    fw, fh = frame
    visible = geometry.clamp_box(box, fw, fh)
    rect = geometry.crop_rect(box, fw, fh, margin)
    if visible is None:
        return
    assert rect is not None
    assert rect[0] <= math.floor(visible[0]) and rect[1] <= math.floor(visible[1])
    assert rect[2] >= math.ceil(visible[2]) and rect[3] >= math.ceil(visible[3])


def test_crop_is_a_copy_of_the_rectangle():
    frame = numpy.arange(480 * 640 * 3, dtype=numpy.uint32).reshape(480, 640, 3)
    piece = geometry.crop(frame, (10, 20, 110, 70))
    assert piece.shape == (50, 100, 3)
    assert (piece == frame[20:70, 10:110]).all()
    piece[:] = 0
    assert frame[20, 10, 0] != 0


# -- sharpness ---------------------------------------------------------------------------------


def _checkerboard(size=128, cell=8):
    yy, xx = numpy.indices((size, size))
    return (((yy // cell + xx // cell) % 2) * 255).astype(numpy.uint8)


def test_sharp_image_scores_higher_than_the_same_image_blurred():
    sharp = cv2.cvtColor(_checkerboard(), cv2.COLOR_GRAY2BGR)
    blurred = cv2.GaussianBlur(sharp, (9, 9), 3)
    assert geometry.sharpness(sharp) > 5 * geometry.sharpness(blurred) > 0


def test_sharpness_of_a_flat_or_empty_image_is_zero():
    assert geometry.sharpness(numpy.full((50, 50, 3), 127, numpy.uint8)) == 0.0
    assert geometry.sharpness(numpy.zeros((0, 0, 3), numpy.uint8)) == 0.0


def test_sharpness_accepts_gray_and_bgr_alike():
    gray = _checkerboard()
    assert geometry.sharpness(gray) == pytest.approx(geometry.sharpness(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)))
