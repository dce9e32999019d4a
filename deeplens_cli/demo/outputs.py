"""What the demo leaves behind and reports: crops from the emulated bucket, the device's messages, a contact
sheet, annotated frames, the device log, `demo.json`, and the `--output json` document (`DemoResult`)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deeplens_cli.demo.devices import DEVICE_LOG, INSTALL_LOG, DemoDevice
from deeplens_cli.demo.frames import FrameSource, frame_images
from deeplens_cli.demo.sandbox import DEMO_BUCKET, DEMO_REGION
from deeplens_cli.errors import ConfigError
from deeplens_cli.file_errors import file_system_error
from deeplens_cli.simulator.contact_sheet import Tile, annotate_frame, build_contact_sheet

if TYPE_CHECKING:
    from deeplens_cli.cli.app import App
    from deeplens_cli.cli.output import Reporter

SUMMARY_FILE = "demo.json"  # also marks a folder as a demo output that a later demo may replace
ANNOTATED_FRAMES = 4


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
    target: str = "v2"  # the Greengrass generation the simulated device runs
    thing_name: str = ""
    group_id: str = ""  # Greengrass V1 only
    greengrassv2_endpoint: str = ""  # Greengrass V2 only: the in-process control plane
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
            "greengrass": self.target,
            "thing_name": self.thing_name,
            **({"group_id": self.group_id} if self.target == "v1" else {}),
            "emulator": {"endpoint": self.endpoint, "region": DEMO_REGION, "kept_running": self.keep_running,
                         **({"greengrassv2_endpoint": self.greengrassv2_endpoint} if self.target == "v2" else {})},
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


def prepare_out_dir(out: Path) -> Path:
    """Create --out, or reuse it when it holds a previous demo's output (replacing only what the demo writes).

    Any other non-empty folder is refused: the demo must never delete files it did not create. A folder that cannot
    be written (read-only, full, a name too long) is one line naming it, before the emulator starts.
    """
    try:
        return _claim_out_dir(out)
    except OSError as exc:
        raise file_system_error(exc, flag="--out") or exc from exc


def _claim_out_dir(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder", "choose another --out")
    if out.exists() and any(out.iterdir()) and not (out / SUMMARY_FILE).exists():
        raise ConfigError(f"--out {out} already exists, is not empty and is not a previous demo's output",
                          "choose an empty or new folder for --out")
    out.mkdir(parents=True, exist_ok=True)
    for name in ("crops", "frames"):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("contact_sheet.png", "messages.jsonl", DEVICE_LOG, INSTALL_LOG):
        (out / name).unlink(missing_ok=True)
    # Claim the folder now, so a run that fails half way can still be replaced by the next one.
    (out / SUMMARY_FILE).write_text(json.dumps({"ok": False, "state": "running"}) + "\n", encoding="utf-8")
    return out


def collect_outputs(child: App, device: DemoDevice, frames: FrameSource, out: Path, result: DemoResult) -> None:
    """Crops from the emulated bucket, the messages, the contact sheet, annotated frames, the device log."""
    import cv2
    import numpy

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

    messages = read_json_lines(device.messages_path)
    result.messages = len(messages)
    if device.messages_path.exists():
        shutil.copyfile(device.messages_path, out / "messages.jsonl")
    annotated = annotate_frames(messages, read_json_lines(device.frame_log_path), frames, out / "frames")
    result.messages_with_faces = sum(1 for m in messages if _payload(m).get("faces"))
    result.outputs = {"dir": str(out), "crops": crop_paths, "contact_sheet": str(sheet),
                      "annotated_frames": annotated, "messages": str(out / "messages.jsonl"),
                      "function_log": str(out / DEVICE_LOG), "summary": str(out / SUMMARY_FILE)}


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
        image = annotate_frame(
            frame, faces, caption=f"frame {index}: {len(faces)} face(s) published on {message['topic']}"
        )
        path = folder / f"frame_{index:05d}.jpg"
        cv2.imwrite(str(path), image, [int(cv2.IMWRITE_JPEG_QUALITY), 90])
        written.append(str(path))
    return written


def _read_frame(frames: FrameSource, index: int) -> Any:
    import cv2

    if frames.kind in ("clip", "directory"):
        images = frame_images(frames.spec)
        return cv2.imread(images[index % len(images)], cv2.IMREAD_COLOR) if images else None
    if frames.kind == "image":
        return cv2.imread(frames.spec, cv2.IMREAD_COLOR)
    capture = cv2.VideoCapture(frames.spec)
    try:
        if frames.frames:
            capture.set(cv2.CAP_PROP_POS_FRAMES, index % frames.frames)
        ok, frame = capture.read()
        return frame if ok else None
    finally:
        capture.release()


def write_summary(out: Path, result: DemoResult) -> None:
    (out / SUMMARY_FILE).write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")


def report(reporter: Reporter, result: DemoResult) -> None:
    if reporter.json:
        reporter.emit_json(result.to_dict())
        return
    what = "Greengrass V1 DeepLens" if result.target == "v1" else "Greengrass V2 core device"
    reporter.line(f"Demo finished in {result.timings.get('total', 0):.1f} s: the simulated {what} '{result.device}' "
                  f"processed {result.frames_served} frames, published {result.messages} messages and uploaded "
                  f"{len(result.keys)} face crop(s).")
    reporter.table(f"Face crops in s3://{DEMO_BUCKET} (emulated)", ("key", "confidence", "track", "bytes"),
                   [(k["key"], k["metadata"].get("confidence", "-"), k["metadata"].get("track-id", "-"), k["size"])
                    for k in result.keys])
    outputs = result.outputs
    reporter.line(f"Look at: {outputs.get('contact_sheet')}  (the crops)")
    if outputs.get("annotated_frames"):
        reporter.line(f"         {Path(outputs['annotated_frames'][0]).parent}/  (frames with what the device saw)")
    reporter.line(f"         {outputs.get('dir')}/  (crops, messages.jsonl, {DEVICE_LOG}, {SUMMARY_FILE})")


def read_json_lines(path: Path | None) -> list[dict[str, Any]]:
    if path is None or not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by the process ending
    return records
