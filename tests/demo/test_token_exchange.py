"""The token exchange stand-in answers botocore's own container credential provider, and only with the token."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from botocore.credentials import ContainerProvider
from botocore.exceptions import CredentialRetrievalError

from deeplens_cli.simulator.token_exchange import (
    RoleCredentials,
    TokenExchangeServer,
    assume_role,
    role_behind_alias,
)


@pytest.fixture
def server():
    expires = datetime.now(timezone.utc) + timedelta(hours=1)
    server = TokenExchangeServer(lambda: RoleCredentials("AKIDROLE", "secret", "session", expires),
                                 accepted_tokens={"token-1"})
    server.start()
    yield server
    server.close()


def test_botocore_container_provider_gets_the_role_credentials(server):
    provider = ContainerProvider(environ={"AWS_CONTAINER_CREDENTIALS_FULL_URI": server.uri,
                                          "AWS_CONTAINER_AUTHORIZATION_TOKEN": "token-1"})

    credentials = provider.load().get_frozen_credentials()

    assert server.uri.startswith("http://localhost:")  # the host the nucleus uses; botocore allows it
    assert (credentials.access_key, credentials.token) == ("AKIDROLE", "session")


def test_a_wrong_token_gets_no_credentials(server):
    provider = ContainerProvider(environ={"AWS_CONTAINER_CREDENTIALS_FULL_URI": server.uri,
                                          "AWS_CONTAINER_AUTHORIZATION_TOKEN": "someone-else"})

    with pytest.raises(CredentialRetrievalError):
        provider.load()
    assert server.requests == 0


def test_credentials_are_those_of_the_role_behind_the_alias(aws):
    import json

    iam, iot, sts = aws.client("iam"), aws.client("iot"), aws.client("sts")
    arn = iam.create_role(RoleName="ter", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "credentials.iot.amazonaws.com"}}]})
    )["Role"]["Arn"]
    iot.create_role_alias(roleAlias="ter-alias", roleArn=arn, credentialDurationSeconds=3600)

    assert role_behind_alias(iot, "ter-alias") == arn
    credentials = assume_role(sts, arn, "deeplens-Cam")
    assert credentials.access_key_id and credentials.session_token
