"""publish.py: valid JSON that keeps the seed's label:prob pair, on the right transport, never raising."""

import io
import json
import threading
import types

import pytest

from edge_function import publish
from edge_function.detectors import Detection
from tests.support.polling import HANG_GUARD_S, wait_for

TOPIC = "$aws/things/deeplens_test/infer"
FACES = [Detection("face", 0.931234, (100.4, 50.0, 180.6, 150.0)), Detection("face", 0.71, (400, 60, 470, 150))]
IPC_ENV = {"AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": "/greengrass/v2/ipc.socket", "SVCUID": "token"}


class FakeIotDataClient:
    """greengrasssdk's iot-data client: publish takes keyword arguments only."""

    def __init__(self, fail=False):
        self.published = []
        self.fail = fail

    def publish(self, *, topic, payload, qos=0):
        if self.fail:
            raise RuntimeError("Greengrass core unreachable")
        self.published.append((topic, payload))


def fake_greengrasssdk(client):
    module = types.ModuleType("greengrasssdk")
    module.requested = []

    def make_client(service):
        module.requested.append(service)
        return client

    module.client = make_client
    return module


def fake_ipc_module(fail_connect=False):
    published = []

    class GreengrassCoreIPCClientV2:
        def __init__(self):
            if fail_connect:
                raise ConnectionError("no nucleus socket")
            self.closed = False

        def publish_to_iot_core(self, *, topic_name, qos, payload):
            published.append((topic_name, qos, payload))

        def close(self):
            self.closed = True

    return types.SimpleNamespace(GreengrassCoreIPCClientV2=GreengrassCoreIPCClientV2,
                                 QOS=types.SimpleNamespace(AT_MOST_ONCE="0", AT_LEAST_ONCE="1"),
                                 published=published)


def test_message_keeps_the_label_prob_pair_and_adds_boxes_counts_and_fps():
    message = publish.build_message(FACES, "deeplens_test", 9.876, {"uploaded": 3, "spooled": 1},
                                    frame_size=(1920, 1080), now=1700000000.1234)
    parsed = json.loads(publish.encode_message(message))
    assert parsed["face"] == 0.9312  # the highest score, at top level, like the seed's {"face": 0.93}
    assert parsed["faces"] == [{"label": "face", "score": 0.9312, "box": [100, 50, 181, 150]},
                               {"label": "face", "score": 0.71, "box": [400, 60, 470, 150]}]
    assert parsed["uploads"] == {"uploaded": 3, "spooled": 1}
    assert parsed["fps"] == 9.88
    assert parsed["device"] == "deeplens_test"
    assert parsed["frame"] == [1920, 1080]
    assert parsed["time"] == 1700000000.123


def test_a_frame_without_faces_is_still_valid_json_without_a_label():
    parsed = json.loads(publish.encode_message(publish.build_message([], "d", 0.0, {})))
    assert "face" not in parsed and parsed["faces"] == []


def test_greengrass_v1_publishes_with_keyword_arguments():
    client = FakeIotDataClient()
    module = fake_greengrasssdk(client)
    publisher = publish.make_publisher({"AWS_IOT_THING_NAME": "deeplens_test"}, greengrasssdk_module=module)
    assert isinstance(publisher, publish.GreengrassSdkPublisher)
    assert publisher.publish(TOPIC, publish.build_message(FACES, "deeplens_test", 5.0, {}))
    assert module.requested == ["iot-data"]
    ((topic, payload),) = client.published
    assert topic == TOPIC
    assert json.loads(payload)["face"] == 0.9312


def test_greengrass_v2_uses_ipc_when_the_nucleus_variables_are_set():
    ipc = fake_ipc_module()
    env = dict(IPC_ENV, AWS_IOT_THING_NAME="core-1")
    publisher = publish.make_publisher(env, greengrasssdk_module=fake_greengrasssdk(FakeIotDataClient()),
                                       ipc_module=ipc)
    assert isinstance(publisher, publish.GreengrassIpcPublisher)
    assert publisher.publish(TOPIC, {"face": 0.9})
    assert ipc.published == [(TOPIC, "0", '{"face":0.9}')]  # QoS 0: AT_MOST_ONCE
    publisher.close()


def test_off_device_messages_are_json_lines_on_stdout():
    stream = io.StringIO()
    publisher = publish.StdoutPublisher(stream)
    publisher.publish(TOPIC, {"face": 0.9})
    publisher.publish(TOPIC, {"faces": []})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines == [{"topic": TOPIC, "message": {"face": 0.9}}, {"topic": TOPIC, "message": {"faces": []}}]


@pytest.mark.parametrize("env", [{}, {"AWS_IOT_THING_NAME": "laptop"}])
def test_stdout_is_the_fallback_without_device_sdks(env):
    # greengrasssdk is not installed here, so a thing name alone falls back to stdout
    assert isinstance(publish.make_publisher(env), publish.StdoutPublisher)


def test_an_unavailable_ipc_falls_back_to_stdout():
    assert isinstance(publish.make_publisher(IPC_ENV, ipc_module=fake_ipc_module(fail_connect=True)),
                      publish.StdoutPublisher)


def test_publishing_never_raises_into_the_loop(caplog):
    client = FakeIotDataClient(fail=True)
    publisher = publish.GreengrassSdkPublisher(fake_greengrasssdk(client))
    results = [publisher.publish(TOPIC, {"face": 0.9}) for _ in range(5)]
    assert results == [False] * 5
    assert publisher.errors == 5 and publisher.sent == 0
    assert len([r for r in caplog.records if "publish" in r.getMessage()]) == 1  # rate-limited log


def test_an_unserialisable_message_is_an_error_not_an_exception():
    class Broken:
        def __str__(self):
            raise ValueError("nope")

    publisher = publish.StdoutPublisher(io.StringIO())
    assert publisher.publish(TOPIC, {"x": Broken()}) is False
    assert publisher.errors == 1


class GatedTransport:
    """A transport whose publish blocks until released, like a synchronous IPC call to a busy nucleus."""

    name = "gated"

    def __init__(self):
        self.release = threading.Event()
        self.started = threading.Event()
        self.published = []
        self.closed = False
        self.sent = 0
        self.errors = 0

    def publish(self, topic, message):
        self.started.set()
        self.release.wait(HANG_GUARD_S)
        self.published.append((topic, message))
        self.sent += 1
        return True

    def close(self):
        self.closed = True


def test_background_publisher_returns_at_once_and_sends_only_the_newest_pending_message():
    transport = GatedTransport()
    publisher = publish.BackgroundPublisher(transport)
    publisher.CLOSE_TIMEOUT_S = HANG_GUARD_S  # close returns once the last message is out; the wait guards a hang
    assert publisher.publish(TOPIC, {"n": 0})
    assert transport.started.wait(HANG_GUARD_S)  # the thread is stuck sending message 0
    accepted = []
    # the transport never answers until released below: a publish that waited for it would never return
    publishing = threading.Thread(target=lambda: accepted.extend(publisher.publish(TOPIC, {"n": n})
                                                                 for n in range(1, 6)), daemon=True)
    publishing.start()
    publishing.join(HANG_GUARD_S)
    assert accepted == [True] * 5 and not transport.release.is_set()  # nothing waited for the transport
    assert publisher.replaced == 4  # 1..4 were superseded before the thread got to them
    transport.release.set()
    publisher.close()
    assert transport.published == [(TOPIC, {"n": 0}), (TOPIC, {"n": 5})]
    assert transport.closed and publisher.sent == 2
    assert not publisher.publish(TOPIC, {"n": 6})  # closed: refused, not queued


def test_background_publisher_survives_a_transport_that_raises(caplog):
    class Exploding(GatedTransport):
        def publish(self, topic, message):
            self.published.append(message)
            raise RuntimeError("socket closed")

    transport = Exploding()
    publisher = publish.BackgroundPublisher(transport)
    publisher.CLOSE_TIMEOUT_S = HANG_GUARD_S
    publisher.publish(TOPIC, {"n": 1})
    assert wait_for(lambda: transport.published)
    publisher.publish(TOPIC, {"n": 2})
    publisher.close()
    assert transport.published == [{"n": 1}, {"n": 2}]
