"""The demo's steps: the same code as the commands, with settings that point at the emulator.

`register-roles`, `register-device --greengrass v1|v2`, `deploy --device` and `status --device` run exactly as
the commands run them (planners, executor, waits); nothing bypasses them. Their progress goes to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deeplens_cli.cli.app import App
from deeplens_cli.cli.output import Reporter
from deeplens_cli.commands.deploy import run_deploy
from deeplens_cli.commands.register_device import run_register_device
from deeplens_cli.commands.register_roles import run_register_roles
from deeplens_cli.commands.status import render
from deeplens_cli.demo.sandbox import DEMO_BUCKET, DEMO_REGION
from deeplens_cli.views.status_report import gather_status

if TYPE_CHECKING:
    from deeplens_cli.cli.app import App
    from deeplens_cli.demo.outputs import DemoResult

# Settings of the demo's own deeplens.yaml. Detection values suit a short clip: a lower threshold than the
# DeepLens SSD's 0.6 (the simulated model is calibrated differently), a short cooldown and a cap that a 10 s
# clip cannot hit; deploy polls fast because the device is local.
DEMO_SETTINGS: dict[str, Any] = {
    "region": DEMO_REGION,
    "bucket": DEMO_BUCKET,
    "detection": {"threshold": 0.5, "cooldown_s": 2.0, "max_uploads_per_minute": 60},
    "deploy": {"poll_s": 0.25, "timeout_s": 120},
}


def demo_settings(target: str, endpoint: str, device_name: str, source_spec: str,
                  deeplens: dict[str, Any] | None = None) -> dict[str, Any]:
    """The demo's deeplens.yaml for `target`.

    V1 names the emulator as `endpoint_url`. V2 must not: that setting would send greengrassv2 calls to moto
    too, so the sandbox sets `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_GREENGRASSV2` instead. A V2 device runs
    the component with this Python (`greengrass.python`, whose packages Install reuses), the OpenCV detector and
    the demo's frames as its source, as a Raspberry Pi with a camera would (with `deeplens`, the sections of
    deeplens_device.DeepLensDemo.settings: the awscam camera and model); CloudWatch log upload is off because
    the emulator publishes no aws.greengrass.LogManager.
    """
    config: dict[str, Any] = {**DEMO_SETTINGS, "device": device_name, "greengrass": {"default_target": target}}
    if target == "v1":
        config["endpoint_url"] = endpoint
        return config
    config["greengrass"] = {"default_target": "v2", "python": sys.executable}
    config["detection"] = {**DEMO_SETTINGS["detection"], "detector": "opencv", "source": source_spec}
    config["logs"] = {"cloudwatch": False}
    for section, values in (deeplens or {}).items():  # --device-profile deeplens (deeplens_device.py)
        config[section] = {**config.get(section, {}), **values}
    return config


def demo_app(app: App, work: Path, config: dict[str, Any]) -> App:
    """An App with the demo's settings; its reporter writes everything to stderr.

    Progress and plan tables of the sub-steps are the demo's progress; stdout is kept for the demo's own
    result (and, with --output json, for its single document).
    """
    import yaml

    path = work / "deeplens.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    sub_steps = "table" if app.reporter.output == "table" else "text"  # drawn tables for a person, else plain rows
    reporter = Reporter(output=sub_steps, verbose=app.reporter.verbose, stdout=app.reporter.stderr,
                        stderr=app.reporter.stderr)
    return App(config_path=str(path), global_flags={}, reporter=reporter, environ={})


def register_roles(child: App) -> None:
    child.reporter.progress("demo: deeplens-cli register-roles")
    run_register_roles(child, dry_run=False)


def register_device(child: App, device_name: str, work: Path, target: str) -> None:
    child.reporter.progress(f"demo: deeplens-cli register-device --name {device_name} --greengrass {target}")
    run_register_device(child, names=(device_name,), names_file=None, out_dir=str(work / "devices" / device_name),
                        target=target, fleet=None, claim=False, dry_run=False)


def deploy(child: App, device_name: str) -> None:
    child.reporter.progress(f"demo: deeplens-cli deploy --device {device_name}")
    run_deploy(child, device_name=device_name, fleet=None, dry_run=False, wait=True, force=False,
               rollout_per_minute=None, abort_failure_percent=None)


def status(app: App, child: App, device_name: str, result: DemoResult) -> None:
    """What `deeplens-cli status --device NAME` reports: rendered on stdout, or kept for the JSON document."""
    child.reporter.progress(f"demo: deeplens-cli status --device {device_name}")
    report = gather_status(child.ctx, child.settings, device_name, child.reporter)
    result.status = report.to_dict()
    if not app.reporter.json:
        render(report, app.reporter, child.settings)
    if not report.ok:
        app.reporter.warn("status reports: " + "; ".join(report.problems))
