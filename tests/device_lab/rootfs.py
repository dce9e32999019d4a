"""Debian root file systems for the device lab: built once with debootstrap, cached outside the repository.

A fresh device has only what its image ships: `python3`, `curl`, `unzip`, `sudo`, `ca-certificates` on top of
Debian's `minbase`. Everything else must come from our own install steps, so that is all a root file system
gets. The mirror is the one this machine's apt uses (`/etc/apt/sources.list.d/debian.sources`), never a
hard-coded host.

The cache key is suite + architecture + package list; a build goes to a temporary tar that is renamed into
place only when complete, so an interrupted build never leaves a half root file system behind. Every lab run
extracts a fresh copy (`fresh_copy`), so no run sees what another run installed.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CACHE_DIR = Path(os.environ.get("DEEPLENS_DEVICE_LAB_CACHE", "/var/cache/deeplens-device-lab"))
PACKAGES = ("python3", "curl", "unzip", "sudo", "ca-certificates")
SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
DEFAULT_MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class RootfsSpec:
    """One device OS of the lab."""

    suite: str  # bookworm, trixie
    arch: str  # Debian architecture: amd64, arm64

    @property
    def name(self) -> str:
        return f"{self.suite}-{self.arch}"

    @property
    def foreign(self) -> bool:
        """True when its programs run under qemu-user on this machine."""
        return self.arch != host_debian_arch()

    @property
    def cache_file(self) -> Path:
        key = hashlib.sha256(",".join(PACKAGES).encode()).hexdigest()[:12]
        return CACHE_DIR / f"{self.name}-minbase-{key}.tar"


@dataclass(frozen=True)
class Prepared:
    """A fresh root file system for one run, and what it cost."""

    path: Path
    built_s: float  # debootstrap time (0.0 when the cache was warm)
    copied_s: float  # extracting the cached tar
    cold: bool


# Every root file system of the lab; the DeepLens profile (test_deeplens_lab.py) runs on the bookworm amd64 one.
ROOT_FILE_SYSTEMS = (RootfsSpec("bookworm", "amd64"), RootfsSpec("trixie", "amd64"), RootfsSpec("bookworm", "arm64"))


def host_debian_arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def debian_mirror(sources: Path = SOURCES) -> str:
    """The first `URIs:` of a Debian main archive in the deb822 sources file (not the security archive)."""
    try:
        text = sources.read_text()
    except OSError:
        return DEFAULT_MIRROR
    for line in text.splitlines():
        if line.strip().startswith("URIs:"):
            for uri in line.split(":", 1)[1].split():
                if "security" not in uri:
                    return uri
    return DEFAULT_MIRROR


def build(spec: RootfsSpec, log: Path) -> float:
    """debootstrap `spec` into the cache (atomic rename); returns the seconds it took."""
    started = time.monotonic()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    work = CACHE_DIR / f".build-{spec.name}-{os.getpid()}"
    partial = spec.cache_file.with_suffix(".tar.partial")
    shutil.rmtree(work, ignore_errors=True)
    try:
        command = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", f"--arch={spec.arch}",
                   spec.suite, str(work), debian_mirror()]
        with log.open("ab") as out:
            subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=True)
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (work / leftover).glob("*"):
                if entry.is_file():
                    entry.unlink()
        subprocess.run(["tar", "-C", str(work), "--numeric-owner", "-cf", str(partial), "."], check=True)
        os.replace(partial, spec.cache_file)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        partial.unlink(missing_ok=True)
    return time.monotonic() - started


@dataclass
class Builds:
    """Builds every cold root file system in the background at once, so the slow arm64 debootstrap (second
    stage under qemu-user) overlaps the amd64 builds and runs instead of adding to them."""

    log_dir: Path
    _threads: dict[str, threading.Thread] = field(default_factory=dict)
    _seconds: dict[str, float] = field(default_factory=dict)
    _errors: dict[str, BaseException] = field(default_factory=dict)

    def start(self, specs: tuple[RootfsSpec, ...]) -> None:
        for spec in specs:
            if spec.cache_file.exists() or spec.name in self._threads:
                continue
            thread = threading.Thread(target=self._build, args=(spec,), name=f"debootstrap-{spec.name}", daemon=True)
            self._threads[spec.name] = thread
            thread.start()

    def _build(self, spec: RootfsSpec) -> None:
        try:
            self._seconds[spec.name] = build(spec, self.log_dir / f"debootstrap-{spec.name}.log")
        except BaseException as error:  # reported by wait() in the test that needs this root file system
            self._errors[spec.name] = error

    def wait(self, spec: RootfsSpec) -> float | None:
        """Seconds the build of `spec` took (None: it was cached already); raises what the build raised."""
        thread = self._threads.get(spec.name)
        if thread is None:
            return None
        thread.join()
        if spec.name in self._errors:
            raise self._errors[spec.name]
        return self._seconds[spec.name]


def fresh_copy(spec: RootfsSpec, into: Path, log: Path, builds: Builds | None = None) -> Prepared:
    """A new root file system for one run at `into` (built first when the cache is cold)."""
    built = builds.wait(spec) if builds is not None else None
    cold = built is not None or not spec.cache_file.exists()
    built_s = built if built is not None else (build(spec, log) if cold else 0.0)
    started = time.monotonic()
    into.mkdir(parents=True)
    subprocess.run(["tar", "-C", str(into), "--numeric-owner", "-xpf", str(spec.cache_file)], check=True)
    return Prepared(path=into, built_s=built_s, copied_s=time.monotonic() - started, cold=cold)
