"""`watch`: the device's result messages from a real MQTT broker (Debian's mosquitto), through awscrt's client.

What runs against mosquitto: plain MQTT (the demo's path) end to end through the CLI, and the exact AWS path -
MQTT over a TLS WebSocket whose handshake awsiotsdk signs with SigV4 - up to message delivery. mosquitto does not
check the signature (only AWS IoT can), so the signature itself is verified separately below against an
independent SigV4 computation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from urllib.parse import parse_qsl, quote, urlsplit

import boto3

import deeplens_cli.commands.watch as watch
from edge_function.publish import build_message, encode_message
from tests.support.polling import HANG_GUARD_S

REGION = "us-east-1"
ENV = {"DEEPLENS_BUCKET": "deeplens-test-face-crops", "DEEPLENS_REGION": REGION}


class Face:
    label, score, box = "face", 0.93, (10.0, 20.0, 110.0, 140.0)


def device_message(device: str) -> str:
    return encode_message(build_message([Face()], device, 9.8, {"uploaded": 3, "spooled": 0}, (640, 480)))


def publish_repeatedly(broker_url: str, topic: str, payloads: list[str], stop: threading.Event) -> threading.Thread:
    """A stand-in device: publishes the payloads every 0.2 s until `stop` (subscribers may join late)."""
    def run():
        connection = watch.connect(
            watch.parse_broker(broker_url), f"test-device-{threading.get_ident()}-{time.monotonic_ns()}"
        )
        connection.connect().result(10)
        try:
            while not stop.is_set():
                for payload in payloads:
                    published, _packet_id = connection.publish(topic, payload, watch_qos())
                    published.result(10)
                stop.wait(0.2)
        finally:
            connection.disconnect().result(5)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def watch_qos():
    from awscrt import mqtt

    return mqtt.QoS.AT_MOST_ONCE


def register(name: str, thing: str, target: str) -> None:
    boto3.client("iot", region_name=REGION).create_thing(thingName=thing, attributePayload={
        "attributes": {"deeplens_name": name, "deeplens_target": target}})


def test_topics_follow_the_target():
    assert watch.results_topic("v1", "cam-a") == "$aws/things/cam-a/infer"
    assert watch.results_topic("v2", "cam-a") == "deeplens/cam-a/infer"


def test_a_bad_broker_url_is_a_usage_error(aws_plain, run_cli):
    register("CamA", "cam-a", "v2")
    result = run_cli("watch", "--device", "CamA", "--broker", "http://x", env=ENV)
    assert result.exit_code == 2 and "--broker" in result.stderr


def test_prints_json_lines_from_the_devices_topic_and_stops_at_count(aws_plain, run_cli, broker):
    register("CamA", "cam-a", "v2")
    stop = threading.Event()
    publish_repeatedly(broker.mqtt_url, "deeplens/cam-b/infer", [device_message("cam-b")], stop)  # another camera
    publish_repeatedly(broker.mqtt_url, "deeplens/cam-a/infer", [device_message("cam-a"), "not json"], stop)
    try:
        result = run_cli("--output", "json", "watch", "--device", "CamA", "--count", "4", "--timeout", "60",
                         "--broker", broker.mqtt_url, env=ENV)
    finally:
        stop.set()
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 4
    assert {line["topic"] for line in lines} == {"deeplens/cam-a/infer"}
    decoded = [line["message"] for line in lines if isinstance(line["message"], dict)]
    assert decoded and decoded[0]["device"] == "cam-a" and decoded[0]["faces"][0]["score"] == 0.93
    assert "not json" in [line["message"] for line in lines]


def test_text_lines_show_faces_scores_fps_and_uploads_for_a_v1_device(aws_plain, run_cli, broker):
    register("OldCam", "deeplens_old", "v1")
    stop = threading.Event()
    publish_repeatedly(broker.mqtt_url, "$aws/things/deeplens_old/infer", [device_message("deeplens_old")], stop)
    try:
        result = run_cli("watch", "--device", "deeplens_old", "--count", "1", "--timeout", "60",
                         "--broker", broker.mqtt_url, env=ENV)
    finally:
        stop.set()
    assert result.exit_code == 0, result.stderr
    assert "deeplens_old: 1 face(s) (0.93), 9.8 fps, uploads uploaded=3 spooled=0" in result.stdout


def test_timeout_without_messages_exits_0_with_a_hint(aws_plain, run_cli, broker):
    register("CamA", "cam-a", "v2")
    started = time.monotonic()
    result = run_cli("watch", "--device", "CamA", "--timeout", "1", "--broker", broker.mqtt_url, env=ENV)
    assert result.exit_code == 0
    assert "no message on deeplens/cam-a/infer" in result.stderr
    assert time.monotonic() - started < HANG_GUARD_S  # --timeout 1 ended it: no hang


def test_an_unreachable_broker_is_one_line_exit_1(aws_plain, run_cli):
    register("CamA", "cam-a", "v2")
    result = run_cli("watch", "--device", "CamA", "--timeout", "1", "--broker", "mqtt://127.0.0.1:9", env=ENV)
    assert result.exit_code == 1 and "could not connect to the MQTT broker" in result.stderr


def test_ctrl_c_stops_watching_with_exit_0(aws_plain, run_cli, broker, monkeypatch):
    register("CamA", "cam-a", "v2")

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(watch, "stream_messages", interrupted)
    result = run_cli("watch", "--device", "CamA", "--broker", broker.mqtt_url, env=ENV)
    assert result.exit_code == 0


def test_the_aws_transport_signed_websocket_over_tls_delivers_messages(broker):
    """The production path (websockets_with_default_aws_signing) against mosquitto's TLS WebSocket listener."""
    from awscrt.auth import AwsCredentialsProvider

    provider = AwsCredentialsProvider.new_static("AKIDEXAMPLE", "secret", "session-token")
    aws_like = watch.Broker(host="localhost", port=broker.wss_port, websocket=True, tls=True, signing_region=REGION,
                            ca_file=broker.ca_file)
    stop = threading.Event()
    publish_repeatedly(broker.mqtt_url, "deeplens/cam-a/infer", [device_message("cam-a")], stop)
    received = []
    try:
        count = watch.stream_messages(watch.connect(aws_like, "deeplens-cli-watch-test", provider),
                                      "deeplens/cam-a/infer", received.append, count=2, timeout_s=20)
    finally:
        stop.set()
    assert count == 2 and received[0].payload["device"] == "cam-a"


# ---------------------------------------------------------------------------------------------- signing


def _sigv4_query_signature(method: str, path: str, headers: dict[str, str], secret: str, region: str,
                           service: str) -> str:
    """SigV4 for a query-signed request, computed from the specification with hashlib/hmac (not awscrt)."""
    parts = urlsplit(path)
    # AWS IoT wants the session token outside the signature: awsiotsdk signs with omit_session_token=True and
    # appends X-Amz-Security-Token afterwards.
    unsigned = ("X-Amz-Signature", "X-Amz-Security-Token")
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in unsigned]
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query))
    params = dict(query)
    signed_headers = params["X-Amz-SignedHeaders"]
    lowered = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    canonical_headers = "".join(f"{name}:{lowered[name]}\n" for name in signed_headers.split(";"))
    canonical = "\n".join([method, parts.path or "/", canonical_query, canonical_headers, signed_headers,
                           hashlib.sha256(b"").hexdigest()])
    stamp = params["X-Amz-Date"]
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (stamp[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_the_handshake_signature_is_valid_sigv4_for_iotdevicegateway(broker):
    """Capture the WebSocket upgrade request awsiotsdk signs, and check its signature independently."""
    from awscrt.auth import AwsCredentialsProvider
    from awsiot import mqtt_connection_builder

    captured = []
    original = mqtt_connection_builder.websockets_with_custom_handshake

    def capturing(transform, *args, **kwargs):
        def recorder(transform_args, **kw):
            inner_done = transform_args.set_done

            def done(error=None):
                captured.append((transform_args.http_request.method, transform_args.http_request.path,
                                 dict(transform_args.http_request.headers)))
                inner_done(error)
            transform_args.set_done = done
            transform(transform_args, **kw)
        return original(recorder, *args, **kwargs)

    provider = AwsCredentialsProvider.new_static("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "tok")
    aws_like = watch.Broker(host="localhost", port=broker.wss_port, websocket=True, tls=True, signing_region=REGION,
                            ca_file=broker.ca_file)
    mqtt_connection_builder.websockets_with_custom_handshake = capturing
    try:
        connection = watch.connect(aws_like, "deeplens-cli-watch-sig", provider)
        connection.connect().result(10)
        connection.disconnect().result(5)
    finally:
        mqtt_connection_builder.websockets_with_custom_handshake = original

    method, path, headers = captured[0]
    query = dict(parse_qsl(urlsplit(path).query))
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Credential"].startswith("AKIDEXAMPLE/") and query["X-Amz-Credential"].endswith(
        f"/{REGION}/iotdevicegateway/aws4_request")
    assert "host" in query["X-Amz-SignedHeaders"].split(";")
    assert query["X-Amz-Security-Token"] == "tok"  # sent, but outside the signature
    signature = _sigv4_query_signature(method, path, headers, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", REGION,
                                       "iotdevicegateway")
    assert query["X-Amz-Signature"] == signature
    stamp = dt.datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    assert abs((dt.datetime.now(dt.timezone.utc) - stamp).total_seconds()) < 120


# ---------------------------------------------------------------------------------------------- hostile messages

TITLE_AND_CLEAR = "\x1b]0;OWNED\x07\x1b[2J"
MALFORMED = {
    "faces is a string": '{"device": "cam-a", "faces": "lots"}',
    "faces is a number": '{"device": "cam-a", "faces": 3}',
    "a score is a string": '{"device": "cam-a", "faces": [{"label": "face", "score": "high"}]}',
    "nested too deep": "[" * 5_000 + "]" * 5_000,  # Python's parser would recurse past its limit
    "terminal control, not JSON": TITLE_AND_CLEAR + "pwned",
}


def watch_messages(run_cli, broker, payloads: list[str], *options: str):
    """`watch` while a stand-in device publishes `payloads` in turn: twice as many messages as payloads, so each
    payload is among them whichever one the subscription starts at."""
    register("CamA", "cam-a", "v2")
    stop = threading.Event()
    publish_repeatedly(broker.mqtt_url, "deeplens/cam-a/infer", payloads, stop)
    try:
        return run_cli(*options, "watch", "--device", "CamA", "--count", str(2 * len(payloads)), "--timeout", "60",
                       "--broker", broker.mqtt_url, env=ENV)
    finally:
        stop.set()


def test_malformed_messages_are_shown_as_such_and_the_watch_goes_on(aws_plain, run_cli, broker):
    result = watch_messages(run_cli, broker, [*MALFORMED.values(), device_message("cam-a")])

    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr and "error" not in result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 * (len(MALFORMED) + 1)
    assert any("cam-a: 1 face(s) (0.93), 9.8 fps" in line for line in lines)  # the good message still reads well
    shown = "\n".join(lines)
    for problem in ("'faces' is a string, expected a list", "'faces' is a number, expected a list",
                    "'faces[0].score' is a string, expected a number", "JSON nested deeper than 32 levels"):
        assert f"deeplens/cam-a/infer: not a result message ({problem}): " in shown, problem


def test_terminal_control_in_a_payload_is_shown_escaped(aws_plain, run_cli, broker):
    result = watch_messages(run_cli, broker, [TITLE_AND_CLEAR + "pwned", '{"device": "' + "\\u001b[2J" + 'cam"}'])

    assert result.exit_code == 0, result.stderr
    assert not {"\x1b", "\x07"} & set(result.stdout)
    assert "not a result message (not JSON): \\x1b]0;OWNED\\x07\\x1b[2Jpwned" in result.stdout
    assert "\\x1b[2Jcam: 0 face(s)" in result.stdout  # a JSON \u001b escape inside a device name, decoded, escaped


def test_json_lines_name_the_problem_and_stay_strict(aws_plain, run_cli, broker):
    payloads = [MALFORMED["faces is a string"], MALFORMED["nested too deep"], '{"device": "cam-a", "fps": NaN}']
    result = watch_messages(run_cli, broker, payloads, "--output", "json")

    assert result.exit_code == 0, result.stderr

    def refuse(constant):
        raise AssertionError(f"{constant} on stdout is not JSON")
    lines = [json.loads(line, parse_constant=refuse) for line in result.stdout.splitlines()]
    problems = {line.get("problem") for line in lines}
    assert problems == {"'faces' is a string, expected a list", "JSON nested deeper than 32 levels", None}
    assert {line["message"]["fps"] for line in lines if line.get("problem") is None} == {None}  # NaN: null
    assert "printed as null: message.fps" in result.stderr


def test_a_payload_too_large_for_aws_iot_is_not_parsed():
    message = watch.decode("t", b'{"faces": [' + b"1," * watch.MAX_MESSAGE_BYTES + b"1]}", dt.datetime.now())
    assert message.payload is None and message.problem.endswith(f"larger than the {watch.MAX_MESSAGE_BYTES} a "
                                                                "message may have")
    assert len(message.raw) == watch.MAX_SHOWN_CHARS


def test_the_depth_is_read_without_parsing_and_ignores_brackets_in_strings():
    assert not watch.nests_deeper_than('{"faces": [{"box": [1, 2]}]}', 4)
    assert watch.nests_deeper_than('{"faces": [{"box": [1, 2]}]}', 3)
    assert not watch.nests_deeper_than('{"label": "[[[{{{\\"[[["}', 1)  # an escaped quote does not end the string
    assert not watch.nests_deeper_than("[]" * 1000, 1)  # many brackets, shallow
    assert watch.nests_deeper_than("[" * 1_000_000, 32)
