"""Moved to tests/support/greengrass_v1.py (a pytest plugin: its fixtures need no import). This thin module keeps
`from v1_support import ...` working for test modules written before the move.

Importing `*_fixture` names still works (pytest also finds a fixture in a module's namespace), and
`fast_botocore_models_fixture` stays what it was: autouse in the modules that import it.
"""

from __future__ import annotations

import pytest

from tests.support.greengrass_v1 import (  # noqa: F401 - re-exports
    BUCKET,
    REGION,
    ProgressSink,
    ScriptedStatus,
    V1CoreReports,
    V1World,
    action,
    answer_call,
    create_v1_roles,
    definition_items,
    fail_call,
    gg_account,
    gg_account_class,
    group_definition,
    make_settings,
    prepare_account,
    v1_roles,
    world,
)

gg_account_fixture = gg_account
gg_account_class_fixture = gg_account_class
world_fixture = world


@pytest.fixture(name="shared_botocore_models", scope="module")
def shared_botocore_models_fixture():
    """The plugin's `shared_botocore_models`, for modules that import it by this name."""
    from tests.support.botocore_models import share_botocore_models

    with pytest.MonkeyPatch.context() as patch:
        share_botocore_models(patch)
        yield


@pytest.fixture(name="fast_botocore_models", autouse=True)
def fast_botocore_models_fixture(shared_botocore_models: None) -> None:
    """Autouse in every module that imports it."""
