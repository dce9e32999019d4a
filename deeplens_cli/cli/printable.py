"""Text from outside (S3 metadata, MQTT payloads, log lines, what a device reports) shown as data, never as terminal
control: the one escaper every printed string goes through (output.Reporter applies it to everything it prints).

A device, or anyone who may write to the bucket, chooses these strings. Printed raw, `\\x1b]0;OWNED\\x07` retitles the
operator's terminal, `\\x1b[2J` clears it, a carriage return overwrites the start of a line with something else, and
U+202E (right-to-left override) makes `gpj.exe` read as `exe.jpg`. So, as `git` and `ls -b` do, such characters are
shown as visible escapes in Python's notation:

- C0 controls, DEL and C1 controls (U+0000-U+001F, U+007F-U+009F): `\\t`, `\\n`, `\\r`, otherwise `\\xHH`;
- the bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069), the line and paragraph
  separators (U+2028, U+2029) and lone surrogates (which cannot even be written as UTF-8): `\\uHHHH`.

Everything else stays as it is, printable Unicode included (accents, CJK, emoji). A backslash stays a single
backslash unless it would read as the start of an escape (followed by `\\`, `x`, `u`, `t`, `n`, `r` or an escaped
character): then it is doubled. So the output never contains a control character, and it is reversible - distinct
strings are shown distinctly (a device named `cam\\x1b` with a real ESC cannot pass for one whose name has the four
characters `\\x1b`), while paths and JSON in log lines keep their backslashes readable (`C:\\Users`, `\\"`).
"""

from __future__ import annotations

import re

ESCAPED = "\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff"
"""The characters shown as escapes (a regular-expression class body)."""

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_UNSAFE = re.compile(f"[{ESCAPED}]|\\\\(?=[\\\\xutnr{ESCAPED}])")


def printable(text: str) -> str:
    """`text` with every control, bidi control, separator and lone surrogate shown as a visible escape."""
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
