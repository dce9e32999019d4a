"""Where output goes: results on stdout (a table, or exactly one JSON document), progress and logs on stderr.

With `--output json`, stdout holds one JSON document and nothing else, so CI can pipe it to `jq`; progress
still goes to stderr as plain lines. On a terminal, progress uses rich; off a terminal it is plain lines, so
CI logs stay readable. rich is imported only when something is rendered.
"""

from __future__ import annotations

import json
import sys
from typing import IO, TYPE_CHECKING, Any, Iterable, Sequence

if TYPE_CHECKING:
    from deeplens_cli.plan import Plan


class Reporter:
    def __init__(self, output: str = "text", verbose: bool = False, stdout: IO[str] | None = None,
                 stderr: IO[str] | None = None) -> None:
        self.output = output
        self.verbose = verbose
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self._emitted_json = False

    @property
    def json(self) -> bool:
        return self.output == "json"

    @property
    def has_emitted_json(self) -> bool:
        """Whether the command already printed its JSON document (an error after it must not print a second)."""
        return self._emitted_json

    @property
    def interactive(self) -> bool:
        return not self.json and _isatty(self.stderr)

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

    # -- stdout -------------------------------------------------------------------------------------------

    def emit_json(self, document: Any) -> None:
        if self._emitted_json:
            raise RuntimeError("a command must print exactly one JSON document")
        self._emitted_json = True
        json.dump(document, self.stdout, indent=2, sort_keys=False, default=str)
        self.stdout.write("\n")
        self.stdout.flush()

    def line(self, text: str = "") -> None:
        if not self.json:
            print(text, file=self.stdout, flush=True)

    def table(self, title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        if self.json:
            return
        from rich.table import Table

        table = Table(title=title, title_justify="left", show_lines=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*("" if cell is None else str(cell) for cell in row))
        self._console(self.stdout).print(table)

    def plan(self, plan: Plan, dry_run: bool = False) -> None:
        """Render a plan as a table (text mode). JSON mode includes the plan in the command's one document."""
        if self.json:
            return
        style = {"create": "green", "update": "yellow", "delete": "red", "noop": "dim"}
        rows = [(f"[{style[a.verb]}]{a.verb}[/{style[a.verb]}]", a.resource, a.reason) for a in plan.actions]
        suffix = " (dry run: nothing changed)" if dry_run else ""
        self.table(f"{plan.title}{suffix}", ("action", "resource", "reason"), rows)
        counts = plan.counts()
        self.line(f"{counts['create']} to create, {counts['update']} to update, {counts['delete']} to delete, "
                  f"{counts['noop']} unchanged")

    def _console(self, stream: IO[str]) -> Any:
        from rich.console import Console

        # Off a terminal rich would assume 80 columns and fold resource names; logs read better wide.
        width = None if _isatty(stream) else 160
        return Console(file=stream, soft_wrap=False, highlight=False, width=width)


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
