"""Pictures a person can look at after the demo: a contact sheet of the uploaded crops and annotated frames.

The JSON document says how many crops landed where; these images say whether they are any good (is each
crop a whole face, with margin, not a shoulder or a blurred half-face?). Both are drawn with OpenCV only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy

from edge_function.imaging import BOX_COLOUR, draw_faces

BACKGROUND = (32, 32, 32)
TEXT = (235, 235, 235)
BOX = BOX_COLOUR  # the colour the device preview uses
CAPTION_H = 34
TITLE_H = 40
PADDING = 8


@dataclass(frozen=True)
class Tile:
    """One crop of the sheet and its caption lines (e.g. the score and the S3 key's tail)."""

    image: numpy.ndarray  # BGR
    lines: tuple[str, ...] = ()


def build_contact_sheet(tiles: Sequence[Tile], path: str | Path, title: str = "", tile_size: int = 180,
                        columns: int | None = None) -> Path:
    """Write a grid of the tiles (each scaled to fit `tile_size`, captions under it) as a PNG; return its path.

    With no tiles the sheet still exists and says so, so a caller never has to special-case "no file".
    """
    import cv2

    count = len(tiles)
    columns = columns or max(1, min(6, math.ceil(math.sqrt(count))) if count else 1)
    rows = max(1, math.ceil(count / columns))
    cell_w, cell_h = tile_size + 2 * PADDING, tile_size + CAPTION_H + 2 * PADDING
    title = title or f"{count} face crop(s)"
    title_w = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)[0][0] + 2 * PADDING
    sheet = numpy.full((TITLE_H + rows * cell_h, max(columns * cell_w, 360, title_w), 3), BACKGROUND, dtype=numpy.uint8)
    _text(sheet, title, (PADDING, 27), 0.6)
    if not tiles:
        _text(sheet, "no face crops were uploaded", (PADDING, TITLE_H + 30), 0.5)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        x, y = column * cell_w + PADDING, TITLE_H + row * cell_h + PADDING
        fitted = _fit(tile.image, tile_size)
        fh, fw = fitted.shape[:2]
        ox, oy = x + (tile_size - fw) // 2, y + (tile_size - fh) // 2
        sheet[oy:oy + fh, ox:ox + fw] = fitted
        for line_no, line in enumerate(tile.lines[:2]):
            _text(sheet, _shorten(line, tile_size), (x, y + tile_size + 14 + 15 * line_no), 0.4)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), sheet):
        raise OSError(f"could not write {out}")
    return out


def annotate_frame(
    frame: numpy.ndarray, faces: Iterable[tuple[float, Sequence[float]]], caption: str = ""
) -> numpy.ndarray:
    """A copy of `frame` with each (score, box in frame pixels) drawn, and an optional caption at the top."""
    import cv2

    out = draw_faces(frame.copy(), [("face", score, box) for score, box in faces])
    if caption:
        cv2.rectangle(out, (0, 0), (out.shape[1], 34), BACKGROUND, -1)
        _text(out, caption, (10, 24), 0.65)
    return out


def _fit(image: numpy.ndarray, size: int) -> numpy.ndarray:
    import cv2

    h, w = image.shape[:2]
    scale = size / float(max(h, w))
    new = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    return cv2.resize(image, new, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def _text(image: numpy.ndarray, text: str, origin: tuple[int, int], scale: float) -> None:
    import cv2

    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT, 1, cv2.LINE_AA)


def _shorten(text: str, width_px: int) -> str:
    """Keep the end of a long caption (the unique tail of an S3 key), about 7 px per character at scale 0.4."""
    limit = max(4, width_px // 7)
    return text if len(text) <= limit else ".." + text[-(limit - 2):]
