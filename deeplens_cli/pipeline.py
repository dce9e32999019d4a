"""The one way a planning command runs: desired state -> build -> plan -> (stop on --dry-run) -> execute -> report.

A command builds its plan (planners only read), then hands it to `run_plan`, which renders it, stops there on a
dry run, asks for confirmation where the command needs it, and executes it through the one Executor. What the
command reports afterwards (a line, or with `--output json` one document: `PlanRun.document`) is its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from deeplens_cli.app import App
    from deeplens_cli.executor import ExecutionResult
    from deeplens_cli.plan import Plan


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
    """Render the plan; on a dry run stop there; otherwise confirm (when asked to) and execute it."""
    from deeplens_cli.executor import Executor

    app.reporter.plan(plan, dry_run)
    if dry_run:
        return PlanRun(plan, None, True)
    if plan.is_noop:
        app.reporter.progress(f"{plan.title}: nothing to do, everything is up to date")
        return PlanRun(plan, None, False)
    if confirm is not None:
        confirm(plan)
    return PlanRun(plan, Executor(app.ctx, app.reporter.progress).execute(plan), False)


def emit_plan_run(app: App, run: PlanRun, **extra: Any) -> None:
    """With `--output json`, print the run's document (the plan, what was applied, and `extra`)."""
    if app.reporter.json:
        app.reporter.emit_json(run.document(**extra))
