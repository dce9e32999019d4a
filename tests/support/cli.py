"""The CLI in-process, as a user runs it: exit code, stdout and stderr, and the AWS calls it made.

`run_cli` runs `deeplens_cli.cli.main` as the console script would, so tests see exactly what a user sees,
including the one-line errors and exit codes. Combine with `aws` (in-process moto) or `moto_server` plus
--endpoint-url. `recorded_aws` keeps every AwsContext the CLI builds, to assert which calls a run made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple

import pytest

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.settings.config import Settings


class CliResult(NamedTuple):
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
            tmp_path: Path) -> Callable[..., CliResult]:
    """`run_cli("--output", "json", "register-roles", env={"DEEPLENS_BUCKET": "b"})` -> (exit_code, stdout, stderr).

    Runs `deeplens_cli.cli.main` in-process as the console script would. The test runs in its own `tmp_path`
    (so ./deeplens.yaml and ./devices/ are the test's own). `env` sets (value) or unsets (None) environment
    variables for the rest of the test. Output captured before the call is discarded, so each result holds
    only this invocation's output. Combine with `aws` (in-process moto) or `moto_server` + --endpoint-url.
    """
    from deeplens_cli.cli import main

    monkeypatch.chdir(tmp_path)

    def run(*args: str, env: dict[str, str | None] | None = None) -> CliResult:
        for name, value in (env or {}).items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        capsys.readouterr()
        try:
            main([str(arg) for arg in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@dataclass
class AwsCallLog:
    """Every AwsContext the CLI built during a test (see `recorded_aws`), and the calls made through them."""

    contexts: list[AwsContext] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    @property
    def calls(self) -> list[tuple[str, str]]:
        return [call for ctx in self.contexts for call in ctx.recorder.calls]

    @property
    def mutating(self) -> list[tuple[str, str]]:
        return [call for ctx in self.contexts for call in ctx.recorder.mutating]

    def clear(self) -> None:
        """Forget earlier runs, e.g. between a first and a second `run_cli`."""
        self.contexts.clear()
        self.sleeps.clear()


@pytest.fixture
def recorded_aws(monkeypatch: pytest.MonkeyPatch) -> AwsCallLog:
    """Record the AWS calls of CLI runs and make their waits instant.

    Wraps `deeplens_cli.aws.make_context` (which `App.ctx` calls) so every context the CLI builds is kept, and
    injects a sleep that records the delay instead of waiting. `log.mutating` lists (service, operation) of
    every non-read call, e.g. to assert that a second run changed nothing.
    """
    import deeplens_cli.aws as aws_module

    log = AwsCallLog()
    real_make_context = aws_module.make_context

    def make_context(settings: Settings, sleep: Callable[[float], None] | None = None) -> AwsContext:
        ctx = real_make_context(settings, sleep=log.sleeps.append)
        log.contexts.append(ctx)
        return ctx

    monkeypatch.setattr(aws_module, "make_context", make_context)
    return log
