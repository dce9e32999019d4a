"""Writing a device bundle so that an interrupted write can always be resumed, and a key is never exposed.

IoT hands out a certificate's private key exactly once, in the `CreateKeysAndCertificate` response; the bundle
is the only place it lives afterwards. Both targets therefore write a bundle the same way:

* the folder is private (0700);
* first whatever names the certificate (V1: the manifest `deeplens-bundle.json`; V2: the certificate PEM,
  whose SHA-256 is the certificate id), so a run interrupted before the key is written still tells the next
  run which certificate was issued for this folder - that one is retired and a new one issued;
* then the private key, created 0600 from the first byte (O_EXCL: an existing key is never overwritten);
* then the derived, non-secret files, each replaced atomically (a temporary file renamed over it), so a re-run
  that completes an interrupted bundle never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MANIFEST = "deeplens-bundle.json"  # which thing and certificate a bundle folder belongs to (no secret)


def prepare_folder(out_dir: Path) -> None:
    """Create the bundle folder private to the user (0700), also when it already existed."""
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(out_dir, 0o700)


def write_new(path: Path, text: str, mode: int) -> None:
    """Create a file that must not exist yet, with its final mode from the start (no window with wider access)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)  # the umask may have narrowed it; never widened beyond `mode`


def write_secret(path: Path, text: str) -> None:
    """A private key: created 0600, never overwritten."""
    write_new(path, text, 0o600)


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
