"""`deeplens-cli demo`: the whole workshop flow on an embedded AWS emulator with a simulated DeepLens.

No account, no camera, no download. The demo

1. starts moto's server in this process on 127.0.0.1 and a free port, with AWS managed policies loaded and
   fake credentials of its own: the user's profile, keys and ~/.aws are hidden from every AWS client while
   the demo runs (and restored afterwards);
2. runs the same code as the commands, with settings that point at the emulator: `register-roles`,
   `register-device --greengrass v1`, `deploy --device` (package, publish, group version, deployment, wait),
   then `status`. Nothing bypasses the planners or the executor;
3. lets a simulated DeepLens (`simulator.core`) receive that deployment the way a core does: it downloads
   the published package, checks it against `CodeSha256`, runs it in a separate process with `awscam` and
   `greengrasssdk` shims, and reports the deployment's outcome, which is what `deploy` waits for;
4. feeds the device a short clip built from face images bundled with scikit-image (or `--source`), with a
   frame budget so the function ends by itself after flushing its uploads;
5. collects the result: the crops under `faces/` in the emulated bucket, the IoT messages, a contact sheet
   and annotated frames in `--out`, and one JSON document with `--output json`.

With `--keep-running` the emulator (and the simulated device, which takes further deployments) stay up
until Ctrl-C, and the demo prints the environment to point `deeplens-cli` or the AWS CLI at it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from deeplens_cli.errors import ConfigError, DeeplensError

if TYPE_CHECKING:
    from deeplens_cli.app import App
    from deeplens_cli.output import Reporter

DEMO_REGION = "us-east-1"
DEMO_BUCKET = "deeplens-demo-faces"
DEMO_CREDENTIAL = "demo"
DEFAULT_FPS = 15.0
DEFAULT_FRAME_BUDGET = 150  # 10 s of camera time at 15 fps: the whole demo stays well under a minute
MAX_DEFAULT_BUDGET = 450  # a user's long video is cut to 30 s unless --max-frames says otherwise
SUMMARY_FILE = "demo.json"  # also marks a folder as a demo output that a later demo may replace
ANNOTATED_FRAMES = 4
CLIP_DESCRIPTION = "built-in clip: scikit-image's astronaut and cameraman moving over a synthetic room"

# Settings of the demo's own deeplens.yaml. Detection values suit a short clip: a lower threshold than the
# DeepLens SSD's 0.6 (the simulated model is CenterFace, calibrated differently), a short cooldown and a
# cap that a 10 s clip cannot hit; deploy polls fast because the device is local.
DEMO_SETTINGS: dict[str, Any] = {
    "region": DEMO_REGION,
    "bucket": DEMO_BUCKET,
    "greengrass": {"default_target": "v1"},
    "detection": {"threshold": 0.5, "cooldown_s": 2.0, "max_uploads_per_minute": 60},
    "deploy": {"poll_s": 0.25, "timeout_s": 120},
}

# Variables that could send a client to a real account, another endpoint or through a proxy.
_HIDDEN_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
               "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
               "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CA_BUNDLE", "AWS_ROLE_SESSION_NAME")
_HIDDEN_PREFIXES = ("AWS_ENDPOINT_URL",)


# ---------------------------------------------------------------------------------------------- environment


@contextmanager
def demo_environment() -> Iterator[dict[str, str]]:
    """Fake credentials and no profile for everything AWS in this process while the demo runs.

    The emulator accepts any key; hiding the user's own configuration guarantees that no client, however it
    is built, can reach a real account. The previous environment is restored exactly afterwards.
    """
    saved = dict(os.environ)
    try:
        for name in list(os.environ):
            if name in _HIDDEN_ENV or name.startswith(_HIDDEN_PREFIXES):
                del os.environ[name]
        no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost"]))
        fake = {"AWS_ACCESS_KEY_ID": DEMO_CREDENTIAL, "AWS_SECRET_ACCESS_KEY": DEMO_CREDENTIAL,
                "AWS_DEFAULT_REGION": DEMO_REGION, "AWS_REGION": DEMO_REGION,
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "MOTO_IAM_LOAD_MANAGED_POLICIES": "true", "NO_PROXY": no_proxy, "no_proxy": no_proxy}
        os.environ.update(fake)
        yield fake
    finally:
        os.environ.clear()
        os.environ.update(saved)


class EmbeddedAws:
    """moto's server in a thread of this process on 127.0.0.1 and a free port; `stop` releases the port."""

    def __init__(self) -> None:
        self._server: Any = None
        self.endpoint = ""
        self.port = 0

    def start(self) -> str:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError:
            raise DeeplensError("the demo needs the AWS emulator moto, which is not installed",
                                'pip install "deeplens-cli[demo]"') from None
        import logging

        # werkzeug logs every request at INFO on stderr; the demo's progress lines are the story to tell
        self._werkzeug = logging.getLogger("werkzeug")
        self._werkzeug_level = self._werkzeug.level
        self._werkzeug.setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, self.port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{self.port}"
        self.reset()  # moto's state is per process: start from an empty account whatever ran before
        return self.endpoint

    def reset(self) -> None:
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("POST", "/moto-api/reset")
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()

    def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.stop()
        if getattr(server, "_server", None) is not None:
            server._server.server_close()  # ThreadedMotoServer.stop() leaves the listening socket open
        self._werkzeug.setLevel(self._werkzeug_level)

    def __enter__(self) -> EmbeddedAws:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class FrameSource:
    """What the simulated camera shows: the built clip, or the user's folder, video or webcam."""

    kind: str  # clip | directory | video | webcam
    spec: str
    frames: int | None  # frames available (None: endless, a webcam)

    def to_dict(self) -> dict[str, Any]:
        spec = CLIP_DESCRIPTION if self.kind == "clip" else self.spec  # the clip's folder is gone after the demo
        return {"kind": self.kind, "spec": spec, "frames_available": self.frames}


def check_source(source: str) -> FrameSource:
    """Validate `--source` before anything starts (exit 2 with the reason)."""
    import cv2

    from deeplens_cli.simulator.awscam import list_images

    if source.startswith("webcam:"):
        index = source.split(":", 1)[1]
        if not index.isdigit():
            raise ConfigError(f"--source {source}: the webcam index must be a number", "use webcam:0, webcam:1, ...")
        return FrameSource("webcam", source, None)
    path = Path(source)
    if path.is_dir():
        images = list_images(str(path))
        if not images:
            raise ConfigError(f"--source {source}: the folder has no .jpg/.jpeg/.png/.bmp images",
                              "point --source at a folder of photos, a video file or webcam:N")
        return FrameSource("directory", str(path.resolve()), len(images))
    if path.is_file():
        capture = cv2.VideoCapture(str(path))
        try:
            if not capture.isOpened() or not capture.read()[0]:
                raise ConfigError(f"--source {source}: OpenCV cannot read this video file",
                                  "use an .mp4/.avi OpenCV can decode, a folder of images or webcam:N")
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        finally:
            capture.release()
        return FrameSource("video", str(path.resolve()), count)
    raise ConfigError(f"--source {source}: no such file or folder", "use a video FILE, a DIR of images or webcam:N")


def frame_budget(source: FrameSource, max_frames: int | None) -> int:
    """Frames the device processes: --max-frames, else one pass over the footage (capped), else 150."""
    if max_frames is not None:
        return max_frames
    if source.frames is None:
        return DEFAULT_FRAME_BUDGET
    return max(1, min(source.frames, MAX_DEFAULT_BUDGET))


# ---------------------------------------------------------------------------------------------- result


@dataclass
class DemoResult:
    """Everything the demo reports; `to_dict` is the `--output json` document."""

    device: str
    endpoint: str
    source: FrameSource
    budget: int
    fps: float
    out_dir: Path
    keep_running: bool = False
    thing_name: str = ""
    group_id: str = ""
    deployment: dict[str, Any] = field(default_factory=dict)
    device_run: dict[str, Any] = field(default_factory=dict)
    keys: list[dict[str, Any]] = field(default_factory=list)
    messages: int = 0
    messages_with_faces: int = 0
    frames_served: int = 0
    status: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "device": self.device,
            "thing_name": self.thing_name,
            "group_id": self.group_id,
            "emulator": {"endpoint": self.endpoint, "region": DEMO_REGION, "kept_running": self.keep_running},
            "bucket": DEMO_BUCKET,
            "source": {**self.source.to_dict(), "frame_budget": self.budget, "fps": self.fps},
            "deployment": self.deployment,
            "device_run": self.device_run,
            "counts": {"frames": self.frames_served, "messages": self.messages,
                       "messages_with_faces": self.messages_with_faces, "crops": len(self.keys)},
            "keys": self.keys,
            "status": self.status,
            "timings_s": {name: round(value, 2) for name, value in self.timings.items()},
            "outputs": self.outputs,
        }


class _Stopwatch:
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


# ---------------------------------------------------------------------------------------------- the demo


def run_demo(app: App, device_name: str, source: str | None, out_dir: str, max_frames: int | None,
             keep_running: bool, fps: float = DEFAULT_FPS, wait_forever: Any = None) -> DemoResult:
    """Run the demo (see the module docstring); returns what it reported. Raises DeeplensError on failure.

    `fps` is the simulated camera's rate; `wait_forever` replaces the Ctrl-C wait of --keep-running (tests).
    """
    from deeplens_cli.devices import DEVICE_NAME

    reporter = app.reporter
    if not DEVICE_NAME.match(device_name):
        raise ConfigError(f"--device '{device_name}' is not a valid device name",
                          "use 1-100 letters, digits and hyphens, starting with a letter or digit")
    frames = check_source(source) if source else None
    out = prepare_out_dir(Path(out_dir))
    timings: dict[str, float] = {}
    watch = _Stopwatch(timings)

    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="deeplens-demo-")))
        if frames is None:
            with watch.lap("clip"):
                from deeplens_cli.simulator.clip import build_clip

                budget = max_frames or DEFAULT_FRAME_BUDGET
                reporter.progress(f"demo: building a {budget}-frame clip from the face images bundled with scikit-image")
                clip = build_clip(work / "clip", frame_count=min(budget, MAX_DEFAULT_BUDGET), fps=fps)
                frames = FrameSource("clip", str(clip.directory), clip.frame_count)
        budget = frame_budget(frames, max_frames)

        stack.enter_context(demo_environment())
        with watch.lap("emulator"):
            emulator = stack.enter_context(EmbeddedAws())
        reporter.progress(f"demo: AWS emulator (moto) listening on {emulator.endpoint}; fake credentials, "
                          f"your AWS configuration is not used")
        result = DemoResult(device_name, emulator.endpoint, frames, budget, fps, out, keep_running, timings=timings)
        child = demo_app(app, work, emulator.endpoint, device_name)

        with watch.lap("register_roles"):
            _register_roles(child)
        with watch.lap("register_device"):
            _register_device(child, device_name, work)
        core = stack.enter_context(_simulated_device(child, device_name, work, frames, budget, fps, result, out))
        with watch.lap("deploy"):
            _deploy(child, device_name, core, result)
        with watch.lap("device_run"):
            _wait_for_device(core, budget, fps, result, reporter)
        with watch.lap("status"):
            _status(app, child, device_name, result)
        with watch.lap("collect"):
            collect_outputs(child, core, frames, out, result)
        watch.total()
        _write_summary(out, result)
        _report(app.reporter, result)
        if keep_running:
            _keep_running(reporter, emulator.endpoint, work / "deeplens.yaml", wait_forever)
    return result


def demo_app(app: App, work: Path, endpoint: str, device_name: str) -> App:
    """An App whose settings point at the emulator; its reporter writes everything to stderr.

    Progress and plan tables of the sub-steps are the demo's progress; stdout is kept for the demo's own
    result (and, with --output json, for its single document).
    """
    import yaml

    from deeplens_cli.app import App
    from deeplens_cli.output import Reporter

    config = {**DEMO_SETTINGS, "endpoint_url": endpoint, "device": device_name}
    path = work / "deeplens.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    sub_steps = "table" if app.reporter.output == "table" else "text"  # drawn tables for a person, else plain rows
    reporter = Reporter(output=sub_steps, verbose=app.reporter.verbose, stdout=app.reporter.stderr,
                        stderr=app.reporter.stderr)
    return App(config_path=str(path), global_flags={}, reporter=reporter, environ={})


def _register_roles(child: App) -> None:
    from deeplens_cli.roles import register_roles

    child.reporter.progress("demo: deeplens-cli register-roles")
    register_roles(child, dry_run=False)


def _register_device(child: App, device_name: str, work: Path) -> None:
    from deeplens_cli.devices import register_device

    child.reporter.progress(f"demo: deeplens-cli register-device --name {device_name} --greengrass v1")
    register_device(child, name=device_name, out_dir=str(work / "devices" / device_name), target="v1", fleet=None,
                    dry_run=False)


@contextmanager
def _simulated_device(child: App, device_name: str, work: Path, frames: FrameSource, budget: int, fps: float,
                      result: DemoResult, out: Path) -> Iterator[Any]:
    """The simulated DeepLens, watching the device's group from before `deploy` until the demo ends.

    Its function log is copied to `out` however the demo ends: it is the first thing to read when it failed.
    """
    import boto3

    from deeplens_cli.simulator.core import (
        DeviceIo,
        MotoDeploymentReporter,
        SimulatedCore,
    )
    from deeplens_cli.targets.artifacts import artifact_bucket as bucket_for_artifacts
    from deeplens_cli.targets.registry import find_device

    device = find_device(child.ctx, child.settings, device_name, child.reporter)
    if not device.group_id:
        raise DeeplensError(f"device '{device_name}' has no Greengrass V1 group", "this is a bug in the demo")
    result.thing_name, result.group_id = device.thing_name, device.group_id
    device_root = work / "device"
    session = boto3.Session(aws_access_key_id=DEMO_CREDENTIAL, aws_secret_access_key=DEMO_CREDENTIAL,
                            region_name=DEMO_REGION)
    io_ = DeviceIo(source=frames.spec, fps=fps, messages_path=device_root / "messages.jsonl",
                   frame_log_path=device_root / "frames.jsonl")
    settings = child.settings
    artifact_bucket = bucket_for_artifacts(settings)
    account = child.ctx.account_id
    core = SimulatedCore(session, settings["endpoint_url"], device.group_id, device.thing_name, artifact_bucket,
                         device_root, io_, reporter=MotoDeploymentReporter(account, DEMO_REGION),
                         extra_env={"DEEPLENS_MAX_FRAMES": str(budget)}, log=child.reporter.progress)
    device_root.mkdir(parents=True, exist_ok=True)
    core.start()
    try:
        yield core
    finally:
        core.stop()
        run = core.current_run()
        if run is not None and run.log_path.exists():
            shutil.copyfile(run.log_path, out / "function.log")


def _deploy(child: App, device_name: str, core: Any, result: DemoResult) -> None:
    from deeplens_cli.devices import deploy

    child.reporter.progress(f"demo: deeplens-cli deploy --device {device_name}")
    deploy(child, device_name=device_name, fleet=None, dry_run=False, wait=True, force=False,
           rollout_per_minute=None, abort_failure_percent=None)
    run = core.current_run()
    if run is None:  # deploy succeeded, so the core must have started the function
        raise DeeplensError("the deployment succeeded but the simulated device runs nothing", "this is a bug in the demo")
    status, message = core.outcomes.get(run.deployment_id, ("?", ""))
    result.deployment = {"id": run.deployment_id, "status": status, "function": run.function.function_arn,
                         "handler": run.function.handler, "code_sha256": run.function.code_sha256,
                         "code_from": run.code_origin, "verified_on_device": True}


def _wait_for_device(core: Any, budget: int, fps: float, result: DemoResult, reporter: Reporter) -> None:
    """Until the function has processed its frame budget and flushed its uploads."""
    run = core.current_run()
    timeout_s = budget / fps * 4 + 60  # generous: a slow machine processes slower than the camera rate
    reporter.progress(f"demo: the simulated DeepLens is processing {budget} frames at up to {fps:g} fps")
    code = run.wait(timeout_s)
    result.frames_served = _count_lines(core.io.frame_log_path)
    result.device_run = {"exit_code": code, "seconds": round((run.ended_at or time.monotonic()) - run.started_at, 2),
                         "frames": result.frames_served, "pid": run.process.pid,
                         "peak_rss_mb": run.status().get("peak_rss_mb")}
    if code is None:
        raise DeeplensError(f"the simulated device did not finish {budget} frames within {timeout_s:.0f} s "
                            f"(last log: {run.log_tail(2) or 'empty'})", "try a smaller --max-frames")
    if code != 0 or result.frames_served == 0:
        raise DeeplensError(f"the simulated device's function stopped (exit code {code}, "
                            f"{result.frames_served} frames): {run.log_tail(3) or 'no log'}",
                            "the function log is in the demo output folder; rerun with -v")


def _status(app: App, child: App, device_name: str, result: DemoResult) -> None:
    """What `deeplens-cli status --device NAME` reports: rendered on stdout, or kept for the JSON document."""
    from deeplens_cli.status import gather_status, render

    child.reporter.progress(f"demo: deeplens-cli status --device {device_name}")
    report = gather_status(child.ctx, child.settings, device_name, child.reporter)
    result.status = report.to_dict()
    if not app.reporter.json:
        render(report, app.reporter, child.settings)
    if not report.ok:
        app.reporter.warn("status reports: " + "; ".join(report.problems))


def _count_lines(path: Path | None) -> int:
    if path is None or not path.exists():
        return 0
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


def _read_json_lines(path: Path | None) -> list[dict[str, Any]]:
    if path is None or not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by the process ending
    return records


# ---------------------------------------------------------------------------------------------- outputs


def prepare_out_dir(out: Path) -> Path:
    """Create --out, or reuse it when it holds a previous demo's output (replacing only what the demo writes).

    Any other non-empty folder is refused: the demo must never delete files it did not create.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder", "choose another --out")
    if out.exists() and any(out.iterdir()) and not (out / SUMMARY_FILE).exists():
        raise ConfigError(f"--out {out} already exists, is not empty and is not a previous demo's output",
                          "choose an empty or new folder for --out")
    out.mkdir(parents=True, exist_ok=True)
    for name in ("crops", "frames"):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("contact_sheet.png", "messages.jsonl", "function.log"):
        (out / name).unlink(missing_ok=True)
    # Claim the folder now, so a run that fails half way can still be replaced by the next one.
    (out / SUMMARY_FILE).write_text(json.dumps({"ok": False, "state": "running"}) + "\n", encoding="utf-8")
    return out


def collect_outputs(child: App, core: Any, frames: FrameSource, out: Path, result: DemoResult) -> None:
    """Crops from the emulated bucket, the messages, the contact sheet, annotated frames, the device log."""
    import cv2
    import numpy

    from deeplens_cli.simulator.contact_sheet import Tile, build_contact_sheet

    s3 = child.ctx.client("s3")
    bucket, prefix = child.settings["bucket"], child.settings["prefix"]
    crops_dir = out / "crops"
    crops_dir.mkdir(parents=True, exist_ok=True)
    tiles, crop_paths = [], []
    paginator = s3.get_paginator("list_objects_v2")
    objects = [item for page in paginator.paginate(Bucket=bucket, Prefix=prefix) for item in page.get("Contents", [])]
    for index, item in enumerate(sorted(objects, key=lambda o: o["Key"])):
        answer = s3.get_object(Bucket=bucket, Key=item["Key"])
        body, metadata = answer["Body"].read(), answer.get("Metadata", {})
        path = crops_dir / f"{index + 1:02d}_{Path(item['Key']).name}"
        path.write_bytes(body)
        crop_paths.append(str(path))
        result.keys.append({"key": item["Key"], "size": item["Size"], "content_type": answer.get("ContentType"),
                            "metadata": metadata})
        image = cv2.imdecode(numpy.frombuffer(body, dtype=numpy.uint8), cv2.IMREAD_COLOR)
        if image is not None:
            caption = f"face {metadata.get('confidence', '?')}  track {metadata.get('track-id', '?')}"
            tiles.append(Tile(image, (caption, Path(item["Key"]).name)))
    sheet = build_contact_sheet(tiles, out / "contact_sheet.png",
                                title=f"{len(tiles)} face crop(s) uploaded by {result.device} to s3://{bucket}/{prefix}")

    messages = _read_json_lines(core.io.messages_path)
    result.messages = len(messages)
    if core.io.messages_path and core.io.messages_path.exists():
        shutil.copyfile(core.io.messages_path, out / "messages.jsonl")
    annotated = annotate_frames(messages, _read_json_lines(core.io.frame_log_path), frames, out / "frames")
    result.messages_with_faces = sum(1 for m in messages if _payload(m).get("faces"))
    result.outputs = {"dir": str(out), "crops": crop_paths, "contact_sheet": str(sheet),
                      "annotated_frames": annotated, "messages": str(out / "messages.jsonl"),
                      "function_log": str(out / "function.log"), "summary": str(out / SUMMARY_FILE)}


def _payload(message: dict[str, Any]) -> dict[str, Any]:
    try:
        payload = json.loads(message.get("payload") or "{}")
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def annotate_frames(messages: list[dict[str, Any]], frame_log: list[dict[str, Any]], frames: FrameSource,
                    folder: Path, count: int = ANNOTATED_FRAMES) -> list[str]:
    """Draw what the device published on the frames it was looking at; returns the written paths.

    A message is published right after its frame was processed, so its frame is the last one the camera
    handed out before the message's time. A webcam's frames cannot be read again, so it gets none.
    """
    import bisect

    import cv2

    from deeplens_cli.simulator.contact_sheet import annotate_frame

    if frames.kind == "webcam" or not frame_log:
        return []
    times = [entry["time"] for entry in frame_log]
    with_faces = [m for m in messages if _payload(m).get("faces")]
    if not with_faces:
        return []
    step = max(1, len(with_faces) // count)
    chosen = with_faces[::step][:count]
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for message in chosen:
        position = bisect.bisect_right(times, message["time"]) - 1
        if position < 0:
            continue
        index = frame_log[position]["index"]
        frame = _read_frame(frames, index)
        if frame is None:
            continue
        payload = _payload(message)
        faces = [(face.get("score", 0.0), face["box"]) for face in payload.get("faces", []) if "box" in face]
        image = annotate_frame(frame, faces, caption=f"frame {index}: {len(faces)} face(s) published on {message['topic']}")
        path = folder / f"frame_{index:05d}.jpg"
        cv2.imwrite(str(path), image, [int(cv2.IMWRITE_JPEG_QUALITY), 90])
        written.append(str(path))
    return written


def _read_frame(frames: FrameSource, index: int) -> Any:
    import cv2

    from deeplens_cli.simulator.awscam import list_images

    if frames.kind in ("clip", "directory"):
        images = list_images(frames.spec)
        return cv2.imread(images[index % len(images)], cv2.IMREAD_COLOR) if images else None
    capture = cv2.VideoCapture(frames.spec)
    try:
        if frames.frames:
            capture.set(cv2.CAP_PROP_POS_FRAMES, index % frames.frames)
        ok, frame = capture.read()
        return frame if ok else None
    finally:
        capture.release()


def _write_summary(out: Path, result: DemoResult) -> None:
    (out / SUMMARY_FILE).write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")


def _report(reporter: Reporter, result: DemoResult) -> None:
    if reporter.json:
        reporter.emit_json(result.to_dict())
        return
    reporter.line(f"Demo finished in {result.timings.get('total', 0):.1f} s: the simulated DeepLens '{result.device}' "
                  f"processed {result.frames_served} frames, published {result.messages} messages and uploaded "
                  f"{len(result.keys)} face crop(s).")
    reporter.table(f"Face crops in s3://{DEMO_BUCKET} (emulated)", ("key", "confidence", "track", "bytes"),
                   [(k["key"], k["metadata"].get("confidence", "-"), k["metadata"].get("track-id", "-"), k["size"])
                    for k in result.keys])
    outputs = result.outputs
    reporter.line(f"Look at: {outputs.get('contact_sheet')}  (the crops)")
    if outputs.get("annotated_frames"):
        reporter.line(f"         {Path(outputs['annotated_frames'][0]).parent}/  (frames with what the device saw)")
    reporter.line(f"         {outputs.get('dir')}/  (crops, messages.jsonl, function.log, {SUMMARY_FILE})")


def _keep_running(reporter: Reporter, endpoint: str, config: Path, wait_forever: Any) -> None:
    """Print how to use the emulator, then wait for Ctrl-C; the caller's cleanup stops everything."""
    lines = [
        f"The emulator stays up at {endpoint}; the simulated device takes new deployments too. In another shell:",
        "  unset AWS_PROFILE",
        f"  export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID={DEMO_CREDENTIAL} "
        f"AWS_SECRET_ACCESS_KEY={DEMO_CREDENTIAL} AWS_DEFAULT_REGION={DEMO_REGION}",
        f"  export DEEPLENS_CONFIG={config}",
        "  deeplens-cli status          # or: deeplens-cli devices, deeplens-cli deploy --device NAME --force",
        f"  aws s3 ls s3://{DEMO_BUCKET}/ --recursive",
        "Press Ctrl-C to stop the emulator.",
    ]
    for line in lines:
        if reporter.json:
            reporter.progress(line)
        else:
            reporter.line(line)
    try:
        (wait_forever or _wait_for_interrupt)()
    except KeyboardInterrupt:
        pass
    reporter.progress("demo: stopping the emulator")


def _wait_for_interrupt() -> None:
    """Block until Ctrl-C; SIGTERM (a service manager, `kill`) is treated the same, so cleanup runs either way."""
    import signal

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt) if threading.current_thread() is threading.main_thread() else None
    try:
        stop = threading.Event()
        while not stop.wait(3600):
            pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
