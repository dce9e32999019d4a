"""Result messages on the device's results topic: valid JSON, whatever transport the device has.

The topic is ``DEEPLENS_TOPIC``. A DeepLens (Greengrass V1) publishes to ``$aws/things/{thing}/infer``, the
workshop's topic. A Greengrass V2 component must not: IoT Core reserves ``$`` topics and an unsupported publish
to one can drop the connection the nucleus shares with deployments, so its Run script sets
``deeplens/{thing}/infer``, the only topic its IPC access control and IoT policy allow.

The seed built its payload by hand (``'{' + '"1": 0.93,' + '"null": 0.0}'``). Messages here are
``json.dumps`` of a dict that keeps the seed's top-level ``label: prob`` pair (the highest score per
label, e.g. ``"face": 0.93``) so existing IoT rules and dashboards still read them, plus::

    {"face": 0.93, "device": "deeplens_x", "time": 1732414980.123, "fps": 9.8,
     "faces": [{"score": 0.93, "box": [x0, y0, x1, y1]}],          # frame pixels
     "frame": [1920, 1080], "uploads": {"captured": 3, "uploaded": 3, ...},
     "motion": {"frames_detected": 40, "frames_skipped": 560, "full_detections": 12}}

A frame without faces carries no label key (the seed's ``"null": 0.0`` filler is gone).

Three transports, picked by ``make_publisher`` from the environment:

* Greengrass V2 component (the nucleus sets ``AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT`` and
  ``SVCUID``): ``GreengrassCoreIPCClientV2().publish_to_iot_core(topic_name=, qos=, payload=)``;
* Greengrass V1 Lambda (``greengrasssdk`` importable and ``AWS_IOT_THING_NAME`` set):
  ``greengrasssdk.client("iot-data").publish(topic=, payload=)`` (keyword arguments only, QoS 0);
* otherwise JSON lines on stdout.

Publishing is a side channel: a failing publish is logged (rate-limited) and never raises into the loop.
Nor does it make the loop wait: V2 IPC ``publish_to_iot_core`` is synchronous (a round trip to the nucleus,
longer when it is busy), so ``build_edge_loop`` wraps that transport in ``BackgroundPublisher``, one thread
that sends only the newest pending message, the same pattern as the preview writer. The V1 SDK hands the
message to the local core's queue (``queueFullPolicy``) and stdout is local, so those are called inline and
every message is sent.
"""

import json
import logging
import sys
import threading
import time
from types import SimpleNamespace
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence

LOG = logging.getLogger(__name__)
_ERROR_LOG_INTERVAL_S = 60.0


def build_message(
    detections: Iterable[Any],
    device: str,
    fps: float,
    uploads: Mapping[str, Any],
    frame_size: Optional[Sequence[int]] = None,
    now: Optional[float] = None,
    motion: Optional[Mapping[str, int]] = None,
) -> Dict[str, Any]:
    """The message for one frame; ``detections`` have ``label``, ``score`` and ``box`` (frame pixels);
    ``motion`` the motion gate's running counters (frames the detector ran on / skipped)."""
    message: Dict[str, Any] = {}
    faces = []
    for detection in detections:
        score = round(float(detection.score), 4)
        label = str(detection.label)
        if score > message.get(label, -1.0):
            message[label] = score
        faces.append({"label": label, "score": score, "box": [int(round(v)) for v in detection.box]})
    message.update({
        "device": device,
        "time": round(time.time() if now is None else now, 3),
        "fps": round(float(fps), 2),
        "faces": faces,
        "uploads": dict(uploads),
    })
    if frame_size is not None:
        message["frame"] = [int(frame_size[0]), int(frame_size[1])]
    if motion is not None:
        message["motion"] = dict(motion)
    return message


def encode_message(message: Any) -> str:
    """Compact JSON, as sent."""
    return json.dumps(message, separators=(",", ":"), sort_keys=False, default=str)


class _Publisher:
    """Shared behaviour: serialise to JSON, swallow and rate-limit errors, count them."""

    name = "base"

    def __init__(self) -> None:
        self.sent = 0
        self.errors = 0
        self._last_error_log = -_ERROR_LOG_INTERVAL_S

    def publish(self, topic: str, message: Any) -> bool:
        """Send one message; False (never an exception) when it could not be sent."""
        try:
            self._send(topic, encode_message(message))
        except Exception as error:
            self.errors += 1
            now = time.monotonic()
            if now - self._last_error_log >= _ERROR_LOG_INTERVAL_S:
                self._last_error_log = now
                LOG.warning("%s publish to %s failed (%d so far): %s", self.name, topic, self.errors, error)
            return False
        self.sent += 1
        return True

    def _send(self, topic: str, payload: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class StdoutPublisher(_Publisher):
    """JSON lines ``{"topic": ..., "message": {...}}`` for off-device runs."""

    name = "stdout"

    def __init__(self, stream: Any = None) -> None:
        super().__init__()
        self._stream = stream if stream is not None else sys.stdout

    def _send(self, topic: str, payload: str) -> None:
        self._stream.write('{"topic":%s,"message":%s}\n' % (json.dumps(topic), payload))
        self._stream.flush()


class GreengrassSdkPublisher(_Publisher):
    """Greengrass V1: ``greengrasssdk.client("iot-data").publish(topic=..., payload=...)``."""

    name = "greengrasssdk"

    def __init__(self, greengrasssdk_module: Any = None) -> None:
        super().__init__()
        if greengrasssdk_module is None:
            import greengrasssdk as greengrasssdk_module
        self._client = greengrasssdk_module.client("iot-data")

    def _send(self, topic: str, payload: str) -> None:
        self._client.publish(topic=topic, payload=payload)


class GreengrassIpcPublisher(_Publisher):
    """Greengrass V2: IPC ``PublishToIoTCore`` at QoS 0 (a lost status message is not worth a retry).

    ``ipc_module`` is anything with ``GreengrassCoreIPCClientV2`` and ``QOS`` attributes; by default
    they come from awsiotsdk (``awsiot.greengrasscoreipc.clientv2`` and ``.model``).
    """

    name = "greengrass-ipc"

    def __init__(self, ipc_module: Any = None) -> None:
        super().__init__()
        if ipc_module is None:
            from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
            from awsiot.greengrasscoreipc.model import QOS

            ipc_module = SimpleNamespace(GreengrassCoreIPCClientV2=GreengrassCoreIPCClientV2, QOS=QOS)
        self._qos = ipc_module.QOS.AT_MOST_ONCE
        self._client = ipc_module.GreengrassCoreIPCClientV2()  # connects with the nucleus's env vars

    def _send(self, topic: str, payload: str) -> None:
        self._client.publish_to_iot_core(topic_name=topic, qos=self._qos, payload=payload)

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:
            pass


class BackgroundPublisher(object):
    """Hands messages to one sender thread and returns at once; only the newest unsent message is kept.

    A status message is a snapshot: when the transport is slower than the loop, an older unsent one is
    worth nothing once a newer exists, so it is replaced (counted in ``replaced``) rather than queued.
    """

    #: How long ``close`` lets the thread finish sending the last message.
    CLOSE_TIMEOUT_S = 2.0

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.name = "background-" + str(getattr(transport, "name", "publisher"))
        self.replaced = 0
        self._pending: Optional[Any] = None  # (topic, message)
        self._closed = False
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="publisher")
        self._thread.daemon = True  # never keeps a finished process alive
        self._thread.start()

    @property
    def sent(self) -> int:
        return int(getattr(self.transport, "sent", 0))

    @property
    def errors(self) -> int:
        return int(getattr(self.transport, "errors", 0))

    def publish(self, topic: str, message: Any) -> bool:
        """Queue ``message`` for ``topic``, replacing any unsent one; False only after ``close``."""
        with self._condition:
            if self._closed:
                return False
            if self._pending is not None:
                self.replaced += 1
            self._pending = (topic, message)
            self._condition.notify()
        return True

    def _run(self) -> None:
        while True:
            with self._condition:
                while self._pending is None and not self._closed:
                    self._condition.wait()
                if self._pending is None:  # closed, nothing left to send
                    return
                topic, message = self._pending
                self._pending = None
            try:
                self.transport.publish(topic, message)  # never raises by contract; guard anyway
            except Exception:
                LOG.exception("publisher %s failed", self.transport)

    def close(self) -> None:
        """Send the last pending message (waiting at most ``CLOSE_TIMEOUT_S``), then close the transport."""
        with self._condition:
            self._closed = True
            self._condition.notify()
        self._thread.join(self.CLOSE_TIMEOUT_S)
        self.transport.close()


def make_publisher(env: Mapping[str, str], greengrasssdk_module: Any = None, ipc_module: Any = None):
    """Pick the transport for this process (see the module docstring); falls back to stdout."""
    if env.get("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT") and env.get("SVCUID"):
        try:
            return GreengrassIpcPublisher(ipc_module)
        except Exception as error:
            LOG.warning("Greengrass IPC unavailable (%s); publishing to stdout", error)
            return StdoutPublisher()
    if greengrasssdk_module is not None or env.get("AWS_IOT_THING_NAME"):
        try:
            return GreengrassSdkPublisher(greengrasssdk_module)
        except ImportError:
            pass  # a thing name without the V1 SDK: an off-device run that names its device
        except Exception as error:
            LOG.warning("greengrasssdk unavailable (%s); publishing to stdout", error)
    return StdoutPublisher()
