"""A fake AWS environment: test credentials and region, and nothing that could point a test elsewhere."""

from __future__ import annotations

import os

import pytest

from tests.support.settings import REGION

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


def fake_aws_environment(patch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Set the fake environment through `patch` (undone when the patch is); returns what was set."""
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
    return fake_aws_environment(monkeypatch, tmp_path_factory)
