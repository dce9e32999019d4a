"""Where output goes: results on stdout in the chosen format, progress and logs on stderr.

Three formats, as the AWS CLI has them:

- `table` (the default on a terminal): rich tables and sentences for a person.
- `text` (the default when stdout is piped): plain lines, a table row is its cells joined by tabs, with no title,
  header or box drawing, so `cut -f2`, `awk` and `grep` work on it. Notes and summaries go to stderr.
- `json`: stdout holds exactly one JSON document and nothing else (CI pipes it to `jq`).

`--query` takes a JMESPath expression applied to the command's JSON document; the result is then printed in the
chosen format (a generic rendering, since the command's own tables describe the whole document). So with a query
every command hands its document over (`Reporter.json` is true) even in table or text mode. jmespath (shipped with
botocore) and rich are imported only when something needs them, so `--help` stays fast.

Everything printed here may carry text from outside (S3 metadata, MQTT payloads, log lines, what a device reports),
so the Reporter treats every string as data: it goes through `printable` (control characters shown as visible
escapes) and reaches rich as a `Text`, never as markup (`[/bold]` in a device name is shown, not parsed). The only
styled text is our own, passed as `Styled`. JSON goes through `strict_json` (no `NaN` on stdout).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Iterable, Sequence

from deeplens_cli.cli import strict_json
from deeplens_cli.cli.printable import printable
from deeplens_cli.cli.text_format import text_lines, tsv_row

if TYPE_CHECKING:
    from deeplens_cli.engine.plan import Plan

OUTPUT_FORMATS = ("json", "table", "text")


@dataclass(frozen=True)
class Styled:
    """A table cell of our own with a rich style (`Styled("create", "green")`); a plain string cell is data."""

    text: str
    style: str

    def __str__(self) -> str:
        return self.text


def default_output(stdout: IO[str] | None = None) -> str:
    """`table` for a person at a terminal, `text` when stdout is a pipe or a file (scripts, CI logs)."""
    return "table" if _isatty(stdout or sys.stdout) else "text"


class Reporter:
    def __init__(self, output: str = "table", verbose: bool = False, stdout: IO[str] | None = None,
                 stderr: IO[str] | None = None, query: str | None = None) -> None:
        if output not in OUTPUT_FORMATS:
            raise ValueError(f"unknown output format {output!r}")
        self.output = output
        self.verbose = verbose
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.query = query
        self._emitted_json = False
        self._notes: set[str] = set()

    @property
    def json(self) -> bool:
        """Whether the command must hand its one document to `emit_json` instead of rendering it itself:
        with `--output json`, and with `--query` in any format (the query reads the document)."""
        return self.output == "json" or self.query is not None

    @property
    def text(self) -> bool:
        return self.output == "text"

    @property
    def has_emitted_json(self) -> bool:
        """Whether the command already printed its document (an error after it must not print a second)."""
        return self._emitted_json

    @property
    def interactive(self) -> bool:
        return self.output != "json" and _isatty(self.stderr)

    # -- stderr -------------------------------------------------------------------------------------------

    def progress(self, message: str) -> None:
        """One progress line on stderr (never on stdout, so JSON output stays one document)."""
        if self.interactive:
            from rich.text import Text

            self._console(self.stderr).print(Text.assemble(("·", "dim"), " ", printable(message)))
        else:
            print(printable(message), file=self.stderr, flush=True)

    def warn(self, message: str) -> None:
        print(f"warning: {printable(message)}", file=self.stderr, flush=True)

    def debug(self, message: str) -> None:
        if self.verbose:
            print(f"debug: {printable(message)}", file=self.stderr, flush=True)

    def status(self, message: str) -> Any:
        """A context manager showing a spinner on a terminal (rich), a single line otherwise."""
        if self.interactive:
            from rich.text import Text

            return self._console(self.stderr).status(Text(printable(message)))
        print(printable(message), file=self.stderr, flush=True)
        return _NullContext()

    def note(self, message: str) -> None:
        """A caveat that holds for many rows (say, that device health can be a day old), printed once per run:
        under the tables in table mode, on stderr in text mode (stdout stays rows), never in JSON."""
        if self.json or message in self._notes:
            return
        self._notes.add(message)
        print(f"note: {printable(message)}", file=self.stderr if self.text else self.stdout, flush=True)

    # -- stdout -------------------------------------------------------------------------------------------

    def emit_json(self, document: Any) -> None:
        """Print the command's one document: as JSON, or with `--query` its queried part in the chosen format."""
        if self._emitted_json:
            raise RuntimeError("a command must print exactly one JSON document")
        encoded = strict_json.encode(document, indent=2)
        plain = json.loads(encoded.text)  # as JSON carries it (dates as strings, NaN as null): what a query reads
        if self.query is not None:  # before marking the document printed: a failing query still gets its error one
            from deeplens_cli.cli.query import apply_query  # jmespath loads only with --query

            plain = apply_query(self.query, plain)
        self._emitted_json = True
        self._note_nulled(encoded)
        if self.output == "json":
            self.stdout.write((encoded if self.query is None else strict_json.encode(plain, indent=2)).text + "\n")
            self.stdout.flush()
        elif self.output == "text":
            for line in text_lines(plain):
                print(line, file=self.stdout)
            self.stdout.flush()
        else:
            self._generic_table(plain)

    def emit_json_line(self, document: Any) -> None:
        """One object of a JSON-lines stream (`watch`, `logs --follow`): strict JSON on one line of stdout."""
        encoded = strict_json.encode(document)
        self._note_nulled(encoded)
        self.stdout.write(encoded.text + "\n")
        self.stdout.flush()

    def _note_nulled(self, encoded: strict_json.Encoded) -> None:
        """Say on stderr (once per distinct note) where a number JSON cannot carry was printed as null."""
        note = encoded.note()
        if note is not None and note not in self._notes:
            self._notes.add(note)
            self.warn(note)

    def line(self, text: str = "") -> None:
        """One line on stdout for a person (not in JSON mode); whatever it quotes is shown escaped."""
        if not self.json:
            print(printable(text), file=self.stdout, flush=True)

    def table(self, title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """A table in table mode; in text mode its rows as tab-separated lines (no title, no header).

        A cell is data (shown escaped, never read as markup) unless it is `Styled`."""
        if not self.json:
            self._draw_table(title, columns, rows)

    def _draw_table(self, title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        if self.text:
            for row in rows:
                print(tsv_row(str(cell) if isinstance(cell, Styled) else cell for cell in row), file=self.stdout)
            self.stdout.flush()
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title=Text(printable(title)) if title else None, title_justify="left", show_lines=False)
        for column in columns:
            table.add_column(Text(printable(column)), overflow="fold")
        for row in rows:
            table.add_row(*(_rich_cell(cell) for cell in row))
        self._console(self.stdout).print(table)

    def plan(self, plan: Plan, dry_run: bool = False) -> None:
        """Render a plan once: a table (table mode) or `verb<TAB>resource<TAB>reason` lines (text mode).

        JSON mode includes the plan in the command's one document instead. The counts line is a summary for a
        person: on stdout under the table, on stderr in text mode so the rows stay the only thing on stdout.
        """
        if self.json:
            return
        style = {"create": "green", "update": "yellow", "delete": "red", "noop": "dim"}
        rows = [(Styled(a.verb, style[a.verb]), a.resource, a.reason) for a in plan.actions]
        suffix = " (dry run: nothing changed)" if dry_run else ""
        self.table(f"{plan.title}{suffix}", ("action", "resource", "reason"), rows)
        counts = plan.counts()
        summary = (f"{counts['create']} to create, {counts['update']} to update, {counts['delete']} to delete, "
                   f"{counts['noop']} unchanged{suffix}")
        if self.text:
            print(summary, file=self.stderr, flush=True)
        else:
            self.line(summary)

    def _generic_table(self, value: Any) -> None:
        """A query result as a table: a list of objects gets a column per key, an object two columns."""
        rows: list[Sequence[Any]]
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            columns: list[str] = []
            for item in value:
                columns += [key for key in item if key not in columns]
            rows = [[_cell(item.get(column)) for column in columns] for item in value]
        elif isinstance(value, list):
            columns, rows = ["value"], [[_cell(item)] for item in value]
        elif isinstance(value, dict):
            columns, rows = ["key", "value"], [[key, _cell(item)] for key, item in value.items()]
        else:
            print(printable(_cell(value)), file=self.stdout, flush=True)
            return
        self._draw_table(None, columns, rows)

    def _console(self, stream: IO[str]) -> Any:
        from rich.console import Console

        # Off a terminal rich would assume 80 columns and fold resource names; logs read better wide.
        width = None if _isatty(stream) else 160
        return Console(file=stream, soft_wrap=False, highlight=False, width=width)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return strict_json.encode(value).text
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _rich_cell(cell: Any) -> Any:
    """A table cell for rich: a `Text` (never markup), escaped; `Styled` cells keep their style."""
    from rich.text import Text

    if isinstance(cell, Styled):
        return Text(printable(cell.text), style=cell.style)
    return Text("" if cell is None else printable(str(cell)))


class _NullContext:
    def __enter__(self) -> _NullContext:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
