"""The Reporter prints what devices and bucket writers chose as data: every channel escapes control characters,
rich never reads a value as markup, and JSON on stdout is strict whatever the values hold."""

from __future__ import annotations

import io
import json

import pytest

from deeplens_cli.cli.output import Reporter, Styled

HOSTILE = "\x1b]0;OWNED\x07\x1b[2J cam\u202egpj [/bold] [red]x[/red]\ttab\nnewline"
SHOWN = "\\x1b]0;OWNED\\x07\\x1b[2J cam\\u202egpj [/bold] [red]x[/red]\\ttab\\nnewline"
CONTROLS = {chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)] if chr(c) != "\n"} | {"\u202e"}


class Terminal(io.StringIO):
    """A stream that says it is a terminal, so the Reporter uses rich (spinners, styled progress)."""

    def isatty(self) -> bool:
        return True


def reporter(output: str, terminal: bool = False, **options) -> Reporter:
    stream = Terminal if terminal else io.StringIO
    return Reporter(output=output, stdout=stream(), stderr=stream(), verbose=True, **options)


def printed(out: Reporter) -> str:
    return out.stdout.getvalue() + out.stderr.getvalue()


def sent_controls(text: str, separator: str = "") -> set[str]:
    """Control characters that reached the streams (the tab between text-mode cells aside)."""
    return set(text) & (CONTROLS - set(separator))


@pytest.mark.parametrize("output", ["table", "text"])
def test_no_channel_passes_a_control_character_through(output):
    out = reporter(output)
    print_everywhere(out)

    assert sent_controls(printed(out), separator="\t" if output == "text" else "") == set()
    assert "\\x1b]0;OWNED\\x07\\x1b[2J" in printed(out) and "\\ttab" in printed(out)


def test_on_a_terminal_rich_draws_its_own_sequences_but_none_from_the_values():
    out = reporter("table", terminal=True)
    print_everywhere(out)

    drawn = printed(out)  # rich's colours, cursor and spinner sequences are there; the values' are not
    assert not {"\x07", "\u202e", "\t"} & set(drawn)
    assert "\x1b]0;OWNED" not in drawn and "\x1b[2J" not in drawn
    assert "\\x1b]0;OWNED\\x07\\x1b[2J" in drawn


def print_everywhere(out: Reporter) -> None:
    out.line(f"device {HOSTILE}")
    out.table(f"Crops from {HOSTILE}", ("device", "confidence"), [(HOSTILE, "0.9"), (Styled("ok", "green"), None)])
    out.warn(HOSTILE)
    out.note(HOSTILE)
    out.progress(HOSTILE)
    out.debug(HOSTILE)
    with out.status(HOSTILE):
        pass


def test_a_line_shows_the_value_escaped_in_full():
    out = reporter("text")
    out.line(HOSTILE)
    assert out.stdout.getvalue() == SHOWN + "\n"


def test_markup_in_a_value_is_shown_not_parsed_in_a_table():
    out = reporter("table")

    out.table("Crops", ("device",), [("[/bold]",), ("[red]x[/red]",), ("[link=https://evil]y[/link]",)])

    drawn = out.stdout.getvalue()
    assert "[/bold]" in drawn and "[red]x[/red]" in drawn and "[link=https://evil]y[/link]" in drawn


def test_markup_in_a_query_result_is_shown_too():
    out = reporter("table", query="devices")
    out.emit_json({"devices": [{"name": "[/bold]"}]})
    assert "[/bold]" in out.stdout.getvalue()


def test_a_non_finite_number_is_null_on_stdout_and_named_on_stderr():
    out = reporter("json")

    out.emit_json({"crops": [{"confidence": float("nan")}, {"confidence": float("inf")}]})

    def refuse(constant):
        raise ValueError(constant)
    assert json.loads(out.stdout.getvalue(), parse_constant=refuse) == {"crops": [{"confidence": None}] * 2}
    assert out.stderr.getvalue() == ("warning: 2 number(s) that are not finite (NaN or Infinity, which JSON cannot "
                                     "carry) printed as null: crops[0].confidence, crops[1].confidence\n")


def test_a_query_reads_null_where_the_document_had_nan():
    for output in ("json", "text"):
        out = reporter(output, query="crops[1]")
        out.emit_json({"crops": [{"confidence": 0.5}, {"confidence": float("nan")}]})
        assert out.stdout.getvalue() in ('{\n  "confidence": null\n}\n', "\n"), out.stdout.getvalue()


def test_json_lines_are_strict_and_the_note_is_given_once():
    out = reporter("json")

    for _ in range(3):
        out.emit_json_line({"message": {"fps": float("nan")}, "device": HOSTILE})

    lines = out.stdout.getvalue().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["message"]["fps"] is None for line in lines)
    assert json.loads(lines[0])["device"] == HOSTILE  # JSON carries the data unchanged (and escaped by JSON itself)
    assert sent_controls(out.stdout.getvalue()) == set()
    assert out.stderr.getvalue().count("warning:") == 1
