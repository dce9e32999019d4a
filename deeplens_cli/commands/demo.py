"""`demo`: the whole flow on an embedded AWS emulator with a simulated device (no account, no camera).

The demo itself is the `deeplens_cli.demo` package, split by concern (sandbox, steps, devices, frames, outputs)
and called by tests and `bench/bench_demo.py` without the CLI. This entry keeps what belongs to the command:
a missing `demo` extra or detector is one line with the install command, checked before the package (which
imports them) is loaded, and the target defaults to `greengrass.default_target`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deeplens_cli.cli.extras import require_demo

if TYPE_CHECKING:
    from deeplens_cli.cli.app import App


def run_demo(app: App, device_name: str, source: str | None, out_dir: str, max_frames: int | None,
             keep_running: bool, target: str | None, device_profile: str | None = None) -> None:
    """The demo command: `target` is `--greengrass` (default: greengrass.default_target); `device_profile` is
    `--device-profile` (deeplens: the V2 device is a stock DeepLens)."""
    require_demo()  # a missing extra or detector: one line with the install command, before any work
    from deeplens_cli.demo import run_demo as run

    run(app, device_name=device_name, source=source, out_dir=out_dir, max_frames=max_frames,
        keep_running=keep_running, target=target or app.settings["greengrass.default_target"],
        device_profile=device_profile or "generic")
