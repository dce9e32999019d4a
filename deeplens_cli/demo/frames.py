"""What the simulated camera shows: the built clip, or the user's `--source` (folder, video or webcam), checked
before anything starts, and how many frames the device processes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeplens_cli.errors import ConfigError
from edge_function import sources

DEFAULT_FPS = 15.0
DEFAULT_FRAME_BUDGET = 150  # 10 s of camera time at 15 fps: the whole demo stays well under a minute
MAX_DEFAULT_BUDGET = 450  # a user's long video is cut to 30 s unless --max-frames says otherwise
CLIP_DESCRIPTION = "built-in clip: scikit-image's astronaut and cameraman moving over a synthetic room"

@dataclass(frozen=True)
class FrameSource:
    """What the simulated camera shows: the built clip, or the user's folder, video or webcam."""

    kind: str  # clip | directory | image | video | webcam
    spec: str
    frames: int | None  # frames available (None: endless, a webcam)

    def to_dict(self) -> dict[str, Any]:
        spec = CLIP_DESCRIPTION if self.kind == "clip" else self.spec  # the clip's folder is gone after the demo
        return {"kind": self.kind, "spec": spec, "frames_available": self.frames}


def check_source(source: str) -> FrameSource:
    """Validate `--source` before anything starts (exit 2 with the reason).

    The spec is parsed and opened by `edge_function.sources.open_source`, the one parser of frame sources (the
    edge function and the simulated camera use it too), so the demo accepts exactly what a device accepts.
    """
    if source == "awscam":
        raise ConfigError("--source awscam: the demo's device has no DeepLens camera",
                          "use a video FILE, a DIR of images or webcam:N")
    try:
        opened = sources.open_source(source)
    except ValueError as error:
        raise ConfigError(f"--source {source}: {error}", "use a video FILE, a DIR of images or webcam:N") from None
    try:
        if source.startswith("webcam:"):
            return FrameSource("webcam", source, None)
        path = str(Path(source).resolve())
        if isinstance(opened, sources.ImageListSource):
            return FrameSource("directory", path, len(frame_images(path)))
        if isinstance(opened, sources.StillImageSource):
            return FrameSource("image", path, 1)
        ok, _ = opened.read()
        if not ok:
            raise ConfigError(f"--source {source}: OpenCV cannot read a frame of this video file",
                              "use an .mp4/.avi OpenCV can decode, a folder of images or webcam:N")
        return FrameSource("video", path, _video_frames(path))
    finally:
        opened.close()


def frame_images(directory: str) -> list[str]:
    """The images of a folder source in the order `edge_function.sources` reads them (file-name order)."""
    names = sorted(name for name in os.listdir(directory)
                   if not name.startswith(".") and os.path.splitext(name)[1].lower() in sources.IMAGE_EXTENSIONS
                   and os.path.isfile(os.path.join(directory, name)))
    return [os.path.join(directory, name) for name in names]


def _video_frames(path: str) -> int | None:
    import cv2

    capture = cv2.VideoCapture(path)
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    finally:
        capture.release()


def frame_budget(source: FrameSource, max_frames: int | None) -> int:
    """Frames the device processes: --max-frames, else one pass over the footage (capped), else 150."""
    if max_frames is not None:
        return max_frames
    if source.frames is None:
        return DEFAULT_FRAME_BUDGET
    return max(1, min(source.frames, MAX_DEFAULT_BUDGET))

