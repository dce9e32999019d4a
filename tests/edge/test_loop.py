"""loop.py: the wiring source -> detector -> gate -> crop -> JPEG -> uploader, and its supervisor."""

import io
import json
import re
import threading
import time

import cv2
import numpy
import pytest

from edge_function import gate, loop, publish, settings
from edge_function.detectors import Detection
from edge_function.uploader import SpoolingUploader
from tests.support.clock import FakeClock
from tests.support.polling import HANG_GUARD_S, wait_for

FACE = (800.0, 400.0, 960.0, 600.0)
KEY_LAYOUT = re.compile(r"^faces/\d{1,2}_\d{1,2}/\d{1,2}_\d{1,2}/\d{10}_[a-z2-7]{6}-\d+\.jpg$")


class ListSource:
    """Frames from a list; a None entry is a failed read; exhausted at the end (like a file source)."""

    name = "list"

    def __init__(self, frames, endless=False):
        self._frames = list(frames)
        self._endless = endless
        self.exhausted = False
        self.closed = False

    def read(self):
        if not self._frames:
            if self._endless:
                return False, None
            self.exhausted = True
            return False, None
        frame = self._frames.pop(0)
        return (False, None) if frame is None else (True, frame)

    def close(self):
        self.closed = True


class FixedDetector:
    """Finds the same boxes in every frame and advances the fake clock one frame period (10 fps)."""

    name = "fixed-test"

    def __init__(self, boxes, clock, fail_on=()):
        self.boxes = boxes
        self.clock = clock
        self.calls = 0
        self.fail_on = set(fail_on)

    def detect(self, frame):
        self.calls += 1
        self.clock.now += 0.1
        if self.calls in self.fail_on:
            raise RuntimeError("inference error")
        return [Detection("face", 0.9, box) for box in self.boxes]


class PaintingPreview:
    """A careless preview that draws its boxes straight onto the frame it is given (the seed's bug)."""

    def __init__(self):
        self.frames = 0
        self.closed = False

    def submit(self, frame, detections):
        self.frames += 1
        for detection in detections:
            x0, y0, x1, y1 = (int(v) for v in detection.box)
            cv2.rectangle(frame, (x0, y0), (x1, y1), (255, 165, 20), 10)

    def close(self):
        self.closed = True


def edge_settings(tmp_path, bucket, **env):
    """The edge function's Settings from its environment variables (edge_function.settings), for a loop test."""
    values = {"DEEPLENS_BUCKET": bucket, "DEEPLENS_SPOOL_DIR": str(tmp_path / "spool"),
              "AWS_IOT_THING_NAME": "deeplens_test", "DEEPLENS_PUBLISH_INTERVAL_S": "0",
              "DEEPLENS_DETECTOR": "centerface", "DEEPLENS_MOTION_GATE": "off"}  # motion tests turn it on
    values.update(env)
    return settings.load_settings(values)


def make_loop(config, client, clock, open_source, open_detector, preview=None, stdout=None):
    """The loop with recording factories: returns (loop, sources opened, detectors built)."""
    upload = SpoolingUploader(config.bucket, config.spool_dir, client=client, retry_initial_s=0.01)
    publisher = publish.StdoutPublisher(stdout if stdout is not None else io.StringIO())
    face_gate = gate.FaceGate(gate.gate_config_from_settings(config), clock=clock)
    opened, built = [], []

    def recording_source():
        opened.append(open_source())
        return opened[-1]

    def recording_detector():
        built.append(open_detector())
        return built[-1]

    edge = loop.EdgeLoop(config, upload, publisher, preview, face_gate=face_gate, clock=clock,
                         open_source=recording_source, open_detector=recording_detector)
    return edge, opened, built


def smooth_frame():
    """A gradient frame (JPEG keeps it almost exactly, unlike noise) with a gray face-sized patch."""
    xs = numpy.linspace(0, 200, 1920, dtype=numpy.float32)
    ys = numpy.linspace(0, 50, 1080, dtype=numpy.float32)
    frame = numpy.dstack([xs[None, :] + ys[:, None]] * 3).astype(numpy.uint8)
    frame[400:600, 800:960] = 128
    return frame


def test_a_static_face_becomes_one_clean_crop_in_s3(tmp_path, s3, bucket, bucket_keys, record_puts):
    clock = FakeClock(5000.0)
    clean = smooth_frame()
    config = edge_settings(tmp_path, bucket, DEEPLENS_MAX_FRAMES="30")
    preview = PaintingPreview()
    stdout = io.StringIO()
    puts = record_puts(s3)
    edge, _, _ = make_loop(config, s3, clock, lambda: ListSource([clean.copy() for _ in range(31)]),
                           lambda: FixedDetector([FACE], clock), preview=preview, stdout=stdout)
    loop.Supervisor(edge.run_once, threading.Event()).run()
    assert edge.frames == 30 and preview.frames == 30
    assert edge.finish(HANG_GUARD_S)

    (key,) = bucket_keys(s3)
    assert KEY_LAYOUT.match(key), key
    assert all("ACL" not in params for params in puts.params)
    stored = s3.get_object(Bucket=bucket, Key=key)
    assert stored["ContentType"] == "image/jpeg"
    assert stored["Metadata"]["device"] == "deeplens_test"
    assert stored["Metadata"]["detector"] == "fixed-test"
    assert stored["Metadata"]["box"] == "800,400,960,600"
    assert stored["Metadata"]["frame-size"] == "1920x1080"
    crop = cv2.imdecode(numpy.frombuffer(stored["Body"].read(), numpy.uint8), cv2.IMREAD_COLOR)
    # margin 0.2: (768, 360) - (992, 640); the JPEG must match the CLEAN frame, not the painted one
    assert crop.shape == (280, 224, 3)
    expected = clean[360:640, 768:992].astype(numpy.int16)
    assert numpy.abs(crop.astype(numpy.int16) - expected).mean() < 2
    painted = (numpy.abs(crop.astype(numpy.int16) - numpy.array([255, 165, 20])).sum(axis=2) < 30).mean()
    assert painted < 0.001
    assert preview.closed


def test_every_message_is_json_with_the_label_pair_and_fps(tmp_path, s3, bucket, make_frame):
    clock = FakeClock(5000.0)
    stdout = io.StringIO()
    frame = make_frame(boxes=[FACE])
    config = edge_settings(tmp_path, bucket, DEEPLENS_MAX_FRAMES="10")
    edge, _, _ = make_loop(config, s3, clock, lambda: ListSource([frame] * 10), lambda: FixedDetector([FACE], clock),
                        stdout=stdout)
    loop.Supervisor(edge.run_once, threading.Event()).run()
    edge.finish(HANG_GUARD_S)
    lines = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert len(lines) == 10
    assert all(line["topic"] == "$aws/things/deeplens_test/infer" for line in lines)
    assert all(line["message"]["face"] == 0.9 for line in lines)
    assert lines[-1]["message"]["fps"] == pytest.approx(10.0)
    assert lines[-1]["message"]["faces"][0]["box"] == [800, 400, 960, 600]


def test_messages_are_throttled_to_the_publish_interval(tmp_path, s3, bucket, make_frame):
    clock = FakeClock(5000.0)
    stdout = io.StringIO()
    frame = make_frame()
    config = edge_settings(tmp_path, bucket, DEEPLENS_MAX_FRAMES="50", DEEPLENS_PUBLISH_INTERVAL_S="1")
    edge, _, _ = make_loop(config, s3, clock, lambda: ListSource([frame] * 50), lambda: FixedDetector([], clock),
                        stdout=stdout)
    loop.Supervisor(edge.run_once, threading.Event()).run()
    edge.finish(HANG_GUARD_S)
    assert len(stdout.getvalue().splitlines()) == 5  # 5 s of frames at 10 fps


def test_failed_reads_are_retried_not_fatal(tmp_path, s3, bucket, make_frame, monkeypatch):
    monkeypatch.setattr(loop, "READ_BACKOFF_INITIAL_S", 0.001)
    clock = FakeClock(5000.0)
    frame = make_frame()
    config = edge_settings(tmp_path, bucket)
    frames = [frame, None, None, frame, None, frame]
    edge, opened, _ = make_loop(config, s3, clock, lambda: ListSource(frames), lambda: FixedDetector([], clock))
    supervisor = loop.Supervisor(edge.run_once, threading.Event())
    supervisor.run()
    edge.finish(HANG_GUARD_S)
    assert edge.frames == 3
    assert supervisor.restarts == 0 and len(opened) == 1
    assert opened[0].closed


def test_a_silent_source_is_reopened_by_the_supervisor(tmp_path, s3, bucket, make_frame, monkeypatch):
    monkeypatch.setattr(loop, "READ_BACKOFF_INITIAL_S", 0.001)
    monkeypatch.setattr(loop, "MAX_READ_FAILURES", 3)
    clock = FakeClock(5000.0)
    frame = make_frame()
    config = edge_settings(tmp_path, bucket)
    sources = iter([ListSource([frame], endless=True), ListSource([frame, frame])])
    edge, opened, built = make_loop(config, s3, clock, lambda: next(sources), lambda: FixedDetector([], clock))
    supervisor = loop.Supervisor(edge.run_once, threading.Event(), initial_backoff_s=0.01)
    supervisor.run()
    edge.finish(HANG_GUARD_S)
    assert supervisor.restarts == 1 and len(opened) == 2
    assert len(built) == 1  # a silent camera is no reason to reload the model (on a DeepLens: onto the GPU)
    assert edge.frames == 3
    assert all(source.closed for source in opened)


def test_a_detector_failing_five_frames_in_a_row_is_rebuilt_for_the_next_run(tmp_path, s3, bucket, make_frame):
    clock = FakeClock(5000.0)
    frame = make_frame()
    config = edge_settings(tmp_path, bucket)
    sources = iter([ListSource([frame] * 10), ListSource([frame] * 2)])
    failing = iter([{1, 2, 3, 4, 5}, set()])
    edge, opened, built = make_loop(config, s3, clock, lambda: next(sources),
                                    lambda: FixedDetector([], clock, next(failing)))
    supervisor = loop.Supervisor(edge.run_once, threading.Event(), initial_backoff_s=0.01)
    supervisor.run()
    edge.finish(HANG_GUARD_S)
    assert supervisor.restarts == 1 and len(opened) == 2 and len(built) == 2
    assert [detector.calls for detector in built] == [5, 2]
    assert edge.frames == 2


def test_adopted_components_are_used_first_and_the_detector_is_kept(tmp_path, s3, bucket, make_frame):
    clock = FakeClock(5000.0)
    frame = make_frame()
    config = edge_settings(tmp_path, bucket)
    adopted_source, adopted_detector = ListSource([frame]), FixedDetector([], clock)
    edge, opened, built = make_loop(config, s3, clock, lambda: ListSource([frame] * 2),
                                    lambda: FixedDetector([], clock))
    edge.adopt((adopted_source, adopted_detector))
    edge.run_once(threading.Event())
    edge.run_once(threading.Event())
    edge.finish(HANG_GUARD_S)
    assert adopted_source.closed and len(opened) == 1 and built == []
    assert adopted_detector.calls == 3 and edge.frames == 3


def test_a_detector_error_skips_one_frame_and_five_in_a_row_fail_the_run(tmp_path, s3, bucket, make_frame):
    clock = FakeClock(5000.0)
    frame = make_frame()
    config = edge_settings(tmp_path, bucket)
    edge, _, _ = make_loop(config, s3, clock, lambda: ListSource([frame] * 4), lambda: FixedDetector([], clock, {2}))
    edge.run_once(threading.Event())
    assert edge.frames == 3

    edge2, _, _ = make_loop(config, s3, clock, lambda: ListSource([frame] * 10),
                            lambda: FixedDetector([], clock, {2, 3, 4, 5, 6}))
    with pytest.raises(RuntimeError, match="inference error"):
        edge2.run_once(threading.Event())
    edge.finish(HANG_GUARD_S)
    edge2.finish(HANG_GUARD_S)


def test_the_supervisor_restarts_with_backoff_in_one_thread():
    stop = threading.Event()
    attempts, threads_seen = [], []

    def flaky_run(stop_event):
        attempts.append(time.monotonic())
        threads_seen.append(threading.current_thread().name)
        if len(attempts) < 4:
            raise RuntimeError("camera not ready")

    supervisor = loop.Supervisor(flaky_run, stop, initial_backoff_s=0.01, max_backoff_s=0.04)
    thread = supervisor.start_thread()
    assert supervisor.start_thread() is thread  # never a second loop thread
    thread.join(HANG_GUARD_S)
    assert not thread.is_alive()
    assert supervisor.restarts == 3
    assert set(threads_seen) == {"edge-loop"}
    gaps = [later - earlier for earlier, later in zip(attempts, attempts[1:], strict=False)]
    assert gaps[0] >= 0.01 and gaps[2] >= 0.04  # doubling, capped


def test_stop_ends_an_endless_run_and_finish_flushes(tmp_path, s3, bucket, bucket_keys, make_frame):
    clock = FakeClock(5000.0)
    frame = make_frame(boxes=[FACE])
    config = edge_settings(tmp_path, bucket, DEEPLENS_LOOP_SOURCE="true")

    class Endless(ListSource):
        def read(self):
            return True, frame

    stop = threading.Event()
    edge, _, _ = make_loop(config, s3, clock, lambda: Endless([]), lambda: FixedDetector([FACE], clock))
    supervisor = loop.Supervisor(edge.run_once, stop)
    thread = supervisor.start_thread(after=lambda: edge.finish(HANG_GUARD_S))
    assert wait_for(lambda: edge.frames > 0, HANG_GUARD_S)  # the run is under way
    stop.set()  # what the SIGTERM handler does
    thread.join(HANG_GUARD_S)
    assert not thread.is_alive() and edge.frames > 0
    assert len(bucket_keys(s3)) == 1  # the live track's crop, sent at shutdown


def test_the_capture_loop_does_not_wait_for_slow_uploads(tmp_path, s3, bucket, make_frame):
    released = threading.Event()

    class SlowS3:
        """Every upload hangs until the test releases it: a loop that waited for one would never end its run."""

        def put_object(self, **params):
            released.wait(HANG_GUARD_S)
            return s3.put_object(**params)

    clock = FakeClock(5000.0)
    boxes = [(50.0 + 180 * i, 100.0, 190.0 + 180 * i, 280.0) for i in range(10)]
    frame = make_frame(boxes=boxes)
    config = edge_settings(tmp_path, bucket, DEEPLENS_MAX_FRAMES="30", DEEPLENS_BEST_FACE_TIMEOUT_S="0.05",
                           DEEPLENS_MAX_UPLOADS_PER_TRACK="100", DEEPLENS_COOLDOWN_S="0",
                           DEEPLENS_MAX_UPLOADS_PER_MINUTE="1000")
    edge, _, _ = make_loop(config, SlowS3(), clock, lambda: ListSource([frame] * 30),
                           lambda: FixedDetector(boxes, clock))
    run = threading.Thread(target=edge.run_once, args=(threading.Event(),), daemon=True)
    run.start()
    run.join(HANG_GUARD_S)
    ended_with_uploads_held = not run.is_alive()
    released.set()
    assert ended_with_uploads_held  # all 30 frames went through while not one upload had finished
    assert edge.uploader.stats()["captured"] >= 250  # ten faces sending on (almost) every frame
    edge.finish(0.0)


def test_small_crops_are_scaled_up_to_rekognitions_minimum():
    small = numpy.full((40, 30, 3), 128, numpy.uint8)
    decoded = cv2.imdecode(numpy.frombuffer(loop.encode_jpeg(small), numpy.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (107, 80, 3)
    large = numpy.full((200, 100, 3), 128, numpy.uint8)
    decoded = cv2.imdecode(numpy.frombuffer(loop.encode_jpeg(large), numpy.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (200, 100, 3)


def test_fps_meter():
    meter = loop.FpsMeter(window=5)
    assert meter.fps == 0.0
    for tick in range(10):
        meter.tick(tick * 0.25)
    assert meter.fps == pytest.approx(4.0)


def test_the_capture_loop_does_not_wait_for_a_slow_publisher(tmp_path, s3, bucket, make_frame):
    """V2 IPC publish_to_iot_core is synchronous; the wired loop hands messages to a thread instead."""
    import types

    sent = []

    released = threading.Event()

    class SlowIpcClient:
        """Each publish hangs until the test releases it: a loop that waited for one would never get past it."""

        def publish_to_iot_core(self, *, topic_name, qos, payload):
            released.wait(HANG_GUARD_S)
            sent.append(json.loads(payload))

        def close(self):
            pass

    ipc = types.SimpleNamespace(GreengrassCoreIPCClientV2=SlowIpcClient,
                                QOS=types.SimpleNamespace(AT_MOST_ONCE="0"))
    env = {"AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": "/ipc.socket", "SVCUID": "token"}
    config = edge_settings(tmp_path, bucket)  # publish interval 0: a message for every frame
    edge = loop.build_edge_loop(config, env, ipc_module=ipc, s3_client=s3)
    frame = make_frame()
    for _ in range(10):
        edge.process_frame(frame, [])
    assert sent == []  # ten frames processed while the first publish still hangs
    released.set()
    edge.finish(HANG_GUARD_S)
    assert 1 <= len(sent) < 10  # the first, then only the newest pending one
    assert sent[-1]["fps"] == pytest.approx(edge.fps.fps, abs=0.01)


def test_publisher_and_preview_get_the_faces_above_the_threshold(tmp_path, s3, bucket, make_frame):
    clock = FakeClock(5000.0)
    frame = make_frame()
    config = edge_settings(tmp_path, bucket, DEEPLENS_THRESHOLD="0.8")
    stdout = io.StringIO()
    preview = PaintingPreview()
    seen = []
    preview.submit = lambda frame, detections: seen.append(list(detections))
    edge, _, _ = make_loop(config, s3, clock, lambda: None, lambda: None, preview=preview, stdout=stdout)
    strong, weak = Detection("face", 0.9, FACE), Detection("face", 0.7, (10.0, 10.0, 200.0, 200.0))
    edge.process_frame(frame, [strong, weak])
    edge.finish(HANG_GUARD_S)
    assert seen == [[strong]]
    (line,) = stdout.getvalue().splitlines()
    assert [f["score"] for f in json.loads(line)["message"]["faces"]] == [0.9]


# -- the motion gate in the loop --------------------------------------------------------------------


class TickingSource(ListSource):
    """A ListSource whose every read advances the fake clock one frame period (10 fps), detected or not."""

    def __init__(self, frames, clock):
        super().__init__(frames)
        self.clock = clock
        self.reads = 0

    def read(self):
        self.clock.now += 0.1
        self.reads += 1
        return super().read()


class RecordingDetector:
    """Finds FACE in full frames (its box mapped as given) and records at which read it was called, on what size."""

    name = "recording-test"

    def __init__(self, source_of_reads):
        self.source = source_of_reads
        self.calls = []

    def detect(self, image):
        self.calls.append((self.source().reads, image.shape[:2]))
        return [Detection("face", 0.9, FACE)] if image.shape[:2] == (1080, 1920) else []


def test_a_person_standing_still_is_kept_between_periodic_full_detections(tmp_path, s3, bucket, bucket_keys):
    clock = FakeClock(5000.0)
    stdout = io.StringIO()
    config = edge_settings(tmp_path, bucket, DEEPLENS_MAX_FRAMES="60", DEEPLENS_MOTION_GATE="on",
                           DEEPLENS_MOTION_FULL_DETECTION_S="2", DEEPLENS_PUBLISH_INTERVAL_S="0")
    frame = smooth_frame()
    source = TickingSource([frame.copy() for _ in range(60)], clock)
    detector = RecordingDetector(lambda: source)
    edge, _, _ = make_loop(config, s3, clock, lambda: source, lambda: detector, stdout=stdout)
    loop.Supervisor(edge.run_once, threading.Event()).run()
    assert edge.finish(HANG_GUARD_S)

    assert [reads for reads, _ in detector.calls] == [1, 21, 41]  # nothing moved: only the full detections
    assert dict(edge.motion.counters) == {"frames_detected": 3, "frames_skipped": 57, "full_detections": 3}
    messages = [json.loads(line)["message"] for line in stdout.getvalue().splitlines()]
    assert len(messages) == 60 and all(m["face"] == 0.9 for m in messages)  # skipped frames keep the face
    assert messages[-1]["motion"] == {"frames_detected": 3, "frames_skipped": 57, "full_detections": 3}
    assert len(bucket_keys(s3)) == 1  # one track for the whole minute: one crop
    assert edge.gate.counters["tracks"] == 1


def test_the_detector_runs_on_frames_that_moved_and_in_regions_mode_only_on_the_regions(tmp_path, s3, bucket):
    clock = FakeClock(5000.0)
    config = edge_settings(tmp_path, bucket, DEEPLENS_MOTION_GATE="on", DEEPLENS_MOTION_REGIONS="on",
                           DEEPLENS_MOTION_FULL_DETECTION_S="100")
    still = smooth_frame()
    frames = []
    for index in range(30):
        frame = still.copy()
        if 10 <= index < 15:  # a bright square crosses the left half
            x0 = 100 + 60 * (index - 10)
            frame[600:760, x0:x0 + 160] = 250
        frames.append(frame)
    source = TickingSource(frames, clock)
    detector = RecordingDetector(lambda: source)
    edge, _, _ = make_loop(config, s3, clock, lambda: source, lambda: detector)
    loop.Supervisor(edge.run_once, threading.Event()).run()
    edge.finish(HANG_GUARD_S)

    reads = [reads for reads, _ in detector.calls]
    assert reads[0] == 1 and detector.calls[0][1] == (1080, 1920)  # the first frame: full detection
    # the square's frames only: once it is gone the frame matches the background (the empty scene) again
    assert set(reads[1:]) == set(range(11, 16))
    assert all(shape[0] < 1080 and shape[1] < 1920 for _, shape in detector.calls[1:])
    # the face found by the first full detection stays, since nothing moved where it is
    assert edge.gate.kept and edge.gate.kept[0].box == FACE
    assert edge.motion.counters["frames_skipped"] == 30 - len(reads)


def test_the_start_up_line_names_the_detector_auto_picked_and_why(tmp_path, bucket, monkeypatch, caplog):
    from edge_function import detector_choice

    monkeypatch.setattr(
        detector_choice,
        "choose_cpu_detector",
        lambda *a: detector_choice.CpuDetectorChoice(
            "centerface", "the CPU lacks AVX2, which YuNet's library needs"
        ),
    )
    config = edge_settings(tmp_path, bucket, DEEPLENS_DETECTOR="opencv", DEEPLENS_MOTION_GATE="on")
    with caplog.at_level("INFO", logger="edge_function.loop"):
        detector = loop.open_detector_for(config)
    assert detector.name == "centerface"
    assert ("detector centerface (auto: the CPU lacks AVX2, which YuNet's library needs), threshold 0.50, "
            "motion gate on") in caplog.text


# -- stopping while the detector is busy (loop.run_until_stop) ------------------------------------------


class EndlessSource(ListSource):
    """The same frame forever, like a camera."""

    def __init__(self, frame):
        super().__init__([])
        self.frame = frame

    def read(self):
        return True, self.frame


class BusyDetector:
    """Finds FACE, but every call first blocks until ``finish_call`` is set: a detector inside a long native call
    (CenterFace under qemu takes 3-7 s a frame). Records the thread it runs in."""

    name = "busy-test"

    def __init__(self, finish_call):
        self.finish_call = finish_call
        self.entered = threading.Event()
        self.returned = threading.Event()
        self.thread = None

    def detect(self, frame):
        self.thread = threading.current_thread()
        self.entered.set()
        self.finish_call.wait(HANG_GUARD_S)
        self.returned.set()
        return [Detection("face", 0.9, FACE)]


def stop_once_detecting(detector, stop, after_s=0.0):
    """Set ``stop`` (as the SIGTERM handler does) once the detector is inside its call; returns when it was set."""
    stopped_at = []

    def stopper():
        detector.entered.wait(HANG_GUARD_S)
        time.sleep(after_s)
        stopped_at.append(time.monotonic())
        stop.set()

    threading.Thread(target=stopper, daemon=True).start()
    return stopped_at


def test_a_stop_during_a_long_detection_returns_at_once_and_the_late_result_is_dropped(tmp_path, s3, bucket,
                                                                                        bucket_keys, make_frame):
    clock = FakeClock(5000.0)
    stdout = io.StringIO()
    config = edge_settings(tmp_path, bucket, DEEPLENS_LOOP_SOURCE="true")
    detector = BusyDetector(threading.Event())
    edge, _, _ = make_loop(config, s3, clock, lambda: EndlessSource(make_frame(boxes=[FACE])), lambda: detector,
                           stdout=stdout)
    stop = threading.Event()
    stopped_at = stop_once_detecting(detector, stop)

    assert loop.run_until_stop(edge, stop, flush_timeout_s=3.0, frame_grace_s=0.2, poll_s=0.01)
    assert stopped_at  # it returned after the stop...
    assert not detector.returned.is_set()  # ...without waiting for the detector, whose call nothing ends
    assert detector.thread.name == loop.LOOP_THREAD_NAME and detector.thread.daemon
    assert detector.thread.is_alive() and loop.loop_thread_running()  # still inside the detector

    detector.finish_call.set()  # the detection returns after shutdown: dropped, never submitted
    detector.thread.join(HANG_GUARD_S)
    assert not detector.thread.is_alive()
    assert edge.frames_dropped_at_stop == 1 and edge.frames == 0
    assert edge.uploader.stats()["captured"] == 0 and bucket_keys(s3) == []
    assert stdout.getvalue() == ""  # nothing published through the closed publisher either


def test_a_frame_that_finishes_within_the_grace_still_sends_its_crop(tmp_path, s3, bucket, bucket_keys,
                                                                      make_frame):
    clock = FakeClock(5000.0)
    config = edge_settings(tmp_path, bucket, DEEPLENS_LOOP_SOURCE="true")
    finish_call = threading.Event()
    detector = BusyDetector(finish_call)
    edge, _, _ = make_loop(config, s3, clock, lambda: EndlessSource(make_frame(boxes=[FACE])), lambda: detector)
    stop = threading.Event()
    stop_once_detecting(detector, stop)

    def detection_ends_after_the_stop():
        stop.wait(HANG_GUARD_S)
        finish_call.set()

    threading.Thread(target=detection_ends_after_the_stop, daemon=True).start()

    # a grace far longer than the frame needs: the loop ends when the frame is done, not when the grace is over
    assert loop.run_until_stop(edge, stop, flush_timeout_s=3 * HANG_GUARD_S, frame_grace_s=HANG_GUARD_S, poll_s=0.01)
    assert not detector.thread.is_alive()  # the loop saw the stop after that frame and ended
    assert edge.frames == 1 and edge.frames_dropped_at_stop == 0
    assert len(bucket_keys(s3)) == 1  # the frame's live track, sent by finish


def test_a_loop_that_ends_by_itself_is_finished_without_waiting(tmp_path, s3, bucket, make_frame):
    clock = FakeClock(5000.0)
    config = edge_settings(tmp_path, bucket, DEEPLENS_MAX_FRAMES="3")
    edge, _, _ = make_loop(config, s3, clock, lambda: EndlessSource(make_frame()), lambda: FixedDetector([], clock))
    finished = []
    # grace and flush budgets of an hour: a run that waited for either would be caught by the join below
    run = threading.Thread(target=lambda: finished.append(loop.run_until_stop(
        edge, threading.Event(), flush_timeout_s=3600.0, frame_grace_s=3600.0, poll_s=0.01)), daemon=True)
    run.start()
    run.join(HANG_GUARD_S)
    assert finished == [True]
    assert edge.frames == 3 and not loop.loop_thread_running()


def test_finish_waits_for_the_frame_being_processed_and_later_frames_are_dropped(tmp_path, s3, bucket, make_frame):
    """Gate, uploader and publisher are never used by two threads: finish closes them only after the frame in
    ``process_frame`` is done with them."""
    events = []
    publishing = threading.Event()

    finishing = threading.Event()

    class SlowPublisher:
        def publish(self, topic, message):
            publishing.set()
            finishing.wait(HANG_GUARD_S)  # still publishing when finish is called
            events.append("published")

        def close(self):
            events.append("publisher closed")

    config = edge_settings(tmp_path, bucket)
    upload = SpoolingUploader(config.bucket, config.spool_dir, client=s3)
    close_uploader = upload.close

    def recording_close(deadline_s):
        events.append("uploader closed")
        return close_uploader(deadline_s)

    upload.close = recording_close
    face_gate = gate.FaceGate(gate.gate_config_from_settings(config))
    edge = loop.EdgeLoop(config, upload, SlowPublisher(), face_gate=face_gate)
    frame = make_frame(boxes=[FACE])
    worker = threading.Thread(target=edge.process_frame, args=(frame, [Detection("face", 0.9, FACE)]))
    worker.start()
    assert publishing.wait(HANG_GUARD_S)
    threading.Timer(0.05, finishing.set).start()  # the publish ends while finish waits for the frame
    assert edge.finish(HANG_GUARD_S)
    worker.join(HANG_GUARD_S)
    assert events == ["published", "uploader closed", "publisher closed"]
    assert upload.stats()["uploaded"] == 1  # the frame's track, flushed by finish after the frame was done

    edge.process_frame(frame, [Detection("face", 0.9, FACE)])
    assert edge.frames == 1 and edge.frames_dropped_at_stop == 1
    assert events == ["published", "uploader closed", "publisher closed"]
