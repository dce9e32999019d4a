"""CLI start-up of two source trees, compared in one run: child CPU time, interleaved run by run.

`bench_cli_startup.py` reports wall-time medians of one tree; on a shared machine those swing by 2x from one run to
the next, so two trees measured minutes apart cannot be compared. Here every round runs tree A then tree B
(`PYTHONPATH=<tree>` ahead of the installed package), and the figure is the child process's user+sys CPU time,
which other load on the machine disturbs far less than wall time. Ratios are B/A; a bare `python -c pass` row
shows the noise floor (its ratio should be ~1.00).

For a like-for-like figure, let Python cache bytecode (a normal install does): unset PYTHONDONTWRITEBYTECODE and
give both trees a cache folder outside them, e.g.

    env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=/tmp/startup-pycache \
        python bench/bench_startup_compare.py /path/to/older/checkout . --runs 20
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

COMMANDS = (["--help"], ["status", "--help"], ["register-roles", "--help"])
NEUTRAL_CWD = "/"  # `python -c` puts the working directory first on sys.path, ahead of PYTHONPATH


def run_once(argv: list[str], tree: str) -> tuple[float, float]:
    """(child CPU seconds, wall seconds) of one run of `argv` with `tree` first on the import path."""
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd=NEUTRAL_CWD, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def imported_from(tree: str) -> str:
    """Where `deeplens_cli` is imported from with `tree` on the path (to show each tree measures itself)."""
    probe = [sys.executable, "-c", "import deeplens_cli; print(deeplens_cli.__file__)"]
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
    return subprocess.run(probe, env=env, cwd=NEUTRAL_CWD, check=True, capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree_a", help="a checkout of deeplens-cli (the baseline)")
    parser.add_argument("tree_b", help="another checkout (the one measured against the baseline)")
    parser.add_argument("--runs", type=int, default=20, help="rounds per command (each runs A then B)")
    args = parser.parse_args()
    script = os.path.join(os.path.dirname(sys.executable), "deeplens-cli")
    entry = [sys.executable, script] if os.path.exists(script) else \
        [sys.executable, "-c", "from deeplens_cli.cli import main; main()"]
    trees = {"A": args.tree_a, "B": args.tree_b}
    for label, tree in trees.items():
        print(f"{label}: {tree} -> imports {imported_from(tree)}")
        run_once(entry + ["--help"], tree)  # warm the bytecode cache, when one is in use
    for command in [None, *COMMANDS]:
        argv = [sys.executable, "-c", "pass"] if command is None else entry + command
        cpu: dict[str, list[float]] = {"A": [], "B": []}
        wall: dict[str, list[float]] = {"A": [], "B": []}
        for _ in range(args.runs):
            for label, tree in trees.items():
                spent, took = run_once(argv, tree)
                cpu[label].append(spent)
                wall[label].append(took)
        a, b = statistics.median(cpu["A"]), statistics.median(cpu["B"])
        wa, wb = statistics.median(wall["A"]), statistics.median(wall["B"])
        name = "python -c pass" if command is None else "deeplens-cli " + " ".join(command)
        print(f"{name:34s} CPU median A {a * 1000:6.1f} ms, B {b * 1000:6.1f} ms, B/A {b / a:.2f};  "
              f"wall median A {wa * 1000:6.1f} ms, B {wb * 1000:6.1f} ms, B/A {wb / wa:.2f}  ({args.runs} rounds)")


if __name__ == "__main__":
    main()
