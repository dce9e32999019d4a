"""`publish`: package the edge function and publish it to the chosen target (skipped when unchanged).

The target plans the publication (V1: a Lambda function version and alias; V2: a component version and its
artifact); `pipeline.run_plan` renders, stops on `--dry-run`, or applies it.
"""

from __future__ import annotations

from deeplens_cli.cli.app import App
from deeplens_cli.engine.pipeline import emit_plan_run, run_plan
from deeplens_cli.targets.registry import make_target


def run_publish(app: App, target: str | None, dry_run: bool) -> None:
    """The publish command: `target` is `--greengrass` (default: greengrass.default_target)."""
    target = target or app.settings["greengrass.default_target"]
    emit_plan_run(app, run_plan(app, make_target(target, app.ctx, app.settings).plan_publish(), dry_run))
