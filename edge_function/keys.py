"""S3 key layout and object metadata of a face crop.

The downstream pipeline (S3 event -> Rekognition) was built on the workshop's layout
``faces/{month}_{day}/{hour}_{minute}/{timestamp}_{index}.jpg``: month, day, hour and minute as plain
numbers in the device's local time (``datetime.now()``, no zero padding) and ``timestamp`` as whole
epoch seconds. That layout is kept, with one change: the workshop's ``index`` was the face's position in
the frame, so two crops in the same second overwrote each other. Here ``{n}`` is
``<boot id>-<counter>``: a counter that only grows within the process, plus a random id drawn once per
process start, so neither two crops of one process nor a restarted process within the same second can
produce the same key. The key is fixed when the crop is captured and travels with it through the queue
and the spool, so a retried upload overwrites the same object instead of creating a duplicate.

Template placeholders: ``{prefix}`` ``{year}`` ``{month}`` ``{day}`` ``{hour}`` ``{minute}``
``{second}`` (local time, unpadded), ``{timestamp}`` (epoch s), ``{timestamp_ms}`` (epoch ms),
``{n}`` (unique, required), ``{boot}``, ``{counter}``, ``{device}``, ``{track}``.
"""

import base64
import datetime
import os
import re
import string
import threading
import time
from typing import Callable, Dict, Optional, Sequence

from edge_function import __version__

DEFAULT_TEMPLATE = "{prefix}/{month}_{day}/{hour}_{minute}/{timestamp}_{n}.jpg"
PLACEHOLDERS = (
    "prefix", "year", "month", "day", "hour", "minute", "second",
    "timestamp", "timestamp_ms", "n", "boot", "counter", "device", "track",
)
# S3 user metadata travels in HTTP headers (2 KB in total), so each value is kept short and ASCII.
_MAX_METADATA_VALUE = 256
_REPEATED_SLASHES = re.compile(r"/{2,}")


def template_problem(template: str) -> Optional[str]:
    """What is wrong with a key template (as an "expected ..." phrase), or None when it is usable."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError:
        return "a key template with balanced {} placeholders"
    unknown = [field for field in fields if field not in PLACEHOLDERS]
    if unknown:
        return "placeholders among {%s}, not {%s}" % ("}, {".join(PLACEHOLDERS), unknown[0])
    if "n" not in fields:
        return "a key template containing {n}, which keeps keys unique"
    return None


def new_boot_id() -> str:
    """Six random base32 characters (30 bits), drawn once per process start."""
    return base64.b32encode(os.urandom(5)).decode("ascii")[:6].lower()


class KeyFactory:
    """Hands out one unique S3 key per captured crop (thread-safe)."""

    def __init__(
        self,
        prefix: str = "faces",
        template: str = DEFAULT_TEMPLATE,
        device: str = "",
        boot_id: Optional[str] = None,
        localtime: Callable[[float], time.struct_time] = time.localtime,
    ) -> None:
        problem = template_problem(template)
        if problem:
            raise ValueError("bad key template %r: expected %s" % (template, problem))
        self.prefix = prefix.strip("/")
        self.template = template
        self.device = device
        self.boot_id = boot_id or new_boot_id()
        self._localtime = localtime
        self._counter = 0
        self._lock = threading.Lock()

    def make_key(self, captured_at: float, track_id: int = 0) -> str:
        """The key for a crop captured at epoch time ``captured_at``."""
        with self._lock:
            self._counter += 1
            counter = self._counter
        local = self._localtime(captured_at)
        key = self.template.format(
            prefix=self.prefix,
            year=local.tm_year,
            month=local.tm_mon,
            day=local.tm_mday,
            hour=local.tm_hour,
            minute=local.tm_min,
            second=local.tm_sec,
            timestamp=int(captured_at),
            timestamp_ms=int(round(captured_at * 1000)),
            n="%s-%d" % (self.boot_id, counter),
            boot=self.boot_id,
            counter=counter,
            device=self.device,
            track=track_id,
        )
        # An empty prefix must not produce "/11_24/..." (a key with an empty first segment).
        return _REPEATED_SLASHES.sub("/", key).lstrip("/")


def _ascii(value: str) -> str:
    return value.encode("ascii", "replace").decode("ascii")[:_MAX_METADATA_VALUE]


def object_metadata(
    device: str,
    detector: str,
    score: float,
    box: Sequence[float],
    frame_size: Sequence[int],
    track_id: int,
    captured_at: float,
) -> Dict[str, str]:
    """S3 user metadata (sent as ``x-amz-meta-*``) describing where a crop came from.

    Small strings only: the box in full-frame pixels and the frame size let a consumer relate the crop
    to the camera view, the detector, score and software version make a bad crop traceable to the code
    that produced it, and the track id groups crops of one person.
    """
    utc = datetime.datetime.fromtimestamp(captured_at, datetime.timezone.utc)
    captured = utc.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {
        "device": _ascii(device),
        "detector": _ascii(detector),
        "confidence": "%.3f" % score,
        "box": ",".join(str(int(round(value))) for value in box),
        "frame-size": "%dx%d" % (int(frame_size[0]), int(frame_size[1])),
        "track-id": str(int(track_id)),
        "captured-at": captured,
        "software-version": __version__,
    }
