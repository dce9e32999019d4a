"""preview: an MJPEG FIFO (or snapshot file) that never holds up the caller."""

import contextlib
import os
import stat
import threading
import time

import cv2
import numpy
import pytest

from edge_function.detectors import Detection
from edge_function.preview import BOX_COLOUR, PreviewWriter
from tests.support.polling import HANG_GUARD_S, wait_for

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX-only")

SOI, EOI = b"\xff\xd8", b"\xff\xd9"


def _frame(width=1920, height=1080, value=90):
    return numpy.full((height, width, 3), value, numpy.uint8)


class _Reader(object):
    """A viewer on the FIFO (what mplayer is on the device), reading without blocking the test."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.data = b""

    def drain(self):
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return
            if not chunk:
                return
            self.data += chunk

    def wait_for_jpegs(self, count, timeout=HANG_GUARD_S):
        def enough():
            self.drain()
            return self.data.count(EOI) >= count

        return wait_for(enough, timeout)

    def jpegs(self):
        return [SOI + part.split(EOI)[0] + EOI for part in self.data.split(SOI)[1:]]

    def close(self):
        os.close(self.fd)


@contextlib.contextmanager
def _viewed_writer(path, width):
    """A writer at any frame rate and a viewer on its FIFO, both closed when the block ends however it ends."""
    writer = PreviewWriter(path, max_fps=1e6, width=width)
    reader = _Reader(path)
    try:
        yield writer, reader
    finally:
        writer.close()
        reader.close()


def _decoded(jpeg):
    return cv2.imdecode(numpy.frombuffer(jpeg, numpy.uint8), cv2.IMREAD_COLOR)


@pytest.fixture
def fifo_path(tmp_path):
    return str(tmp_path / "results.mjpeg")


def test_a_missing_path_becomes_a_private_fifo(fifo_path):
    writer = PreviewWriter(fifo_path)
    try:
        mode = os.stat(fifo_path).st_mode
        assert stat.S_ISFIFO(mode)
        assert stat.S_IMODE(mode) & 0o077 == 0
        assert writer.kind == "fifo"
    finally:
        writer.close()


def test_submit_never_blocks_without_a_reader(fifo_path):
    writer = PreviewWriter(fifo_path, max_fps=1e6)
    frame = _frame()

    def submit_100():
        for _ in range(100):
            writer.submit(frame, [Detection("face", 0.9, (100.0, 100.0, 300.0, 300.0))])

    # a FIFO nobody reads blocks a writer forever: a submit that waited for one would never return
    submitting = threading.Thread(target=submit_100, daemon=True)
    submitting.start()
    submitting.join(HANG_GUARD_S)
    assert not submitting.is_alive()
    assert wait_for(lambda: writer.frames_dropped >= 1)
    assert writer.frames_written == 0
    writer.close()


def test_a_reader_receives_jpegs_shrunk_to_the_preview_width(fifo_path):
    with _viewed_writer(fifo_path, width=858) as (writer, reader):
        writer.submit(_frame(), [])
        assert reader.wait_for_jpegs(1)
        (jpeg,) = reader.jpegs()
        assert jpeg.startswith(SOI)
        image = _decoded(jpeg)
        assert image.shape == (483, 858, 3)


def test_boxes_are_drawn_on_the_preview_but_not_on_the_caller_s_frame(fifo_path):
    frame = _frame(2560, 1440)
    original = frame.copy()
    with _viewed_writer(fifo_path, width=1280) as (writer, reader):
        writer.submit(frame, [Detection("face", 0.93, (400.0, 400.0, 1200.0, 1200.0))])
        assert reader.wait_for_jpegs(1)
        image = _decoded(reader.jpegs()[0])
        # At half scale the box's left edge is the column x = 200, from y = 200 to 600.
        edge = image[250:550, 200].astype(float).mean(axis=0)
        inside = image[250:550, 240].astype(float).mean(axis=0)
        assert numpy.abs(edge - numpy.array(BOX_COLOUR)).max() < 40
        assert numpy.abs(inside - 90).max() < 5
        assert numpy.array_equal(frame, original)


def test_the_caller_may_reuse_its_buffer_right_after_submit(fifo_path):
    frame = _frame(640, 480, value=200)
    with _viewed_writer(fifo_path, width=640) as (writer, reader):
        writer.submit(frame, [])
        frame[:] = 0  # the capture loop overwrites its buffer with the next frame
        assert reader.wait_for_jpegs(1)
        image = _decoded(reader.jpegs()[0])
        assert image.mean() == pytest.approx(200, abs=3)


def test_a_frame_is_written_once_not_rewritten_in_a_loop(fifo_path):
    with _viewed_writer(fifo_path, width=320) as (writer, reader):
        writer.submit(_frame(640, 480), [])
        assert reader.wait_for_jpegs(1)
        time.sleep(0.2)
        reader.drain()
        assert len(reader.jpegs()) == 1
        assert writer.frames_written == 1


def test_frames_over_max_fps_are_skipped_before_any_work(fifo_path):
    writer = PreviewWriter(fifo_path, max_fps=2.0)
    for _ in range(10):
        writer.submit(_frame(64, 48), [])
    assert writer.frames_skipped == 9
    writer.close()


def test_a_reader_can_leave_and_a_new_one_gets_frames_again(fifo_path):
    writer = PreviewWriter(fifo_path, max_fps=1e6, width=320)
    first = _Reader(fifo_path)
    try:
        writer.submit(_frame(640, 480), [])
        assert first.wait_for_jpegs(1)
        first.close()
        # With the reader gone, writes fail (EPIPE) and frames are dropped until someone reads again.
        for _ in range(3):
            writer.submit(_frame(640, 480), [])
            time.sleep(0.02)
        assert wait_for(lambda: writer.frames_dropped >= 1)
        second = _Reader(fifo_path)
        try:
            wait_for(lambda: writer._fd is None)
            writer.submit(_frame(640, 480, value=33), [])
            assert second.wait_for_jpegs(1)
            image = _decoded(second.jpegs()[-1])
            assert image.mean() == pytest.approx(33, abs=3)
        finally:
            second.close()
    finally:
        writer.close()


def test_an_existing_regular_file_holds_the_newest_frame_as_one_jpeg(tmp_path):
    path = tmp_path / "preview.mjpeg"
    path.write_bytes(b"")
    writer = PreviewWriter(str(path), max_fps=1e6, width=320)
    try:
        assert writer.kind == "file"
        writer.submit(_frame(640, 480, value=10), [])
        assert wait_for(lambda: writer.frames_written == 1)
        writer.submit(_frame(640, 480, value=220), [])
        assert wait_for(lambda: writer.frames_written == 2)
    finally:
        writer.close()
    data = path.read_bytes()
    assert data.startswith(SOI) and data.endswith(EOI) and data.count(SOI) == 1
    image = _decoded(data)
    assert image.mean() == pytest.approx(220, abs=3)


def test_a_missing_jpg_path_becomes_a_snapshot_file(tmp_path):
    path = tmp_path / "latest.jpg"
    writer = PreviewWriter(str(path), max_fps=1e6)
    try:
        assert writer.kind == "file"
        writer.submit(_frame(320, 240), [])
        assert wait_for(lambda: writer.frames_written == 1)
    finally:
        writer.close()
    assert stat.S_ISREG(os.stat(str(path)).st_mode)
    assert path.read_bytes().startswith(SOI)


def test_a_directory_path_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="neither a FIFO nor a regular file"):
        PreviewWriter(str(tmp_path))


def test_a_path_in_a_missing_directory_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="cannot create preview FIFO"):
        PreviewWriter(str(tmp_path / "no" / "such" / "results.mjpeg"))


@pytest.mark.parametrize("kwargs", [{"max_fps": 0}, {"width": 0}])
def test_nonsense_settings_are_rejected(fifo_path, kwargs):
    with pytest.raises(ValueError):
        PreviewWriter(fifo_path, **kwargs)


def test_close_stops_the_writer_thread_and_later_submits_are_ignored(fifo_path):
    writer = PreviewWriter(fifo_path, max_fps=1e6)
    writer.close()
    assert not writer._thread.is_alive()
    writer.submit(_frame(64, 48), [])
    writer.close()  # idempotent
    assert writer.frames_written == 0 and writer.frames_dropped == 0
