"""A fault-injecting HTTP proxy between the CLI (boto3) and a moto server: the network failures a real
account sees, at the wire, below botocore's retries.

The CLI is pointed at the proxy (`--endpoint-url proxy.url`); the proxy forwards every request to moto and,
for the operations a test names, injects one of:

* `lose_answer` - forward the request (moto carries it out), then drop the connection without answering: what
  a connection reset after the request reached AWS looks like. botocore retries it, so a create that is not
  idempotent is carried out twice;
* `reset` - drop the connection before forwarding (the request never reaches AWS);
* `throttle` - answer 429 (or 503) with a ThrottlingException in the service's wire format, without
  forwarding;
* `delay` - wait, then forward.

Operations are recognised from the request itself, with botocore's service models: the SigV4 credential scope
names the signing service; the query `Action`, the JSON `X-Amz-Target` or the REST method and request URI name
the operation. Each rule fires `times` times (None: always). `proxy.forwarded` counts the requests that reached
moto per "service:Operation", `proxy.injected` lists the faults in order.

The `fault_proxy` fixture starts one in front of the test's `moto_server` and stops it afterwards.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

FAULTS = ("lose_answer", "reset", "throttle", "delay")
# signing name -> botocore service models that sign with it (Greengrass V1 and V2 share "greengrass")
SIGNING_SERVICES = {"greengrass": ("greengrass", "greengrassv2"), "execute-api": ()}
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/(?P<service>[^/]+)/aws4_request")


@dataclass
class Rule:
    service: str  # botocore service name, e.g. "greengrass"
    operation: str  # e.g. "CreateGroup"; "*" for every operation of the service
    fault: str
    times: int | None = 1
    status: int = 429
    delay_s: float = 0.0

    def matches(self, service: str, operation: str) -> bool:
        return self.service == service and self.operation in ("*", operation) and self.times != 0


@dataclass(frozen=True)
class Route:
    """How one REST operation's requests look: method, path, and what else only this operation sends.

    Several S3 operations share a method and path (PutObject, CopyObject, UploadPart, PutObjectAcl on PUT
    /{Bucket}/{Key+}); they differ by a literal query key in the model's requestUri (`?acl`) or by a required
    header or query member (CopyObject's x-amz-copy-source, UploadPart's partNumber and uploadId)."""

    method: str
    pattern: re.Pattern[str]
    literal: int  # length of the path's fixed text: longer is more specific
    operation: str
    query_keys: frozenset[str] = frozenset()  # present in every request of the operation
    headers: frozenset[str] = frozenset()

    def matches(self, method: str, path: str, query: dict[str, list[str]], headers: Any) -> bool:
        return (self.method == method and self.pattern.match(path) is not None
                and self.query_keys <= set(query) and all(headers.get(name) is not None for name in self.headers))


@lru_cache(maxsize=None)
def _rest_routes(service: str) -> tuple[Route, ...]:
    """The REST operations of a service, most specific first."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    routes = []
    for name in model.operation_names:
        operation = model.operation_model(name)
        http = operation.http
        uri, _, literal_query = http.get("requestUri", "/").partition("?")
        pattern = re.sub(r"\\\{[^}]+?\\\+\\\}", ".+", re.escape(uri))
        pattern = re.sub(r"\\\{[^}]+?\\\}", "[^/]+", pattern)
        query_keys = {part.split("=", 1)[0] for part in literal_query.split("&") if part}
        headers = set()
        shape = operation.input_shape
        for member in (shape.required_members if shape is not None else ()):
            location = shape.members[member].serialization
            if location.get("location") == "querystring":
                query_keys.add(location["name"])
            elif location.get("location") == "header":
                headers.add(location["name"])
        routes.append(Route(http.get("method", "POST"), re.compile(pattern + "/?$"),
                            len(re.sub(r"\{[^}]+\}", "", uri)), name, frozenset(query_keys), frozenset(headers)))
    routes.sort(key=lambda route: (-route.literal, -len(route.query_keys) - len(route.headers)))
    return tuple(routes)


@lru_cache(maxsize=None)
def _protocol(service: str) -> str:
    import botocore.session

    return botocore.session.get_session().get_service_model(service).protocol


def identify(method: str, path: str, headers: Any, body: bytes) -> tuple[str, str]:
    """("service", "Operation") of a signed AWS request, ("?", "?") when it cannot be told."""
    scope = _SCOPE.search(headers.get("Authorization", ""))
    if not scope:
        return "?", "?"
    signing = scope["service"]
    target = headers.get("X-Amz-Target")
    if target:
        return signing, target.rsplit(".", 1)[-1]
    for service in SIGNING_SERVICES.get(signing, (signing,)):
        protocol = _protocol(service)
        if protocol in ("query", "ec2"):
            action = parse_qs(body.decode("utf-8", "replace")).get("Action") or parse_qs(
                urlsplit(path).query
            ).get("Action")
            return service, action[0] if action else "?"
        parts = urlsplit(path)
        query = parse_qs(parts.query, keep_blank_values=True)
        for route in _rest_routes(service):
            if route.matches(method, parts.path, query, headers):
                return service, route.operation
    return signing, "?"


@dataclass
class FaultProxy:
    """A running proxy in front of `upstream`; see the module docstring."""

    upstream: str
    rules: list[Rule] = field(default_factory=list)
    forwarded: Counter = field(default_factory=Counter)
    injected: list[tuple[str, str]] = field(default_factory=list)  # (fault, "service:Operation")
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # -- arranging faults

    def lose_answer(self, service: str, operation: str, times: int | None = 1) -> FaultProxy:
        return self._add(Rule(service, operation, "lose_answer", times))

    def reset(self, service: str, operation: str, times: int | None = 1) -> FaultProxy:
        return self._add(Rule(service, operation, "reset", times))

    def throttle(self, service: str, operation: str, times: int | None = 1, status: int = 429) -> FaultProxy:
        return self._add(Rule(service, operation, "throttle", times, status=status))

    def delay(self, service: str, operation: str, seconds: float, times: int | None = 1) -> FaultProxy:
        return self._add(Rule(service, operation, "delay", times, delay_s=seconds))

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def reset_upstream(self) -> None:
        """Wipe the moto server behind the proxy (its documented /moto-api/reset), for a fresh account."""
        from tests.support.moto_server import reset_moto_server

        reset_moto_server(self.upstream)

    def _add(self, rule: Rule) -> FaultProxy:
        with self._lock:
            self.rules.append(rule)
        return self

    def _take(self, service: str, operation: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(service, operation):
                    if rule.times is not None:
                        rule.times -= 1
                    self.injected.append((rule.fault, f"{service}:{operation}"))
                    return rule
        return None

    # -- serving

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _any  # noqa: N815 - http.server's naming

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        service, operation = identify(request.command, request.path, request.headers, body)
        rule = self._take(service, operation)
        if rule is not None and rule.fault == "reset":
            return _drop(request)
        if rule is not None and rule.fault == "throttle":
            return _answer(request, *throttling_answer(service, rule.status))
        if rule is not None and rule.fault == "delay":
            time.sleep(rule.delay_s)
        status, headers, answer = self._forward(request, body)
        with self._lock:
            self.forwarded[f"{service}:{operation}"] += 1
        if rule is not None and rule.fault == "lose_answer":
            return _drop(request)
        _answer(request, status, headers, answer)

    def _forward(self, request: BaseHTTPRequestHandler, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        parts = urlsplit(self.upstream)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        try:
            headers = {name: value for name, value in request.headers.items()
                       if name.lower() not in ("connection", "keep-alive", "proxy-connection", "transfer-encoding")}
            connection.request(request.command, request.path, body=body or None, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            kept = [(name, value) for name, value in response.getheaders()
                    if name.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length")]
            return response.status, kept, answer
        finally:
            connection.close()


def throttling_answer(service: str, status: int) -> tuple[int, list[tuple[str, str]], bytes]:
    """A throttling error in the service's wire format (botocore retries it)."""
    code = "Throttling" if status == 429 else "ServiceUnavailable"
    message = "Rate exceeded (injected by the fault proxy)"
    try:
        protocol = _protocol(service)
    except Exception:  # noqa: BLE001 - unknown service: answer JSON
        protocol = "rest-json"
    if protocol in ("query", "rest-xml", "ec2"):
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
                "<RequestId>fault-proxy</RequestId></ErrorResponse>").encode()
        return status, [("Content-Type", "text/xml")], body
    code = "ThrottlingException" if status == 429 else "ServiceUnavailableException"
    return status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)], \
        json.dumps({"__type": code, "message": message}).encode()


def _answer(request: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    request.send_response(status)
    for name, value in headers:
        request.send_header(name, value)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(body)
    request.wfile.flush()


def _drop(request: BaseHTTPRequestHandler) -> None:
    """Reset the connection (RST, no answer): SO_LINGER with a zero timeout, then close."""
    request.close_connection = True
    try:
        request.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        request.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    request.connection.close()


@pytest.fixture
def fault_proxy(moto_server: str) -> Iterator[FaultProxy]:
    """A FaultProxy in front of this test's (wiped) moto server; pass `fault_proxy.url` as --endpoint-url."""
    proxy = FaultProxy(moto_server).start()
    try:
        yield proxy
    finally:
        proxy.stop()
