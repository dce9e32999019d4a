"""What both end-to-end demo tests (V1 and V2) need: run the CLI in-process and capture it, run the demo once in
an environment that would break it if it used any of that environment, tell that the emulator's port was closed
afterwards, and the workshop's key layout the crops must keep."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

KEY_LAYOUT = re.compile(r"^faces/\d{1,2}_\d{1,2}/\d{1,2}_\d{1,2}/\d{10}_[a-z2-7]{6}-\d+\.jpg$")  # workshop layout


def run_main(argv: list[str]) -> tuple[int, str, str]:
    from deeplens_cli.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def port_is_closed(endpoint: str) -> bool:
    host, port = endpoint.removeprefix("http://").split(":")
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, int(port))) != 0


@dataclass
class DemoRun:
    """One `deeplens-cli --output json demo` run and what surrounded it."""

    code: int
    stdout: str
    stderr: str
    seconds: float
    out: Path
    environment_before: dict[str, str]  # os.environ as the run found it ...
    environment_after: dict[str, str]  # ... and as it left it
    children: list[int]  # live child processes of this process once the run returned

    def document(self) -> dict[str, Any]:
        """The run's JSON document: stdout is exactly one, or this raises (and a failed run fails here)."""
        assert self.code == 0, self.stderr[-3000:]
        return json.loads(self.stdout)

    def commands_not_run(self, greengrass: str) -> list[str]:
        """The real commands a demo for the `greengrass` target runs that its progress on stderr does not show."""
        steps = ("register-roles", f"register-device --name MyDevice --greengrass {greengrass}",
                 "deploy --device MyDevice", "status --device MyDevice")
        return [step for step in steps if f"deeplens-cli {step}" not in self.stderr]


def run_demo(argv: list[str], out: Path, environment: dict[str, str],
             child_pids: Callable[[], list[int]]) -> DemoRun:
    """`deeplens-cli --output json demo <argv> --out <out>` with `environment` set for the run only (settings that
    would break the demo if it used them), timed, with the environment and child processes it left behind."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        environment_before = dict(os.environ)
        started = time.monotonic()
        code, stdout, stderr = run_main(["--output", "json", "demo", *argv, "--out", str(out)])
        seconds = time.monotonic() - started
        environment_after = dict(os.environ)
        children = child_pids()
    return DemoRun(code, stdout, stderr, seconds, out, environment_before, environment_after, children)
