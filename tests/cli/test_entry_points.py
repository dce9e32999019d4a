"""`python -m deeplens_cli` is the console script; the wheel ships config.example.yaml (identical to the root copy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "deeplens_cli", "--version"], capture_output=True, text=True,
                            timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("deeplens-cli, version ")


def test_the_packaged_example_is_the_root_example():
    packaged = REPO / "deeplens_cli" / "config.example.yaml"

    assert packaged.read_bytes() == (REPO / "config.example.yaml").read_bytes(), \
        "copy config.example.yaml to deeplens_cli/config.example.yaml (the wheel ships that copy)"
