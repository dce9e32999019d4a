"""`register-device`: register one or many devices (or a fleet's claim bundle) and write each one's bundle.

For each name: look it up (an existing device is left alone, or joins `--fleet`; an interrupted registration is
resumed), ask its target for a plan, hand it to `pipeline.run_plan`, then report. Target-specific knowledge lives
in `targets/greengrass_v1/` and `targets/greengrass_v2/`; the names themselves are checked in `device_names.py`.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

import click

from deeplens_cli.cli.app import App
from deeplens_cli.cli.names_progress import NamesProgress
from deeplens_cli.engine.pipeline import emit_plan_run, run_plan
from deeplens_cli.errors import ConfigError
from deeplens_cli.settings.device_names import read_allowed_names, read_names
from deeplens_cli.targets.iot import ExistingIot, read_existing
from deeplens_cli.targets.registration import registration_lock
from deeplens_cli.targets.registry import fleet_target_name, lookup_device, make_target, spec_for


def run_register_device(app: App, names: tuple[str, ...], names_file: str | None, out_dir: str | None,
                        target: str | None, fleet: str | None, claim: bool, dry_run: bool,
                        allow: tuple[str, ...] = (), allow_file: str | None = None, rotate: bool = False) -> None:
    """The register-device command (also run by `demo`): `--claim` writes the fleet's claim bundle (and edits its
    allow-list, or rotates it); otherwise every `--name` and `--names-file` name is registered."""
    if claim:
        _register_claim(app, fleet=fleet, out_dir=out_dir, target=target, names=names, dry_run=dry_run,
                        allow=read_allowed_names(allow, allow_file), rotate=rotate)
        return
    if allow or allow_file or rotate:
        flag = "--allow" if allow else "--allow-file" if allow_file else "--rotate"
        raise ConfigError(f"{flag} needs --fleet G --claim", "the allow-list and the claim certificate belong to a "
                          "fleet's claim: add --fleet G --claim")
    if not names and not names_file:
        raise click.UsageError("Missing option '--name' (or --names-file, or --fleet G --claim).")
    _register_names(app, name=list(names), out_dir=out_dir, target=target, fleet=fleet, dry_run=dry_run,
                    names_file=names_file)


def _register_names(app: App, name: str | list[str], out_dir: str | None, target: str | None, fleet: str | None,
                    dry_run: bool, names_file: str | None = None) -> None:
    """register-device for one or many names. Many names share one target instance, so the reads every device
    needs the same answer to (role alias, IoT endpoints, the fleet's thing group) are made once; each device then
    costs its own few calls and gets its own bundle folder: `--out/NAME` (default ./devices/NAME). With one name,
    `--out` is that device's bundle folder, as before."""
    names = read_names([name] if isinstance(name, str) else list(name), names_file)
    target = target or app.settings["greengrass.default_target"]
    if fleet and not spec_for(target).fleets:
        raise ConfigError(f"--fleet needs --greengrass {fleet_target_name()}",
                          "IoT thing-group rollouts are a Greengrass V2 feature")
    single = len(names) == 1
    folders = {n: Path(out_dir) if single and out_dir else Path(out_dir or "devices") / n for n in names}
    targets: dict[str, Any] = {}
    documents = []
    # Many names: which things and policies exist is read once (two listings), not once per name and target.
    known = None if single else read_existing(app.ctx.client("iot"), max_pages=len(names))
    progress = NamesProgress(app.reporter, len(names), dry_run)
    for device_name in names:
        waits: list[str] = []
        # One registration of a name at a time: the second of two concurrent runs waits, then finds it
        # registered (read again: the listing is older than that run's registration).
        with registration_lock(app.ctx.account_id, app.ctx.region, device_name, partial(_waiting, app, waits)):
            document = _register_one(app, device_name, folders[device_name], target, fleet, dry_run, targets,
                                     single, None if waits else known)
        if document is not None:
            documents.append(document)
        progress.advance(device_name)
    if app.reporter.json and not single:
        app.reporter.emit_json({"dry_run": dry_run, "devices": documents})


def _waiting(app: App, waits: list[str], message: str) -> None:
    waits.append(message)
    app.reporter.progress(message)


def _register_one(app: App, name: str, bundle: Path, target: str, fleet: str | None, dry_run: bool,
                  targets: dict[str, Any], single: bool,
                  existing_iot: ExistingIot | None = None) -> dict[str, Any] | None:
    known = lookup_device(app.ctx, app.settings, name, app.reporter, include_incomplete=True, console_groups=False,
                          known=existing_iot)
    existing = [d for d in known if d.name == name]
    if existing and fleet and existing[0].target == target:
        # An existing device plus --fleet joins the fleet (its certificate and bundle are left as they are).
        if target not in targets:
            targets[target] = make_target(target, app.ctx, app.settings)
        run = run_plan(app, targets[target].plan_join_fleet(existing[0], fleet), dry_run)
        if app.reporter.json and single:
            emit_plan_run(app, run, bundle=None)
        elif not app.reporter.json and not dry_run:
            app.reporter.line(f"device '{name}' is in fleet {fleet}")
        return {"name": name, "dry_run": dry_run, "changed": run.changed, "fleet": fleet}
    if existing:
        device = existing[0]
        message = f"device '{name}' is already registered ({device.target}, thing {device.thing_name}); nothing to do"
        app.reporter.progress(message)
        document = {"dry_run": dry_run, "device": device.to_dict(), "changed": False, "message": message}
        if app.reporter.json and single:
            app.reporter.emit_json(document)
        elif not app.reporter.json:
            app.reporter.line(message)
        return document

    # An interrupted registration is resumed, not refused: its thing carries the pending name and its bundle folder
    # already holds the certificate and key that only the first run could write.
    resuming = [d for d in known if d.name == f"{name} (incomplete)"]
    if resuming:
        target = resuming[0].target
        app.reporter.progress(f"resuming the incomplete registration of '{name}' "
                              f"({target}, thing {resuming[0].thing_name})")
    else:
        check_bundle_dir(bundle)
    if target not in targets:
        targets[target] = make_target(target, app.ctx, app.settings)
    plan = targets[target].plan_register_device(name, str(bundle), fleet, existing_iot)
    run = run_plan(app, plan, dry_run)
    if app.reporter.json and single:
        emit_plan_run(app, run, bundle=None if dry_run else str(bundle))
    elif not app.reporter.json and not dry_run:
        app.reporter.line(f"device '{name}' registered ({target}); bundle written to {bundle}/ "
                          f"(the private key is in it, mode 0600: copy it to the device, keep it secret)")
    return {"name": name, "dry_run": dry_run, "changed": run.changed, "bundle": None if dry_run else str(bundle)}


def _register_claim(app: App, fleet: str | None, out_dir: str | None, target: str | None, names: tuple[str, ...],
                    dry_run: bool, allow: list[str], rotate: bool) -> None:
    """`register-device --fleet G --claim`: the fleet's provisioning template guarded by its pre-provisioning hook,
    the allow-list (+ `--allow`), a claim certificate and one bundle (targets/greengrass_v2/provisioning.py); each
    camera then registers itself on first boot, if its name is allowed and not taken. `--rotate` issues a new claim
    and revokes the old one."""
    if not fleet:
        raise ConfigError("--claim needs --fleet", "name the IoT thing group the cameras register into")
    if names:
        raise ConfigError("--claim takes no --name", "each camera names itself when it installs the bundle")
    if target and not spec_for(target).fleets:
        raise ConfigError(f"--claim needs --greengrass {fleet_target_name()}", "fleet provisioning is Greengrass V2")
    bundle = Path(out_dir) if out_dir else Path("devices") / f"{fleet}-claim"
    plan = make_target(fleet_target_name(), app.ctx, app.settings).plan_claim_provisioning(fleet, str(bundle), allow,
                                                                                            rotate)
    issued = any(a.resource == f"iot-certificate/claim-{fleet}" and a.verb == "create" for a in plan.actions)
    run = run_plan(app, plan, dry_run)
    if app.reporter.json:
        emit_plan_run(app, run, bundle=None if dry_run or not issued else str(bundle))
    elif not dry_run:
        if issued:
            app.reporter.line(f"claim bundle for fleet {fleet} written to {bundle}/: on each camera run "
                              f"`sudo sh install.sh NAME` (the claim key is in it, mode 0600: keep it secret)"
                              + ("; the old claim is revoked" if rotate else ""))
        [listed] = [a for a in plan.actions if a.resource.startswith("s3-object/")]
        app.reporter.line(f"fleet {fleet}: {listed.details.get('names', 0)} name(s) may register by claim, each once"
                          + ("" if allow or listed.details.get("names") else
                             " - add names with --allow NAMES or --allow-file FILE"))


def check_bundle_dir(bundle: Path) -> None:
    """Refuse to overwrite an existing bundle, and fail before any AWS call when the folder cannot be written."""
    try:
        bundle.exists()
    except OSError as exc:  # e.g. a name too long for the file system
        raise ConfigError(f"--out {bundle} cannot be created ({exc.strerror or exc})",
                          "choose a folder you can write to") from exc
    if bundle.exists() and (not bundle.is_dir() or any(bundle.iterdir())):
        raise ConfigError(f"--out {bundle} already exists and is not empty",
                          "a bundle holds a private key issued only once: choose another --out or move the old one")
    parent = bundle if bundle.exists() else _nearest_existing_parent(bundle)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {bundle} is not writable ({parent} does not allow it)",
                          "choose a folder you can write to")


def _nearest_existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path
