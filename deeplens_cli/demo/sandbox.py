"""The demo's sandbox: the servers it starts in this process and the fake credentials everything uses.

* `demo_environment`: fake credentials and no profile for every AWS client while the demo runs (the user's
  own configuration is hidden, then restored exactly);
* `EmbeddedAws`: moto's server on 127.0.0.1 and a free port (IAM, IoT, S3, STS, Lambda, Greengrass V1);
* `EmbeddedGreengrassV2`: the in-process Greengrass V2 control plane (moto has none), reached through
  `AWS_ENDPOINT_URL_GREENGRASSV2`, plus the token exchange stand-in that gives the component the token
  exchange role's credentials from moto's STS;
* `serve_until_interrupted`: with --keep-running, how to reach all of it from another shell, until Ctrl-C.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from deeplens_cli.errors import DeeplensError
from deeplens_cli.simulator.greengrassv2_service import GreengrassV2ControlPlane
from deeplens_cli.simulator.moto_internals import stop_threaded_server
from deeplens_cli.simulator.token_exchange import TokenExchangeServer, assume_role, role_behind_alias

if TYPE_CHECKING:
    from deeplens_cli.cli.output import Reporter

DEMO_REGION = "us-east-1"
DEMO_BUCKET = "deeplens-demo-faces"
DEMO_CREDENTIAL = "demo"

# Variables that could send a client to a real account, another endpoint or through a proxy.
_HIDDEN_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
               "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
               "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CA_BUNDLE", "AWS_ROLE_SESSION_NAME")
_HIDDEN_PREFIXES = ("AWS_ENDPOINT_URL",)



@contextmanager
def demo_environment() -> Iterator[dict[str, str]]:
    """Fake credentials and no profile for everything AWS in this process while the demo runs.

    The emulator accepts any key; hiding the user's own configuration guarantees that no client, however it
    is built, can reach a real account. The previous environment is restored exactly afterwards.
    """
    saved = dict(os.environ)
    try:
        for name in list(os.environ):
            if name in _HIDDEN_ENV or name.startswith(_HIDDEN_PREFIXES):
                del os.environ[name]
        no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost"]))
        fake = {"AWS_ACCESS_KEY_ID": DEMO_CREDENTIAL, "AWS_SECRET_ACCESS_KEY": DEMO_CREDENTIAL,
                "AWS_DEFAULT_REGION": DEMO_REGION, "AWS_REGION": DEMO_REGION,
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "MOTO_IAM_LOAD_MANAGED_POLICIES": "true", "NO_PROXY": no_proxy, "no_proxy": no_proxy}
        os.environ.update(fake)
        yield fake
    finally:
        os.environ.clear()
        os.environ.update(saved)


class EmbeddedAws:
    """moto's server in a thread of this process on 127.0.0.1 and a free port; `stop` releases the port."""

    def __init__(self) -> None:
        self._server: Any = None
        self.endpoint = ""
        self.port = 0

    def start(self) -> str:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError:
            raise DeeplensError("the demo needs the AWS emulator moto, which is not installed",
                                'pip install "deeplens-cli[demo]"') from None
        import logging

        # werkzeug logs every request at INFO on stderr; the demo's progress lines are the story to tell
        self._werkzeug = logging.getLogger("werkzeug")
        self._werkzeug_level = self._werkzeug.level
        self._werkzeug.setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, self.port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{self.port}"
        self.reset()  # moto's state is per process: start from an empty account whatever ran before
        return self.endpoint

    def reset(self) -> None:
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("POST", "/moto-api/reset")
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()

    def stop(self) -> None:
        if self._server is None:
            return

        server, self._server = self._server, None
        stop_threaded_server(server)
        self._werkzeug.setLevel(self._werkzeug_level)

    def __enter__(self) -> EmbeddedAws:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()



class EmbeddedGreengrassV2:
    """The Greengrass V2 control plane next to moto, and the token exchange stand-in for the device.

    Starting it sets `AWS_ENDPOINT_URL_GREENGRASSV2` in this process (inside `demo_environment`, which restores
    the environment afterwards), so the CLI's greengrassv2 clients reach it while every other service goes to
    moto.
    """

    def __init__(self, moto_endpoint: str) -> None:
        self.moto_endpoint = moto_endpoint
        self.control_plane: Any = None
        self.token_exchange: Any = None
        self.endpoint = ""

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.moto_endpoint, region_name=DEMO_REGION,
                            aws_access_key_id=DEMO_CREDENTIAL, aws_secret_access_key=DEMO_CREDENTIAL)

    def start(self) -> str:
        self.control_plane = GreengrassV2ControlPlane(s3=self.client("s3"), iot=self.client("iot"), region=DEMO_REGION)
        self.endpoint = self.control_plane.serve()
        os.environ["AWS_ENDPOINT_URL_GREENGRASSV2"] = self.endpoint
        return self.endpoint

    def start_token_exchange(self, role_alias: str, session_name: str) -> str:
        """Credentials of the role behind `role_alias` (moto's STS), served as the nucleus serves them."""
        role_arn = role_behind_alias(self.client("iot"), role_alias)
        sts = self.client("sts")
        self.token_exchange = TokenExchangeServer(lambda: assume_role(sts, role_arn, session_name))
        self.token_exchange.start()
        return self.token_exchange.uri

    def stop(self) -> None:
        if self.token_exchange is not None:
            self.token_exchange.close()
            self.token_exchange = None
        if self.control_plane is not None:
            self.control_plane.close()
            self.control_plane = None

    def __enter__(self) -> EmbeddedGreengrassV2:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_until_interrupted(reporter: Reporter, endpoint: str, config: Path, wait_forever: Any,
                 greengrassv2_endpoint: str | None = None) -> None:
    """Print how to use the emulator, then wait for Ctrl-C; the caller's cleanup stops everything."""
    lines = [
        f"The emulator stays up at {endpoint}; the simulated device takes new deployments too. In another shell:",
        "  unset AWS_PROFILE",
        f"  export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID={DEMO_CREDENTIAL} "
        f"AWS_SECRET_ACCESS_KEY={DEMO_CREDENTIAL} AWS_DEFAULT_REGION={DEMO_REGION}"
        + (f" AWS_ENDPOINT_URL_GREENGRASSV2={greengrassv2_endpoint}" if greengrassv2_endpoint else ""),
        f"  export DEEPLENS_CONFIG={config}",
        "  deeplens-cli status          # or: deeplens-cli devices, deeplens-cli deploy --device NAME --force",
        f"  aws s3 ls s3://{DEMO_BUCKET}/ --recursive",
        "Press Ctrl-C to stop the emulator.",
    ]
    for line in lines:
        if reporter.json:
            reporter.progress(line)
        else:
            reporter.line(line)
    try:
        (wait_forever or _wait_for_interrupt)()
    except KeyboardInterrupt:
        pass
    reporter.progress("demo: stopping the emulator")


def _wait_for_interrupt() -> None:
    """Block until Ctrl-C; SIGTERM (a service manager, `kill`) is treated the same, so cleanup runs either way."""
    import signal

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = (
        signal.signal(signal.SIGTERM, interrupt)
        if threading.current_thread() is threading.main_thread()
        else None
    )
    try:
        stop = threading.Event()
        while not stop.wait(3600):
            pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
