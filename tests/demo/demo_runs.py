"""What both end-to-end demo tests (V1 and V2) need: run the CLI in-process and capture it, tell that the
emulator's port was closed afterwards, and the workshop's key layout the crops must keep."""

from __future__ import annotations

import contextlib
import io
import re
import socket

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
