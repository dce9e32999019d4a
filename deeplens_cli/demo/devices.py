"""The simulated device of each target, as the demo drives it: started before `deploy`, waited on until its
frame budget is processed, stopped (and its log kept in the output folder) however the demo ends.

* Greengrass V1 (`--greengrass v1`): a simulated DeepLens (`simulator.core`) watching the device's group; the
  deployed Lambda runs with the `awscam` and `greengrasssdk` stand-ins, frames served at the camera's rate.
* Greengrass V2 (`--greengrass v2`, the default): a simulated core device (`simulator.v2_core`) whose simulated
  nucleus runs the *published* recipe and artifact on this machine as the component's user would: Install
  (told by `HOST_SITE_ENV` to use the demo's own Python packages instead of downloading the lock), then Run,
  with credentials from the token exchange stand-in and IPC messages caught by the `awsiot` stand-in.
"""

from __future__ import annotations

import os
import re
import shutil
import site
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Callable, Iterator

from deeplens_cli.demo.frames import FrameSource
from deeplens_cli.demo.sandbox import DEMO_CREDENTIAL, DEMO_REGION
from deeplens_cli.errors import DeeplensError
from deeplens_cli.simulator import ipc_stand_in
from deeplens_cli.simulator.core import DeviceIo, MotoDeploymentReporter, SimulatedCore
from deeplens_cli.simulator.nucleus import ComponentUser, DeviceIdentity, HostRunner, Nucleus
from deeplens_cli.simulator.v2_core import SimulatedV2Core
from deeplens_cli.targets.artifacts import artifact_bucket
from deeplens_cli.targets.greengrass_v2.component import HOST_SITE_ENV
from deeplens_cli.targets.registry import find_device

if TYPE_CHECKING:
    from deeplens_cli.cli.app import App
    from deeplens_cli.cli.output import Reporter
    from deeplens_cli.demo.deeplens_device import DeepLensDemo
    from deeplens_cli.demo.sandbox import EmbeddedGreengrassV2

_FRAMES_LOGGED = re.compile(r"frames=(\d+)")

DEVICE_LOG = "function.log"  # the V1 function's log, or the V2 component's Run log (copied into the demo output)
INSTALL_LOG = "install.log"  # V2: the component's Install log


@dataclass
class DeviceRunReport:
    """How the device's run went: what `demo.json` says under `device_run`, and the frames it processed."""

    exit_code: int | None
    seconds: float
    frames: int
    pid: int
    peak_rss_mb: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "seconds": self.seconds, "frames": self.frames, "pid": self.pid,
                "peak_rss_mb": self.peak_rss_mb, **self.extra}


class DemoDevice:
    """What the demo needs from a simulated device, whatever its target."""

    description = "the simulated device"
    messages_path: Path
    frame_log_path: Path | None = None

    def deployment_summary(self) -> dict[str, Any]:
        raise NotImplementedError

    def wait(self, budget: int, fps: float, reporter: Reporter) -> DeviceRunReport:
        raise NotImplementedError


def _check_run(report: DeviceRunReport, budget: int, timeout_s: float, tail: str) -> None:
    if report.exit_code is None:
        raise DeeplensError(f"the simulated device did not finish {budget} frames within {timeout_s:.0f} s "
                            f"(last log: {tail or 'empty'})", "try a smaller --max-frames")
    if report.exit_code != 0 or report.frames == 0:
        raise DeeplensError(f"the simulated device's edge function stopped (exit code {report.exit_code}, "
                            f"{report.frames} frames): {tail or 'no log'}",
                            f"the device log ({DEVICE_LOG}) is in the demo output folder; rerun with -v")


# ---------------------------------------------------------------------------------------------- Greengrass V1


class V1Device(DemoDevice):
    description = "the simulated DeepLens (Greengrass V1)"

    def __init__(self, core: Any) -> None:
        self.core = core
        self.messages_path = core.io.messages_path
        self.frame_log_path = core.io.frame_log_path

    def deployment_summary(self) -> dict[str, Any]:
        run = self.core.current_run()
        if run is None:  # deploy succeeded, so the core must have started the function
            raise DeeplensError("the deployment succeeded but the simulated device runs nothing",
                                "this is a bug in the demo")
        status, _ = self.core.outcomes.get(run.deployment_id, ("?", ""))
        return {"id": run.deployment_id, "status": status, "function": run.function.function_arn,
                "handler": run.function.handler, "code_sha256": run.function.code_sha256,
                "code_from": run.code_origin, "verified_on_device": True}

    def wait(self, budget: int, fps: float, reporter: Reporter) -> DeviceRunReport:
        run = self.core.current_run()
        timeout_s = budget / fps * 4 + 60  # generous: a slow machine processes slower than the camera rate
        reporter.progress(f"demo: the simulated DeepLens is processing {budget} frames at up to {fps:g} fps")
        code = run.wait(timeout_s)
        report = DeviceRunReport(code, round((run.ended_at or time.monotonic()) - run.started_at, 2),
                                 count_lines(self.frame_log_path), run.process.pid, run.status().get("peak_rss_mb"))
        _check_run(report, budget, timeout_s, run.log_tail(3))
        return report


@contextmanager
def simulated_v1_device(child: App, device_name: str, work: Path, frames: FrameSource, budget: int, fps: float,
                        out: Path) -> Iterator[V1Device]:
    """The simulated DeepLens, watching the device's group from before `deploy` until the demo ends."""
    import boto3

    device = find_device(child.ctx, child.settings, device_name, child.reporter)
    if not device.group_id:
        raise DeeplensError(f"device '{device_name}' has no Greengrass V1 group", "this is a bug in the demo")
    device_root = work / "device"
    session = boto3.Session(aws_access_key_id=DEMO_CREDENTIAL, aws_secret_access_key=DEMO_CREDENTIAL,
                            region_name=DEMO_REGION)
    io_ = DeviceIo(source=frames.spec, fps=fps, messages_path=device_root / "messages.jsonl",
                   frame_log_path=device_root / "frames.jsonl")
    settings = child.settings
    core = SimulatedCore(session, settings["endpoint_url"], device.group_id, device.thing_name,
                         artifact_bucket(settings), device_root, io_,
                         reporter=MotoDeploymentReporter(child.ctx.account_id, DEMO_REGION),
                         extra_env={"DEEPLENS_MAX_FRAMES": str(budget)}, log=child.reporter.progress)
    device_root.mkdir(parents=True, exist_ok=True)
    simulated = V1Device(core)
    simulated.thing_name, simulated.group_id = device.thing_name, device.group_id
    with _core_running(core, out, lambda run: {DEVICE_LOG: run.log_path}):
        yield simulated


@contextmanager
def _core_running(core: Any, out: Path, logs_of: Callable[[Any], dict[str, Path]]) -> Iterator[None]:
    """Either simulated core, started for the block and stopped however it ends; then the logs `logs_of` names
    for the last run ({file name in `out`: log on the device}) are kept in the output folder."""
    core.start()
    try:
        yield
    finally:
        core.stop()
        run = core.current_run()
        if run is not None:
            for name, log_path in logs_of(run).items():
                if log_path.exists():
                    shutil.copyfile(log_path, out / name)


# ---------------------------------------------------------------------------------------------- Greengrass V2


def demo_site_packages() -> str:
    """The folders the component's venv uses in the demo (HOST_SITE_ENV): the IPC stand-in first, then this
    environment's site-packages (where numpy, OpenCV, boto3 and the detector weights already are)."""
    folders = [str(Path(ipc_stand_in.__file__).parent)]
    folders += [folder for folder in site.getsitepackages() if os.path.isdir(folder)]
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    if user_site and os.path.isdir(user_site):
        folders.append(user_site)
    return os.pathsep.join(folders)


class V2Device(DemoDevice):
    description = "the simulated Greengrass V2 core device"

    def __init__(self, core: Any, messages_path: Path) -> None:
        self.core = core
        self.messages_path = messages_path
        self.frame_log_path = None  # the component reads frames itself (edge_function.sources)

    def deployment_summary(self) -> dict[str, Any]:
        run = self.core.current_run()
        if run is None:
            raise DeeplensError("the deployment succeeded but the simulated nucleus runs nothing",
                                "this is a bug in the demo")
        status, _ = self.core.outcomes.get(run.deployment_id, ("?", ""))
        artifacts = [a["URI"] for a in run.component.manifest().get("Artifacts", [])]
        return {"id": run.deployment_id, "status": status, "component": run.component.name,
                "component_version": run.component.version, "artifacts": artifacts,
                "skipped_public_components": sorted(set(self.core.skipped)),
                "install_s": round(run.running.install_s, 2), "verified_on_device": True}

    def wait(self, budget: int, fps: float, reporter: Reporter) -> DeviceRunReport:
        run = self.core.current_run()
        timeout_s = budget / fps * 4 + 60
        reporter.progress(f"demo: the simulated Greengrass V2 core device is processing {budget} frames")
        peak_kb, code = 0, None
        deadline = time.monotonic() + timeout_s
        while code is None and time.monotonic() < deadline:
            peak_kb = max(peak_kb, _peak_rss_kb(run.process.pid))
            code = run.wait(0.25)
        frames = _frames_logged(run.log_path)
        report = DeviceRunReport(code, round((run.ended_at or time.monotonic()) - run.started_at, 2), frames,
                                 run.process.pid, round(peak_kb / 1024.0, 1) if peak_kb else None,
                                 extra={"install_s": round(run.running.install_s, 2)})
        _check_run(report, budget, timeout_s, run.log_tail(3))
        return report


def _peak_rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _frames_logged(log: Path) -> int:
    """Frames the edge loop processed: its last `frames=N` statistics line (written when it finishes)."""
    try:
        found = _FRAMES_LOGGED.findall(log.read_text(errors="replace"))
    except OSError:
        return 0
    return int(found[-1]) if found else 0


@contextmanager
def simulated_v2_device(child: App, greengrass: EmbeddedGreengrassV2, device_name: str, work: Path, budget: int,
                        out: Path, deeplens: DeepLensDemo | None = None, frames_spec: str = "",
                        fps: float = 15.0) -> Iterator[V2Device]:
    """The simulated core device from its first connection (before `deploy`) until the demo ends; with
    `deeplens`, a stock DeepLens (deeplens_device.py) whose awscam camera serves `frames_spec` at `fps`."""
    import getpass

    device = find_device(child.ctx, child.settings, device_name, child.reporter)
    thing = device.thing_name
    control_plane = greengrass.control_plane
    control_plane.connect_core(thing, behaviour="external", architecture=_architecture())
    credentials_uri = greengrass.start_token_exchange(child.settings["greengrass.role_alias"], f"{thing}-demo")
    device_root = work / "device"
    device_root.mkdir(parents=True, exist_ok=True)
    messages = device_root / "messages.jsonl"
    nucleus_root = PurePosixPath(str(device_root / "greengrass" / "v2"))
    site_packages = demo_site_packages()
    camera: dict[str, str] = {}
    if deeplens is not None:
        site_packages = os.pathsep.join((deeplens.prepare(nucleus_root), site_packages))
        camera = deeplens.environment(frames_spec, fps)
    nucleus = Nucleus(
        device=DeviceIdentity(thing_name=thing, region=DEMO_REGION, root=nucleus_root,
                              ipc_socket=str(nucleus_root / "ipc.socket")),
        runner=HostRunner(), user=ComponentUser(getpass.getuser(), os.getuid(), os.getgid()),
        logs=device_root / "logs", credentials_uri=credentials_uri, chown=False,
        issued_tokens=greengrass.token_exchange.accepted_tokens,
        extra_environment={
            "AWS_ENDPOINT_URL": greengrass.moto_endpoint,  # the component's S3 is the emulator's
            "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,  # never the user's
            "AWS_EC2_METADATA_DISABLED": "true",
            "DEEPLENS_MAX_FRAMES": str(budget),
            # The component reads the clip as fast as it processes it (a few seconds for the whole budget), so
            # one message a second would show almost nothing: publish about once per second of camera time.
            "DEEPLENS_PUBLISH_INTERVAL_S": "0.1",
            "DEEPLENS_SIM_MESSAGES": str(messages),
            HOST_SITE_ENV: site_packages,
            **camera,
        })
    s3 = greengrass.client("s3")
    core = SimulatedV2Core(control_plane, thing,
                           lambda bucket, key: s3.get_object(Bucket=bucket, Key=key)["Body"].read(), nucleus,
                           poll_s=0.1, log=child.reporter.progress)
    simulated = V2Device(core, messages)
    simulated.thing_name = thing
    with _core_running(core, out, lambda run: {DEVICE_LOG: run.log_path, INSTALL_LOG: run.install_log_path}):
        yield simulated


def _architecture() -> str:
    import platform

    machine = platform.machine()
    return {"x86_64": "amd64", "AMD64": "amd64", "aarch64": "aarch64", "arm64": "aarch64"}.get(machine, machine)


def count_lines(path: Path | None) -> int:
    if path is None or not path.exists():
        return 0
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)
