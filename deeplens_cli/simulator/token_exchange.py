"""A local token exchange service: what `aws.greengrass.TokenExchangeService` gives a component.

On a core device the nucleus serves `http://localhost:<port>/2016-11-01/credentialprovider/`; a request must
carry the component's token (`AWS_CONTAINER_AUTHORIZATION_TOKEN`) in the `Authorization` header, and the answer
is the container-credentials JSON botocore's ContainerProvider reads. The nucleus obtains those credentials from
the IoT credentials provider for the role behind the device's role alias; here they come from STS AssumeRole of
that same role on whatever endpoint `sts` points at (the emulator), so the component's boto3 runs with the
token exchange role's credentials, as it would on a device.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

CREDENTIALS_PATH = "/2016-11-01/credentialprovider/"


@dataclass(frozen=True)
class RoleCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime


def role_behind_alias(iot: Any, role_alias: str) -> str:
    """The role ARN an IoT role alias names (iot:DescribeRoleAlias)."""
    return iot.describe_role_alias(roleAlias=role_alias)["roleAliasDescription"]["roleArn"]


def assume_role(sts: Any, role_arn: str, session_name: str, duration_s: int = 3600) -> RoleCredentials:
    answer = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=duration_s)
    creds = answer["Credentials"]
    return RoleCredentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"],
                           creds["Expiration"])


@dataclass
class TokenExchangeServer:
    """Serves role credentials to requests that carry an accepted token, on 127.0.0.1 and a free port."""

    credentials: Callable[[], RoleCredentials]
    accepted_tokens: set[str] = field(default_factory=set)  # empty: accept any non-empty token
    requests: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def uri(self) -> str:
        """The value of AWS_CONTAINER_CREDENTIALS_FULL_URI (host `localhost`, as the nucleus sets it)."""
        if self._server is None:
            raise RuntimeError("token exchange server not started")
        return f"http://localhost:{self._server.server_address[1]}{CREDENTIALS_PATH}"

    def start(self) -> str:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                token = self.headers.get("Authorization") or ""
                if self.path.split("?")[0] != CREDENTIALS_PATH:
                    self._answer(404, {"message": "not found"})
                elif not token or (owner.accepted_tokens and token not in owner.accepted_tokens):
                    self._answer(403, {"message": "invalid authorization token"})
                else:
                    owner.requests += 1
                    creds = owner.credentials()
                    self._answer(200, {
                        "AccessKeyId": creds.access_key_id,
                        "SecretAccessKey": creds.secret_access_key,
                        "Token": creds.session_token,
                        "Expiration": creds.expiration.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    })

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="token-exchange", daemon=True).start()
        return self.uri

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
