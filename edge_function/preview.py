"""Annotated live preview as an MJPEG stream (concatenated JPEGs), the DeepLens way.

On a DeepLens the inference function writes JPEG frames to the named pipe ``/tmp/results.mjpeg`` and
the user watches with ``mplayer -demuxer lavf -lavfdopts format=mjpeg:probesize=32 /tmp/results.mjpeg``.
The original sample opened that FIFO in blocking mode, so the inference loop stalled until someone
started mplayer, and it re-wrote the same JPEG in a busy loop. Here:

* ``submit()`` only shrinks the frame into a private copy and hands it over; it never waits. Only the
  newest frame is kept: a frame not yet written when the next arrives is replaced, and frames arriving
  faster than ``max_fps`` are skipped before any work is done.
* One writer thread, for the life of the writer, draws boxes and scores, encodes and writes. It sleeps
  on a condition variable until a *new* frame arrives, so nothing is ever re-sent.
* A FIFO is opened with ``O_WRONLY | O_NONBLOCK``: with no reader that fails at once (``ENXIO``), the
  frame is dropped without even being encoded, and the open is retried with the next frame. When the
  reader goes away (``EPIPE``) the pipe is closed and re-opened later the same way.

Path handling: an existing FIFO is used as is (create it yourself with the permissions you want if the
viewer runs as another user); a missing path is created as a FIFO with mode ``FIFO_MODE`` (0600: the
preview shows faces, so it is private to the function's user by default), except that a missing path
ending in ``.jpg``/``.jpeg`` is treated as a regular file. A regular file receives only the newest frame,
as one complete JPEG replaced atomically (temp file + rename): appending would grow without bound, and a
single always-complete JPEG can be opened by any image viewer at any time. The FIFO is left in place on
``close()``, so a restarted function finds it again and a running viewer is not disturbed.
"""

import errno
import logging
import os
import select
import stat
import threading
import time
from typing import Any, List, Optional, Sequence, Tuple

import numpy

from edge_function import imaging

log = logging.getLogger(__name__)

FIFO_MODE = 0o600
JPEG_QUALITY = 80
BOX_COLOUR = imaging.BOX_COLOUR
#: How long the writer keeps trying to finish a JPEG it already started writing to a slow reader.
PARTIAL_WRITE_TIMEOUT_S = 2.0

_Annotation = Tuple[str, float, Tuple[float, float, float, float]]

# vermin reads ``os.A | os.B`` as a PEP 604 type union (3.10+); these are plain int bit flags.
_FIFO_OPEN_FLAGS = os.O_WRONLY | os.O_NONBLOCK  # novermin
_SNAPSHOT_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC  # novermin


def _prepare_path(path: str) -> str:
    """Make sure ``path`` can receive frames; return "fifo" or "file"."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if path.lower().endswith((".jpg", ".jpeg")) or not hasattr(os, "mkfifo"):
            return "file"
        try:
            os.mkfifo(path, FIFO_MODE)
        except FileExistsError:  # created by someone else meanwhile: use whatever it is
            return _prepare_path(path)
        except OSError as exc:
            raise ValueError("cannot create preview FIFO %s: %s" % (path, exc.strerror)) from None
        return "fifo"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISREG(mode):
        return "file"
    raise ValueError("preview path %s exists but is neither a FIFO nor a regular file" % (path,))


class PreviewWriter(object):
    """Writes annotated frames to ``path`` at most ``max_fps`` times a second, ``width`` pixels wide."""

    def __init__(self, path: str = "/tmp/results.mjpeg", max_fps: float = 15.0, width: int = 858) -> None:
        if not max_fps > 0:
            raise ValueError("preview max_fps must be > 0, got %r" % (max_fps,))
        if int(width) < 16:
            raise ValueError("preview width must be >= 16 px, got %r" % (width,))
        self.path = path
        self.width = int(width)
        self.kind = _prepare_path(path)
        self._min_interval = 1.0 / float(max_fps)
        self._last_accepted: Optional[float] = None
        self._pending: Optional[Tuple[numpy.ndarray, List[_Annotation]]] = None
        self._closed = False
        self._condition = threading.Condition()
        self._fd: Optional[int] = None
        # Counters, for status messages and tests.
        self.frames_written = 0
        self.frames_skipped = 0  # over max_fps, never copied
        self.frames_replaced = 0  # superseded by a newer frame before the writer got to them
        self.frames_dropped = 0  # no reader, slow reader or write error
        self._thread = threading.Thread(target=self._run, name="preview-writer")
        self._thread.daemon = True  # never keeps a finished process alive
        self._thread.start()

    # -- caller side ---------------------------------------------------------------------------

    def submit(self, frame: numpy.ndarray, detections: Sequence[Any]) -> None:
        """Queue ``frame`` with its detections for display; returns at once, whatever the reader does.

        ``detections`` are ``Detection``-like objects (``label``, ``score``, ``box`` in frame pixels). The
        frame is copied (shrunk to ``width``) before returning, so the caller may reuse its buffer, and
        boxes are drawn on that copy only: the caller's frame, from which crops are cut, stays clean.
        """
        if self._closed or not isinstance(frame, numpy.ndarray) or frame.ndim < 2 or frame.size == 0:
            return
        now = time.monotonic()
        if self._last_accepted is not None and now - self._last_accepted < self._min_interval:
            self.frames_skipped += 1
            return
        self._last_accepted = now
        small, scale = self._shrink(frame)
        annotations = [
            (str(d.label), float(d.score), tuple(float(v) * scale for v in d.box)) for d in detections
        ]
        with self._condition:
            if self._pending is not None:
                self.frames_replaced += 1
            self._pending = (small, annotations)
            self._condition.notify()

    def _shrink(self, frame: numpy.ndarray) -> Tuple[numpy.ndarray, float]:
        height, width = frame.shape[:2]
        if width <= self.width:
            return frame.copy(), 1.0
        import cv2

        scale = float(self.width) / width
        size = (self.width, max(1, int(round(height * scale))))
        return cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR), scale

    def close(self) -> None:
        """Stop the writer thread (a frame not yet written is discarded) and close the pipe."""
        with self._condition:
            self._closed = True
            self._pending = None
            self._condition.notify()
        self._thread.join(PARTIAL_WRITE_TIMEOUT_S + 1.0)
        self._close_fd()

    def __enter__(self) -> "PreviewWriter":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- writer thread -------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._condition:
                while self._pending is None and not self._closed:
                    self._condition.wait()
                if self._closed:
                    return
                frame, annotations = self._pending
                self._pending = None
            try:
                if self.kind == "fifo" and not self._open_fifo():
                    self.frames_dropped += 1  # nobody watching: not even worth encoding
                    continue
                written = self._write(self._encode(frame, annotations))
            except Exception:  # the preview is optional: it must never take the process down
                log.exception("preview: cannot write a frame to %s", self.path)
                written = False
            if written:
                self.frames_written += 1
            else:
                self.frames_dropped += 1

    def _encode(self, frame: numpy.ndarray, annotations: List[_Annotation]) -> bytes:
        return imaging.encode_jpeg(imaging.draw_faces(frame, annotations), JPEG_QUALITY)  # frame: our own copy

    def _write(self, data: bytes) -> bool:
        if self.kind == "fifo":
            return self._write_fifo(data)
        tmp_path = self.path + ".tmp"
        with os.fdopen(os.open(tmp_path, _SNAPSHOT_OPEN_FLAGS, FIFO_MODE), "wb") as snapshot:
            snapshot.write(data)
        os.replace(tmp_path, self.path)
        return True

    def _open_fifo(self) -> bool:
        if self._fd is not None:
            return True
        try:
            self._fd = os.open(self.path, _FIFO_OPEN_FLAGS)
        except OSError as exc:
            if exc.errno == errno.ENOENT:  # someone removed the FIFO: recreate it for the next attempt
                try:
                    os.mkfifo(self.path, FIFO_MODE)
                except OSError:
                    pass
            elif exc.errno != errno.ENXIO:  # ENXIO just means "no reader yet"
                log.warning("preview: cannot open %s: %s", self.path, exc.strerror)
            return False
        return True

    def _write_fifo(self, data: bytes) -> bool:
        """Write one whole JPEG, or none of it when the pipe is full; drop the reader if it stalls."""
        view = memoryview(data)
        deadline: Optional[float] = None
        while view:
            try:
                written = os.write(self._fd, view)
            except BlockingIOError:
                if deadline is None:
                    if len(view) == len(data):
                        return False  # reader is behind: skip this frame, the stream stays intact
                    deadline = time.monotonic() + PARTIAL_WRITE_TIMEOUT_S
                if self._closed or time.monotonic() > deadline:
                    self._close_fd()  # half a JPEG is in the pipe; the reader sees the stream end
                    return False
                select.select([], [self._fd], [], 0.05)
                continue
            except OSError:  # EPIPE: the reader went away; reopen (and wait for one) next frame
                self._close_fd()
                return False
            view = view[written:]
        return True

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
