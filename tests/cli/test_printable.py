"""`printable`: text from a device or a bucket is shown as data - no control character, bidi control, separator or
lone surrogate survives it, printable text is left alone, and the escapes can be read back (distinct inputs stay
distinct on the screen)."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from deeplens_cli.cli.printable import printable

BIDI_CONTROLS = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def forbidden(char: str) -> bool:
    """What must never reach a terminal from outside: C0, DEL, C1, bidi controls, line/paragraph separators,
    surrogates."""
    return (unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp")) or ord(char) in BIDI_CONTROLS


_ESCAPE = re.compile(r"\\(\\|t|n|r|x[0-9a-f]{2}|u[0-9a-f]{4})")


def read_back(shown: str) -> str:
    """The format's specification, independent of the code: `\\\\`, `\\t`, `\\n`, `\\r`, `\\xHH`, `\\uHHHH` are
    escapes; any other backslash is itself."""
    named = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
    return _ESCAPE.sub(lambda m: named.get(m.group(1)) or chr(int(m.group(1)[1:], 16)), shown)


# Text that leans on the characters that matter: controls, bidi, surrogates, backslashes and the letters after them.
hostile_text = st.text(alphabet=st.one_of(
    st.characters(),
    st.sampled_from(["\\", "x", "u", "t", "n", "r", "1", "b", "\x1b", "\x07", "\x9b", "\u202e", "\u2028", "\ud800"]),
))


@given(hostile_text)
def test_the_output_never_holds_a_control_bidi_separator_or_surrogate(text):
    assert not any(forbidden(char) for char in printable(text))


@given(hostile_text)
def test_the_output_reads_back_as_the_input(text):
    assert read_back(printable(text)) == text


@given(hostile_text, hostile_text)
def test_distinct_inputs_are_shown_distinctly(first, second):
    if first != second:
        assert printable(first) != printable(second)


@given(st.text(alphabet=st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"), exclude_characters="\\")))
def test_printable_text_is_left_as_it_is(text):
    if not any(ord(char) in BIDI_CONTROLS for char in text):
        assert printable(text) == text


def test_terminal_control_sequences_are_shown_not_sent():
    assert printable("\x1b]0;OWNED\x07\x1b[2J") == "\\x1b]0;OWNED\\x07\\x1b[2J"
    assert printable("cam\x9b2J") == "cam\\x9b2J"  # C1 CSI: one byte that starts a sequence on some terminals
    assert printable("100%\rALL CLEAR") == "100%\\rALL CLEAR"


def test_tabs_and_newlines_become_visible_so_a_value_is_one_line():
    assert printable("two\nlines\tand a tab") == "two\\nlines\\tand a tab"


def test_a_right_to_left_override_cannot_reverse_a_name():
    assert printable("crop-\u202egpj.exe") == "crop-\\u202egpj.exe"


def test_accents_scripts_and_emoji_stay_readable():
    assert printable("Café Zürich 東京 📷 👩\u200d💻") == "Café Zürich 東京 📷 👩\u200d💻"  # ZWJ keeps the emoji


def test_a_backslash_is_doubled_only_where_it_would_read_as_an_escape():
    assert printable("C:\\Users\\me") == "C:\\Users\\me"
    assert printable('{"a": "\\"quoted\\""}') == '{"a": "\\"quoted\\""}'
    assert printable("C:\\new\\tmp") == "C:\\\\new\\\\tmp"
    assert printable("\\x1b") == "\\\\x1b"  # four characters, not an ESC: shown differently from a real one
    assert printable("\\\x1b") == "\\\\\\x1b"
