"""Box arithmetic between model space, frame space and crop rectangles.

Every detector reports boxes in the coordinate system of *its own input* (the DeepLens SSD sees a
300x300 resize of the frame), while crops must be cut from the clean full-resolution frame. This
module is the single place where that conversion happens, so the two historical bugs of the DeepLens
face sample cannot creep back in:

* the sample added ``xmin`` a second time when scaling x (``xscale*xmin + xmin``), shifting every box
  right by up to 300 px - here x and y are scaled the same way, by ``frame / input`` and nothing else;
* under Python 2, ``float(1080 / 300)`` is 3.0, not 3.6 - here all ratios are computed in float math
  (``float(a) / float(b)``), which is also correct on Python 3.

Boxes (``Box``) are float ``(x0, y0, x1, y1)`` tuples in full-frame pixels. Crop rectangles (``Rect``)
are integer ``(x0, y0, x1, y1)`` with exclusive ``x1``/``y1`` so they slice a numpy frame directly.

Runs on the device under Python 3.7; ``cv2`` is imported lazily (only ``sharpness`` needs it) so that
importing this module never loads OpenCV before ``awscam`` (a documented DeepLens quirk).
"""

import math
from typing import Optional, Tuple

import numpy

Box = Tuple[float, float, float, float]
Rect = Tuple[int, int, int, int]


def scale_model_box(
    xmin: float, ymin: float, xmax: float, ymax: float,
    frame_w: int, frame_h: int, input_w: int, input_h: int,
) -> Box:
    """Convert a box from model-input pixels to frame pixels.

    ``x * (frame_w / input_w)`` and ``y * (frame_h / input_h)``, in float math: a 300x300 SSD box on a
    1920x1080 frame scales by 6.4 horizontally and 3.6 vertically. No offset is added (the DeepLens
    sample's extra ``+ xmin`` was a bug).
    """
    if input_w <= 0 or input_h <= 0:
        raise ValueError("model input size must be positive, got %rx%r" % (input_w, input_h))
    x_scale = float(frame_w) / float(input_w)
    y_scale = float(frame_h) / float(input_h)
    return (
        float(xmin) * x_scale,
        float(ymin) * y_scale,
        float(xmax) * x_scale,
        float(ymax) * y_scale,
    )


def clamp_box(box: Box, frame_w: int, frame_h: int) -> Optional[Box]:
    """Clip a float box to the frame; None when nothing of it is left inside the frame.

    Detectors may report boxes that stick out of the image (a face cut by the border); the gate and the
    metadata should only ever see the visible part.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        return None
    x0 = min(max(x0, 0.0), float(frame_w))
    x1 = min(max(x1, 0.0), float(frame_w))
    y0 = min(max(y0, 0.0), float(frame_h))
    y1 = min(max(y1, 0.0), float(frame_h))
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1, y1)


def box_size(box: Box) -> Tuple[float, float]:
    """Width and height of a box; a reversed box has size 0 rather than a negative one."""
    x0, y0, x1, y1 = box
    return (max(0.0, float(x1) - float(x0)), max(0.0, float(y1) - float(y0)))


def min_side(box: Box) -> float:
    """The shorter side: the quantity Rekognition's "face at least 40x40 px" floor constrains."""
    width, height = box_size(box)
    return min(width, height)


def _area(box: Box) -> float:
    width, height = box_size(box)
    return width * height


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes, 0.0 when either is empty (never divides by zero)."""
    inter = _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    union = _area(a) + _area(b) - inter
    if union <= 0.0:
        return 0.0
    return inter / union


def touches_edge(box: Box, frame_w: int, frame_h: int, tolerance: float = 2.0) -> bool:
    """True when a box reaches within ``tolerance`` pixels of a frame border.

    Such a face is probably cut off, so a best-crop choice should prefer a box that does not touch the
    edge (Frigate's rule: ``is_better_thumbnail`` in frigate/util/image.py of
    github.com/blakeblackshear/frigate).
    """
    x0, y0, x1, y1 = box
    return (
        x0 <= tolerance
        or y0 <= tolerance
        or x1 >= float(frame_w) - tolerance
        or y1 >= float(frame_h) - tolerance
    )


def crop_rect(box: Box, frame_w: int, frame_h: int, margin: float = 0.2) -> Optional[Rect]:
    """The integer rectangle to cut for a face: the box grown by a margin, clamped to the frame.

    Each side grows by ``margin`` times the box's width (left/right) or height (top/bottom), because a
    tight detector box cuts off the chin and hair that help recognition downstream. The rectangle is
    rounded outwards (floor of the start, ceil of the end) so it always contains the whole box, then
    clamped to the frame. Returns None when nothing is left (box outside the frame, empty or not finite),
    so a caller can never cut an empty crop.
    """
    if margin < 0:
        raise ValueError("crop margin must be >= 0, got %r" % (margin,))
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x1 <= x0 or y1 <= y0:
        return None
    grow_x = (x1 - x0) * margin
    grow_y = (y1 - y0) * margin
    left = max(0, int(math.floor(x0 - grow_x)))
    top = max(0, int(math.floor(y0 - grow_y)))
    right = min(int(frame_w), int(math.ceil(x1 + grow_x)))
    bottom = min(int(frame_h), int(math.ceil(y1 + grow_y)))
    if right <= left or bottom <= top:
        return None
    return (left, top, right, bottom)


def crop(frame: numpy.ndarray, rect: Rect) -> numpy.ndarray:
    """A copy of ``frame[y0:y1, x0:x1]``.

    A copy, not a view: the capture source may reuse its frame buffer and the preview draws on frames,
    and neither must change a crop that is still waiting in the upload queue.
    """
    x0, y0, x1, y1 = rect
    return numpy.array(frame[y0:y1, x0:x1], copy=True)


def sharpness(image: numpy.ndarray) -> float:
    """Variance of the Laplacian of the grayscale image: higher is sharper; 0.0 for an empty image.

    Motion blur flattens edges, which lowers this variance, so it ranks crops of the same face (the
    measure Frigate uses to down-weight blurry faces). Values are only comparable between crops of
    similar size and content.
    """
    if image is None or image.size == 0:
        return 0.0
    import cv2  # lazy: see the module docstring

    if image.ndim == 3 and image.shape[2] == 1:
        gray = image[:, :, 0]
    elif image.ndim == 3:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    else:
        gray = image
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())
