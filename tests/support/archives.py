"""Zip archives built in memory from a few named texts: the packages and artifacts the simulator tests feed to
the simulated cores (a Lambda package for V1, a component artifact for V2)."""

from __future__ import annotations

import io
import zipfile


def zip_of(files: dict[str, str]) -> bytes:
    """The bytes of a zip holding each `{name: text}` entry, in the order given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()
