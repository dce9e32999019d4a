"""Writing a device bundle so that an interrupted write can always be resumed, and a key is never exposed.

The device's private key is made on this machine and lives only in its bundle folder, so both targets write a
bundle the same way:

* the folder is this device's own (`check_folder`, on every attempt) and private (0700);
* first the private key, before IoT is asked for its certificate: created 0600 from the first byte, complete
  or absent under its final name (a private temporary file hard-linked into place), never overwritten - so a
  lost answer leaves a key whose certificate the re-run finds;
* then what names the certificate (V1: the manifest `deeplens-bundle.json`; V2: the certificate PEM);
* then the derived, non-secret files, each replaced atomically (a temporary file renamed over it), so a re-run
  that completes an interrupted bundle never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from deeplens_cli.errors import ConfigError, DeeplensError

MANIFEST = "deeplens-bundle.json"  # which thing and certificate a bundle folder belongs to (no secret)


def prepare_folder(out_dir: Path) -> None:
    """Create the bundle folder private to the user (0700), also when it already existed.

    Only ever called after `check_folder` accepted the folder as this device's own: chmod on a user's folder
    is not ours to do.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(out_dir, 0o700)
    except OSError as exc:
        raise DeeplensError(f"cannot write the device bundle to {out_dir}: {exc.strerror or exc}",
                            "choose a folder you can write to, then run the same command again") from exc


def check_creatable(out_dir: Path) -> None:
    """Fail before any AWS call when --out cannot be created (`os.access` says yes for /proc/x as root).

    The folders this probe creates are removed again, so a dry run or a refused run leaves nothing behind.
    """
    if out_dir.is_dir():
        return
    created: list[Path] = []
    probe = out_dir
    while not probe.exists() and probe != probe.parent:
        created.append(probe)
        probe = probe.parent
    try:
        out_dir.mkdir(parents=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"--out {out_dir} cannot be created ({exc.strerror or exc})",
                          "choose a folder you can write to") from exc
    for folder in created:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            pass


def check_folder(out_dir: Path, owns: Iterable[str], belongs: bool, owner: str | None) -> None:
    """Refuse an --out that is not this device's own bundle folder: checked on every attempt, resumed or not.

    `owns` are the names a bundle of this target may hold (anything else is the user's: README.md of a project,
    another tool's config); `belongs` says whether what names the device in the folder (V1 manifest, V2
    config.yaml / certificate) is this device's, `owner` names whom it belongs to otherwise.
    """
    try:
        exists = out_dir.exists()
    except OSError as exc:  # e.g. a name too long for the file system
        raise ConfigError(f"--out {out_dir} cannot be created ({exc.strerror or exc})",
                          "choose a folder you can write to") from exc
    if not exists:
        return
    if not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} is a file", "choose a folder for the device bundle")
    entries = [entry.name for entry in out_dir.iterdir()]
    if not entries:
        return
    foreign = sorted(name for name in entries if name not in owns and not (name.startswith(".") and name.endswith(".tmp")))
    if foreign or not belongs:
        what = f"files that are not this device's bundle ({', '.join(foreign[:3])})" if foreign else \
            f"files of {owner or 'another device'}"
        raise ConfigError(f"--out {out_dir} already holds {what}",
                          "a bundle holds a private key issued only once: choose another --out or move the old one")


def holds_private_key(path: Path) -> bool:
    """True when `path` is a complete PEM private key; a 0-byte or cut-off file (a kill between creating and
    writing it) holds no key and is never reported as one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return False
    return "-----BEGIN" in text and "PRIVATE KEY-----" in text and "-----END" in text


def discard_broken_key(path: Path) -> bool:
    """Remove a key file that holds no key (see `holds_private_key`); True when one was removed."""
    if path.exists() and not holds_private_key(path):
        path.unlink()
        return True
    return False


def write_new(path: Path, text: str, mode: int) -> None:
    """Create a file that must not exist yet, with its final mode from the start (no window with wider access)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, mode)  # the umask may have narrowed it; never widened beyond `mode`


def write_secret(path: Path, text: str) -> None:
    """A private key: created 0600, never overwritten, and complete or absent under its final name (written to
    a private temporary file, then hard-linked into place, which fails if the name exists)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if temporary.exists():
        temporary.unlink()
    write_new(temporary, text, 0o600)
    try:
        os.link(temporary, path)
    finally:
        temporary.unlink()


def replace_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Write a non-secret file atomically (a temporary file renamed over it)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if temporary.exists():
        temporary.unlink()
    write_new(temporary, text, mode)
    os.replace(temporary, path)


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The folder's manifest, or None when it has none (or an unreadable one)."""
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    replace_file(out_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
