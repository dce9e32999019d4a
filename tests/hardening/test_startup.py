"""Start-up speed, asserted the only way that is not flaky: `--help` must not import the heavy libraries.

Timings are machine noise in a test; bench/bench_cli_startup.py measures them (figures in bench/README.md).
What makes help fast or slow is which modules it imports: boto3/botocore alone cost ~0.3 s, rich, PyYAML,
OpenCV and numpy more. Each command's help runs in a fresh interpreter (as the console script does) and
reports what it imported; a usage error must be just as light, since it also stops before any AWS work.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("boto3", "botocore", "s3transfer", "urllib3", "rich", "yaml", "cv2", "numpy", "moto", "edge_function")

PROBE = """
import json, sys
from deeplens_cli.cli import main
try:
    main({args!r})
except SystemExit:
    pass
heavy = {heavy!r}
sys.stderr.write("\\n" + json.dumps(sorted({{m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy}})))
"""


def imported_after(args: list[str]) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)], capture_output=True,
                          text=True, timeout=60)
    return json.loads(done.stderr.strip().splitlines()[-1])


COMMANDS = ["register-roles", "register-device", "publish", "deploy", "status", "devices", "destroy", "demo", "doctor"]


@pytest.mark.parametrize("args", [["--help"], ["--version"]] + [[command, "--help"] for command in COMMANDS],
                         ids=lambda args: " ".join(args))
def test_help_imports_no_heavy_library(args: list[str]) -> None:
    assert imported_after(args) == []


def test_a_usage_error_imports_no_heavy_library() -> None:
    assert imported_after(["deploy", "--timeout", "soon"]) == []


def test_the_probe_sees_heavy_imports(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: a command that talks to AWS does import boto3 (here to a closed local port, with
    fake credentials and the metadata endpoint off: nothing leaves the machine)."""
    monkeypatch.setenv("DEEPLENS_AWS_MAX_ATTEMPTS", "1")
    assert "boto3" in imported_after(["--region", "us-east-1", "--endpoint-url", "http://127.0.0.1:9", "devices"])
