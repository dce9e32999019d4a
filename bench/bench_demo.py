"""Benchmark `deeplens-cli demo`: wall time per stage, the simulated device's frame rate and memory.

Run from the repository root:
    python bench/bench_demo.py [--greengrass v2|v1] [--runs N] [--max-frames N] [--source SPEC]

Each run is the full demo (embedded emulator, register-roles, register-device, deploy, the simulated device
processing the built-in clip, status, outputs) driven through `run_demo`, exactly as
`deeplens-cli --output json demo --greengrass X` runs it: v2 (the default) is a Greengrass V2 core device whose
simulated nucleus installs and runs the published component, v1 a simulated DeepLens. Printed per run: the time
of every stage and the total (the issue's target: <= 60 s on a 2-core machine), frames processed and the device's
effective frames per second, crops uploaded, the device process's peak resident memory; then the peak of this process
(emulator + CLI). No assertions: figures vary with the machine and its load; compare runs on the same machine.
"""

import argparse
import io
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from deeplens_cli.cli.app import App  # noqa: E402
from deeplens_cli.cli.output import Reporter  # noqa: E402
from deeplens_cli.demo import run_demo  # noqa: E402

STAGES = ("clip", "emulator", "register_roles", "register_device", "deploy", "device_run", "status", "collect")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--max-frames", type=int, default=None, help="default: the demo's own (150)")
    parser.add_argument("--source", default=None, help="default: the built-in clip")
    parser.add_argument("--greengrass", choices=("v2", "v1"), default="v2", help="the simulated device's target")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} CPU(s); python {sys.version.split()[0]}; demo --greengrass {args.greengrass}")
    header = ["run"] + list(STAGES) + ["total_s", "frames", "device_fps", "crops", "device_MB"]
    print("  ".join(f"{name:>15}" if i else name for i, name in enumerate(header)))
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as out:
            app = App(reporter=Reporter(output="json", stdout=io.StringIO(), stderr=io.StringIO()))
            started = time.monotonic()
            result = run_demo(app, "MyDevice", args.source, os.path.join(out, "demo-out"), args.max_frames,
                              keep_running=False, target=args.greengrass)
            wall = time.monotonic() - started
        timings = result.timings
        device_s = result.device_run.get("seconds") or 0.0
        fps = result.frames_served / device_s if device_s else 0.0
        cells = [f"{timings.get(stage, 0.0):15.2f}" for stage in STAGES]
        device_mb = result.device_run.get("peak_rss_mb") or 0.0
        print("  ".join([f"{run:3d}"] + cells + [f"{wall:15.2f}", f"{result.frames_served:15d}", f"{fps:15.1f}",
                                                 f"{len(result.keys):15d}", f"{device_mb:15.0f}"]))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"peak RSS of this process (emulator + CLI): {own:.0f} MB; device_MB = the device process's own peak (VmHWM)")


if __name__ == "__main__":
    main()
