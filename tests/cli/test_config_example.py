"""config.example.yaml documents every setting: each key appears with its default, its sentence from SCHEMA and
its environment variable, and loading the example gives the defaults (apart from the example bucket).

When a key is added to SCHEMA these tests fail until the example documents it too."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from deeplens_cli.settings.config import defaults, load_settings
from deeplens_cli.settings.settings_schema import SCHEMA

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"
EXAMPLE_BUCKET = "deeplens-example-face-crops"


def documented_keys() -> dict[str, str]:
    """Dotted key -> the comment block directly above it (joined into one line)."""
    blocks: dict[str, str] = {}
    comments: list[str] = []
    section = ""
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comments.append(stripped.lstrip("#").strip())
            continue
        match = re.match(r"^( *)([a-z0-9_]+):", line)
        if match:
            indent, name = match.groups()
            if not indent:
                section = name
                path = name
            else:
                path = f"{section}.{name}"
            blocks[path] = " ".join(comments)
        if stripped == "" or match:
            comments = []
    return blocks


def test_every_schema_key_is_documented_with_its_sentence_and_environment_variable():
    blocks = documented_keys()

    for key in SCHEMA:
        assert key.path in blocks, f"{key.path} missing from config.example.yaml"
        assert key.doc in blocks[key.path], key.path
        assert f"env: {key.env_var}" in blocks[key.path], key.path


def test_every_key_shows_its_default_except_the_example_bucket():
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))

    for key in SCHEMA:
        node = document
        for part in key.path.split("."):
            node = node[part]
        expected = EXAMPLE_BUCKET if key.path == "bucket" else key.default
        assert node == expected, key.path


def test_loading_the_example_gives_the_defaults():
    settings = load_settings(str(EXAMPLE), environ={}, flags={})

    assert dict(settings.values) == {**defaults(), "bucket": EXAMPLE_BUCKET}


def test_lines_stay_readable():
    long_lines = [line for line in EXAMPLE.read_text(encoding="utf-8").splitlines() if len(line) > 110]

    assert long_lines == []
