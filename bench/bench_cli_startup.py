"""How long `deeplens-cli --help` takes, and proof that help never imports the heavy libraries.

Help is the first thing a user runs and what shell completion runs on every <Tab>, so it must not pay for
boto3/botocore (~0.3 s), rich, OpenCV or numpy. The figures:

  startup   median wall time of N runs of the installed console script, minus a bare `python -c pass`
            (the interpreter's own start-up, which no code of ours can change)
  modules   which heavy modules are in sys.modules after `--help` ran in-process
  importers the slowest imports of `--help` by cumulative time (python -X importtime)

Run: python bench/bench_cli_startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HEAVY = ("boto3", "botocore", "rich", "cv2", "numpy", "yaml", "moto", "edge_function")
COMMANDS = (["--help"], ["status", "--help"], ["register-roles", "--help"])


def console_script() -> list[str]:
    """The installed `deeplens-cli` entry point next to this interpreter, else the same call through -c."""
    script = os.path.join(os.path.dirname(sys.executable), "deeplens-cli")
    if os.path.exists(script):
        return [sys.executable, script]
    found = shutil.which("deeplens-cli")
    return [sys.executable, found] if found else [sys.executable, "-c", "from deeplens_cli.cli import main; main()"]


def median_seconds(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def heavy_modules_after(args: list[str]) -> list[str]:
    probe = (
        "import json, sys\n"
        "from deeplens_cli.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        f"heavy = {HEAVY!r}\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy})\n"
        "sys.stderr.write(json.dumps(loaded))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], check=True, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    return json.loads(done.stderr.strip().splitlines()[-1])


def slowest_imports(args: list[str], top: int = 8) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of the slowest imports at any depth under `python -X importtime`."""
    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            f"from deeplens_cli.cli import main\ntry:\n    main({args!r})\nexcept SystemExit:\n    pass",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumulative_us, name = line[len("import time:"):].split("|")
        rows.append((int(cumulative_us), name.rstrip()))  # the indentation shows who imported whom
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    options = parser.parse_args()

    baseline = median_seconds([sys.executable, "-c", "pass"], options.runs)
    print(f"{'python -c pass':<36} median {baseline * 1000:7.1f} ms  ({options.runs} runs, baseline)")
    script = console_script()
    for args in COMMANDS:
        total = median_seconds(script + args, options.runs)
        label = "deeplens-cli " + " ".join(args)
        print(f"{label:<36} median {total * 1000:7.1f} ms  -> {(total - baseline) * 1000:6.1f} ms above bare Python")

    print()
    for args in COMMANDS:
        loaded = heavy_modules_after(args)
        verdict = "none" if not loaded else ", ".join(loaded)
        print(f"heavy modules after deeplens-cli {' '.join(args):<22} {verdict}")
    print(f"(checked: {', '.join(HEAVY)})")

    print()
    print("slowest imports of `deeplens-cli --help` (cumulative, python -X importtime):")
    for cumulative_us, name in slowest_imports(["--help"]):
        print(f"  {cumulative_us / 1000:7.1f} ms {name}")


if __name__ == "__main__":
    main()
