"""Shared test fixtures: a fake AWS environment, moto (in-process and as a server) and a CLI runner.

No test touches the network or a real account. Two ways to fake AWS, chosen per test:

* `aws` - moto's in-process mock (`mock_aws`) with AWS managed policies loaded, because the DeepLens roles attach
  managed policies by ARN and moto refuses unknown ARNs. Fast; use it for planners and executors.
* `moto_server` - a moto server on a free localhost port, for end-to-end runs of the real CLI path
  (`deeplens-cli --endpoint-url URL ...`): the same HTTP requests a user's machine would send.

`run_cli` runs `deeplens_cli.cli.main` in-process (exit code, stdout, stderr), so tests see exactly what a user
sees, including the one-line errors and exit codes.

Fixture names are shared with every test directory; keep them stable.
"""

from __future__ import annotations

import http.client
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, NamedTuple
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.config import Settings

REGION = "us-east-1"
TEST_BUCKET = "deeplens-test-face-crops"

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",  # never ask an instance metadata endpoint for credentials
}

# Anything in the developer's environment that could point a test at a real account, another endpoint or a
# config file outside the test.
_CLEARED_PREFIXES = ("AWS_ENDPOINT_URL", "DEEPLENS_")
_CLEARED_NAMES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")


# ---------------------------------------------------------------------------------------------- settings


def make_settings(**values: Any) -> Settings:
    """Validated settings from defaults plus `values` (dotted keys written with '__': function__name="x").

    Region and bucket default to the test ones so a planner has what it requires; pass bucket=None to test the
    "missing bucket" path. Nothing is read from files or the environment.
    """
    from deeplens_cli.config import Settings, defaults

    values = {"region": REGION, "bucket": TEST_BUCKET, **values}
    return Settings(values=defaults()).replace(**values)


@pytest.fixture(scope="session")
def settings_for() -> Callable[..., Settings]:
    """`settings_for(bucket="b", function__memory_mb=512)` -> validated Settings (see make_settings)."""
    return make_settings


# ---------------------------------------------------------------------------------------------- environment


def _fake_aws_environment(patch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith(_CLEARED_PREFIXES) or name in _CLEARED_NAMES:
            patch.delenv(name)
    empty = tmp_path_factory.mktemp("aws-home")
    env = {**FAKE_AWS_ENV, "AWS_CONFIG_FILE": str(empty / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(empty / "credentials")}
    for name, value in env.items():
        patch.setenv(name, value)
    return env


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Fake credentials and region; no profile, endpoint override or DEEPLENS_* setting leaks in from outside.

    AWS config and credential files point at an empty folder so a developer's ~/.aws never applies, and the
    instance metadata endpoint is disabled so a missing credential fails at once instead of probing the network.
    """
    return _fake_aws_environment(monkeypatch, tmp_path_factory)


# ---------------------------------------------------------------------------------------------- moto in-process


@dataclass
class MockedAws:
    """What the `aws` fixture returns: clients on the mocked account and AwsContexts that never really sleep."""

    region: str = REGION
    sleeps: list[float] = field(default_factory=list)  # every delay an AwsContext asked for, in order

    def client(self, service: str) -> Any:
        """A plain boto3 client on the mocked account, for arranging and inspecting state in tests."""
        import boto3

        return boto3.client(service, region_name=self.region)

    def context(self, settings: Settings | None = None) -> AwsContext:
        """An AwsContext as the CLI builds it, with `sleep` recorded into `self.sleeps` instead of waiting."""
        from deeplens_cli.aws import make_context

        return make_context(settings or make_settings(region=self.region), sleep=self.sleeps.append)


@pytest.fixture
def aws(aws_env: dict[str, str]) -> Iterator[MockedAws]:
    """moto's in-process mock with AWS managed policies loaded (the DeepLens roles attach them by ARN)."""
    from moto import mock_aws

    with mock_aws(config={"iam": {"load_aws_managed_policies": True}}):
        yield MockedAws()


@pytest.fixture
def aws_plain(aws_env: dict[str, str]) -> Iterator[MockedAws]:
    """moto without AWS managed policies, for tests that attach none (S3, IoT, Lambda...).

    Loading the ~1,300 managed policies costs about 0.7 s per test, and moto pays it as soon as any service
    touches its IAM backend (S3 does), so tests that do not need them should use this instead of `aws`.
    """
    from moto import mock_aws

    with mock_aws(config={"iam": {"load_aws_managed_policies": False}}):
        yield MockedAws()


@pytest.fixture(scope="class")
def aws_class(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockedAws]:
    """Like `aws`, but one mocked account shared by every test of a test class (arrange once, inspect many).

    State one test changes is seen by the next, so tests should only read, or leave the account as they found
    it. Moto IAM with managed policies costs about a second per fresh account, which is what this saves.
    Do not mix with `moto_server` in the same class (the in-process mock would answer the server's calls).
    """
    yield from _class_account(tmp_path_factory, managed_policies=True)


@pytest.fixture(scope="class")
def aws_plain_class(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockedAws]:
    """`aws_plain` (no managed policies) shared by the tests of a class; same rules as `aws_class`."""
    yield from _class_account(tmp_path_factory, managed_policies=False)


def _class_account(tmp_path_factory: pytest.TempPathFactory, managed_policies: bool) -> Iterator[MockedAws]:
    from moto import mock_aws

    with pytest.MonkeyPatch.context() as patch:
        _fake_aws_environment(patch, tmp_path_factory)
        with mock_aws(config={"iam": {"load_aws_managed_policies": managed_policies}}):
            yield MockedAws()


# ---------------------------------------------------------------------------------------------- moto server


@pytest.fixture(scope="session")
def moto_server_session() -> Iterator[str]:
    """One moto server for the whole session on 127.0.0.1 and a free port; yields its endpoint URL.

    Use `moto_server` in tests: it wipes the state and turns on AWS managed policies for the test.
    """
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto_server(moto_server_session: str, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """The session's moto server with its state wiped for this test; returns the endpoint URL for --endpoint-url.

    The server runs in this process and creates its IAM backend on the first IAM request after the reset, so
    MOTO_IAM_LOAD_MANAGED_POLICIES=true is set for the test (not the session: in-process `mock_aws` tests that
    do not need managed policies should not pay a second for loading them).
    """
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    reset_moto_server(moto_server_session)
    return moto_server_session


def reset_moto_server(endpoint: str) -> None:
    """Wipe all state of a moto server (its documented /moto-api/reset); http.client ignores proxy settings."""
    parts = urlsplit(endpoint)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("POST", "/moto-api/reset")
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"moto reset failed: HTTP {response.status}")
    finally:
        connection.close()


# ---------------------------------------------------------------------------------------------- CLI


class CliResult(NamedTuple):
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
            tmp_path: Path) -> Callable[..., CliResult]:
    """`run_cli("--output", "json", "register-roles", env={"DEEPLENS_BUCKET": "b"})` -> (exit_code, stdout, stderr).

    Runs `deeplens_cli.cli.main` in-process as the console script would. The test runs in its own `tmp_path`
    (so ./deeplens.yaml and ./devices/ are the test's own). `env` sets (value) or unsets (None) environment
    variables for the rest of the test. Output captured before the call is discarded, so each result holds
    only this invocation's output. Combine with `aws` (in-process moto) or `moto_server` + --endpoint-url.
    """
    from deeplens_cli.cli import main

    monkeypatch.chdir(tmp_path)

    def run(*args: str, env: dict[str, str | None] | None = None) -> CliResult:
        for name, value in (env or {}).items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        capsys.readouterr()
        try:
            main([str(arg) for arg in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@dataclass
class AwsCallLog:
    """Every AwsContext the CLI built during a test (see `recorded_aws`), and the calls made through them."""

    contexts: list[AwsContext] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    @property
    def calls(self) -> list[tuple[str, str]]:
        return [call for ctx in self.contexts for call in ctx.recorder.calls]

    @property
    def mutating(self) -> list[tuple[str, str]]:
        return [call for ctx in self.contexts for call in ctx.recorder.mutating]

    def clear(self) -> None:
        """Forget earlier runs, e.g. between a first and a second `run_cli`."""
        self.contexts.clear()
        self.sleeps.clear()


@pytest.fixture
def recorded_aws(monkeypatch: pytest.MonkeyPatch) -> AwsCallLog:
    """Record the AWS calls of CLI runs and make their waits instant.

    Wraps `deeplens_cli.aws.make_context` (which `App.ctx` calls) so every context the CLI builds is kept, and
    injects a sleep that records the delay instead of waiting. `log.mutating` lists (service, operation) of
    every non-read call, e.g. to assert that a second run changed nothing.
    """
    import deeplens_cli.aws as aws_module

    log = AwsCallLog()
    real_make_context = aws_module.make_context

    def make_context(settings: Settings, sleep: Callable[[float], None] | None = None) -> AwsContext:
        ctx = real_make_context(settings, sleep=log.sleeps.append)
        log.contexts.append(ctx)
        return ctx

    monkeypatch.setattr(aws_module, "make_context", make_context)
    return log


# The fault-injecting proxy between boto3 and the moto server (tests/support/fault_proxy.py): fixture `fault_proxy`.
pytest_plugins = ["support.fault_proxy", "support.moto_csr"]
