"""The demo's default camera footage, built at run time from face images that ship with scikit-image.

Nothing is downloaded and no footage is committed: ``skimage.data.astronaut()`` (Eileen Collins, NASA,
public domain) and ``skimage.data.camera()`` (the cameraman) are installed with scikit-image. Each is cut
to a head-and-shoulders portrait and moved and scaled over a synthetic room, so the clip exercises what a
still image cannot:

* frames without any face (start, end and a gap in the middle),
* a face that moves and grows across many frames (one track, one crop expected, not one per frame),
* a second face entering while the first is in view (two tracks at once),
* the first person coming back elsewhere after the gap (a new track).

The timeline is given in fractions of the clip, so a short clip (tests) keeps the same story. The clip is
deterministic for a given seed and size. Frames are written as numbered JPEGs into a folder, which is also
the shape of a user's ``--source DIR``. The true face box of every frame is returned, so tests can check
a detector against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy

Box = tuple[float, float, float, float]

DEFAULT_SIZE = (1280, 720)
DEFAULT_FRAMES = 150
DEFAULT_FPS = 15.0
FRAME_NAME = "frame_{:05d}.jpg"
JPEG_QUALITY = 92


@dataclass(frozen=True)
class Portrait:
    """A head-and-shoulders cut of a bundled image and where the face is inside the cut (cut pixels)."""

    name: str
    load: Callable[[], numpy.ndarray]  # BGR uint8
    face: Box


@dataclass(frozen=True)
class Appearance:
    """One person in view from `start` to `end` (fractions of the clip), gliding between two placements.

    A placement is (centre x, centre y, scale) with the centre as a fraction of the frame size and the
    scale applied to the portrait.
    """

    portrait: str
    start: float
    end: float
    enter: tuple[float, float, float]
    leave: tuple[float, float, float]


@dataclass
class Clip:
    """A clip written to `directory`: `frame_count` JPEGs and the true face boxes of each frame."""

    directory: Path
    frame_count: int
    fps: float
    size: tuple[int, int]
    faces: list[list[Box]] = field(default_factory=list)  # per frame, frame pixels

    def frame_path(self, index: int) -> Path:
        return self.directory / FRAME_NAME.format(index)

    @property
    def frames_with_faces(self) -> int:
        return sum(1 for boxes in self.faces if boxes)


def _astronaut() -> numpy.ndarray:
    import cv2
    from skimage import data

    return cv2.cvtColor(data.astronaut()[0:280, 96:356], cv2.COLOR_RGB2BGR)


def _cameraman() -> numpy.ndarray:
    import cv2
    from skimage import data

    return cv2.cvtColor(data.camera()[50:270, 130:330], cv2.COLOR_GRAY2BGR)


# Face boxes measured with CenterFace on the full images (astronaut 181,58-269,177; camera 202,118-257,196),
# shifted into the cuts above.
PORTRAITS = {
    "astronaut": Portrait("astronaut", _astronaut, (85.0, 58.0, 173.0, 177.0)),
    "cameraman": Portrait("cameraman", _cameraman, (72.0, 68.0, 127.0, 146.0)),
}

TIMELINE = (
    Appearance("astronaut", 0.08, 0.55, enter=(0.22, 0.55, 1.0), leave=(0.55, 0.50, 1.35)),
    Appearance("cameraman", 0.30, 0.50, enter=(0.86, 0.40, 1.9), leave=(0.80, 0.42, 2.1)),
    Appearance("astronaut", 0.72, 0.95, enter=(0.30, 0.45, 1.15), leave=(0.38, 0.48, 1.45)),
)


def build_clip(directory: str | Path, frame_count: int = DEFAULT_FRAMES, size: tuple[int, int] = DEFAULT_SIZE,
               fps: float = DEFAULT_FPS, seed: int = 7) -> Clip:
    """Render the clip into `directory` (created if needed) and return it with its true face boxes."""
    import cv2

    if frame_count < 1:
        raise ValueError("a clip needs at least one frame")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    width, height = size
    background = _room(width, height, seed)
    portraits = {name: (portrait, portrait.load()) for name, portrait in PORTRAITS.items()}
    clip = Clip(out, frame_count, fps, size)
    for index in range(frame_count):
        position = index / max(1, frame_count - 1)
        frame = background.copy()
        boxes: list[Box] = []
        for appearance in TIMELINE:
            if not appearance.start <= position <= appearance.end:
                continue
            portrait, image = portraits[appearance.portrait]
            progress = (position - appearance.start) / (appearance.end - appearance.start)
            placement = tuple(a + (b - a) * progress for a, b in zip(appearance.enter, appearance.leave, strict=True))
            box = _paste(frame, image, portrait.face, placement)
            if box is not None:
                boxes.append(box)
        clip.faces.append(boxes)
        cv2.imwrite(str(clip.frame_path(index)), frame, [int(cv2.IMWRITE_JPEG_QUALITY), JPEG_QUALITY])
    return clip


def _room(width: int, height: int, seed: int) -> numpy.ndarray:
    """A plausible, faceless background: a lit wall gradient with a few soft furniture-like blocks."""
    import cv2

    rng = numpy.random.default_rng(seed)
    ys = numpy.linspace(0.0, 1.0, height, dtype=numpy.float32)[:, None]
    xs = numpy.linspace(0.0, 1.0, width, dtype=numpy.float32)[None, :]
    light = 0.75 + 0.25 * numpy.exp(-((xs - 0.4) ** 2 + (ys - 0.2) ** 2) * 3.0)
    wall = numpy.array([150, 170, 180], dtype=numpy.float32)  # BGR: a warm grey
    room = (light[..., None] * wall).astype(numpy.uint8)
    room[int(height * 0.78):] = (70, 90, 110)  # floor
    for _ in range(6):
        x0, y0 = int(rng.integers(0, width - 80)), int(rng.integers(height // 3, height - 60))
        w, h = int(rng.integers(60, 260)), int(rng.integers(40, 200))
        colour = tuple(int(c) for c in rng.integers(40, 200, size=3))
        cv2.rectangle(room, (x0, y0), (min(width - 1, x0 + w), min(height - 1, y0 + h)), colour, -1)
    return cv2.GaussianBlur(room, (0, 0), 3)


def _paste(frame: numpy.ndarray, image: numpy.ndarray, face: Box, placement: tuple[float, ...]) -> Box | None:
    """Blend the scaled portrait into the frame with a feathered oval edge; return the face box in the frame."""
    import cv2

    centre_x, centre_y, scale = placement
    frame_h, frame_w = frame.shape[:2]
    src_h, src_w = image.shape[:2]
    w, h = max(2, int(round(src_w * scale))), max(2, int(round(src_h * scale)))
    scaled = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    x0, y0 = int(round(centre_x * frame_w - w / 2)), int(round(centre_y * frame_h - h / 2))
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(frame_w, x0 + w), min(frame_h, y0 + h)
    if fx1 <= fx0 or fy1 <= fy0:
        return None
    mask = numpy.zeros((h, w), dtype=numpy.float32)
    cv2.ellipse(mask, (w // 2, h // 2), (int(w * 0.46), int(h * 0.52)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, 0.04 * w))[..., None]
    part = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
    region = frame[fy0:fy1, fx0:fx1].astype(numpy.float32)
    blended = region * (1.0 - mask[part]) + scaled[part].astype(numpy.float32) * mask[part]
    frame[fy0:fy1, fx0:fx1] = blended.astype(numpy.uint8)
    box = (x0 + face[0] * scale, y0 + face[1] * scale, x0 + face[2] * scale, y0 + face[3] * scale)
    clipped = (max(0.0, box[0]), max(0.0, box[1]), min(float(frame_w), box[2]), min(float(frame_h), box[3]))
    return clipped if clipped[2] > clipped[0] and clipped[3] > clipped[1] else None
