"""The HTTP side of the in-process Greengrass V2 control plane, checked against botocore's `greengrassv2` model.

`HttpFront` serves a service object's handler methods (`create_deployment`, ...) on 127.0.0.1 and a free port.
Routes come from each operation's `http` trait in the model; `ModelCheck` validates every request's parameters
(URI, query string, body) against the operation's input shape and every answer against its output shape, so a
handler that drifts from the real API fails loudly (HTTP 500, `InternalServerException`) instead of teaching
the CLI a shape AWS never sends. Errors are answered as restJson services answer them (`x-amzn-ErrorType`).
"""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def not_found(kind: str, resource: str) -> ApiError:
    return ApiError(404, "ResourceNotFoundException", f"{kind} {resource} not found",
                    resourceId=resource, resourceType=kind)




class HttpFront:
    """Mixin: serves the handler methods of the class it is mixed into (which sets `model`, `lock`, `calls`,
    `denied`, `mismatches`, `answered`, `account` and `_server`)."""

    model: ModelCheck
    lock: Any
    calls: list[str]
    denied: set[str]
    mismatches: list[str]
    answered: dict[tuple[str, str], Any]  # (operation, clientToken) -> the answer given
    account: str
    _server: ThreadingHTTPServer | None

    def serve(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

            def do_DELETE(self) -> None:  # noqa: N802
                fake._handle(self, "DELETE")

            def do_PUT(self) -> None:  # noqa: N802
                fake._handle(self, "PUT")

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_port}"

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(request.headers.get("Content-Length") or 0)
        body = json.loads(request.rfile.read(length) or b"{}") if length else {}
        status, payload = 200, {}
        try:
            if not isinstance(body, dict):
                raise ApiError(400, "ValidationException", "the request body is not a JSON object")
            operation, handler, args = self._route(method, segments)
            self.calls.append(operation)
            if operation in self.denied:
                raise ApiError(403, "AccessDeniedException", f"User: arn:aws:iam::{self.account}:user/ci is not "
                               f"authorized to perform: greengrass:{operation} on resource: *")
            self.model.check_request(operation, args, query, body)
            with self.lock:
                payload = self._idempotent(operation, body, lambda: handler(*args, query=query, body=body) or {})
            self.model.check_response(operation, payload)
        except ModelMismatch as mismatch:
            self.mismatches.append(str(mismatch))
            self._send_error(request, ApiError(500, "InternalServerException", str(mismatch)))
            return
        except ApiError as error:
            self._send_error(request, error)
            return
        data = json.dumps(payload, default=_json_default).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _idempotent(self, operation: str, body: dict[str, Any], handle: Callable[[], Any]) -> Any:
        """A request repeating the `clientToken` of an earlier successful one gets that request's answer again.

        AWS documents it for CreateComponentVersion and CreateDeployment ("returns the successful response that
        it caches from the previous request", for up to 8 hours), and botocore fills the token in once per call,
        so its retry of a request whose answer was lost repeats the token: it creates nothing the second time."""
        token = body.get("clientToken")
        if not token:
            return handle()
        if (operation, token) not in self.answered:
            self.answered[(operation, token)] = handle()
        return self.answered[(operation, token)]

    @staticmethod
    def _send_error(request: BaseHTTPRequestHandler, error: ApiError) -> None:
        data = json.dumps({"message": error.message, **error.extra}).encode()
        request.send_response(error.status)
        request.send_header("x-amzn-ErrorType", error.code)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _route(self, method: str, segments: list[str]) -> tuple[str, Callable[..., Any], tuple[Any, ...]]:
        """The operation whose `http` trait (method + requestUri) matches; its handler and URI values."""
        for operation, (verb, pattern) in self.model.routes.items():
            if verb == method and len(pattern) == len(segments) and \
                    all(p.startswith("{") or p == x for p, x in zip(pattern, segments, strict=True)):
                handler = getattr(self, _snake(operation), None)
                if handler is None:
                    break
                return operation, handler, tuple(x for p, x in zip(pattern, segments, strict=True) if p.startswith("{"))
        raise ApiError(404, "UnknownOperationException", f"unknown operation {method} /{'/'.join(segments)}")


# ---------------------------------------------------------------------------------------------- the service model


class ModelMismatch(Exception):
    """A request or an answer that botocore's greengrassv2 model does not allow."""


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    return str(value)


class ModelCheck:
    """Routes and shape checks from botocore's `greengrassv2` model (the one the CLI's own client uses).

    Requests: URI and query-string values are converted to the member's type and validated with the body
    against the input shape. Answers: validated against the output shape (members the model marks as headers
    are not sent in the body, so they are not expected there). botocore's ParamValidator does the checking:
    required members, types, enums' string type, list/map shapes and lengths it enforces client-side.
    """

    def __init__(self) -> None:
        import botocore.session
        from botocore.validate import ParamValidator

        self._model = botocore.session.get_session().get_service_model("greengrassv2")
        self._validator = ParamValidator()
        self.routes: dict[str, tuple[str, list[str]]] = {}
        for operation in self._model.operation_names:
            http = self._model.operation_model(operation).http
            path = http["requestUri"].split("?", 1)[0]
            self.routes[operation] = (http["method"], [part for part in path.split("/") if part])

    def check_request(self, operation: str, uri_values: tuple[str, ...], query: dict[str, str],
                      body: dict[str, Any]) -> None:
        shape = self._model.operation_model(operation).input_shape
        if shape is None:
            return
        params: dict[str, Any] = {}
        uri_names = [part.strip("{}+") for part in self.routes[operation][1] if part.startswith("{")]
        by_location = {(member.serialization.get("location"), member.serialization.get("name", name)): (name, member)
                       for name, member in shape.members.items()}
        for name, value in zip(uri_names, uri_values, strict=True):
            member_name, _ = by_location[("uri", name)]
            params[member_name] = value
        for key, value in query.items():
            if ("querystring", key) not in by_location:
                raise ModelMismatch(f"{operation}: query parameter {key} is not in the model")
            member_name, member = by_location[("querystring", key)]
            params[member_name] = _typed(member.type_name, value)
        for key, value in body.items():
            if key not in shape.members or shape.members[key].serialization.get("location"):
                raise ModelMismatch(f"{operation}: request member {key} is not in the model's body")
            params[key] = value
        self._validate(params, shape, f"{operation} request")

    def check_response(self, operation: str, payload: dict[str, Any]) -> None:
        shape = self._model.operation_model(operation).output_shape
        if shape is None:
            if payload:
                raise ModelMismatch(f"{operation}: the model has no output, the answer has {sorted(payload)}")
            return
        for key in payload:
            if key not in shape.members:
                raise ModelMismatch(f"{operation}: answer member {key} is not in the model")
        self._validate(_timestamps(payload, shape), shape, f"{operation} answer")

    def _validate(self, params: dict[str, Any], shape: Any, what: str) -> None:
        report = self._validator.validate(params, shape)
        if report.has_errors():
            raise ModelMismatch(f"{what} does not match the greengrassv2 model: {report.generate_report()}")


def _typed(type_name: str, value: str) -> Any:
    if type_name in ("integer", "long"):
        return int(value)
    if type_name == "boolean":
        return value.lower() == "true"
    return value


def _timestamps(value: Any, shape: Any) -> Any:
    """Epoch-second numbers where the model has timestamps (what the JSON carries), as datetimes for the
    validator, which accepts a datetime or an ISO string but not a float."""
    if shape is None:
        return value
    if shape.type_name == "timestamp" and isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    if shape.type_name == "structure" and isinstance(value, dict):
        return {k: _timestamps(v, shape.members.get(k)) for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [_timestamps(v, shape.member) for v in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {k: _timestamps(v, shape.value) for k, v in value.items()}
    return value

