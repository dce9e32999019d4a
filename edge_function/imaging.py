"""Pixels to pictures: the face boxes drawn for people to look at, and JPEG encoding.

One place for both, used by the device preview, the upload path (``loop``) and the simulator's annotated
frames, so the boxes look the same everywhere and there is one way to get JPEG bytes. This module imports
nothing else from the package (no cycles) and imports ``cv2`` inside the functions: on a DeepLens ``awscam``
must be imported before ``cv2``.
"""

from typing import Any, Iterable, Sequence, Tuple

import numpy

#: Box and text colour (BGR): orange stands out against skin, sky and indoor walls alike.
BOX_COLOUR = (0, 165, 255)

#: (label, score, box) with the box (x0, y0, x1, y1) in pixels of the image drawn on.
FaceAnnotation = Tuple[str, float, Sequence[float]]


def draw_faces(image: numpy.ndarray, faces: Iterable[FaceAnnotation]) -> numpy.ndarray:
    """Draw each face's box and "label score" on ``image`` IN PLACE (pass a copy to keep the original); return it.

    Line thickness grows with the image width (2 px up to about 1070 px wide) so boxes stay visible on a
    full-HD frame and do not swamp a small one.
    """
    import cv2

    thickness = max(2, int(round(image.shape[1] / 430.0)))
    for label, score, box in faces:
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
        cv2.rectangle(image, (x0, y0), (x1, y1), BOX_COLOUR, thickness)
        cv2.putText(image, "%s %.2f" % (label, float(score)), (x0, max(12, y0 - 5)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.35 * thickness, BOX_COLOUR, thickness, cv2.LINE_AA)
    return image


def encode_jpeg(image: Any, quality: int, min_side: int = 0) -> bytes:
    """JPEG bytes of ``image`` at ``quality``; first scaled up (cubic) if a side is under ``min_side`` px."""
    import cv2

    height, width = image.shape[:2]
    shortest = min(height, width)
    if 0 < shortest < min_side:
        scale = float(min_side) / float(shortest)
        image = cv2.resize(image, (max(min_side, int(round(width * scale))),
                                   max(min_side, int(round(height * scale)))),
                           interpolation=cv2.INTER_CUBIC)
    ok, encoded = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed for a %dx%d image" % (width, height))
    return encoded.tobytes()
