"""A moto server on 127.0.0.1 and a free port, for end-to-end runs of the real CLI path
(`deeplens-cli --endpoint-url URL ...`): the same HTTP requests a user's machine would send.

The demo (`deeplens_cli/demo`) starts its own sandbox server: that is product code and stays there; this is
the one copy the tests use.
"""

from __future__ import annotations

import http.client
import sys
from typing import Callable, Iterator
from urllib.parse import urlsplit

import pytest


@pytest.fixture(scope="session")
def moto_server_session() -> Iterator[str]:
    """One moto server for the whole session; yields its endpoint URL.

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
    do not need managed policies should not pay a second for loading them). The policies loaded are the real
    documents of those the DeepLens roles attach (`lean_managed_policies`), not all ~1,600: 0.7 s less for
    every reset (the crash-convergence matrix resets the account for each fault it injects). Not on the edge
    tests' Python 3.7 run (tests/py37), which cannot import the provisioning side that names them: it loads all.
    """
    if sys.version_info >= (3, 10):
        from tests.support.aws_accounts import load_only_deeplens_managed_policies

        load_only_deeplens_managed_policies(monkeypatch)
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    reset_moto_server(moto_server_session)
    return moto_server_session


@pytest.fixture(scope="session")
def reset_moto() -> Callable[[str], None]:
    """`reset_moto(endpoint)`: empty a moto server once, for module-scoped emulators (the `moto_server`
    fixture resets per test, which reloads every AWS managed policy: ~1.5 s)."""
    return reset_moto_server


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
