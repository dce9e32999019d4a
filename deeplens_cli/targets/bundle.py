"""Writing a device bundle so that an interrupted write can always be resumed, and a key is never exposed.

The device's private key is made on this machine and lives only in its bundle folder, so both targets write a
bundle the same way:

* the folder is this device's own (`check_folder`, on every attempt) and private (0700);
* first the private key, before IoT is asked for its certificate: created 0600 from the first byte, complete
  or absent under its final name (a private temporary file hard-linked into place), never overwritten - so a
  lost answer leaves a key whose certificate the re-run finds;
* then what names the certificate: its PEM (V1 also names it in the manifest `deeplens-bundle.json`);
* then the derived, non-secret files, each replaced atomically (a temporary file renamed over it), so a re-run
  that completes an interrupted bundle never leaves a half-written file.

Which certificate a folder holds is told one way for both targets (`held_certificate`): by what the folder
itself names - each certificate PEM, whose DER SHA-256 is its IoT certificate id, plus a manifest's
`certificate_id` when the folder has one - paired with the key file next to it, and for a key whose
certificate the folder does not name yet, by the key (`registration.certificate_for_key`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from deeplens_cli.errors import ConfigError, DeeplensError
from deeplens_cli.targets.registration import (
    Certificate,
    certificate_for_key,
    certificate_of_pem,
    describe_certificate,
    key_fingerprint,
    new_private_key,
)

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
    foreign = sorted(
        name for name in entries if name not in owns and not (name.startswith(".") and name.endswith(".tmp"))
    )
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


def ensure_private_key(path: Path) -> str:
    """The private key in `path`, made here first (`write_secret`: 0600, complete or absent) when the file holds
    none; a 0-byte or cut-off file a kill left there is replaced. Both targets write the key this way before IoT
    is asked for its certificate."""
    if not holds_private_key(path):
        discard_broken_key(path)
        write_secret(path, new_private_key())
    return path.read_text(encoding="ascii")


def is_folder(path: Path) -> bool:
    """`path.is_dir()`, False also for a name the file system refuses (too long): `check_folder` says why."""
    try:
        return path.is_dir()
    except OSError:
        return False


def write_new(path: Path, text: str, mode: int, named: Path | None = None) -> None:
    """Create a file that must not exist yet, with its final mode from the start (no window with wider access).

    When it fails (a full disk), nothing is left at `path`, and the error names `named` (the file the user will
    look for, when `path` is its temporary sibling): the write names no file of its own.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        exc.filename = str(named or path)
        raise
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        exc.filename = str(named or path)
        path.unlink(missing_ok=True)  # never a cut-off file (a key must be complete or absent)
        raise
    os.chmod(path, mode)  # the umask may have narrowed it; never widened beyond `mode`


def write_secret(path: Path, text: str) -> None:
    """A private key: created 0600, never overwritten, and complete or absent under its final name (written to
    a private temporary file, then hard-linked into place, which fails if the name exists)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if temporary.exists():
        temporary.unlink()
    write_new(temporary, text, 0o600, named=path)
    try:
        os.link(temporary, path)
    finally:
        temporary.unlink()


def replace_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Write a non-secret file atomically (a temporary file renamed over it)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if temporary.exists():
        temporary.unlink()
    write_new(temporary, text, mode, named=path)
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


# ---------------------------------------------------------------------------------------------- which certificate


@dataclass(frozen=True)
class KeyPairFiles:
    """Where a target's bundle keeps a certificate and its private key, relative to the folder. A `*` stands for
    the certificate's short id (V1: certs/<id[:10]>.cert.pem next to certs/<id[:10]>.private.key); without
    one the bundle holds a single pair (V2: device.pem.crt next to private.pem.key)."""

    certificate: str
    key: str

    def key_of(self, out_dir: Path, certificate_file: Path) -> Path:
        return out_dir / self.key.replace("*", _wildcard(self.certificate, certificate_file.relative_to(out_dir)))

    def certificate_of(self, out_dir: Path, key_file: Path) -> Path:
        return out_dir / self.certificate.replace("*", _wildcard(self.key, key_file.relative_to(out_dir)))

    def key_for_id(self, out_dir: Path, certificate_id: str) -> Path:
        return out_dir / self.key.replace("*", certificate_id[:10])


def _wildcard(pattern: str, path: Path) -> str:
    """What the `*` of `pattern` matched in `path` ("" for a pattern without one)."""
    if "*" not in pattern:
        return ""
    head, tail = pattern.split("*", 1)
    name = path.as_posix()
    return name[len(head):len(name) - len(tail)]


@dataclass(frozen=True)
class HeldCertificate:
    """What a bundle folder holds, as IoT knows it.

    `kept`: the certificate whose private key is in the folder - used, never replaced. `unfinished`: a
    certificate the folder names whose key never reached it (an interrupted write) - to be retired.
    `unknown_key`: a key next to a certificate IoT does not have (deleted since) - each target decides.
    """

    kept: Certificate | None = None
    unfinished: Certificate | None = None
    unknown_key: Path | None = None

    @property
    def named(self) -> Certificate | None:
        return self.kept or self.unfinished


def held_certificate(iot: Any, out_dir: Path, files: KeyPairFiles, candidates: Sequence[Certificate] = (),
                     accept: Callable[[Certificate | None], None] | None = None) -> HeldCertificate:
    """Which certificate the bundle folder holds the key of, the same way for both targets.

    The folder names its certificates itself: each certificate PEM (an IoT certificate id is the SHA-256 of the
    certificate's DER, so the PEM alone finds it: `certificate_of_pem`) and, in a V1 folder, the manifest's
    `certificate_id`. A named certificate whose key file holds a key is kept; one without its key is unfinished.
    A key whose certificate the folder does not name (made here, then IoT's answer was lost or the run stopped)
    is matched by its public key against `candidates` (the thing's certificates) and the recently issued ones.

    Why this way, and not the V1 manifest alone: every bundle any release of either target wrote is recognised.
    V2 folders have no manifest, but every finished bundle of both targets holds its certificate PEM; V1 folders
    of releases that wrote the manifest before the key (and the key before the PEM) name their certificate in
    the manifest only; bundles whose key was made here before IoT answered name nothing but the key. So a
    resumed registration and a re-run on an existing user's folder keep the certificate they hold.

    `accept` (V2: is the folder this device's?) sees the certificate the folder names before any key is read,
    and a certificate found by its key before it is returned; it raises to refuse the folder.

    Only reads: a key file that holds no key (a kill between creating and writing it) counts as absent here and
    is removed by `discard_broken_keys` once the folder is accepted as this device's own.
    """
    if not is_folder(out_dir):
        if accept is not None:
            accept(None)
        return HeldCertificate()
    named: list[tuple[Certificate | None, Path]] = []  # (certificate as IoT has it, the key file next to it)
    for certificate_file in sorted(out_dir.glob(files.certificate)):
        pem = certificate_file.read_text(encoding="utf-8", errors="replace") if certificate_file.is_file() else ""
        if pem.strip():
            found = next((c for c in candidates if c.pem.strip() == pem.strip()), None) or certificate_of_pem(iot, pem)
            named.append((found, files.key_of(out_dir, certificate_file)))
    manifest_id = str((read_manifest(out_dir) or {}).get("certificate_id") or "")
    if manifest_id and not files.certificate_of(out_dir, files.key_for_id(out_dir, manifest_id)).is_file():
        found = next((c for c in candidates if c.id == manifest_id), None) or describe_certificate(iot, manifest_id)
        named.append((found, files.key_for_id(out_dir, manifest_id)))

    kept = next((c for c, key in named if c is not None and holds_private_key(key)), None)
    unfinished = next((c for c, key in named if c is not None and not holds_private_key(key)
                       and (kept is None or c.id != kept.id)), None)
    if accept is not None:
        accept(kept or unfinished)
    if kept is not None:
        return HeldCertificate(kept, unfinished)
    unknown = next((key for c, key in named if c is None and holds_private_key(key)), None)
    paired = {key for _, key in named}
    for key_file in sorted(out_dir.glob(files.key)):
        if key_file in paired or files.certificate_of(out_dir, key_file).exists() or not holds_private_key(key_file):
            continue
        key = key_file.read_text(encoding="ascii", errors="replace")
        try:
            key_fingerprint(key)
        except ValueError as exc:  # not a key this tool wrote (nor can use)
            raise unknown_key_error(key_file) from exc
        found = certificate_for_key(iot, key, key_file.stat().st_mtime, candidates)
        if found is not None and accept is not None:
            accept(found)
        if found is not None:
            return HeldCertificate(found, unfinished if unfinished is None or unfinished.id != found.id else None)
    return HeldCertificate(None, unfinished, unknown)


def unknown_key_error(key_file: Path) -> ConfigError:
    """A key in --out that no certificate of this account is for: never overwritten, never used."""
    return ConfigError(f"{key_file} holds a private key whose certificate this account does not have",
                       "choose another --out, or move that folder away if it belongs to another device")


def discard_broken_keys(out_dir: Path, files: KeyPairFiles) -> None:
    """Remove the key files that hold no key (see `holds_private_key`); only for a folder accepted as ours."""
    try:
        keys = sorted(out_dir.glob(files.key)) if out_dir.is_dir() else []
    except OSError:
        keys = []
    for key_file in keys:
        discard_broken_key(key_file)
