"""Frame sources: the DeepLens camera, a webcam, a video file, one image, or a folder of images.

Every source answers ``read() -> (ok, frame)`` with a BGR ``HxWx3`` uint8 frame, and never raises on a
bad frame: a camera hiccup or one corrupt file in a folder must cost one frame, not the loop. Finite
sources (files, folders) set ``exhausted`` once they have nothing more to give, so ``--max-frames``-less
runs on a file end by themselves. Opening a source, on the other hand, fails fast with a one-line
``ValueError`` (cause + hint), because a wrong ``--source`` is a configuration error.

Frame sizes are never assumed: the DeepLens frame size is undocumented and files can be anything.
``cv2`` is imported lazily (after ``awscam``; see the edge contract).
"""

import os
from typing import Any, List, Optional, Tuple

import numpy

ReadResult = Tuple[bool, Optional[numpy.ndarray]]

#: File extensions read as still images (a directory source only considers these).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")

SPEC_HINT = "expected awscam, webcam:N, a video file, an image file or a directory of images"


class FrameSource(object):
    """Protocol of a frame source. ``name`` says what is being read (for logs and metadata).

    ``exhausted`` turns True as soon as a finite source knows it has nothing more: right after the last
    image of a file list, or after the read that hit the end of a video (which returns ``(False, None)``).
    A loop should therefore check ``exhausted`` before treating a failed read as a hiccup to retry.
    """

    name = "source"
    exhausted = False

    def read(self) -> ReadResult:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file; reading afterwards returns ``(False, None)``."""

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def as_bgr(frame: Any) -> Optional[numpy.ndarray]:
    """The frame as BGR HxWx3 uint8, or None when it is not a usable image.

    Gray and BGRA frames are converted rather than rejected; anything empty, of another rank or not an
    array counts as a failed grab.
    """
    if not isinstance(frame, numpy.ndarray) or frame.size == 0 or frame.dtype != numpy.uint8:
        return None
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    import cv2

    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 1:
        return cv2.cvtColor(frame[:, :, 0], cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return None


class AwscamSource(FrameSource):
    """``awscam.getLastFrame()``: the newest frame of the DeepLens camera; never exhausted."""

    def __init__(self, awscam_module: Any) -> None:
        self.name = "awscam"
        self.exhausted = False
        self._awscam = awscam_module
        self._closed = False

    def read(self) -> ReadResult:
        if self._closed:
            return False, None
        try:
            ok, frame = self._awscam.getLastFrame()
        except Exception:  # a device error is one lost frame; the loop retries with backoff
            return False, None
        frame = as_bgr(frame) if ok else None
        return (frame is not None), frame

    def close(self) -> None:
        self._closed = True


class CaptureSource(FrameSource):
    """A ``cv2.VideoCapture``: a video file (finite, optionally looped) or a webcam (endless)."""

    def __init__(self, capture: Any, name: str, finite: bool, loop: bool = False) -> None:
        self.name = name
        self.exhausted = False
        self._capture = capture
        self._finite = finite
        self._loop = loop

    def _grab(self) -> Optional[numpy.ndarray]:
        try:
            ok, frame = self._capture.read()
        except Exception:
            return None
        return as_bgr(frame) if ok else None

    def read(self) -> ReadResult:
        if self.exhausted or self._capture is None:
            return False, None
        frame = self._grab()
        if frame is None and self._finite:
            if self._loop:
                import cv2

                self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                frame = self._grab()
            if frame is None:  # end of file, or a file that cannot even be rewound
                self.exhausted = True
        return (frame is not None), frame

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class StillImageSource(FrameSource):
    """One image file: returned once (then exhausted), or forever with ``loop``.

    The image is decoded once at open; each read hands out a copy so a caller drawing on a frame never
    alters the next one.
    """

    def __init__(self, frame: numpy.ndarray, name: str, loop: bool = False) -> None:
        self.name = name
        self.exhausted = False
        self._frame = frame
        self._loop = loop

    def read(self) -> ReadResult:
        if self.exhausted:
            return False, None
        if not self._loop:
            self.exhausted = True
        return True, self._frame.copy()

    def close(self) -> None:
        self.exhausted = True


class ImageListSource(FrameSource):
    """The images of a directory, in file-name order.

    Without ``loop`` each image is returned once and the source is then exhausted; with ``loop`` it
    starts over. A file that fails to decode yields ``(False, None)`` and the source moves on. Each read
    returns a freshly decoded array, so a caller that draws on a frame never alters the next one.
    """

    def __init__(self, paths: List[str], name: str, loop: bool = False) -> None:
        self.name = name
        self.exhausted = False
        self._paths = list(paths)
        self._loop = loop
        self._next = 0

    def read(self) -> ReadResult:
        if self.exhausted:
            return False, None
        if self._next >= len(self._paths):
            if not self._loop or not self._paths:
                self.exhausted = True
                return False, None
            self._next = 0
        path = self._paths[self._next]
        self._next += 1
        if not self._loop and self._next >= len(self._paths):
            self.exhausted = True
        frame = _read_image(path)
        return (frame is not None), frame

    def close(self) -> None:
        self.exhausted = True


def _read_image(path: str) -> Optional[numpy.ndarray]:
    import cv2

    try:
        return as_bgr(cv2.imread(path, cv2.IMREAD_COLOR))
    except Exception:
        return None


def _is_image_path(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def _open_webcam(spec: str) -> FrameSource:
    index_text = spec.split(":", 1)[1]
    try:
        index = int(index_text)
    except ValueError:
        index = -1
    if index < 0:
        raise ValueError("bad source %r: webcam index must be a number >= 0 (e.g. webcam:0)" % (spec,))
    import cv2

    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        capture.release()
        raise ValueError("cannot open webcam %d (%s): no such camera or no permission to use it" % (index, spec))
    return CaptureSource(capture, name=spec, finite=False)


def _open_video(path: str, loop: bool) -> FrameSource:
    import cv2

    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise ValueError(
            "cannot read video %s: not a video OpenCV can decode (images need a known extension: %s)"
            % (path, ", ".join(IMAGE_EXTENSIONS))
        )
    return CaptureSource(capture, name=path, finite=True, loop=loop)


def _open_directory(path: str, loop: bool) -> FrameSource:
    names = sorted(
        name for name in os.listdir(path)
        if not name.startswith(".") and _is_image_path(name) and os.path.isfile(os.path.join(path, name))
    )
    if not names:
        raise ValueError(
            "image directory %s is empty: it holds no %s files" % (path, "/".join(IMAGE_EXTENSIONS))
        )
    return ImageListSource([os.path.join(path, name) for name in names], name=path, loop=loop)


def _open_image(path: str, loop: bool) -> FrameSource:
    frame = _read_image(path)
    if frame is None:
        raise ValueError("cannot decode image %s: the file is not a readable image" % (path,))
    return StillImageSource(frame, name=path, loop=loop)


def open_source(spec: str, awscam_module: Any = None, loop: bool = False) -> FrameSource:
    """Open the source named by ``--source``.

    ``"awscam"`` reads the DeepLens camera (``awscam_module`` injects the device SDK; by default it is
    imported). ``"webcam:N"`` opens camera N. Any other spec is a path: a directory of images (sorted by
    file name), an image file (by extension) or a video file. ``loop`` replays finite sources forever,
    for demos. Raises ``ValueError`` with a one-line message when the spec cannot be opened.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("empty source; %s" % SPEC_HINT)
    if spec == "awscam":
        if awscam_module is None:
            try:
                import awscam as awscam_module  # type: ignore
            except ImportError:
                raise ValueError(
                    "source 'awscam' needs the DeepLens awscam module, which is not importable here; "
                    "off the device use webcam:N, a video file or a directory of images"
                ) from None
        return AwscamSource(awscam_module)
    if spec.startswith("webcam:"):
        return _open_webcam(spec)
    if not os.path.exists(spec):
        raise ValueError("source %s does not exist; %s" % (spec, SPEC_HINT))
    if os.path.isdir(spec):
        return _open_directory(spec, loop)
    if _is_image_path(spec):
        return _open_image(spec, loop)
    return _open_video(spec, loop)
