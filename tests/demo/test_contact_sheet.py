"""The pictures the demo leaves for a person: a contact sheet of crops and annotated frames."""

from __future__ import annotations

import numpy

from deeplens_cli.simulator.contact_sheet import BOX, Tile, annotate_frame, build_contact_sheet


def _crop(colour, shape=(120, 90)):
    return numpy.full((*shape, 3), colour, dtype=numpy.uint8)


def test_a_sheet_shows_every_crop_in_a_grid(tmp_path):
    import cv2

    tiles = [Tile(_crop((0, 0, 255)), ("face 0.91", "a.jpg")), Tile(_crop((0, 255, 0)), ("face 0.80",)),
             Tile(_crop((255, 0, 0), (60, 200)), ())]
    path = build_contact_sheet(tiles, tmp_path / "out" / "sheet.png", title="3 crops", tile_size=100)
    sheet = cv2.imread(str(path))
    assert sheet is not None and path.suffix == ".png"
    for colour in ((0, 0, 255), (0, 255, 0), (255, 0, 0)):  # every crop is visible somewhere
        assert numpy.all(sheet == colour, axis=2).sum() > 1000
    assert sheet.shape[1] >= 2 * 100  # two columns for three tiles


def test_a_sheet_without_crops_still_exists_and_says_so(tmp_path):
    import cv2

    path = build_contact_sheet([], tmp_path / "sheet.png")
    sheet = cv2.imread(str(path))
    assert sheet is not None and sheet.shape[0] > 40
    assert (sheet > 200).any(), "a message is written on the empty sheet"


def test_annotate_draws_boxes_on_a_copy(tmp_path):
    frame = numpy.zeros((200, 300, 3), dtype=numpy.uint8)
    out = annotate_frame(frame, [(0.93, (50, 60, 150, 180))], caption="frame 7")
    assert not frame.any(), "the input frame is untouched"
    assert tuple(out[120, 50]) == BOX, "the box's left edge"
    assert tuple(out[120, 100]) == (0, 0, 0), "the face inside is not painted over"
    assert out[5:30].any(), "the caption bar"
