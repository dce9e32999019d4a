"""The default output follows where stdout goes, as a real process sees it: a table on a terminal (a pseudo-terminal
here, from the `pty` module), plain tab-separated text when piped. Both run the installed CLI in a subprocess
against a moto server, so nothing in-process decides what a terminal is."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

BOX = set("│┃┏┓┗┛━─┡┩└┘┌┐╇╈┼")
BUCKET = "deeplens-output-default"


def cli_args(moto_server: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "deeplens_cli", "--endpoint-url", moto_server, *args]


def run_on_a_terminal(argv: list[str], cwd: str, timeout: float = 60) -> tuple[int, str]:
    """Run with stdout and stderr on a pseudo-terminal; return the exit code and everything it printed."""
    main, secondary = pty.openpty()
    env = {**os.environ, "COLUMNS": "200", "LINES": "50", "TERM": "xterm"}
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary, cwd=cwd, env=env)
    os.close(secondary)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.5)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    os.close(main)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_on_a_terminal_the_default_is_a_table(moto_server, tmp_path):
    code, printed = run_on_a_terminal(cli_args(moto_server, "register-roles", "--dry-run", "--bucket", BUCKET),
                                      str(tmp_path))

    assert code == 0, printed
    assert BOX & set(printed), "a terminal gets the box-drawn table"
    assert "register-roles" in printed and "8 to create" in printed
    assert f"create\ts3-bucket/{BUCKET}" not in printed


def test_piped_the_default_is_plain_tab_separated_text(moto_server, tmp_path):
    done = subprocess.run(cli_args(moto_server, "register-roles", "--dry-run", "--bucket", BUCKET), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert not BOX & set(done.stdout), "no box drawing when piped"
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    assert rows and all(len(row) == 3 for row in rows), done.stdout
    assert [row[1] for row in rows if row[0] == "create"][0] == f"s3-bucket/{BUCKET}"


def test_an_explicit_output_wins_over_the_terminal(moto_server, tmp_path):
    code, printed = run_on_a_terminal(cli_args(moto_server, "register-roles", "--dry-run", "--bucket", BUCKET,
                                               "--output", "text"), str(tmp_path))

    assert code == 0, printed
    assert not BOX & set(printed)
    assert f"create\ts3-bucket/{BUCKET}" in printed.replace("\r\n", "\n")
