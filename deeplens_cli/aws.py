"""One boto3 session factory for every command, and translation of AWS errors into one-line messages.

Why one factory: `--profile`, `--region`, `--endpoint-url`, the retry mode and the standard `AWS_*` environment
(including `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`, which botocore reads itself) must apply to every
client the same way; scattered `boto3.client(...)` calls are how tools end up ignoring `--profile`.
Retries are botocore's (standard or adaptive mode), not hand-written loops.

boto3 is imported lazily so that `deeplens-cli --help` does not pay for it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from deeplens_cli.errors import DeeplensError
from deeplens_cli.file_errors import file_system_error
from deeplens_cli.settings.aws_environment import (
    check_endpoint_variables,
    config_parse_error,
    credentials_problem,
    resolved_region,
)

if TYPE_CHECKING:
    import boto3
    from botocore.client import BaseClient

    from deeplens_cli.settings.config import Settings

# Operations that only read. Everything else counts as mutating for the call recorder (tests and benchmarks
# assert "zero mutating calls" on a re-run with it).
READ_ONLY_PREFIXES = ("Get", "List", "Describe", "Head", "Search")


def is_mutating(operation: str) -> bool:
    return not operation.startswith(READ_ONLY_PREFIXES)


@dataclass
class CallRecorder:
    """Records (service, operation) of every API call made through an `AwsContext` (botocore before-call event)."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, model: Any = None, **_: Any) -> None:
        if model is not None:
            self.calls.append((model.service_model.service_name, model.name))

    @property
    def mutating(self) -> list[tuple[str, str]]:
        return [(service, op) for service, op in self.calls if is_mutating(op)]


class AwsContext:
    """A configured boto3 session plus a cache of clients; the only place clients are made."""

    def __init__(self, session: boto3.Session, endpoint_url: str | None, retry_mode: str = "standard",
                 max_attempts: int = 5, sleep: Callable[[float], None] | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        from botocore.config import Config

        self.session = session
        self.endpoint_url = endpoint_url
        # botocore's "max_attempts" counts retries only; "total_max_attempts" includes the first call, as documented
        # for aws.max_attempts.
        self.config = Config(retries={"mode": retry_mode, "total_max_attempts": max_attempts},
                             connect_timeout=10, read_timeout=60)
        self.recorder = CallRecorder()
        self._clients: dict[str, BaseClient] = {}
        self._account_id: str | None = None
        import time

        self.sleep = sleep or time.sleep  # injected in tests so waits and backoffs take no time
        # What a wait measures its timeout on (targets/waiting.WaitClock). With the real sleep it is the wall
        # clock. An injected sleep means simulated time: the clock stands still and a wait's elapsed time is
        # what it slept, so a test's verdict never depends on how fast the machine is.
        self.clock = clock or (time.monotonic if sleep is None else _standing_clock)

    @property
    def region(self) -> str:
        region = self.session.region_name
        if not region:
            raise DeeplensError("no AWS region configured", REGION_HINT, code="no_region")
        return region

    def client(self, service: str) -> BaseClient:
        if service not in self._clients:
            kwargs: dict[str, Any] = {"config": self.config, "region_name": self.region}
            if self.endpoint_url:
                kwargs["endpoint_url"] = self.endpoint_url
            client = self.session.client(service, **kwargs)
            client.meta.events.register("before-call.*.*", self.recorder)
            client.meta.events.register("before-parse.*.*", _AnswerCheck(client.meta.endpoint_url))
            self._clients[service] = client
        return self._clients[service]

    @property
    def account_id(self) -> str:
        if self._account_id is None:
            self._account_id = self.client("sts").get_caller_identity()["Account"]
        return self._account_id


def _standing_clock() -> float:
    """The clock of simulated time (see AwsContext.clock): only the injected sleeps move a wait on."""
    return 0.0


REGION_HINT = "pass --region, set region in deeplens.yaml, or set AWS_REGION (or AWS_DEFAULT_REGION)"


def make_context(settings: Settings, sleep: Callable[[float], None] | None = None,
                 environ: Mapping[str, str] | None = None, clock: Callable[[], float] | None = None) -> AwsContext:
    """Build the AwsContext for these settings (profile, region, endpoint, retry mode).

    The standard AWS environment is checked here, before any call, with the same rules as the flags: a bad
    AWS_ENDPOINT_URL*, region, ~/.aws/config, a half-set access key or a missing credential_process helper is one
    exit-2 line naming the variable or file, instead of a botocore exception half way through a command.
    """
    import boto3
    import botocore.exceptions
    import botocore.session

    environ = os.environ if environ is None else environ
    check_endpoint_variables(environ)
    core = botocore.session.Session()
    try:
        core.register_component("data_loader", shared_loader(core.get_config_variable("data_path")))
        region = resolved_region(core, settings, environ)
        session = boto3.Session(botocore_session=core, profile_name=settings["profile"], region_name=region)
    except botocore.exceptions.ProfileNotFound as exc:
        profile = settings["profile"] or exc.kwargs.get("profile", "?")
        raise DeeplensError(f"AWS profile '{profile}' not found",
                            "check --profile / AWS_PROFILE against ~/.aws/config", code="profile_not_found") from None
    except botocore.exceptions.ConfigParseError as exc:
        raise config_parse_error(exc) from None
    credentials_problem(session)
    return AwsContext(
        session, settings["endpoint_url"], settings["aws.retry_mode"], settings["aws.max_attempts"], sleep, clock
    )


class _AnswerCheck:
    """botocore `before-parse` handler: answers that do not come from AWS become one clear line or a retry.

    * A web page (HTML) as a success, a 501 or (from an XML API) a 4xx means the endpoint is a plain web server:
      botocore would raise a ResponseParserError quoting the whole page. Said in one line, not retried (it will not
      change). A 404 page from a JSON API is left alone: that is how a service missing from an emulator answers, and
      `service_unavailable` relies on it.
    * A 5xx with a plain-text or HTML body (a proxy or load balancer page): botocore's XML parsers crash on it before
      the retry logic sees it. Emptying the body makes botocore read it as the generic HTTP error it is, which
      standard/adaptive retry mode retries; if it persists, the user gets `ClientError` code "500"/"503".
    """

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url

    def __call__(self, operation_model: Any = None, response_dict: dict[str, Any] | None = None, **_: Any) -> None:
        if operation_model is None or response_dict is None:
            return
        body = response_dict.get("body")
        if not isinstance(body, (bytes, bytearray)):
            return  # a streaming success body: never consumed here
        status = int(response_dict.get("status_code") or 0)
        start = bytes(body[:200]).lstrip().lower()
        if start.startswith((b"<!doctype html", b"<html")):
            protocol = operation_model.metadata.get("protocol", "")
            if status < 300 or status == 501 or (status < 500 and protocol not in ("json", "rest-json")):
                raise DeeplensError(
                    f"{self.endpoint_url} is not an AWS endpoint: it answered {operation_model.name} with a web page "
                    f"(HTTP {status})",
                    "check --endpoint-url / AWS_ENDPOINT_URL[_<SERVICE>]: it must be AWS or an AWS emulator such as "
                    "moto",
                    code="not_an_aws_endpoint",
                )
        if status >= 500 and body and not start.startswith((b"<?xml", b"<error", b"<errorresponse", b"{")):
            response_dict["body"] = b""  # text or an HTML error page from a proxy: a generic HTTP error, retried


_LOADERS: dict[Any, Any] = {}


def shared_loader(data_path: Any) -> Any:
    """One botocore data loader per process, shared by every session.

    Each AwsContext is a new session, and each session would parse the service models again (IoT's and
    Greengrass's are large: ~0.1-0.4 s per context). The models are read-only data, so `demo`, which runs several
    commands in one process, and the tests parse them once.
    """
    from botocore.loaders import create_loader

    if data_path not in _LOADERS:
        _LOADERS[data_path] = create_loader(data_path)
    return _LOADERS[data_path]


# ---------------------------------------------------------------------------------------------- errors

_ACCESS_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
                        "Forbidden", "403"}
_EXPIRED_CODES = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_INVALID_CREDENTIAL_CODES = {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
                             "InvalidAccessKeyId", "IncompleteSignature"}
_THROTTLING_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
    "RequestThrottled",
    "ProvisionedThroughputExceededException",
}


def translate_error(exc: BaseException, doing: str | None = None) -> DeeplensError | None:
    """Map a botocore exception (or an OSError of the file system) to a one-line DeeplensError; None when it is
    not an error we know."""
    import botocore.exceptions as bce

    context = f" while {doing}" if doing else ""
    if isinstance(exc, DeeplensError):
        return exc
    if isinstance(exc, bce.NoCredentialsError):
        return DeeplensError(f"no AWS credentials found{context}",
                             "run `aws configure`, pass --profile, or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
                             code="no_credentials")
    if isinstance(exc, bce.NoRegionError):
        return DeeplensError(f"no AWS region configured{context}", REGION_HINT, code="no_region")
    if isinstance(exc, bce.ProfileNotFound):
        profile = getattr(exc, "kwargs", {}).get("profile", "?")
        return DeeplensError(
            f"AWS profile '{profile}' not found{context}",
            "check --profile / AWS_PROFILE against ~/.aws/config",
            code="profile_not_found",
        )
    if isinstance(exc, bce.ConfigParseError):
        return config_parse_error(exc)
    if isinstance(exc, (bce.EndpointConnectionError, bce.ConnectTimeoutError, bce.ConnectionClosedError,
                        bce.ReadTimeoutError)):
        url = getattr(exc, "kwargs", {}).get("endpoint_url", "")
        return DeeplensError(f"cannot reach the AWS endpoint {url}{context}".replace("  ", " "),
                             "check the network, --endpoint-url / AWS_ENDPOINT_URL and the region",
                             code="endpoint_unreachable")
    refresh_errors = tuple(
        getattr(bce, name)
        for name in ("TokenRetrievalError", "SSOTokenLoadError", "CredentialRetrievalError")
        if hasattr(bce, name)
    )
    if isinstance(exc, refresh_errors):
        return DeeplensError(
            f"AWS credentials could not be refreshed{context}: {exc}",
            "log in again (e.g. `aws sso login`)",
            code="credentials_refresh_failed",
        )
    if isinstance(exc, bce.ClientError):
        return _translate_client_error(exc, context)
    if isinstance(exc, bce.ParamValidationError):
        return DeeplensError(
            f"invalid request{context}: {' '.join(str(exc).split())}",
            "this is a bug in deeplens-cli; rerun with -v and report it",
        )
    if isinstance(exc, OSError):  # a full disk, a read-only folder: the user's environment (file_errors.py)
        return file_system_error(exc)
    return None


def _translate_client_error(exc: Any, context: str) -> DeeplensError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = " ".join(str(error.get("Message", "")).split())
    operation = getattr(exc, "operation_name", "") or "call"
    if code in _ACCESS_DENIED_CODES:
        action, resource = _action_and_resource(message)
        what = f"{action} on {resource}" if action and resource else (action or operation)
        return DeeplensError(f"access denied: {what}{context}",
                             f"grant {action or operation} to the calling identity, or use a profile that has it",
                             code="access_denied")
    if code in _EXPIRED_CODES:
        return DeeplensError(
            f"AWS credentials expired{context} ({code})",
            "refresh them (e.g. `aws sso login` or new session keys)",
            code="credentials_expired",
        )
    if code in _INVALID_CREDENTIAL_CODES:
        return DeeplensError(f"AWS rejected the credentials{context} ({code}: {message})",
                             "check the access key, the profile and that the region is enabled for the account",
                             code="credentials_rejected")
    if code in _THROTTLING_CODES:
        return DeeplensError(
            f"AWS kept throttling {operation}{context} after retries ({code})",
            "wait and re-run; raise aws.max_attempts or use aws.retry_mode: adaptive",
            code="throttled",
        )
    if code.isdigit() and code.startswith("5"):
        return DeeplensError(
            f"the AWS endpoint kept failing {operation}{context} after retries (HTTP {code}: {message})",
            "a temporary fault at AWS or at the endpoint: wait and re-run; check --endpoint-url / "
            "AWS_ENDPOINT_URL if it persists",
            code="service_error",
        )
    if code in ("AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "PermanentRedirect",
                "InvalidRegion"):
        return DeeplensError(f"region mismatch{context}: {message or code}",
                             "the resource lives in another region; set --region to match it", code="region_mismatch")
    return DeeplensError(f"{operation} failed{context}: {code}: {message}".rstrip(": "),
                         "rerun with -v for the full error")


_ACTION_RE = re.compile(r"not authorized to perform:? ([\w-]+:[\w*]+)(?: on resource:? (\S+))?", re.IGNORECASE)


def _action_and_resource(message: str) -> tuple[str | None, str | None]:
    """AWS AccessDenied messages say '... is not authorized to perform: iam:CreateRole on resource: arn:...'."""
    match = _ACTION_RE.search(message)
    if not match:
        return None, None
    resource = match.group(2).rstrip(".,") if match.group(2) else None
    return match.group(1), resource


_UNAVAILABLE_CODES = {"404", "UnknownOperationException", "UnknownOperation", "NotFound", "InvalidAction"}


def service_unavailable(exc: BaseException) -> bool:
    """A service that is retired or absent at this endpoint: HTTP 404, an unknown operation, or no endpoint.

    Greengrass V1 on real AWS since 2026-10-07, and Greengrass V2 on moto, answer like this. Credential,
    permission and throttling errors are not "unavailable": they must reach the user.
    """
    import botocore.exceptions as bce

    if isinstance(exc, (bce.EndpointConnectionError, bce.ConnectTimeoutError)):
        return True
    if isinstance(exc, bce.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status == 404 or error_code(exc) in _UNAVAILABLE_CODES
    return False


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError, else None (for `except ClientError` branches)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


# ---------------------------------------------------------------------------------------------- reading helpers


def collect(client: Any, operation: str, key: str, **params: Any) -> list[Any]:
    """Every item under `key` of a list operation: all pages when botocore has a paginator for it, else the one
    response (IoT's `list_policy_versions`, for one, has no paginator because it never pages)."""
    if client.can_paginate(operation):
        return [item for page in client.get_paginator(operation).paginate(**params) for item in page.get(key, [])]
    return list(getattr(client, operation)(**params).get(key, []))


def maybe(call: Callable[[], Any], missing_codes: Iterable[str]) -> Any:
    """The call's result, or None when AWS answers with one of `missing_codes` ("no such resource").

    Planners read "is it there?" this way; every other error - access denied, throttling - still surfaces, so a
    broken setup is never mistaken for a missing resource. The codes are the caller's: each API spells "not
    found" its own way (IAM NoSuchEntity, S3 404/NoSuchKey, IoT ResourceNotFoundException, ...).
    """
    import botocore.exceptions

    missing = tuple(missing_codes)
    try:
        return call()
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) in missing:
            return None
        raise
