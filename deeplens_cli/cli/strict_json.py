"""The one JSON encoder for what deeplens-cli prints: strict JSON (RFC 8259), whatever the values hold.

Python's `json.dumps` writes `NaN`, `Infinity` and `-Infinity` for non-finite floats, which `jq`, JavaScript and
most parsers refuse: one crop whose `confidence` metadata says `nan`, or a device message with `"fps": Infinity`
(which Python's own parser accepts), would make the whole document unreadable for CI. Here such a number becomes
`null`, and the caller learns where (`Encoded.nulled`, JSON paths like `crops[3].confidence`) so it can say so on
stderr. The encoding runs with `allow_nan=False`, so a value this module did not clean can never slip through as
`NaN`. Values JSON has no type for (datetimes, paths) are written as their `str()`, as before.

Every document on stdout goes through `encode`: the command's one document and each line of a JSON-lines stream
(`watch`, `logs --follow`), see output.Reporter.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

MAX_NOTED_PATHS = 3  # a note names a few places; the count says how many there were


@dataclass(frozen=True)
class Encoded:
    """A document as strict JSON text, and the paths of the non-finite numbers that were written as null."""

    text: str
    nulled: tuple[str, ...] = ()

    def note(self) -> str | None:
        """One line for stderr saying what was replaced, or None when nothing was."""
        if not self.nulled:
            return None
        shown = ", ".join(self.nulled[:MAX_NOTED_PATHS]) + (", ..." if len(self.nulled) > MAX_NOTED_PATHS else "")
        return (f"{len(self.nulled)} number(s) that are not finite (NaN or Infinity, which JSON cannot carry) "
                f"printed as null: {shown}")


def encode(document: Any, indent: int | None = None) -> Encoded:
    """`document` as strict JSON; non-finite floats become null (see the module docstring)."""
    try:
        return Encoded(_dumps(document, indent))
    except ValueError:  # allow_nan=False found a NaN or an infinity somewhere: clean, then encode again
        nulled: list[str] = []
        return Encoded(_dumps(_finite(document, "", nulled), indent), tuple(nulled))


def _dumps(document: Any, indent: int | None) -> str:
    return json.dumps(document, indent=indent, allow_nan=False, default=str)


def _finite(value: Any, path: str, nulled: list[str]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        nulled.append(path or "$")
        return None
    if isinstance(value, dict):
        return {key: _finite(item, f"{path}.{key}" if path else str(key), nulled) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item, f"{path}[{index}]", nulled) for index, item in enumerate(value)]
    return value
