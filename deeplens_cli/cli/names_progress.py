"""How far a run over many device names got: a progress line on stderr every twentieth of the way.

`register-device --names-file` with thousands of names prints nothing on stdout with `--output json` until its one
document at the end (and `--dry-run` prints no per-device line in any format), so without this a long run looks
hung. Lines go through `Reporter.progress` (stderr, never stdout): at most 20 of them plus the last, whatever the
number of names, so a CI log stays readable. No rich live display: each name's own apply shows a spinner, and rich
allows one live display at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deeplens_cli.cli.output import Reporter

LINES = 20  # progress lines in a whole run, at most (plus the last)


class NamesProgress:
    """`advance(name)` after each name; silent for a single name (its own output says everything)."""

    def __init__(self, reporter: Reporter, total: int, dry_run: bool) -> None:
        self.reporter = reporter
        self.total = total
        self.done = 0
        self.step = max(1, total // LINES)
        self.verb = "planned" if dry_run else "registered"

    def advance(self, name: str) -> None:
        self.done += 1
        if self.total > 1 and (self.done % self.step == 0 or self.done == self.total):
            self.reporter.progress(f"{self.verb} {self.done} of {self.total} device names (last: {name})")
