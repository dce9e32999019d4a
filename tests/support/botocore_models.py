"""One botocore model loader per process, shared by every session (the tests' own clients included).

Each AwsContext is a new boto3 Session, and each session parses the service models again - IoT's, Greengrass's
and Lambda's are large - which costs ~0.4 s per context, i.e. per CLI invocation in a test. botocore makes the
loader lazily with `botocore.session.create_loader(data_path)`; answering that with the one loader
`deeplens_cli.aws` keeps changes nothing but the parsing.
"""

from __future__ import annotations

from typing import Iterator

import pytest


def share_botocore_models(patch: pytest.MonkeyPatch) -> None:
    """Make every botocore session created while `patch` is active use the process's one model loader."""
    import botocore.session

    from deeplens_cli.aws import shared_loader

    patch.setattr(botocore.session, "create_loader", shared_loader)


@pytest.fixture(scope="module")
def shared_botocore_models() -> Iterator[None]:
    """For a whole test module: `pytestmark = pytest.mark.usefixtures("shared_botocore_models")`."""
    with pytest.MonkeyPatch.context() as patch:
        share_botocore_models(patch)
        yield


@pytest.fixture
def shared_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """For one test (the `fresh_account` fixture uses it)."""
    share_botocore_models(monkeypatch)
