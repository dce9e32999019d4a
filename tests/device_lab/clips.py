"""The camera footage of the device lab: a video file the component reads as `detection.source`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LabClips:
    """The demo's face clip (90 frames, faces in 61) as MJPEG AVI files, repeated so that Run is still going
    when the lab stops it: a file is read as fast as the detector goes, ~140 frames/s natively on amd64 at
    320x180 (20 repeats: over 10 s) and about one frame per second under qemu-user at 160x90 (3 repeats).

    `native` (320x180) is for root file systems of this machine's architecture. `emulated` (160x90) is for those
    under qemu-user: there one CenterFace inference took ~7 s at 640x360 and ~3.3 s at 320x180 on a busy 2-core
    machine (~0.6 s at 160x90). The loop now stops mid-frame (tests/edge/test_stop.py), so the size no longer
    decides whether SIGTERM is honoured within the nucleus' 5 s grace period; the small frame keeps Run's upload
    of a first crop, and so the lab, fast under emulation. CenterFace finds the face in every frame that has one
    at both sizes."""

    native: Path
    emulated: Path


def build_lab_clips(folder: Path) -> LabClips:
    import cv2

    from deeplens_cli.simulator.clip import build_clip

    clip = build_clip(folder / "frames", frame_count=90, size=(320, 180))
    videos = LabClips(native=folder / "faces-320x180.avi", emulated=folder / "faces-160x90.avi")
    for video, size, repeats in ((videos.native, (320, 180), 20), (videos.emulated, (160, 90), 3)):
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), clip.fps, size)
        for _ in range(repeats):
            for index in range(clip.frame_count):
                frame = cv2.imread(str(clip.frame_path(index)))
                writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
        writer.release()
        assert video.stat().st_size > 0
    return videos
