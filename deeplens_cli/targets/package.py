"""What goes to the device: a byte-reproducible zip of `edge_function/` (+ vendored wheels) and its settings.

Why byte-reproducible: `publish` skips the upload and the new Lambda version when the local sha256 equals the
function's `CodeSha256` (Lambda reports base64(sha256(zip))). That comparison is only meaningful when building
the same sources twice gives the same bytes, so the zip has sorted entries, a fixed timestamp (1980-01-01, the
zip epoch), fixed permissions and no caches (`__pycache__`, `*.pyc`, tests).

Vendoring: the device runs the function under its own Python (3.7 on DeepLens), not the workstation's, so
dependencies the device lacks are installed by pip *for the device* (`--python-version 3.7 --platform
manylinux2014_x86_64 --implementation cp --abi cp37m --only-binary=:all:`) into a cache directory keyed by
the requirements, the Python version and the platform. pip still evaluates the dependencies' environment markers
for the Python it runs on (a 3.11 build vendored urllib3 2.0.7 for a 3.7 device, although botocore 1.33.13 wants
urllib3<1.27 below 3.10), so every vendored distribution is then checked against the device's Python
(`target_problems`: Requires-Python, and each dependency whose marker applies to the device vendored in a version
it allows); what the device's markers ask for is resolved again once, and what still does not fit fails the
build with one line naming the distributions. The cache is built once (pip needs the network or a local
wheelhouse then; `PIP_INDEX_URL` / `PIP_FIND_LINKS` are honoured) and reused after that, so later builds are
offline and identical. The default `function.vendor` is empty: DeepLens device software 1.4.5 and later ships
boto3/botocore, and the edge function never downloads code at run time. Pin what you vendor
(e.g. `boto3==1.33.13`, the last boto3 release that supports Python 3.7), or the cache key says nothing about
what was installed.

The same module maps the CLI settings to the `DEEPLENS_*` environment variables the edge function reads
(`edge_environment`), because "which settings does the packaged code get" belongs with the package, and both
Greengrass targets need it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from deeplens_cli.errors import ConfigError, DeeplensError
from edge_function.settings import SettingsError, load_settings

if TYPE_CHECKING:
    from deeplens_cli.settings.config import Settings

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest timestamp a zip entry can hold
FILE_MODE = 0o644
CACHE_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".git"})
TEST_DIRS = frozenset({"tests", "test"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".pyd~", ".swp")
EXCLUDED_NAMES = frozenset({".DS_Store", "Thumbs.db"})
DEFAULT_PLATFORM = "manylinux2014_x86_64"
DEFAULT_PYTHON = "3.7"
COMPLETE_MARKER = ".complete"  # written last: a cache entry without it is an interrupted build


@dataclass(frozen=True)
class Package:
    """A built function package: the zip bytes and the two digests AWS and humans compare it with."""

    zip_bytes: bytes
    sha256_hex: str
    code_sha256_b64: str  # what Lambda returns as CodeSha256
    files: tuple[str, ...]  # entry names, in zip order

    @property
    def size(self) -> int:
        return len(self.zip_bytes)


def edge_function_dir() -> Path:
    """The `edge_function` package directory, found without importing it (it targets the device's Python)."""
    import importlib.util

    spec = importlib.util.find_spec("edge_function")
    if spec is None or not spec.submodule_search_locations:
        raise DeeplensError("the edge_function package is not installed next to deeplens-cli",
                            "reinstall deeplens-cli (pip install -e .) so edge_function/ is importable")
    return Path(list(spec.submodule_search_locations)[0])


def default_cache_dir() -> Path:
    """~/.cache/deeplens-cli/vendor (or under $XDG_CACHE_HOME)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "deeplens-cli" / "vendor"


def build_package(source_dir: str | os.PathLike[str] | None = None, vendor_requirements: Sequence[str] = (),
                  python_version: str = DEFAULT_PYTHON, cache_dir: str | os.PathLike[str] | None = None,
                  platform: str = DEFAULT_PLATFORM, pip_options: Sequence[str] = (),
                  run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run) -> Package:
    """Zip `source_dir` (as the package of the same name) plus vendored requirements at the zip root.

    `pip_options` are passed to pip as they are (tests use `--no-index --find-links DIR`); `run` is the
    subprocess runner, injectable so tests can prove a cached build does not call pip at all.
    """
    source = Path(source_dir) if source_dir is not None else edge_function_dir()
    if not source.is_dir():
        raise DeeplensError(
            f"cannot package {source}: not a directory", "point source_dir at the edge_function package"
        )
    entries: dict[str, Path] = {}
    for arcname, path in _package_files(source, prefix=source.name + "/", skip_tests=True):
        entries[arcname] = path
    if vendor_requirements:
        site = vendor_dir(vendor_requirements, python_version, platform, Path(cache_dir) if cache_dir else None,
                          pip_options, run)
        for arcname, path in _package_files(site, prefix="", skip_tests=False):
            if arcname.startswith(source.name + "/"):
                raise DeeplensError(f"a vendored requirement ships {arcname}, which would shadow the edge function",
                                    "remove that requirement from function.vendor")
            entries.setdefault(arcname, path)
    return zip_entries(entries)


def zip_entries(entries: dict[str, Path]) -> Package:
    """Write the entries into a zip whose bytes depend only on the names and contents."""
    buffer = io.BytesIO()
    names = sorted(entries)
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the mode below is honoured by unzip and by Lambda
            info.external_attr = (0o100000 | FILE_MODE) << 16
            archive.writestr(info, entries[name].read_bytes(), compresslevel=9)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).digest()
    return Package(data, digest.hex(), base64.b64encode(digest).decode("ascii"), tuple(names))


def _package_files(root: Path, prefix: str, skip_tests: bool) -> Iterable[tuple[str, Path]]:
    """Files under root, minus caches; minus tests for our own code (a vendored package may import its own
    `test` modules, so those stay); minus pip's `bin/` console scripts at the top of a vendor dir."""
    for directory, subdirs, files in os.walk(root):
        at_top = Path(directory) == root
        subdirs[:] = sorted(d for d in subdirs
                            if d not in CACHE_DIRS and not d.startswith(".") and not (skip_tests and d in TEST_DIRS)
                            and not (at_top and not skip_tests and d == "bin"))
        for name in sorted(files):
            if name in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES) or name == COMPLETE_MARKER:
                continue
            if skip_tests and (name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"):
                continue
            path = Path(directory) / name
            yield prefix + path.relative_to(root).as_posix(), path


# ---------------------------------------------------------------------------------------------- vendoring


def vendor_key(requirements: Sequence[str], python_version: str, platform: str, pip_options: Sequence[str] = ()) -> str:
    """Cache key of one vendored set: changes whenever anything that decides what pip installs changes."""
    document = {"requirements": [r.strip() for r in requirements], "python": python_version, "platform": platform,
                "implementation": "cp", "pip_options": list(pip_options)}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32]


def vendor_dir_if_cached(requirements: Sequence[str], python_version: str = DEFAULT_PYTHON,
                         platform: str = DEFAULT_PLATFORM, cache_dir: Path | None = None,
                         pip_options: Sequence[str] = ()) -> Path | None:
    """The cached vendor directory, or None when building it would need pip (read-only commands use this)."""
    entry = (cache_dir or default_cache_dir()) / vendor_key(requirements, python_version, platform, pip_options)
    return entry / "site" if (entry / COMPLETE_MARKER).exists() else None


def vendor_dir(requirements: Sequence[str], python_version: str = DEFAULT_PYTHON, platform: str = DEFAULT_PLATFORM,
               cache_dir: Path | None = None, pip_options: Sequence[str] = (),
               run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run) -> Path:
    """The directory holding `requirements` installed for the device; pip runs only on a cache miss."""
    cache_root = cache_dir or default_cache_dir()
    entry = cache_root / vendor_key(requirements, python_version, platform, pip_options)
    site = entry / "site"
    if (entry / COMPLETE_MARKER).exists():
        return site
    cache_root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".building-", dir=cache_root))
    target = TargetPython.for_device(python_version, platform)
    try:
        _pip_install(building / "site", requirements, target, pip_options, run)
        problems = target_problems(building / "site", target)
        pinned = _pins_for(problems)
        if pinned:
            # pip evaluated the dependencies' environment markers for the Python it runs on, not the device's
            # (botocore wants urllib3<1.27 below Python 3.10; a 3.11 build picked urllib3 2.x). Resolve again
            # with what the device's markers ask for, once.
            shutil.rmtree(building / "site")
            _pip_install(building / "site", [*requirements, *pinned], target, pip_options, run)
            problems = target_problems(building / "site", target)
        if problems:
            raise DeeplensError(f"vendored packages do not fit the device's Python {target.version}: "
                                + "; ".join(problem.text for problem in problems),
                                "pin versions that support the device's Python in function.vendor "
                                "(e.g. boto3==1.33.13 urllib3<1.27 for Python 3.7)")
        (building / "requirements.json").write_text(json.dumps(list(requirements)))
        (building / COMPLETE_MARKER).write_text("")
        if entry.exists():  # an interrupted earlier build: replace it
            shutil.rmtree(entry)
        os.replace(building, entry)
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    return site


def _pip_install(site: Path, requirements: Sequence[str], target: TargetPython, pip_options: Sequence[str],
                 run: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    command = [sys.executable, "-m", "pip", "install", "--target", str(site),
               "--python-version", target.version, "--platform", target.platform, "--implementation", "cp",
               "--abi", target.abi, "--only-binary=:all:", "--no-compile", "--disable-pip-version-check",
               "--no-input", "--quiet", *pip_options, *requirements]
    done = run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout or "").strip().splitlines()[-2:])
        raise DeeplensError(f"pip could not vendor {', '.join(requirements)} for Python {target.version}: {tail}",
                            "check function.vendor (pin versions that support the device's Python); pip needs "
                            "the network or PIP_FIND_LINKS the first time, later builds use the cache")


# ---------------------------------------------------------------------------------------------- target Python


@dataclass(frozen=True)
class TargetPython:
    """The interpreter the vendored code will run under: what pip's tags and the markers are evaluated for."""

    version: str  # "3.7"
    platform: str  # a wheel platform tag, e.g. manylinux2014_x86_64
    full_version: str  # python_full_version for markers

    @classmethod
    def for_device(cls, version: str, platform: str) -> TargetPython:
        parts = version.split(".")
        full = version if len(parts) >= 3 else f"{parts[0]}.{parts[1] if len(parts) > 1 else 0}.0"
        return cls(".".join(parts[:2]), platform, full)

    @property
    def abi(self) -> str:
        """CPython's ABI tag: ``cp37m`` up to 3.7 (pymalloc builds), ``cp38`` and later without the ``m``."""
        major, minor = (int(part) for part in self.version.split(".")[:2])
        return f"cp{major}{minor}{'m' if (major, minor) < (3, 8) else ''}"

    def marker_environment(self) -> dict[str, str]:
        machine = next((arch for arch in ("x86_64", "aarch64", "armv7l", "i686") if self.platform.endswith(arch)),
                       self.platform.rsplit("_", 1)[-1])
        return {"python_version": self.version, "python_full_version": self.full_version,
                "implementation_name": "cpython", "implementation_version": self.full_version,
                "platform_python_implementation": "CPython", "os_name": "posix", "sys_platform": "linux",
                "platform_system": "Linux", "platform_machine": machine, "platform_release": "",
                "platform_version": "", "extra": ""}


@dataclass(frozen=True)
class FitProblem:
    """One vendored distribution that does not fit the device; ``pin`` is the requirement that would fix it."""

    text: str
    pin: str | None = None


def target_problems(site: Path, target: TargetPython) -> list[FitProblem]:
    """Check every vendored distribution against the device's Python: its Requires-Python, and each of its
    dependencies whose marker applies to the device is vendored in a version the dependency allows."""
    from email.parser import HeaderParser

    from packaging.markers import Marker
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    environment = target.marker_environment()
    metadata = {}
    for info in sorted(site.glob("*.dist-info")):
        if (info / "METADATA").is_file():
            headers = HeaderParser().parsestr((info / "METADATA").read_text(encoding="utf-8", errors="replace"))
            metadata[canonicalize_name(headers.get("Name", info.name))] = headers
    versions = {name: Version(headers.get("Version", "0")) for name, headers in metadata.items()}
    problems: list[FitProblem] = []
    for name, headers in metadata.items():
        label = f"{headers.get('Name', name)} {headers.get('Version', '?')}"
        requires_python = headers.get("Requires-Python")
        if requires_python and not SpecifierSet(requires_python).contains(target.full_version, prereleases=True):
            problems.append(FitProblem(f"{label} requires Python {requires_python}"))
        for line in headers.get_all("Requires-Dist") or []:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            if requirement.marker is not None and not Marker(str(requirement.marker)).evaluate(environment):
                continue
            wanted = canonicalize_name(requirement.name)
            where = f" on {requirement.marker}" if requirement.marker else ""
            pin = f"{requirement.name}{requirement.specifier}" if requirement.specifier else requirement.name
            if wanted not in versions:
                problems.append(FitProblem(f"{label} needs {pin}{where}, which is not vendored", pin))
            elif requirement.specifier and not requirement.specifier.contains(versions[wanted], prereleases=True):
                problems.append(FitProblem(f"{label} needs {pin}{where}, but {requirement.name} "
                                           f"{versions[wanted]} was vendored", pin))
    return problems


def _pins_for(problems: list[FitProblem]) -> list[str]:
    return sorted({problem.pin for problem in problems if problem.pin})


# ---------------------------------------------------------------------------------------------- settings


def edge_environment(
    settings: Settings, on_deeplens: bool | None = True, model_path: str | None = None
) -> dict[str, str]:
    """The `DEEPLENS_*` variables the edge function reads (edge_function/settings.py), from the CLI settings.

    `on_deeplens` resolves the `auto` detector/source: the awscam SSD and camera on a DeepLens, the offline
    OpenCV detector and webcam 0 elsewhere; None passes `auto` through for the device to resolve (a Greengrass V2
    core may or may not be a DeepLens; the component's run script decides). `model_path` overrides
    `model.artifact_path` (an ML resource puts the model somewhere else). Values are strings, as Lambda and
    Greengrass expect; the order is fixed so comparing two environments is comparing two dicts.
    """
    detector = settings["detection.detector"]
    source = settings["detection.source"]
    if on_deeplens is not None:
        if detector == "auto":
            detector = "awscam" if on_deeplens else "opencv"
        if source == "auto":
            source = "awscam" if on_deeplens else "webcam:0"
    env = {
        "DEEPLENS_BUCKET": settings.require("bucket"),
        "DEEPLENS_PREFIX": settings["prefix"].rstrip("/"),
        "DEEPLENS_KEY_TEMPLATE": "{prefix}/" + settings["key_template"],  # the edge template includes the prefix
        "DEEPLENS_DETECTOR": detector,
        "DEEPLENS_SOURCE": source,
        "DEEPLENS_MIN_FACE_PX": "auto" if settings["detection.min_face_px"] is None
        else _text(settings["detection.min_face_px"]),
        "DEEPLENS_MARGIN": _text(settings["detection.margin"]),
        "DEEPLENS_MOTION_GATE": "on" if settings["detection.motion_gate"] else "off",
        "DEEPLENS_MOTION_REGIONS": "on" if settings["detection.motion_regions"] else "off",
        "DEEPLENS_MOTION_THRESHOLD": _text(settings["detection.motion_threshold"]),
        "DEEPLENS_MOTION_MIN_AREA": _text(settings["detection.motion_min_area"]),
        "DEEPLENS_MOTION_FULL_DETECTION_S": _text(settings["detection.motion_full_detection_s"]),
        "DEEPLENS_COOLDOWN_S": _text(settings["detection.cooldown_s"]),
        "DEEPLENS_MAX_UPLOADS_PER_MINUTE": _text(settings["detection.max_uploads_per_minute"]),
        "DEEPLENS_QUEUE_SIZE": _text(settings["upload.queue_size"]),
        "DEEPLENS_SPOOL_MAX_MB": _text(settings["upload.spool_max_mb"]),
        "DEEPLENS_JPEG_QUALITY": _text(settings["upload.jpeg_quality"]),
        "DEEPLENS_MODEL_NAME": settings["model.name"],
        "DEEPLENS_MODEL_INPUT_WIDTH": _text(settings["model.input_width"]),
        "DEEPLENS_MODEL_INPUT_HEIGHT": _text(settings["model.input_height"]),
    }
    if settings["detection.threshold"] is not None:  # else each detector's own default applies on the device
        env["DEEPLENS_THRESHOLD"] = _text(settings["detection.threshold"])
    if detector in ("awscam", "auto") or model_path:
        env["DEEPLENS_MODEL_PATH"] = model_path or settings["model.artifact_path"]
    if settings["upload.spool_dir"]:
        env["DEEPLENS_SPOOL_DIR"] = settings["upload.spool_dir"]
    _check_the_device_accepts(env)
    return env


def _check_the_device_accepts(env: dict[str, str]) -> None:
    """Parse the environment with the device's own settings code, so nothing the CLI accepted is refused on the
    device (where the only trace would be one log line, hours later)."""
    resolved = {**env, **{name: "awscam" for name in ("DEEPLENS_DETECTOR", "DEEPLENS_SOURCE") if env[name] == "auto"}}
    try:
        load_settings(resolved)
    except SettingsError as exc:
        raise ConfigError(f"the device would refuse these settings: {exc}",
                          "fix the corresponding setting in deeplens.yaml (see config.example.yaml)") from None


def _text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return str(value)
