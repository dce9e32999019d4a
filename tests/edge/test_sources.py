"""sources: every --source kind yields BGR frames, fails one frame at a time, and opens with clear errors."""

import sys

import cv2
import numpy
import pytest

from edge_function.sources import open_source

try:  # tests/ importable as a package (rootdir on sys.path) or as plain directories (pytest "prepend")
    from tests.edge.fakes import FakeAwscam
except ImportError:
    from fakes import FakeAwscam


def _solid(value, shape=(48, 64, 3)):
    return numpy.full(shape, value, numpy.uint8)


def _write_video(path, values, size=(64, 48)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    assert writer.isOpened()
    for value in values:
        writer.write(_solid(value, (size[1], size[0], 3)))
    writer.release()


def _one_line_refusal(spec):
    """open_source's ValueError message for `spec`, checked to be one line (the CLI shows it as the cause)."""
    with pytest.raises(ValueError) as error:
        open_source(spec)
    message = str(error.value)
    assert "\n" not in message, message
    return message


def _read_all(source, limit=100):
    results = []
    while not source.exhausted and len(results) < limit:
        results.append(source.read())
    return results


# -- awscam ------------------------------------------------------------------------------------


def test_awscam_returns_the_camera_frames_whatever_their_size():
    awscam = FakeAwscam(frames=[_solid(10, (1080, 1920, 3)), _solid(20, (480, 858, 3))])
    source = open_source("awscam", awscam_module=awscam)
    ok1, first = source.read()
    ok2, second = source.read()
    assert ok1 and first.shape == (1080, 1920, 3)
    assert ok2 and second.shape == (480, 858, 3) and second[0, 0, 0] == 20
    assert source.name == "awscam" and not source.exhausted


def test_awscam_failed_grab_is_a_failed_read_not_an_error():
    source = open_source("awscam", awscam_module=FakeAwscam(frames=[None, _solid(5)]))
    assert source.read() == (False, None)
    assert source.read()[0] is True


def test_awscam_device_exception_is_a_failed_read():
    source = open_source("awscam", awscam_module=FakeAwscam(raise_on_grab=OSError("camera busy")))
    assert source.read() == (False, None)
    assert not source.exhausted


class _OddAwscam(object):
    """getLastFrame variants the documented API does not rule out."""

    def __init__(self, result):
        self.result = result

    def getLastFrame(self):  # noqa: N802 - device API name
        return self.result


@pytest.mark.parametrize("result", [(True, None), (False, _solid(1)), (True, numpy.zeros((0, 0, 3), numpy.uint8))])
def test_awscam_ok_without_a_usable_frame_is_a_failed_read(result):
    assert open_source("awscam", awscam_module=_OddAwscam(result)).read() == (False, None)


def test_awscam_gray_frame_is_converted_to_bgr():
    ok, frame = open_source("awscam", awscam_module=_OddAwscam((True, _solid(9, (48, 64))))).read()
    assert ok and frame.shape == (48, 64, 3)


def test_awscam_not_importable_is_a_value_error_with_a_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "awscam", None)
    with pytest.raises(ValueError, match="awscam.*webcam:N"):
        open_source("awscam")


def test_closed_awscam_source_reads_nothing():
    source = open_source("awscam", awscam_module=FakeAwscam(frames=[_solid(1)]))
    source.close()
    assert source.read() == (False, None)


# -- video file --------------------------------------------------------------------------------


def test_video_yields_every_frame_then_is_exhausted(tmp_path):
    path = tmp_path / "clip.avi"
    _write_video(path, [0, 60, 120, 180, 240])
    source = open_source(str(path))
    results = _read_all(source)
    frames = [frame for ok, frame in results if ok]
    assert len(frames) == 5
    assert all(frame.shape == (48, 64, 3) and frame.dtype == numpy.uint8 for frame in frames)
    assert [int(round(frame.mean())) for frame in frames] == pytest.approx([0, 60, 120, 180, 240], abs=3)
    assert results[-1] == (False, None) and source.exhausted
    assert source.read() == (False, None)


def test_looped_video_starts_over_and_never_ends(tmp_path):
    path = tmp_path / "clip.avi"
    _write_video(path, [0, 200])
    source = open_source(str(path), loop=True)
    means = [int(round(source.read()[1].mean())) for _ in range(5)]
    assert means == pytest.approx([0, 200, 0, 200, 0], abs=3)
    assert not source.exhausted
    source.close()


def test_unreadable_video_is_a_one_line_value_error(tmp_path):
    path = tmp_path / "broken.avi"
    path.write_bytes(b"this is not a video")
    assert "cannot read video" in _one_line_refusal(str(path))


# -- single image ------------------------------------------------------------------------------


def test_single_image_is_read_once_then_exhausted(tmp_path):
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), _solid(77))
    source = open_source(str(path))
    ok, frame = source.read()
    assert ok and frame.shape == (48, 64, 3) and frame[0, 0, 0] == 77
    assert source.exhausted
    assert source.read() == (False, None)


def test_looped_image_repeats_and_hands_out_independent_copies(tmp_path):
    path = tmp_path / "face.jpg"
    cv2.imwrite(str(path), _solid(100))
    source = open_source(str(path), loop=True)
    _, first = source.read()
    first[:] = 0  # a caller drawing on its frame
    _, second = source.read()
    assert not source.exhausted
    assert int(second.mean()) == pytest.approx(100, abs=2)


def test_undecodable_image_is_a_one_line_value_error(tmp_path):
    path = tmp_path / "face.jpg"
    path.write_bytes(b"\xff\xd8 definitely not a jpeg")
    assert "cannot decode image" in _one_line_refusal(str(path))


# -- directory of images -----------------------------------------------------------------------


def test_directory_images_come_sorted_by_name_and_other_files_are_ignored(tmp_path):
    cv2.imwrite(str(tmp_path / "b.png"), _solid(20))
    cv2.imwrite(str(tmp_path / "a.png"), _solid(10))
    cv2.imwrite(str(tmp_path / "c.JPG"), _solid(30))
    (tmp_path / "notes.txt").write_text("not an image")
    cv2.imwrite(str(tmp_path / ".hidden.png"), _solid(99))
    source = open_source(str(tmp_path))
    values = [int(round(frame.mean())) for ok, frame in _read_all(source) if ok]
    assert values == pytest.approx([10, 20, 30], abs=2)
    assert source.exhausted


def test_corrupt_image_in_a_directory_costs_one_frame(tmp_path):
    cv2.imwrite(str(tmp_path / "1.png"), _solid(10))
    (tmp_path / "2.png").write_bytes(b"garbage")
    cv2.imwrite(str(tmp_path / "3.png"), _solid(30))
    results = _read_all(open_source(str(tmp_path)))
    assert [ok for ok, _ in results] == [True, False, True]


def test_gray_image_in_a_directory_becomes_bgr(tmp_path):
    cv2.imwrite(str(tmp_path / "gray.png"), numpy.full((20, 30), 50, numpy.uint8))
    ok, frame = open_source(str(tmp_path)).read()
    assert ok and frame.shape == (20, 30, 3)


def test_looped_directory_starts_over(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), _solid(10))
    cv2.imwrite(str(tmp_path / "b.png"), _solid(20))
    source = open_source(str(tmp_path), loop=True)
    values = [int(round(source.read()[1].mean())) for _ in range(5)]
    assert values == pytest.approx([10, 20, 10, 20, 10], abs=2)
    assert not source.exhausted


@pytest.mark.parametrize("contents", [[], ["readme.txt"]])
def test_directory_without_images_is_a_one_line_value_error(tmp_path, contents):
    for name in contents:
        (tmp_path / name).write_text("x")
    assert "empty" in _one_line_refusal(str(tmp_path))


# -- specs that cannot be opened ---------------------------------------------------------------


def test_missing_path_names_the_path_and_the_accepted_specs(tmp_path):
    missing = str(tmp_path / "nowhere.mp4")
    message = _one_line_refusal(missing)
    assert missing in message and "webcam:N" in message


@pytest.mark.parametrize("spec", ["", "   ", "webcam:", "webcam:front", "webcam:-1"])
def test_bad_spec_is_a_value_error(spec):
    with pytest.raises(ValueError):
        open_source(spec)


def test_absent_webcam_is_a_value_error():
    with pytest.raises(ValueError, match="cannot open webcam 99"):
        open_source("webcam:99")


def test_sources_are_context_managers(tmp_path):
    path = tmp_path / "clip.avi"
    _write_video(path, [0, 1, 2])
    with open_source(str(path)) as source:
        assert source.read()[0]
    assert source.read() == (False, None)
