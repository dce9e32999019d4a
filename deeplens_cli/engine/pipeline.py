"""The one way a planning command runs: desired state -> build -> plan -> (stop on --dry-run) -> execute -> report.

A command builds its plan (planners only read), then hands it to `run_plan`, which renders it, stops there on a
dry run, asks for confirmation where the command needs it, and executes it through the one Executor. What the
command reports afterwards (a line, or with `--output json` one document: `PlanRun.document`) is its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from deeplens_cli.engine.executor import Executor

if TYPE_CHECKING:
    from deeplens_cli.cli.app import App
    from deeplens_cli.engine.executor import ExecutionResult
    from deeplens_cli.engine.plan import Action, Plan


@dataclass(frozen=True)
class PlanRun:
    """A plan and what running it did: `result` is None on a dry run and when nothing had to change."""

    plan: Plan
    result: ExecutionResult | None
    dry_run: bool

    @property
    def changed(self) -> bool:
        return self.result is not None

    def document(self, **extra: Any) -> dict[str, Any]:
        """The one JSON document a plan-driven command prints with `--output json`."""
        document: dict[str, Any] = {"dry_run": self.dry_run, "plan": self.plan.to_dict()}
        if self.result is not None:
            document["result"] = self.result.to_dict()
        document.update(extra)
        return document


def run_plan(app: App, plan: Plan, dry_run: bool, confirm: Callable[[Plan], None] | None = None) -> PlanRun:
    """Render the plan once; on a dry run stop there; otherwise confirm (when asked to) and execute it.

    The plan is printed once, before anything changes. While it is applied, progress says how far it got (a spinner
    line on a terminal, one `applying` line otherwise; each action with -v) instead of printing every action again.
    With `--detailed-exitcode` a dry run records whether changes are pending; `cli.main` turns that into exit 2.
    """
    if app.detailed_exitcode and not dry_run:  # the CLI refuses this at parse time; this guards other callers
        raise RuntimeError("--detailed-exitcode without --dry-run")
    app.reporter.plan(plan, dry_run)
    if dry_run:
        app.changes_pending = app.changes_pending or not plan.is_noop
        return PlanRun(plan, None, True)
    if plan.is_noop:
        app.reporter.progress(f"{plan.title}: nothing to do, everything is up to date")
        return PlanRun(plan, None, False)
    if confirm is not None:
        confirm(plan)
    total = len(plan.changes)
    reporter = app.reporter
    with reporter.status(f"applying {total} change(s)") as spinner:
        counter = _ActionCounter(reporter, spinner, total)
        result = Executor(app.ctx, reporter.progress, on_action=counter).execute(plan)
    reporter.progress(f"applied {len(result.completed)} change(s)")
    return PlanRun(plan, result, False)


class _ActionCounter:
    """Told when each action starts: the plan was just printed, so this shows how far it got, not the action again
    (the spinner's text on a terminal; a debug line with -v)."""

    def __init__(self, reporter: Any, spinner: Any, total: int) -> None:
        self.reporter = reporter
        self.spinner = spinner
        self.total = total
        self.started = 0

    def __call__(self, action: Action) -> None:
        self.started += 1
        self.spinner.update(f"applying {self.started}/{self.total}: {action.verb} {action.resource}")
        self.reporter.debug(f"{action.verb} {action.resource}: {action.reason}")


def emit_plan_run(app: App, run: PlanRun, **extra: Any) -> None:
    """With `--output json`, print the run's document (the plan, what was applied, and `extra`)."""
    if app.reporter.json:
        app.reporter.emit_json(run.document(**extra))
