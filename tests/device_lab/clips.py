"""The camera footage of the device lab: a video file the component reads as `detection.source`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LabClips:
    """The demo's face clip as MJPEG AVI files, played three times: long enough that Run is still going when
    the lab stops it.

    `native` (320x180) is for root file systems of this machine's architecture. `emulated` (160x90) is for those
    under qemu-user: there one CenterFace inference took ~7 s at 640x360 and ~3.3 s at 320x180 on a busy 2-core
    machine (~0.6 s at 160x90), and the loop only sees SIGTERM between frames, so a larger frame made the lab
    measure the emulator against the nucleus' 5 s grace period rather than the component. CenterFace finds the
    face in every frame that has one at both sizes."""

    native: Path
    emulated: Path


def build_lab_clips(folder: Path) -> LabClips:
    import cv2

    from deeplens_cli.simulator.clip import build_clip

    clip = build_clip(folder / "frames", frame_count=90, size=(320, 180))
    videos = LabClips(native=folder / "faces-320x180.avi", emulated=folder / "faces-160x90.avi")
    for video, size in ((videos.native, (320, 180)), (videos.emulated, (160, 90))):
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), clip.fps, size)
        for _ in range(3):
            for index in range(clip.frame_count):
                frame = cv2.imread(str(clip.frame_path(index)))
                writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
        writer.release()
        assert video.stat().st_size > 0
    return videos
