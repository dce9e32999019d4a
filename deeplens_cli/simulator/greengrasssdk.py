"""A stand-in for the Greengrass V1 Core SDK (``greengrasssdk``), for the simulated device.

Copied alone next to the ``awscam`` shim on the device process's ``PYTHONPATH`` (it imports nothing from
``deeplens_cli`` or ``edge_function``). Only what a DeepLens inference function uses is provided:

* ``greengrasssdk.client("iot-data")`` -> a client whose ``publish(topic=..., payload=..., qos=0)`` takes
  keyword arguments only (the SDK's signature is ``publish(**kwargs)``); QoS 0 is the only level the
  Greengrass V1 core accepts from a Lambda; ``queueFullPolicy`` is ``"AllOrException"`` or ``"BestEffort"``
  in newer SDK versions.

A real core routes the message through the group's subscriptions to AWS IoT. Here every message is
appended as one JSON line (topic, payload, qos, time) to the file named by ``$DEEPLENS_SIM_MESSAGES``
(or written to stderr when unset), and the demo collects that file. Arguments the real client would choke
on (positional arguments, a missing topic, a payload that is neither text nor bytes) raise here too, so
the simulation does not accept code that would fail on the device.
"""

import json
import os
import sys
import threading
import time

MESSAGES_ENV = "DEEPLENS_SIM_MESSAGES"
CLIENT_TYPES = ("iot-data", "lambda", "secretsmanager")
QUEUE_FULL_POLICIES = ("AllOrException", "BestEffort")

_write_lock = threading.Lock()


class IoTDataClient(object):
    """``greengrasssdk.client("iot-data")``: publish to the core's local MQTT router."""

    def __init__(self):
        self.published = 0

    def publish(self, **kwargs):
        unknown = set(kwargs) - {"topic", "payload", "qos", "queueFullPolicy"}
        if unknown:
            raise TypeError("publish() got unexpected keyword arguments: %s" % ", ".join(sorted(unknown)))
        topic = kwargs.get("topic")
        if not isinstance(topic, str) or not topic:
            raise ValueError("publish() needs topic=<non-empty string>")
        payload = kwargs.get("payload", b"")
        if isinstance(payload, (bytes, bytearray)):
            payload = bytes(payload).decode("utf-8")
        elif not isinstance(payload, str):
            raise TypeError("publish() payload must be str or bytes, got %s" % type(payload).__name__)
        qos = kwargs.get("qos", 0)
        if qos != 0:
            raise ValueError("Greengrass V1 publishes from a Lambda at QoS 0 only, got qos=%r" % (qos,))
        policy = kwargs.get("queueFullPolicy", "AllOrException")
        if policy not in QUEUE_FULL_POLICIES:
            raise ValueError("queueFullPolicy must be one of %s" % ", ".join(QUEUE_FULL_POLICIES))
        line = json.dumps({"topic": topic, "payload": payload, "qos": qos, "time": time.time()}) + "\n"
        path = os.environ.get(MESSAGES_ENV)
        with _write_lock:
            if path:
                with open(path, "a") as messages:
                    messages.write(line)
            else:
                sys.stderr.write(line)
        self.published += 1


def client(client_type, *args, **kwargs):
    """The SDK's factory: ``client("iot-data")``; the other SDK clients are not simulated."""
    if client_type not in CLIENT_TYPES:
        raise ValueError("unknown greengrasssdk client type %r (expected one of %s)"
                         % (client_type, ", ".join(CLIENT_TYPES)))
    if client_type != "iot-data":
        raise NotImplementedError("the simulated core provides only the iot-data client, not %r" % client_type)
    return IoTDataClient()
