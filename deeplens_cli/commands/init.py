"""`deeplens-cli init`: write a commented deeplens.yaml, and record a bucket given to `register-roles`.

Why: every command after the first needs the bucket (and usually the region and profile); without a file the user
repeats `--bucket` on every command, and `deploy` fails with "missing required setting 'bucket'" right after a
successful `register-roles --bucket X`. `init` writes the few keys a first run needs, each with its sentence from
the schema, and points at the full example (shipped inside the package) for the rest.

The file is written atomically and never replaces an existing one without `--force`: a temporary file in the same
folder is validated by the real settings loader (a bad bucket or region is an exit-2 error and leaves nothing
behind), then linked into place, which fails if the name exists (no check-then-write race).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deeplens_cli.errors import ConfigError
from deeplens_cli.file_errors import file_system_error
from deeplens_cli.settings.config import CONFIG_PATH_ENV, DEFAULT_CONFIG_FILE, KEYS, load_settings

if TYPE_CHECKING:
    from deeplens_cli.cli.app import App

EXAMPLE_RESOURCE = "config.example.yaml"


@dataclass(frozen=True)
class InitChoices:
    """The values `init` writes; None leaves the key commented out (the default applies)."""

    bucket: str | None = None
    region: str | None = None
    profile: str | None = None


def config_path_for(app: App, environ: dict[str, str] | None = None) -> Path:
    """The file later commands read: --config, else $DEEPLENS_CONFIG, else ./deeplens.yaml."""
    environ = dict(os.environ) if environ is None else environ
    return Path(app.config_path or environ.get(CONFIG_PATH_ENV) or DEFAULT_CONFIG_FILE)


def example_path() -> Path:
    """The full example of every setting, shipped inside the package (package data)."""
    return Path(__file__).resolve().parents[1] / EXAMPLE_RESOURCE


def render(choices: InitChoices) -> str:
    """The text of a new deeplens.yaml: the keys of a first run, set or commented out, each with its sentence."""
    lines = [
        "# deeplens-cli configuration, written by `deeplens-cli init`.",
        "# Precedence: this file < environment variables (DEEPLENS_<KEY>) < command-line flags.",
        f"# Every other key, with its default and meaning: {example_path()}",
        "",
    ]
    placeholders = {"bucket": "my-face-crops", "region": "us-east-1", "profile": "default"}
    for name in ("bucket", "region", "profile"):
        key = KEYS[name]
        value = getattr(choices, name)
        lines.append(f"# {key.doc}.")
        lines.append(f"# env: {key.env_var}")
        if value is None:
            lines.append(f"# {name}: {placeholders[name]}")
        else:
            lines.append(f"{name}: {_yaml_scalar(value)}")
        lines.append("")
    return "\n".join(lines)


def write_new_config(path: Path, text: str, force: bool, flag: str | None = None) -> None:
    """Validate `text` as a config file, then put it at `path` atomically; an existing file only with `force`.

    `flag` is the option that named `path` (`--config`), None for the default ./deeplens.yaml: a folder that
    cannot be written is then exit 1 (the environment), not a bad flag value (exit 2).
    """
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", "edit it, or pass --force to replace it", code="config_exists")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(
            f"cannot write {path}: folder {folder} does not exist",
            "create the folder or choose another --config",
        )
    try:
        _write_validated(path, text, force, folder)
    except OSError as exc:  # a read-only folder, a full disk: one line naming the config file, not its temporary
        raise file_system_error(exc, path, flag=flag, hint=None if flag else _DEFAULT_PATH_HINT) or exc from exc


_DEFAULT_PATH_HINT = "run it in a folder you can write to, or pass --config PATH"


def _write_validated(path: Path, text: str, force: bool, folder: Path) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        load_settings(temporary, environ={})  # the same validation every command applies: exit 2 on a bad value
        if force:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)  # fails if the name appeared meanwhile: never overwrite
            except FileExistsError:
                raise ConfigError(f"{path} already exists", "edit it, or pass --force to replace it",
                                  code="config_exists") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def run_init(app: App, choices: InitChoices, force: bool) -> Path:
    """The init command: write the file, then say what to run next (or one JSON document)."""
    path = config_path_for(app)
    write_new_config(path, render(choices), force, flag="--config" if app.config_path else None)
    reporter = app.reporter
    if reporter.json:
        reporter.emit_json({"config": str(path), "bucket": choices.bucket, "region": choices.region,
                            "profile": choices.profile})
    else:
        reporter.line(f"wrote {path}")
        if choices.bucket is None:
            reporter.line("next: set bucket in it (or run `deeplens-cli register-roles --bucket NAME --save`)")
        else:
            reporter.line("next: deeplens-cli doctor, then deeplens-cli register-roles")
    return path


# ---------------------------------------------------------------------------------------------- recording a bucket


_BUCKET_LINE = re.compile(r"^#? ?bucket:.*$", re.MULTILINE)


def record_bucket(path: Path, bucket: str) -> None:
    """Set `bucket` in the config file at `path` (created like `init` would when absent), keeping its comments.

    The top-level `bucket:` line (or the commented one `init` writes) is replaced; a file without one gets the
    line appended. The result is validated before it replaces the file.
    """
    if not path.exists():
        write_new_config(path, render(InitChoices(bucket=bucket)), force=False)
        return
    text = path.read_text(encoding="utf-8")
    line = f"bucket: {_yaml_scalar(bucket)}"
    if _BUCKET_LINE.search(text):
        updated = _BUCKET_LINE.sub(line, text, count=1)
    else:
        updated = text + ("" if text.endswith("\n") or not text else "\n") + line + "\n"
    write_new_config(path, updated, force=True)


def offer_to_record_bucket(app: App, bucket: str | None, save: bool | None) -> None:
    """After `register-roles --bucket X`: record X so later commands need no flag.

    `save=True` (--save) records without asking, `save=False` (--no-save) never does; otherwise the user is
    asked on a terminal, and a script gets a one-line tip instead of a prompt it cannot answer.
    """
    if not bucket or save is False:
        return
    path = config_path_for(app)
    if _recorded_bucket(path) == bucket:
        return
    reporter = app.reporter
    if save is None:
        if reporter.json or not (sys.stdin.isatty() and sys.stderr.isatty()):
            reporter.progress(
                f"tip: pass --save to record bucket {bucket} in {path}, so later commands need no --bucket"
            )
            return
        import click

        if not click.confirm(f"Record bucket {bucket} in {path} so later commands need no --bucket?",
                             default=True, err=True):
            return
    record_bucket(path, bucket)
    reporter.progress(f"recorded bucket {bucket} in {path}")


def _recorded_bucket(path: Path) -> str | None:
    if not path.exists():
        return None
    try:
        return load_settings(path, environ={})["bucket"]
    except ConfigError:
        return None


def _yaml_scalar(value: str) -> str:
    """A string as a YAML scalar that reads back as the same string (quoted only when YAML would change it)."""
    import yaml

    return yaml.safe_dump(value, default_style=None).removesuffix("\n...\n").strip()
