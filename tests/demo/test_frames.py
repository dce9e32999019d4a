"""`--source` of the demo is parsed by edge_function.sources, the same parser the device uses."""

from __future__ import annotations

import pytest

from deeplens_cli.demo.frames import check_source, frame_images
from deeplens_cli.errors import ConfigError


def test_a_folder_counts_the_images_the_edge_source_reads_in_its_order(small_clip):
    source = check_source(str(small_clip.directory))
    assert source.kind == "directory" and source.frames == small_clip.frame_count
    assert frame_images(source.spec) == sorted(frame_images(source.spec))


def test_one_image_file_is_a_source_too(small_clip):
    [first, *_] = frame_images(str(small_clip.directory))
    assert check_source(first).kind == "image" and check_source(first).frames == 1


@pytest.mark.parametrize(("spec", "message"), [
    ("webcam:x", "webcam index must be a number"),
    ("/nonexistent/clip.mp4", "does not exist"),
    ("awscam", "no DeepLens camera"),
])
def test_bad_sources_are_configuration_errors_with_the_parsers_reason(spec, message):
    with pytest.raises(ConfigError, match=message):
        check_source(spec)


def test_an_empty_folder_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="empty"):
        check_source(str(tmp_path))
