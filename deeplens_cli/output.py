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
"""

from __future__ import annotations

import json
import sys
from typing import IO, TYPE_CHECKING, Any, Iterable, Sequence

from deeplens_cli.query import apply_query
from deeplens_cli.text_format import text_lines, tsv_row

if TYPE_CHECKING:
    from deeplens_cli.plan import Plan

OUTPUT_FORMATS = ("json", "table", "text")


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
            self._console(self.stderr).print(f"[dim]·[/dim] {message}", highlight=False)
        else:
            print(message, file=self.stderr, flush=True)

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=self.stderr, flush=True)

    def debug(self, message: str) -> None:
        if self.verbose:
            print(f"debug: {message}", file=self.stderr, flush=True)

    def status(self, message: str) -> Any:
        """A context manager showing a spinner on a terminal (rich), a single line otherwise."""
        if self.interactive:
            return self._console(self.stderr).status(message)
        print(message, file=self.stderr, flush=True)
        return _NullContext()

    def note(self, message: str) -> None:
        """A caveat that holds for many rows (say, that device health can be a day old), printed once per run:
        under the tables in table mode, on stderr in text mode (stdout stays rows), never in JSON."""
        if self.json or message in self._notes:
            return
        self._notes.add(message)
        if self.text:
            print(f"note: {message}", file=self.stderr, flush=True)
        else:
            print(f"note: {message}", file=self.stdout, flush=True)

    # -- stdout -------------------------------------------------------------------------------------------

    def emit_json(self, document: Any) -> None:
        """Print the command's one document: as JSON, or with `--query` its queried part in the chosen format."""
        if self._emitted_json:
            raise RuntimeError("a command must print exactly one JSON document")
        if self.query is not None:  # before marking the document printed: a failing query still gets its error one

            document = apply_query(self.query, _plain(document))
        self._emitted_json = True
        if self.output == "json":
            json.dump(document, self.stdout, indent=2, sort_keys=False, default=str)
            self.stdout.write("\n")
            self.stdout.flush()
        elif self.output == "text":
            for line in text_lines(_plain(document)):
                print(line, file=self.stdout)
            self.stdout.flush()
        else:
            self._generic_table(_plain(document))

    def line(self, text: str = "") -> None:
        if not self.json:
            print(text, file=self.stdout, flush=True)

    def table(self, title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """A table in table mode; in text mode its rows as tab-separated lines (no title, no header)."""
        if not self.json:
            self._draw_table(title, columns, rows)

    def _draw_table(self, title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        if self.text:
            for row in rows:
                print(tsv_row(_strip_markup(cell) for cell in row), file=self.stdout)
            self.stdout.flush()
            return
        from rich.table import Table

        table = Table(title=title, title_justify="left", show_lines=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*("" if cell is None else str(cell) for cell in row))
        self._console(self.stdout).print(table)

    def plan(self, plan: Plan, dry_run: bool = False) -> None:
        """Render a plan once: a table (table mode) or `verb<TAB>resource<TAB>reason` lines (text mode).

        JSON mode includes the plan in the command's one document instead. The counts line is a summary for a
        person: on stdout under the table, on stderr in text mode so the rows stay the only thing on stdout.
        """
        if self.json:
            return
        style = {"create": "green", "update": "yellow", "delete": "red", "noop": "dim"}
        rows = [(f"[{style[a.verb]}]{a.verb}[/{style[a.verb]}]", a.resource, a.reason) for a in plan.actions]
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
            print(_cell(value), file=self.stdout, flush=True)
            return
        from rich.markup import escape

        self._draw_table(None, columns, [[escape(cell) for cell in row] for row in rows])

    def _console(self, stream: IO[str]) -> Any:
        from rich.console import Console

        # Off a terminal rich would assume 80 columns and fold resource names; logs read better wide.
        width = None if _isatty(stream) else 160
        return Console(file=stream, soft_wrap=False, highlight=False, width=width)


def _plain(document: Any) -> Any:
    """The document as JSON would carry it (dates and paths as strings), so a query sees what `--output json`
    shows."""
    return json.loads(json.dumps(document, default=str))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _strip_markup(cell: Any) -> str:
    """Table cells may carry rich colour markup (`[green]create[/green]`); text output wants the word only."""
    if cell is None:
        return ""
    text = str(cell)
    if "[" not in text:
        return text
    from rich.errors import MarkupError
    from rich.text import Text

    try:
        return Text.from_markup(text).plain
    except MarkupError:
        return text


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
