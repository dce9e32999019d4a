"""A small HTTP proxy in front of an S3 emulator (moto server) that injects the faults a device meets.

The device talks to the proxy (``AWS_ENDPOINT_URL_S3``); the proxy forwards to the emulator, except:

* ``mode = "down"``: every request's connection is closed without an answer (a dead network);
* ``mode = "503"``: every request gets ``503 SlowDown`` (S3 throttling / a 5xx outage);
* ``mode = "hang"``: requests are held until the mode changes (a network that hangs);
* keys starting with one of ``refused_prefixes`` get ``403 AccessDenied`` (the device's grant covers only the
  current prefix) while everything else goes through.

It counts requests per key so tests can see how often each object was tried. Used by tests/edge and
tests/hardening and by bench/bench_outage.py, so the benchmark measures the same faults the tests assert on.
"""

from __future__ import annotations

import collections
import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

_ERROR = """<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"""


class S3FaultProxy:
    """Forwarding proxy with switchable faults; ``start()`` returns its endpoint URL."""

    def __init__(self, upstream_port: int, port: int = 0) -> None:
        self.upstream_port = upstream_port
        self.mode = "up"
        self.refused_prefixes: tuple[str, ...] = ()
        self.requests: collections.Counter[str] = collections.Counter()  # "METHOD key" -> count
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        self.thread.start()
        return self.url

    def stop(self) -> None:
        self.mode = "up"
        self.server.shutdown()
        self.server.server_close()

    def count(self, method: str, key_prefix: str = "") -> int:
        with self.lock:
            return sum(n for name, n in self.requests.items()
                       if name.startswith(method + " ") and name.split(" ", 1)[1].startswith(key_prefix))

    # --- one request ------------------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        path = urlsplit(handler.path).path
        key = unquote(path.lstrip("/").split("/", 1)[1]) if path.count("/") >= 2 else ""
        with self.lock:
            self.requests[f"{handler.command} {key}"] += 1
        while self.mode == "hang":
            time.sleep(0.05)
        if self.mode == "down":
            handler.close_connection = True
            handler.connection.close()
            return
        if self.mode == "503":
            self._error(handler, 503, "SlowDown", "Please reduce your request rate.")
            return
        if key and any(key.startswith(prefix) for prefix in self.refused_prefixes):
            self._error(handler, 403, "AccessDenied", "Access Denied")
            return
        self._forward(handler, body)

    def _error(self, handler: BaseHTTPRequestHandler, status: int, code: str, message: str) -> None:
        data = _ERROR.format(code=code, message=message).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/xml")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        try:
            headers = {name: value for name, value in handler.headers.items() if name.lower() != "connection"}
            upstream.request(handler.command, handler.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            handler.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                    handler.send_header(name, value)
            length = answer.getheader("Content-Length") if handler.command == "HEAD" else None
            handler.send_header("Content-Length", length or str(len(data)))
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(data)
        finally:
            upstream.close()
