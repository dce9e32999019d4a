"""Wiring and supervision of the edge loop.

One line of data::

    source.read() -> motion.decide(frame) -> detector.detect(frame or moving regions)
        -> gate.process(frame, detections) -> crop (clean frame) -> JPEG (quality 90) -> uploader.submit()
                                                           publisher + preview on the side

The motion gate (``motion.py``) skips the detector on frames where nothing moved; such a frame keeps the
previous frame's detections (the picture is the same), so tracks of a still person live on until the next
periodic full detection confirms or drops them.

``EdgeLoop`` owns the parts that live as long as the process - gate, key factory, uploader (one worker
thread), publisher, preview (one writer thread), detector - and re-opens only the frame source when a
run fails. The detector is rebuilt only when it is what failed (``MAX_DETECT_FAILURES`` in a row): on a
DeepLens building it loads the model onto the GPU, which a silent camera is no reason to redo. ``Supervisor``
restarts a failed run after a backoff (1 s doubling to 60 s, reset after a healthy minute) in the SAME thread: the seed
rescheduled itself with ``Timer(15, ...)``, which started a new thread, and a new FIFO writer thread, on every restart.

Stopping (``run_until_stop``, used by ``python -m edge_function run``): the loop runs in its own daemon thread and the
main thread only waits, so SIGTERM is acted on at once even while the detector spends seconds on one frame (CenterFace
under qemu: 3-7 s; the Greengrass V2 nucleus kills 5 s after SIGTERM). The frame in progress gets a short grace to
finish, then ``finish`` flushes uploads within the rest of the flush deadline and the process exits; a detection that
returns after that is dropped (counted in ``frames_dropped_at_stop``), never handed to the closed uploader. One lock
covers everything after detection (``process_frame``) and ``finish``'s gate flush, so the gate, uploader, publisher
and preview are never used by two threads at once.

A failed frame read is not a crash: it is retried with a short doubling backoff, and only a source that
stays silent for about half a minute is treated as broken (the supervisor then re-opens it). A detector
error on one frame is logged and the frame skipped; five in a row fail the run and the detector is
rebuilt for the next one.
"""

import collections
import logging
import threading
import time
from typing import Any, Callable, Deque, Mapping, Optional, Tuple

from edge_function import detectors, gate, imaging, keys, motion, preview, publish, settings, sources
from edge_function.uploader import SpoolingUploader, UploadItem

LOG = logging.getLogger(__name__)

JPEG_QUALITY = settings.OPTIONS_BY_NAME["jpeg_quality"].default
# Rekognition rejects images under 80 px on a side; a 40 px face with a 20 % margin is only 56 px wide,
# so small crops are scaled up (cubic) before encoding.
MIN_UPLOAD_SIDE_PX = 80
READ_BACKOFF_INITIAL_S = 0.05
READ_BACKOFF_MAX_S = 2.0
MAX_READ_FAILURES = 20  # about 30 s of silence with the backoff above
MAX_DETECT_FAILURES = 5
STATS_LOG_INTERVAL_S = 60.0
# On stop, how long the frame in progress may still take so its crops are submitted (at most a third of the flush
# deadline, which it shares: SIGTERM to exit stays within flush_timeout_s).
STOP_FRAME_GRACE_S = 1.0
STOP_POLL_S = 0.1  # how often the waiting main thread looks at the stop flag
LOOP_THREAD_NAME = "edge-loop"  # Supervisor.start_thread's default name


def encode_jpeg(image, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes of a crop for upload: scaled up first if a side is under Rekognition's minimum."""
    return imaging.encode_jpeg(image, quality, min_side=MIN_UPLOAD_SIDE_PX)


class DetectorFailed(RuntimeError):
    """The detector failed ``MAX_DETECT_FAILURES`` frames in a row: the run ends and the detector is rebuilt."""


class FpsMeter:
    """Frames per second over the last ``window`` frames."""

    def __init__(self, window: int = 30) -> None:
        self._ticks: Deque[float] = collections.deque(maxlen=window)

    def tick(self, now: float) -> None:
        self._ticks.append(now)

    @property
    def fps(self) -> float:
        if len(self._ticks) < 2:
            return 0.0
        elapsed = self._ticks[-1] - self._ticks[0]
        return (len(self._ticks) - 1) / elapsed if elapsed > 0 else 0.0


class EdgeLoop:
    """The capture loop and its long-lived parts; ``run_once`` is what the supervisor restarts."""

    def __init__(
        self,
        settings: Any,
        uploader: Any,
        publisher: Any,
        preview: Any = None,
        face_gate: Optional[gate.FaceGate] = None,
        key_factory: Optional[keys.KeyFactory] = None,
        open_components: Optional[Callable[[], Tuple[Any, Any]]] = None,
        clock: Callable[[], float] = time.monotonic,
        open_source: Optional[Callable[[], Any]] = None,
        open_detector: Optional[Callable[[], Any]] = None,
    ) -> None:
        self.settings = settings
        self.uploader = uploader
        self.publisher = publisher
        self.preview = preview
        self.gate = face_gate or gate.FaceGate(gate.gate_config_from_settings(settings))
        self.keys = key_factory or keys.KeyFactory(settings.prefix, settings.key_template, settings.device)
        self._open_components = open_components
        self._open_source = open_source or (lambda: open_frame_source(settings))
        self._open_detector = open_detector or (lambda: open_detector_for(settings))
        self._clock = clock
        self._pending_source: Any = None
        self._detector: Any = None  # kept across runs; dropped only when it fails
        self._detector_name = settings.detector
        self.motion = motion.MotionGate(motion.config_from_settings(settings), clock=clock)
        self._last_detections: list = []  # what the last detector run found; still frames keep it
        self.fps = FpsMeter()
        self.frames = 0
        self._last_publish = float("-inf")
        self._last_stats_log = clock()
        self._frame_lock = threading.Lock()  # process_frame vs finish: never both at once
        self._closed = False  # set by finish under the lock: later frames are dropped
        self.frames_dropped_at_stop = 0

    # --- components -----------------------------------------------------------------------------------

    def open_components(self) -> Tuple[Any, Any]:
        """The (source, detector) for the next run: a new source, the detector kept from earlier runs.

        Raises ValueError for a bad spec or model. With the combined ``open_components`` factory (one callable
        for both) each run uses what it returns, since it cannot open one without the other.
        """
        if self._open_components is not None:
            return self._open_components()
        if self._detector is None:
            self._detector = self._open_detector()  # first: a bad model must not leave a camera open
        return self._open_source(), self._detector

    def adopt(self, components: Tuple[Any, Any]) -> None:
        """Use already opened (source, detector), e.g. the ones __main__ validated; the detector is kept."""
        self._pending_source, self._detector = components

    # --- one run --------------------------------------------------------------------------------------

    def run_once(self, stop: threading.Event) -> None:
        """Process frames until ``stop``, ``max_frames`` or the end of a finite source; raise on failure."""
        source, self._pending_source = self._pending_source, None
        if source is not None:
            detector = self._detector
        else:
            source, detector = self.open_components()
        self._detector_name = getattr(detector, "name", self.settings.detector)
        self.motion.reset()  # a (re)opened source: new background, full detection on its first frame
        self._last_detections = []
        try:
            self._process_frames(source, detector, stop)
        except DetectorFailed:
            self._detector = None  # the next run builds a fresh one
            raise
        finally:
            try:
                source.close()
            except Exception:
                LOG.exception("closing the frame source failed")

    def _process_frames(self, source: Any, detector: Any, stop: threading.Event) -> None:
        max_frames = self.settings.max_frames
        read_failures = detect_failures = 0
        while not stop.is_set():
            if max_frames is not None and self.frames >= max_frames:
                return
            ok, frame = source.read()
            if not ok or frame is None:
                if source.exhausted:
                    LOG.info("source %s has no more frames", getattr(source, "name", "?"))
                    return
                read_failures += 1
                if read_failures > MAX_READ_FAILURES:
                    raise RuntimeError("no frame from %s after %d tries" % (getattr(source, "name", "?"),
                                                                            read_failures))
                stop.wait(min(READ_BACKOFF_MAX_S, READ_BACKOFF_INITIAL_S * 2 ** (read_failures - 1)))
                continue
            read_failures = 0
            decision = self.motion.decide(frame, self._clock())
            if not decision.detect:
                self.process_frame(frame, self._last_detections)
                continue
            try:
                detections = self._detect(detector, frame, decision)
            except Exception as error:
                detect_failures += 1
                if detect_failures >= MAX_DETECT_FAILURES:
                    raise DetectorFailed("the detector failed on %d frames in a row; last error: %s"
                                         % (detect_failures, error)) from error
                LOG.exception("detector failed on a frame (%d in a row)", detect_failures)
                continue
            detect_failures = 0
            self._last_detections = detections
            self.process_frame(frame, detections)

    def _detect(self, detector: Any, frame, decision: motion.MotionDecision) -> list:
        """Run the detector as the motion gate decided: on the frame, or on the moving regions plus the
        previous detections outside them (faces that stood still)."""
        if decision.full:
            return detector.detect(frame)
        found = motion.detect_in_regions(detector, frame, decision.regions)
        return found + motion.outside_regions(self._last_detections, decision.regions)

    def process_frame(self, frame, detections) -> None:
        """Everything after detection for one frame: gate, crops to the uploader, publish, preview.

        Dropped (counted) once ``finish`` has begun: the uploader may be closed and the publisher gone.
        """
        with self._frame_lock:
            if self._closed:
                self.frames_dropped_at_stop += 1
                LOG.info("a frame detected after shutdown began was dropped (%d so far)", self.frames_dropped_at_stop)
                return
            self._process_frame(frame, detections)

    def _process_frame(self, frame, detections) -> None:
        for crop in self.gate.process(frame, detections):
            self._submit(crop)
        now = self._clock()
        self.fps.tick(now)
        self.frames += 1
        faces = self.gate.kept  # the detections at or above the threshold, as the gate just filtered them
        if now - self._last_publish >= self.settings.publish_interval_s:
            self._last_publish = now
            frame_size = (frame.shape[1], frame.shape[0])
            message = publish.build_message(faces, self.settings.device, self.fps.fps, self.uploader.stats(),
                                            frame_size, motion=self.motion.counters)
            self.publisher.publish(self.settings.topic, message)
        if self.preview is not None:
            self.preview.submit(frame, faces)  # the preview draws on its own copy
        if now - self._last_stats_log >= STATS_LOG_INTERVAL_S:
            self._last_stats_log = now
            self.log_stats()

    def _submit(self, crop: gate.FaceCrop) -> None:
        detection = crop.detection
        key = self.keys.make_key(crop.captured_at, crop.track_id)
        metadata = keys.object_metadata(self.settings.device, self._detector_name, detection.score, detection.box,
                                        crop.frame_size, crop.track_id, crop.captured_at)
        self.uploader.submit(UploadItem(key, encode_jpeg(crop.image, quality=self.settings.jpeg_quality), metadata))

    def log_stats(self) -> None:
        LOG.info("frames=%d fps=%.1f gate=%s motion=%s uploads=%s", self.frames, self.fps.fps,
                 dict(self.gate.counters), dict(self.motion.counters), self.uploader.stats())

    def finish(self, deadline_s: float) -> bool:
        """Shutdown: send what live tracks are owed, flush uploads until the deadline, stop the threads.

        Safe to call while the loop thread is still inside a detector call: it waits (bounded) for a
        ``process_frame`` in progress, then marks the loop closed so no later frame reaches the parts it closes.
        """
        started = time.monotonic()
        locked = self._frame_lock.acquire(timeout=max(0.0, deadline_s) / 2)
        try:
            self._closed = True
            if locked:
                for crop in self.gate.flush():
                    self._submit(crop)
            else:  # a frame is stuck after detection (a blocked publisher?): its gate is not ours to touch
                LOG.warning("a frame still in progress after %.1f s; closing without the live tracks' crops",
                            deadline_s / 2)
        finally:
            if locked:
                self._frame_lock.release()
        flushed = self.uploader.close(max(0.0, deadline_s - (time.monotonic() - started)))
        if not flushed:
            LOG.warning("upload flush incomplete after %.1f s; the rest waits in %s", deadline_s,
                        self.settings.spool_dir)
        for part in (self.preview, self.publisher):
            if part is not None:
                try:
                    part.close()
                except Exception:
                    LOG.exception("closing %r failed", part)
        self.log_stats()
        return flushed


class Supervisor:
    """Runs ``target(stop)`` again after a failure, with backoff, in one thread for the process lifetime."""

    def __init__(
        self,
        target: Callable[[threading.Event], None],
        stop: threading.Event,
        initial_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        healthy_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._target = target
        self.stop = stop
        self._initial = initial_backoff_s
        self._max = max_backoff_s
        self._healthy_after = healthy_after_s
        self._clock = clock
        self.restarts = 0
        self._thread: Optional[threading.Thread] = None
        self._thread_lock = threading.Lock()

    def run(self) -> None:
        """Until the target returns normally or ``stop`` is set."""
        backoff = self._initial
        while not self.stop.is_set():
            started = self._clock()
            try:
                self._target(self.stop)
                return
            except Exception:
                if self.stop.is_set():
                    return
                self.restarts += 1
                if self._clock() - started >= self._healthy_after:
                    backoff = self._initial
                LOG.exception("edge loop failed (restart %d in %.1f s)", self.restarts, backoff)
            self.stop.wait(backoff)
            backoff = min(backoff * 2.0, self._max)

    def start_thread(self, name: str = "edge-loop", after: Optional[Callable[[], None]] = None) -> threading.Thread:
        """Start ``run`` (then ``after``) in a background thread; a second call returns the same thread."""
        def body() -> None:
            try:
                self.run()
            finally:
                if after is not None:
                    after()

        with self._thread_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=body, name=name, daemon=True)
                self._thread.start()
            return self._thread


def run_until_stop(edge: EdgeLoop, stop: threading.Event, flush_timeout_s: float,
                   frame_grace_s: float = STOP_FRAME_GRACE_S, poll_s: float = STOP_POLL_S) -> bool:
    """Run the supervised loop in its own daemon thread until it ends or ``stop`` is set, then ``finish``.

    The calling (main) thread only waits, so a stop is acted on within ``poll_s`` even while the detector is inside
    a long call. On stop the frame in progress gets ``frame_grace_s`` (at most a third of ``flush_timeout_s``) to
    finish, and ``finish`` flushes with what is left of ``flush_timeout_s``: SIGTERM to return takes at most about
    ``flush_timeout_s``. The loop thread may still be running afterwards (inside the detector); it is a daemon
    thread, and whatever it detects later is dropped. Returns ``finish``'s result (True: every crop uploaded).

    The main thread never waits on ``stop`` itself (it polls ``is_set``): a signal handler that sets ``stop``
    while the main thread held the event's internal lock would deadlock.
    """
    thread = Supervisor(edge.run_once, stop).start_thread()
    while thread.is_alive() and not stop.is_set():
        thread.join(poll_s)
    budget_started = time.monotonic()
    if thread.is_alive():
        grace = max(0.0, min(frame_grace_s, flush_timeout_s / 3.0))
        thread.join(grace)
        if thread.is_alive():
            LOG.warning("stopping without the frame in progress (detector or camera still busy after %.1f s); "
                        "its result will be dropped", grace)
    return edge.finish(max(0.0, flush_timeout_s - (time.monotonic() - budget_started)))


def loop_thread_running() -> bool:
    """True while a loop thread (see ``Supervisor.start_thread``) is alive, e.g. still inside a detector call."""
    return any(thread.name == LOOP_THREAD_NAME and thread.is_alive() for thread in threading.enumerate())


def open_detector_for(settings: Any, awscam_module: Any = None) -> Any:
    """The detector the settings ask for (loads the model: on a DeepLens, onto the GPU).

    Logs one start-up line naming the detector actually built and why (``opencv`` picks YuNet or CenterFace),
    its threshold and the motion gate mode.
    """
    options = {}
    if settings.model_input_width is not None:
        options["input_width"] = settings.model_input_width
    if settings.model_input_height is not None:
        options["input_height"] = settings.model_input_height
    kind, why = detectors.describe_cpu_choice(settings.detector)
    detector = detectors.make_detector(settings.detector, model_path=settings.model_path,
                                       awscam_module=awscam_module, **options)
    LOG.info("detector %s (%s), threshold %.2f, motion gate %s", getattr(detector, "name", kind), why,
             settings.threshold, motion.config_from_settings(settings).mode)
    return detector


def open_frame_source(settings: Any, awscam_module: Any = None) -> Any:
    """The frame source the settings ask for."""
    return sources.open_source(settings.source, awscam_module=awscam_module, loop=settings.loop_source)


def open_source_and_detector(settings: Any, awscam_module: Any = None) -> Tuple[Any, Any]:
    """The frame source and detector the settings ask for (the detector first: a bad model opens no camera)."""
    detector = open_detector_for(settings, awscam_module)
    return open_frame_source(settings, awscam_module), detector


def build_edge_loop(
    settings: Any,
    env: Mapping[str, str],
    awscam_module: Any = None,
    greengrasssdk_module: Any = None,
    ipc_module: Any = None,
    s3_client: Any = None,
) -> EdgeLoop:
    """Create the long-lived parts (uploader thread, publisher, preview thread) and the loop around them."""
    upload = SpoolingUploader(settings.bucket, settings.spool_dir, client=s3_client,
                              queue_size=settings.queue_size, spool_max_bytes=settings.spool_max_bytes)
    publisher = publish.make_publisher(env, greengrasssdk_module=greengrasssdk_module, ipc_module=ipc_module)
    if isinstance(publisher, publish.GreengrassIpcPublisher):  # a synchronous round trip: off the capture thread
        publisher = publish.BackgroundPublisher(publisher)
    writer = preview.PreviewWriter(settings.preview) if settings.preview else None
    return EdgeLoop(settings, upload, publisher, writer,
                    open_source=lambda: open_frame_source(settings, awscam_module),
                    open_detector=lambda: open_detector_for(settings, awscam_module))
