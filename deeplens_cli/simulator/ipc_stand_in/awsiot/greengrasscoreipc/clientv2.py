"""Stand-in for `GreengrassCoreIPCClientV2`: `publish_to_iot_core` appends one JSON line per message to
`$DEEPLENS_SIM_MESSAGES` ({"topic", "payload", "qos", "time"}, the V1 greengrasssdk stand-in's format).

Like the real client it refuses to start without the nucleus' IPC variables (SVCUID and the socket path), so
a component only publishes here when the simulated nucleus started it.
"""

import json
import os
import threading
import time

MESSAGES_ENV = "DEEPLENS_SIM_MESSAGES"
_lock = threading.Lock()


class GreengrassCoreIPCClientV2:
    def __init__(self, *args, **kwargs):
        for name in ("SVCUID", "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"):
            if not os.environ.get(name):
                raise RuntimeError("%s is not set: not started by a Greengrass nucleus" % name)
        self._path = os.environ.get(MESSAGES_ENV)
        self._closed = False

    def publish_to_iot_core(self, topic_name, qos, payload):
        if self._closed:
            raise RuntimeError("the IPC client is closed")
        if isinstance(payload, bytes):
            payload = payload.decode("utf-8")
        line = json.dumps({"topic": topic_name, "payload": payload, "qos": qos, "time": time.time()}) + "\n"
        with _lock:
            if self._path:
                with open(self._path, "a", encoding="utf-8") as messages:
                    messages.write(line)
        return None

    def close(self):
        self._closed = True
