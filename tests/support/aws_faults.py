"""Wrong answers from AWS, on demand: errors injected into the clients the CLI builds, below botocore's parser.

The `faults` fixture installs one on every AwsContext the CLI builds. A `Faults` object answers chosen operations
with an HTTP error in the wire format of the service's protocol (query XML for IAM/STS, REST-XML for S3, REST-JSON with
`x-amzn-ErrorType` for IoT, Greengrass and Lambda). It hooks botocore's `before-send` event, ahead of moto's own
handler, so the error goes through everything a real one would: botocore's retry modes (throttling is retried,
AccessDenied is not), its parser, the CLI's after-call hooks and its error translation. Every other call goes on to
moto.

botocore calls every `before-send` handler and uses the first answer, so moto would still carry out a request
whose answer we replaced (a "denied" CreateFunction would create the function). While an injected answer is
being sent, moto's in-process stubber is switched off, and a last handler switches it back on.

`faults.sends[(service, operation)]` counts the HTTP attempts of each operation, injected or not, so a test
can prove that botocore retried a throttled call exactly `aws.max_attempts` times.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable
from xml.sax.saxutils import escape

import pytest

QUERY_SERVICES = ("iam", "sts")
REST_XML_SERVICES = ("s3",)


@dataclass
class Rule:
    service: str
    operation: str  # API operation name, e.g. "CreateRole"; "*" for every operation of the service
    code: str
    message: str
    status: int
    times: int | None  # None: forever
    when: Callable[[Any], bool] | None = None  # called with the prepared HTTP request: inject only if True


@dataclass
class Faults:
    rules: list[Rule] = field(default_factory=list)
    sends: Counter = field(default_factory=Counter)
    injected: list[tuple[str, str, str]] = field(default_factory=list)
    backoffs: list[float] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)
    deny_mutation_at: int | None = None  # deny the Nth mutating call (counted from `start_run`) with AccessDenied
    interrupt_at: str | None = None  # raise KeyboardInterrupt (Ctrl-C) when this operation is about to be sent
    _mutations: int = 0

    @property
    def mutating_attempts(self) -> list[tuple[str, str]]:
        """(service, operation) of every mutating call the CLI's contexts attempted, in order."""
        return [call for ctx in self.contexts for call in ctx.recorder.mutating]

    def fail(self, service: str, operation: str, code: str, message: str = "", status: int = 400,
             times: int | None = None, when: Callable[[Any], bool] | None = None) -> Faults:
        self.rules.append(Rule(service, operation, code, message or code, status, times, when))
        return self

    def clear(self) -> None:
        self.rules.clear()
        self.deny_mutation_at = None
        self.interrupt_at = None

    def start_run(self) -> None:
        """Start counting mutating calls for `deny_mutation_at` from zero (call before each CLI run)."""
        self._mutations = 0
        self.injected.clear()

    def install(self, events: Any) -> None:
        """Register on a boto3/botocore event emitter (a session's: clients made later inherit it)."""
        events.register_first("before-send.*.*", self._before_send)
        events.register_last("before-send", _resume_moto)  # the level moto registers on: after it

    def _before_send(self, request: Any = None, event_name: str = "", **kwargs: Any) -> Any:
        response = self._answer(request, event_name)
        if response is not None:
            _pause_moto()
        return response

    def _answer(self, request: Any, event_name: str) -> Any:
        from deeplens_cli.aws import is_mutating

        _, service_id, operation = event_name.split(".", 2)
        service = service_id.lower()
        self.sends[(service, operation)] += 1
        if operation == self.interrupt_at:
            raise KeyboardInterrupt
        if is_mutating(operation):
            self._mutations += 1
            if self._mutations == self.deny_mutation_at:
                self.injected.append((service, operation, "AccessDenied"))
                return access_denied(service, operation, request)
        for rule in self.rules:
            if rule.service != service or rule.operation not in ("*", operation):
                continue
            if rule.times is not None and rule.times <= 0:
                continue
            if rule.when is not None and not rule.when(request):
                continue
            if rule.times is not None:
                rule.times -= 1
            self.injected.append((service, operation, rule.code))
            return error_response(service, rule.code, rule.message, rule.status, request)
        return None


def _pause_moto() -> None:
    from moto.core.models import botocore_stubber

    if botocore_stubber.enabled:
        botocore_stubber.enabled = False
        _paused.append(True)


def _resume_moto(**_: Any) -> None:
    from moto.core.models import botocore_stubber

    if _paused:
        _paused.clear()
        botocore_stubber.enabled = True


_paused: list[bool] = []


IAM_ACTION_PREFIX = {"lambda": "lambda", "iot": "iot", "greengrass": "greengrass", "greengrassv2": "greengrass",
                     "iam": "iam", "sts": "sts", "s3": "s3"}


def access_denied(service: str, operation: str, request: Any = None) -> Any:
    """AccessDenied as each protocol family words it: S3 says only "Access Denied"; the others name the
    identity, the action and the resource."""
    if service in REST_XML_SERVICES:
        return error_response(service, "AccessDenied", "Access Denied", 403, request)
    action = f"{IAM_ACTION_PREFIX.get(service, service)}:{operation}"
    resource = f"arn:aws:{service}:us-east-1:123456789012:deeplens-resource"
    message = (f"User: arn:aws:iam::123456789012:user/deployer is not authorized to perform: {action} on resource: "
               f"{resource} because no identity-based policy allows the {action} action")
    code = "AccessDenied" if service in QUERY_SERVICES else "AccessDeniedException"
    return error_response(service, code, message, 403, request)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body

    def read(self, *_: Any) -> bytes:
        return self._body


def error_response(service: str, code: str, message: str, status: int, request: Any = None) -> Any:
    """An HTTP error answer in the service's own wire format."""
    from botocore.awsrequest import AWSResponse

    url = getattr(request, "url", "https://example.invalid/")
    if service in QUERY_SERVICES:
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{escape(code)}</Code>"
                f"<Message>{escape(message)}</Message></Error><RequestId>hardening</RequestId></ErrorResponse>")
        headers = {"Content-Type": "text/xml"}
    elif service in REST_XML_SERVICES:
        method = getattr(request, "method", "GET")
        body = "" if method == "HEAD" else (f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
                                             f"<RequestId>hardening</RequestId></Error>")
        headers = {"Content-Type": "application/xml"}
    else:
        body = json.dumps({"message": message, "Message": message})
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": f"{code}:", "x-amzn-RequestId": "hardening"}
    return AWSResponse(url, status, headers, _Raw(body.encode()))


@pytest.fixture(name="faults")
def faults_fixture(monkeypatch: pytest.MonkeyPatch) -> Faults:
    """A Faults object installed on every AwsContext the CLI builds; the contexts never really sleep, and
    botocore's own retry backoff is recorded in `faults.backoffs` instead of slept."""
    import types

    import botocore.endpoint

    import deeplens_cli.aws as aws_module

    faults = Faults()
    real_make_context = aws_module.make_context

    def make_context(settings: Any, sleep: Callable[[float], None] | None = None) -> Any:
        ctx = real_make_context(settings, sleep=faults.backoffs.append)
        faults.install(ctx.session.events)
        faults.contexts.append(ctx)
        return ctx

    monkeypatch.setattr(aws_module, "make_context", make_context)
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=faults.backoffs.append))
    return faults
