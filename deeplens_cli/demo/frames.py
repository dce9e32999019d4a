"""What the simulated camera shows: the built clip, or the user's `--source` (folder, video or webcam), checked
before anything starts, and how many frames the device processes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeplens_cli.errors import ConfigError

DEFAULT_FPS = 15.0
DEFAULT_FRAME_BUDGET = 150  # 10 s of camera time at 15 fps: the whole demo stays well under a minute
MAX_DEFAULT_BUDGET = 450  # a user's long video is cut to 30 s unless --max-frames says otherwise
CLIP_DESCRIPTION = "built-in clip: scikit-image's astronaut and cameraman moving over a synthetic room"

@dataclass(frozen=True)
class FrameSource:
    """What the simulated camera shows: the built clip, or the user's folder, video or webcam."""

    kind: str  # clip | directory | video | webcam
    spec: str
    frames: int | None  # frames available (None: endless, a webcam)

    def to_dict(self) -> dict[str, Any]:
        spec = CLIP_DESCRIPTION if self.kind == "clip" else self.spec  # the clip's folder is gone after the demo
        return {"kind": self.kind, "spec": spec, "frames_available": self.frames}


def check_source(source: str) -> FrameSource:
    """Validate `--source` before anything starts (exit 2 with the reason)."""
    import cv2

    from deeplens_cli.simulator.awscam import list_images

    if source.startswith("webcam:"):
        index = source.split(":", 1)[1]
        if not index.isdigit():
            raise ConfigError(f"--source {source}: the webcam index must be a number", "use webcam:0, webcam:1, ...")
        return FrameSource("webcam", source, None)
    path = Path(source)
    if path.is_dir():
        images = list_images(str(path))
        if not images:
            raise ConfigError(f"--source {source}: the folder has no .jpg/.jpeg/.png/.bmp images",
                              "point --source at a folder of photos, a video file or webcam:N")
        return FrameSource("directory", str(path.resolve()), len(images))
    if path.is_file():
        capture = cv2.VideoCapture(str(path))
        try:
            if not capture.isOpened() or not capture.read()[0]:
                raise ConfigError(f"--source {source}: OpenCV cannot read this video file",
                                  "use an .mp4/.avi OpenCV can decode, a folder of images or webcam:N")
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        finally:
            capture.release()
        return FrameSource("video", str(path.resolve()), count)
    raise ConfigError(f"--source {source}: no such file or folder", "use a video FILE, a DIR of images or webcam:N")


def frame_budget(source: FrameSource, max_frames: int | None) -> int:
    """Frames the device processes: --max-frames, else one pass over the footage (capped), else 150."""
    if max_frames is not None:
        return max_frames
    if source.frames is None:
        return DEFAULT_FRAME_BUDGET
    return max(1, min(source.frames, MAX_DEFAULT_BUDGET))

