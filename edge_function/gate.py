"""Which faces to send: the gate between the detector and the uploader.

The seed uploaded every face on every frame: one person standing in front of the camera for a minute
at 10 fps became 600 Rekognition calls. The gate turns a stream of per-frame detections into a few
crops worth sending:

1. **Score and size.** Detections under the score threshold are ignored; faces whose shorter side is
   under ``min_face_px`` (default: Rekognition's floor of 40 px at 1080p, scaled by the frame height)
   are tracked but never sent.
2. **Tracking.** A greedy IoU tracker links each face to the track it overlapped most in the previous
   frame, so one person standing in view is ONE track. A track unseen for ``track_lost_s`` has ended.
   Matching happens before ageing, so a slow loop (long gaps between frames) does not split tracks.
3. **Best crop per track.** Each track keeps one candidate, replaced only by a clearly better one
   (Frigate's rule, ``is_better_thumbnail`` in frigate/util/image.py of github.com/blakeblackshear/frigate):
   a box that does not touch the frame edge beats one that does; then a face more than 10 % larger wins;
   then a score higher by more than 0.05; then a crop more than 20 % sharper (variance of the Laplacian).
   Otherwise the current candidate stays (sticky), which avoids flip-flopping between near-identical frames.
   The candidate crop is cut from the clean frame.
4. **When to send.** When the track ends, or after ``best_face_timeout_s`` for a long track (the person
   who stands still should not wait until they leave), at most ``max_uploads_per_track`` times, at least
   ``cooldown_s`` apart. A track that ends after sending is remembered for ``cooldown_s``: a face that
   reappears where it was lost (the detector missed a few frames, the person turned away) continues that
   track instead of starting a new one - the usual cause of duplicate uploads with a naive tracker.
5. **Global cap.** At most ``max_uploads_per_minute`` crops in any 60 s window (cost control). The issue
   suggests a token bucket; a bucket of capacity N refilled at N/min lets up to 2N through in the worst
   minute, so this keeps the send times of the last minute instead (at most N floats), which holds the cap
   exactly. A live track that hits the cap keeps its candidate and tries again on later frames; a track
   that ended while capped loses its crop (counted in ``rate_limited``).

Time comes from an injectable monotonic ``clock`` (decisions) and ``wall_clock`` (the capture time that
goes into the S3 key), so tests drive the gate frame by frame without sleeping.
"""

import collections
import time
from typing import Callable, Deque, Dict, List, Optional

import numpy

from edge_function import geometry, settings

# Rekognition needs a face of at least 40x40 px in a 1920x1080 image (proportionally more for larger
# images): https://docs.aws.amazon.com/rekognition/latest/dg/limits.html
REKOGNITION_MIN_FACE_PX_AT_1080P = 40.0
_AREA_GAIN = 1.10
_SCORE_GAIN = 0.05
_SHARPNESS_GAIN = 1.20
_SHARPNESS_SIDE_PX = 160
_WINDOW_S = 60.0

_GATE_FIELDS = ("threshold", "min_face_px", "margin", "track_iou", "track_lost_s", "best_face_timeout_s",
                "max_uploads_per_track", "cooldown_s", "max_uploads_per_minute")
# Defaults come from the settings (the threshold: the CPU detector's), so a gate built without settings -
# tests, benchmarks - behaves like the deployed one and no default is written twice.
GateConfig = collections.namedtuple(
    "GateConfig",
    _GATE_FIELDS,
    defaults=tuple(
        settings.DEFAULT_THRESHOLDS["opencv"]
        if name == "threshold"
        else settings.OPTIONS_BY_NAME[name].default
        for name in _GATE_FIELDS
    ),
)
GateConfig.__doc__ = """Gate parameters; ``min_face_px`` None means 40 px at 1080p scaled by frame height."""


def gate_config_from_settings(settings) -> GateConfig:
    """The gate's part of ``settings.Settings``."""
    return GateConfig(**{name: getattr(settings, name) for name in GateConfig._fields})


class FaceCrop(collections.namedtuple("FaceCrop", "image detection track_id captured_at frame_size rect")):
    """A crop chosen for upload: ``image`` is a BGR copy cut from the clean frame (margin included),
    ``detection`` the detector's result for it (box in frame pixels), ``captured_at`` the epoch time of
    the frame it came from, ``frame_size`` (width, height) and ``rect`` the crop rectangle in the frame."""

    __slots__ = ()


def _sharpness(image: numpy.ndarray) -> float:
    """Sharpness on at most about ``_SHARPNESS_SIDE_PX`` pixels a side: a close face at 1080p can be 800 px
    wide, and a Laplacian over all of it on every frame of a standing person would cost milliseconds. Two
    candidates compared here are within 10 % in size, so they are subsampled alike and stay comparable."""
    step = max(1, min(image.shape[0], image.shape[1]) // _SHARPNESS_SIDE_PX)
    return geometry.sharpness(image[::step, ::step])


class _Candidate:
    __slots__ = ("detection", "rect", "area", "on_edge", "sharpness", "image", "captured_at", "frame_size")

    def __init__(self, detection, rect, on_edge: bool) -> None:
        width, height = geometry.box_size(detection.box)
        self.detection = detection
        self.rect = rect
        self.area = width * height
        self.on_edge = on_edge
        self.sharpness: Optional[float] = None
        self.image: Optional[numpy.ndarray] = None
        self.captured_at = 0.0
        self.frame_size = (0, 0)


class _Track:
    __slots__ = ("track_id", "box", "last_seen", "window_start", "candidate", "uploads", "last_upload")

    def __init__(self, track_id: int, box, now: float) -> None:
        self.track_id = track_id
        self.box = box
        self.last_seen = now
        self.window_start = now
        self.candidate: Optional[_Candidate] = None
        self.uploads = 0
        self.last_upload: Optional[float] = None


class SendWindow:
    """At most ``per_minute`` sends in any 60 s window (see the module docstring for why not a bucket)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._sent: Deque[float] = collections.deque()

    def try_take(self, now: float) -> bool:
        while self._sent and now - self._sent[0] >= _WINDOW_S:
            self._sent.popleft()
        if len(self._sent) >= self.per_minute:
            return False
        self._sent.append(now)
        return True


class FaceGate:
    """Feed it every frame's detections; it returns the crops to send (usually none)."""

    def __init__(
        self,
        config: Optional[GateConfig] = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config = config or GateConfig()
        self._clock = clock
        self._wall_clock = wall_clock
        self._window = SendWindow(config.max_uploads_per_minute)
        self._live: List[_Track] = []
        self._ended: List[_Track] = []  # tracks that sent, remembered for cooldown_s
        self._next_id = 1
        #: The last processed frame's detections at or above the threshold (for the publisher and preview).
        self.kept: List = []
        self.counters: Dict[str, int] = collections.OrderedDict(
            (name, 0) for name in ("detections", "below_threshold", "too_small", "tracks", "sent",
                                   "rate_limited", "suppressed")
        )

    @property
    def live_tracks(self) -> int:
        return len(self._live)

    def min_face_px(self, frame_height: int) -> float:
        if self.config.min_face_px is not None:
            return float(self.config.min_face_px)
        return REKOGNITION_MIN_FACE_PX_AT_1080P * float(frame_height) / 1080.0

    def process(self, frame: numpy.ndarray, detections) -> List[FaceCrop]:
        """Update the tracks with one frame's detections; return the crops due now."""
        now = self._clock()
        frame_h, frame_w = frame.shape[:2]
        counters = self.counters
        counters["detections"] += len(detections)
        self.kept = kept = [d for d in detections if d.score >= self.config.threshold]
        counters["below_threshold"] += len(detections) - len(kept)

        matched = self._match(kept, now)
        min_px = self.min_face_px(frame_h)
        for track, detection in matched:
            track.box = detection.box
            track.last_seen = now
            self._consider(track, detection, frame, frame_w, frame_h, min_px)

        crops: List[FaceCrop] = []
        still_live = []
        for track in self._live:
            if now - track.last_seen > self.config.track_lost_s:
                self._end(track, now, crops)
            else:
                still_live.append(track)
                if track.candidate is not None and now - track.window_start >= self.config.best_face_timeout_s:
                    self._emit(track, now, crops, ending=False)
        self._live = still_live
        self._ended = [t for t in self._ended if now - t.last_upload < self.config.cooldown_s]
        return crops

    def flush(self) -> List[FaceCrop]:
        """End every live track now (shutdown) and return the crops they are still owed."""
        now = self._clock()
        crops: List[FaceCrop] = []
        for track in self._live:
            self._end(track, now, crops)
        self._live = []
        return crops

    # --- tracking -------------------------------------------------------------------------------------

    def _match(self, detections, now: float):
        """Greedy IoU matching, best overlaps first; unmatched faces revive a cooling track or start one."""
        pairs = []
        for ti, track in enumerate(self._live):
            for di, detection in enumerate(detections):
                overlap = geometry.iou(track.box, detection.box)
                if overlap >= self.config.track_iou:
                    pairs.append((overlap, ti, di))
        pairs.sort(reverse=True)
        used_tracks, used_detections, matched = set(), set(), []
        for _, ti, di in pairs:
            if ti in used_tracks or di in used_detections:
                continue
            used_tracks.add(ti)
            used_detections.add(di)
            matched.append((self._live[ti], detections[di]))
        for di, detection in enumerate(detections):
            if di not in used_detections:
                matched.append((self._revive_or_start(detection, now), detection))
        return matched

    def _revive_or_start(self, detection, now: float) -> _Track:
        best, best_overlap = None, 0.0
        for track in self._ended:
            overlap = geometry.iou(track.box, detection.box)
            if overlap >= self.config.track_iou and overlap > best_overlap:
                best, best_overlap = track, overlap
        if best is not None:
            self._ended.remove(best)
            best.window_start = now
            self._live.append(best)
            return best
        track = _Track(self._next_id, detection.box, now)
        self._next_id += 1
        self.counters["tracks"] += 1
        self._live.append(track)
        return track

    # --- best crop ------------------------------------------------------------------------------------

    def _consider(self, track: _Track, detection, frame, frame_w: int, frame_h: int, min_px: float) -> None:
        if track.uploads >= self.config.max_uploads_per_track:
            return  # nothing more will be sent for this track: skip the crop work
        if geometry.min_side(detection.box) < min_px:
            self.counters["too_small"] += 1
            return
        rect = geometry.crop_rect(detection.box, frame_w, frame_h, self.config.margin)
        if rect is None:
            return
        candidate = _Candidate(detection, rect, geometry.touches_edge(detection.box, frame_w, frame_h))
        if not self._is_better(candidate, track.candidate, frame):
            return
        candidate.image = geometry.crop(frame, rect)
        candidate.captured_at = self._wall_clock()
        candidate.frame_size = (frame_w, frame_h)
        track.candidate = candidate

    @staticmethod
    def _is_better(new: _Candidate, current: Optional[_Candidate], frame) -> bool:
        if current is None:
            return True
        if new.on_edge != current.on_edge:
            return current.on_edge
        if new.area > current.area * _AREA_GAIN:
            return True
        if current.area > new.area * _AREA_GAIN:
            return False
        if new.detection.score > current.detection.score + _SCORE_GAIN:
            return True
        if current.detection.score > new.detection.score + _SCORE_GAIN:
            return False
        # Similar size and score: only now pay for the sharpness measure (a Laplacian on the crop).
        x0, y0, x1, y1 = new.rect
        new.sharpness = _sharpness(frame[y0:y1, x0:x1])
        if current.sharpness is None:
            current.sharpness = _sharpness(current.image)
        return new.sharpness > current.sharpness * _SHARPNESS_GAIN

    # --- sending --------------------------------------------------------------------------------------

    def _end(self, track: _Track, now: float, crops: List[FaceCrop]) -> None:
        if track.candidate is not None:
            self._emit(track, now, crops, ending=True)
        if track.last_upload is not None and now - track.last_upload < self.config.cooldown_s:
            track.candidate = None
            self._ended.append(track)

    def _emit(self, track: _Track, now: float, crops: List[FaceCrop], ending: bool) -> None:
        config = self.config
        cooling = track.last_upload is not None and now - track.last_upload < config.cooldown_s
        if track.uploads >= config.max_uploads_per_track or cooling:
            if ending:
                self.counters["suppressed"] += 1
            return  # a live track keeps its candidate until the cooldown is over
        if not self._window.try_take(now):
            if ending:
                self.counters["rate_limited"] += 1
            return
        candidate = track.candidate
        crops.append(FaceCrop(candidate.image, candidate.detection, track.track_id, candidate.captured_at,
                              candidate.frame_size, candidate.rect))
        track.candidate = None
        track.uploads += 1
        track.last_upload = now
        track.window_start = now
        self.counters["sent"] += 1
