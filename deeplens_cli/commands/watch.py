"""`watch`: a device's live result messages, as they arrive - without the IoT console's MQTT test client.

The device publishes one JSON message per processed frame (edge_function.publish.build_message: faces with label
and score, fps, upload counters) on `$aws/things/<thing>/infer` (Greengrass V1, the DeepLens topic) or
`deeplens/<thing>/infer` (Greengrass V2: the `$aws/` topics are reserved there).

`watch` connects to AWS IoT Core **as the user, not as a device**: MQTT over WebSocket with the handshake signed
with SigV4 from the same credentials every other command uses (profile, environment, SSO...), through
awsiotsdk's `websockets_with_default_aws_signing` (service `iotdevicegateway`). No certificate is needed; the
user's IAM identity needs `iot:Connect` on `client/deeplens-cli-watch-*`, `iot:Subscribe` on
`topicfilter/<topic>` and `iot:Receive` on `topic/<topic>` (README "After deploy" has the policy).

`--broker mqtt://HOST:PORT` talks plain MQTT to a local broker instead (the embedded demo, tests with
mosquitto); `wss://` would be a signed WebSocket to any TLS endpoint. Messages are read on awscrt's thread and
handed over through a queue, so the main thread stays interruptible: Ctrl-C ends it with exit 0.

Whatever arrives on the topic is data from a device (or from anyone allowed to publish there), so nothing in it can
end the watch: a payload that is not a result message - not JSON, not an object, larger than `MAX_MESSAGE_BYTES`,
nested deeper than `MAX_JSON_DEPTH`, or with `faces`/`score`/`fps`/`device`/`uploads` of the wrong type - is shown
as such (`not a result message (...)`, its start escaped by the Reporter) and the watch goes on. The depth is
checked before parsing, so no payload can make the parser recurse.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import re
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlsplit

from deeplens_cli.errors import ConfigError, DeeplensError
from deeplens_cli.targets.registry import find_device

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.cli.app import App
    from deeplens_cli.cli.output import Reporter
    from deeplens_cli.targets.base import Device

V1_TOPIC = "$aws/things/{thing}/infer"
V2_TOPIC = "deeplens/{thing}/infer"
CLIENT_ID_PREFIX = "deeplens-cli-watch-"
SIGNING_SERVICE = "iotdevicegateway"
CONNECT_TIMEOUT_S = 20.0
MAX_MESSAGE_BYTES = 128 * 1024  # AWS IoT Core's largest publish payload; a result message is a few hundred bytes
MAX_JSON_DEPTH = 32  # a result message nests 4 deep (message, faces, a face, its box); deeper is not one of ours
MAX_SHOWN_CHARS = 500  # of a payload that is not a result message, what its text line shows
MAX_INTEGER = 2**63  # a larger integer as fps or score cannot be shown as a decimal fraction (float overflow)


def results_topic(target: str, thing: str) -> str:
    return (V1_TOPIC if target == "v1" else V2_TOPIC).format(thing=thing)


@dataclass(frozen=True)
class Broker:
    """Where to connect: AWS IoT Core (signed WebSocket over TLS, port 443) or a local broker."""

    host: str
    port: int
    websocket: bool
    tls: bool
    signing_region: str | None = None  # SigV4-sign the WebSocket handshake for this region
    ca_file: str | None = None  # trust this CA instead of the system's (a test broker's self-signed one)

    @property
    def url(self) -> str:
        scheme = ("wss" if self.tls else "ws") if self.websocket else ("mqtts" if self.tls else "mqtt")
        return f"{scheme}://{self.host}:{self.port}"


def parse_broker(url: str, signing_region: str | None = None, ca_file: str | None = None) -> Broker:
    """`mqtt://host:1883` (plain MQTT) or `wss://host:443` (WebSocket + TLS, SigV4-signed with a region)."""
    parts = urlsplit(url)
    defaults = {"mqtt": 1883, "ws": 80, "wss": 443}
    if parts.scheme not in defaults or not parts.hostname:
        raise ConfigError(f"--broker {url!r} is not a broker URL, expected mqtt://HOST:PORT or wss://HOST:PORT",
                          "for the demo's broker: --broker mqtt://127.0.0.1:1883")
    return Broker(host=parts.hostname, port=parts.port or defaults[parts.scheme], websocket=parts.scheme != "mqtt",
                  tls=parts.scheme == "wss", signing_region=signing_region if parts.scheme == "wss" else None,
                  ca_file=ca_file)


def aws_iot_broker(ctx: AwsContext) -> Broker:
    """The account's AWS IoT data endpoint, reached as a SigV4-signed WebSocket."""
    endpoint = ctx.client("iot").describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    return Broker(host=endpoint, port=443, websocket=True, tls=True, signing_region=ctx.region)


@dataclass(frozen=True)
class ResultMessage:
    """One message as received: topic, when, the decoded JSON object (None when the payload was not one), the
    payload as text, and - when it is not a result message a person can read as one - what is wrong with it."""

    topic: str
    received_at: dt.datetime
    payload: dict[str, Any] | None
    raw: str
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        document = {"topic": self.topic, "received_at": self.received_at.isoformat(),
                    "message": self.payload if self.payload is not None else self.raw}
        if self.problem is not None:
            document["problem"] = self.problem
        return document

    def line(self) -> str:
        stamp = self.received_at.strftime("%H:%M:%S")
        body = self.payload
        if body is None or self.problem is not None:
            shown = self.raw if len(self.raw) <= MAX_SHOWN_CHARS else (
                f"{self.raw[:MAX_SHOWN_CHARS]}... ({len(self.raw)} characters)")
            return f"{stamp} {self.topic}: not a result message ({self.problem}): {shown}"
        faces = body.get("faces") or []
        scores = ", ".join(f"{face.get('score') or 0:.2f}" for face in faces)
        upload_text = _upload_counters(body.get("uploads"))
        fps = body.get("fps")
        return (f"{stamp} {body.get('device') or '?'}: {len(faces)} face(s)" + (f" ({scores})" if scores else "")
                + (f", {fps:.1f} fps" if fps is not None else "")
                + (f", uploads {upload_text}" if upload_text else ""))


UPLOAD_COUNTERS = ("uploaded", "spooled", "failed", "dropped")  # the uploader's stats a person looks at


def _upload_counters(uploads: dict[str, Any] | None) -> str:
    """`uploaded=12 spooled=0`, plus failed/dropped when they are not zero; other stats stay in the JSON."""
    if not uploads:
        return ""
    shown = [f"{name}={uploads[name]}" for name in UPLOAD_COUNTERS
             if name in uploads and (name in ("uploaded", "spooled") or uploads[name])]
    return " ".join(shown)


def decode(topic: str, payload: bytes, received_at: dt.datetime) -> ResultMessage:
    """A message from its payload; never raises, whatever the payload (see the module docstring)."""
    if len(payload) > MAX_MESSAGE_BYTES:
        return ResultMessage(topic, received_at, None, payload[:MAX_SHOWN_CHARS].decode("utf-8", errors="replace"),
                             f"{len(payload)} bytes, larger than the {MAX_MESSAGE_BYTES} a message may have")
    raw = payload.decode("utf-8", errors="replace")
    if nests_deeper_than(raw, MAX_JSON_DEPTH):
        return ResultMessage(topic, received_at, None, raw, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(raw)
    except ValueError:
        return ResultMessage(topic, received_at, None, raw, "not JSON")
    if not isinstance(value, dict):
        return ResultMessage(topic, received_at, None, raw, f"JSON {_json_type(value)}, not an object")
    return ResultMessage(topic, received_at, value, raw, _shape_problem(value))


_STRUCTURE = re.compile(r'[\[\]{}"\\]')


def nests_deeper_than(text: str, limit: int) -> bool:
    """Whether the brackets of a JSON text nest deeper than `limit` (brackets inside strings do not count), found
    without parsing it. Linear in the text: only brackets, quotes and backslashes are visited, and not even those
    when there are too few brackets to reach the limit (any result message)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    in_string = False
    skip = -1  # the index of a character escaped by a backslash inside a string
    for match in _STRUCTURE.finditer(text):
        index, char = match.start(), match.group()
        if index == skip:
            continue
        if in_string:
            if char == "\\":
                skip = index + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _shape_problem(body: dict[str, Any]) -> str | None:
    """What makes a JSON object unreadable as a result message (edge_function.publish.build_message), or None."""
    expected = {"device": (str, "a string"), "faces": (list, "a list"), "uploads": (dict, "an object")}
    for key, (kind, kind_name) in expected.items():
        value = body.get(key)
        if value is not None and not isinstance(value, kind):
            return f"'{key}' is {_json_type(value)}, expected {kind_name}"
    numbers = [("fps", body.get("fps"))]
    for index, face in enumerate(body.get("faces") or []):
        if not isinstance(face, dict):
            return f"'faces[{index}]' is {_json_type(face)}, expected an object"
        numbers.append((f"faces[{index}].score", face.get("score")))
    for key, value in numbers:
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"'{key}' is {_json_type(value)}, expected a number"
        if isinstance(value, int) and abs(value) > MAX_INTEGER:
            return f"'{key}' is a number too large to show"
    return None


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null"


# ---------------------------------------------------------------------------------------------- transport


def credentials_provider(ctx: AwsContext) -> Any:
    """The user's current credentials (whatever boto3 resolved: profile, env, SSO, role) for awscrt's signer."""
    from awscrt.auth import AwsCredentialsProvider

    credentials = ctx.session.get_credentials()
    if credentials is None:
        raise DeeplensError("no AWS credentials to sign the IoT connection with",
                            "configure credentials as for any other command (aws configure, AWS_PROFILE, --profile)")
    frozen = credentials.get_frozen_credentials()
    return AwsCredentialsProvider.new_static(frozen.access_key, frozen.secret_key, frozen.token)


def connect(broker: Broker, client_id: str, provider: Any = None) -> Any:
    """An awscrt MQTT 3.1.1 connection (not yet connected) to `broker`."""
    try:
        from awscrt import io, mqtt
        from awsiot import mqtt_connection_builder
    except ImportError as exc:
        raise DeeplensError(f"watch needs the AWS IoT SDK ({exc.name} is not installed)",
                            "pip install awsiotsdk") from None
    if broker.tls and broker.websocket:
        extra = {"ca_filepath": broker.ca_file} if broker.ca_file else {}
        if broker.signing_region is None:
            raise ConfigError("a wss:// broker needs a signing region", "pass --region")
        return mqtt_connection_builder.websockets_with_default_aws_signing(
            region=broker.signing_region, credentials_provider=provider, endpoint=broker.host, port=broker.port,
            client_id=client_id, clean_session=True, keep_alive_secs=30, **extra)
    bootstrap = io.ClientBootstrap.get_or_create_static_default()
    return mqtt.Connection(client=mqtt.Client(bootstrap, None), host_name=broker.host, port=broker.port,
                           client_id=client_id, clean_session=True, keep_alive_secs=30,
                           use_websockets=broker.websocket)


def stream_messages(connection: Any, topic: str, on_message: Callable[[ResultMessage], None], count: int | None,
                    timeout_s: float | None, clock: Callable[[], float] = time.monotonic,
                    on_subscribed: Callable[[], None] | None = None) -> int:
    """Connect, subscribe, hand each message to `on_message` until `count` arrived or `timeout_s` passed.

    Returns how many messages arrived. Always disconnects, also on Ctrl-C.
    """
    from awscrt import mqtt

    inbox: queue.Queue[tuple[str, bytes, dt.datetime]] = queue.Queue()

    def received(topic: str, payload: bytes, **_kwargs: Any) -> None:  # on awscrt's thread: hand over, decode below
        inbox.put((topic, payload, dt.datetime.now(dt.timezone.utc)))

    try:
        connection.connect().result(CONNECT_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - awscrt raises its own AwsCrtError; one line for the user
        raise DeeplensError(f"could not connect to the MQTT broker: {exc}",
                            "check the network, the region and that your IAM identity may iot:Connect "
                            f"(client/{CLIENT_ID_PREFIX}*)") from None
    received_count = 0
    try:
        subscribe_future, _packet = connection.subscribe(topic, mqtt.QoS.AT_MOST_ONCE, received)
        granted = subscribe_future.result(CONNECT_TIMEOUT_S)
        if granted.get("qos") is None:
            raise DeeplensError(f"the broker refused the subscription to {topic}",
                                f"your IAM identity needs iot:Subscribe on topicfilter/{topic} and iot:Receive on "
                                f"topic/{topic}")
        if on_subscribed is not None:
            on_subscribed()
        deadline = None if timeout_s is None else clock() + timeout_s
        while count is None or received_count < count:
            wait = 0.5 if deadline is None else min(0.5, deadline - clock())
            if wait <= 0:
                break
            try:
                arrived = inbox.get(timeout=wait)
            except queue.Empty:
                continue
            received_count += 1
            on_message(decode(*arrived))
    finally:
        try:
            connection.disconnect().result(5)
        except Exception:  # noqa: BLE001 - closing a broken connection must not hide why it broke
            pass
    return received_count


# ---------------------------------------------------------------------------------------------- command


def run_watch(app: App, device_name: str, count: int | None, timeout_s: float | None, broker_url: str | None) -> None:
    """The `watch` command: JSON lines with --output json, one readable line per message otherwise."""
    broker = parse_broker(broker_url) if broker_url else None  # exit 2 before any AWS call
    ctx, settings = app.ctx, app.settings
    device: Device = find_device(ctx, settings, device_name, app.reporter)
    topic = results_topic(device.target, device.thing_name)
    provider = None
    if broker is None:
        broker = aws_iot_broker(ctx)
        provider = credentials_provider(ctx)
    client_id = CLIENT_ID_PREFIX + uuid.uuid4().hex[:12]
    reporter = app.reporter
    try:
        connection = connect(broker, client_id, provider)
        received = stream_messages(connection, topic, lambda message: _print(message, reporter), count, timeout_s,
                                   on_subscribed=lambda: reporter.progress(f"watching {topic} on {broker.url} "
                                                                           "(Ctrl-C to stop)"))
    except KeyboardInterrupt:
        reporter.progress("stopped watching")
        return
    if received == 0:
        reporter.warn(f"no message on {topic} within {timeout_s:g} s: is the device running? "
                      f"(deeplens-cli logs --device {device_name})")


def _print(message: ResultMessage, reporter: Reporter) -> None:
    if reporter.json:
        reporter.emit_json_line(message.to_dict())
    else:
        reporter.line(message.line())
