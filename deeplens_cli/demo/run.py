"""`run_demo`: the order of the demo's steps and how long each took (see the package docstring)."""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from deeplens_cli.demo import steps
from deeplens_cli.demo.deeplens_device import DeepLensDemo
from deeplens_cli.demo.devices import DemoDevice, simulated_v1_device, simulated_v2_device
from deeplens_cli.demo.frames import (
    DEFAULT_FPS,
    DEFAULT_FRAME_BUDGET,
    MAX_DEFAULT_BUDGET,
    FrameSource,
    check_source,
    frame_budget,
)
from deeplens_cli.demo.outputs import DemoResult, collect_outputs, prepare_out_dir, report, write_summary
from deeplens_cli.demo.sandbox import (
    EmbeddedAws,
    EmbeddedGreengrassV2,
    demo_environment,
    serve_until_interrupted,
)
from deeplens_cli.errors import ConfigError
from deeplens_cli.settings.device_names import DEVICE_NAME
from deeplens_cli.simulator.clip import build_clip

if TYPE_CHECKING:
    from deeplens_cli.cli.app import App

TARGETS = ("v1", "v2")


class Stopwatch:
    """Seconds per step (`timings`), and the total."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings
        self.started = time.monotonic()

    @contextmanager
    def lap(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = time.monotonic() - start

    def total(self) -> None:
        self.timings["total"] = time.monotonic() - self.started


def run_demo(app: App, device_name: str, source: str | None, out_dir: str, max_frames: int | None,
             keep_running: bool = False, fps: float = DEFAULT_FPS, wait_forever: Any = None,
             target: str = "v2", device_profile: str = "generic") -> DemoResult:
    """Run the demo on `target` ("v2": a Greengrass V2 core device, "v1": a DeepLens); returns what it
    reported. Raises DeeplensError on failure.

    `fps` is the simulated camera's rate (V1; a V2 component reads its frames as fast as it processes them);
    `wait_forever` replaces the Ctrl-C wait of --keep-running (tests). `device_profile` "deeplens" makes the V2
    device a stock DeepLens (deeplens_device.py says what that covers and what it cannot).
    """
    if target not in TARGETS:
        raise ConfigError(f"--greengrass {target}: expected v1 or v2", "use --greengrass v2 (default) or v1")
    if device_profile == "deeplens" and target != "v2":
        raise ConfigError("--device-profile deeplens needs --greengrass v2",
                          "the v1 demo device is a DeepLens already; drop --device-profile or use --greengrass v2")
    reporter = app.reporter
    if not DEVICE_NAME.match(device_name):
        raise ConfigError(f"--device '{device_name}' is not a valid device name",
                          "use 1-100 letters, digits and hyphens, starting with a letter or digit")
    frames = check_source(source) if source else None
    out = prepare_out_dir(Path(out_dir))
    timings: dict[str, float] = {}
    watch = Stopwatch(timings)

    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="deeplens-demo-")))
        if frames is None:
            with watch.lap("clip"):
                budget = max_frames or DEFAULT_FRAME_BUDGET
                reporter.progress(
                    f"demo: building a {budget}-frame clip from the face images bundled with scikit-image"
                )
                clip = build_clip(work / "clip", frame_count=min(budget, MAX_DEFAULT_BUDGET), fps=fps)
                frames = FrameSource("clip", str(clip.directory), clip.frame_count)
        budget = frame_budget(frames, max_frames)

        stack.enter_context(demo_environment())
        with watch.lap("emulator"):
            emulator = stack.enter_context(EmbeddedAws())
            greengrass = stack.enter_context(EmbeddedGreengrassV2(emulator.endpoint)) if target == "v2" else None
        reporter.progress(f"demo: AWS emulator (moto) listening on {emulator.endpoint}; fake credentials, "
                          f"your AWS configuration is not used")
        result = DemoResult(device_name, emulator.endpoint, frames, budget, fps, out, keep_running, target=target,
                            timings=timings)
        if greengrass is not None:
            import os

            os.environ["AWS_ENDPOINT_URL"] = emulator.endpoint  # every service but greengrassv2 (set by the sandbox)
            result.greengrassv2_endpoint = greengrass.endpoint
            reporter.progress(f"demo: Greengrass V2 control plane (in process, checked against botocore's model) "
                              f"listening on {greengrass.endpoint}")
        deeplens = DeepLensDemo(work) if device_profile == "deeplens" else None
        child = steps.demo_app(app, work, steps.demo_settings(target, emulator.endpoint, device_name, frames.spec,
                                                              deeplens.settings() if deeplens else None))

        with watch.lap("register_roles"):
            steps.register_roles(child)
        with watch.lap("register_device"):
            steps.register_device(child, device_name, work, target)
        if greengrass is not None:
            device: DemoDevice = stack.enter_context(
                simulated_v2_device(child, greengrass, device_name, work, budget, out, deeplens, frames.spec, fps))
        else:
            device = stack.enter_context(simulated_v1_device(child, device_name, work, frames, budget, fps, out))
            result.group_id = device.group_id
        result.thing_name = device.thing_name
        with watch.lap("deploy"):
            steps.deploy(child, device_name)
            result.deployment = device.deployment_summary()
        with watch.lap("device_run"):
            run = device.wait(budget, fps, reporter)
            result.frames_served, result.device_run = run.frames, run.to_dict()
        with watch.lap("status"):
            steps.status(app, child, device_name, result)
        with watch.lap("collect"):
            collect_outputs(child, device, frames, out, result)
        watch.total()
        write_summary(out, result)
        report(app.reporter, result)
        if keep_running:
            serve_until_interrupted(reporter, emulator.endpoint, work / "deeplens.yaml", wait_forever,
                         greengrass.endpoint if greengrass is not None else None)
    return result
