"""Fixtures for the demo and simulator tests (on top of the tests/support plugins: `aws_env`, `moto_server`, `run_cli`).

* `small_clip` (session): a short, small demo clip built once, with its true face boxes;
* `load_shim`: a FRESH copy of a device shim module (`awscam`, `greengrasssdk`), as a new device process
  would import it, so module state (the camera) never leaks between tests;
* `child_pids`: the live child processes of the test process (from /proc), to prove nothing is left behind.

`reset_moto` (empty a moto server once for a module-scoped emulator) is in tests/support/moto_server.py.

"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Callable

import pytest

SHIM_DIR = Path(__file__).resolve().parents[2] / "deeplens_cli" / "simulator"
CLIP_SIZE = (640, 360)
CLIP_FRAMES = 40


@pytest.fixture(scope="session")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from deeplens_cli.simulator.clip import build_clip

    return build_clip(tmp_path_factory.mktemp("clip"), frame_count=CLIP_FRAMES, size=CLIP_SIZE)


@pytest.fixture
def load_shim(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """`load_shim("awscam", DEEPLENS_SIM_SOURCE=dir)` -> a freshly executed shim module with that environment."""
    counter = iter(range(1_000_000))

    def load(name: str, **env: str) -> Any:
        for variable, value in env.items():
            monkeypatch.setenv(variable, value)
        spec = importlib.util.spec_from_file_location(f"_shim_{name}_{next(counter)}", SHIM_DIR / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def live_children(parent: int | None = None) -> list[int]:
    """Pids of the live (not zombie) processes whose parent is `parent` (default: this process)."""
    parent = os.getpid() if parent is None else parent
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == parent and state != "Z":
            children.append(int(entry))
    return children


@pytest.fixture(scope="session")
def child_pids() -> Callable[[], list[int]]:
    return live_children
