"""Shell completion, as README.md documents it: click writes the script (`_DEEPLENS_CLI_COMPLETE=bash_source
deeplens-cli`) and then completes commands and options, global options after the command included. Run as the
console script runs, in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def console_script() -> str:
    found = Path(sys.executable).with_name("deeplens-cli")
    return str(found) if found.exists() else shutil.which("deeplens-cli") or pytest.fail("deeplens-cli not installed")


def completion(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([console_script()], env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_completion_script_is_produced(shell):
    done = completion({"_DEEPLENS_CLI_COMPLETE": f"{shell}_source"})

    assert done.returncode == 0, done.stderr
    assert "_DEEPLENS_CLI_COMPLETE" in done.stdout and "deeplens-cli" in done.stdout


def test_the_bash_script_is_valid_bash():
    bash = shutil.which("bash") or pytest.fail("bash is needed for completion")
    script = completion({"_DEEPLENS_CLI_COMPLETE": "bash_source"}).stdout

    checked = subprocess.run([bash, "-n"], input=script, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr


def complete(words: str) -> list[str]:
    done = completion({"_DEEPLENS_CLI_COMPLETE": "bash_complete", "COMP_WORDS": words,
                       "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))})
    assert done.returncode == 0, done.stderr
    return [line.split(",", 1)[1] for line in done.stdout.splitlines()]


def test_commands_complete():
    assert "deploy" in complete("deeplens-cli dep")


def test_global_options_complete_after_the_command():
    assert "--output" in complete("deeplens-cli status --out")


def test_output_formats_complete():
    assert complete("deeplens-cli status --output ") == ["json", "table", "text"]
