"""Validated settings for planners and targets, built from the defaults without reading files or the environment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import pytest

if TYPE_CHECKING:
    from deeplens_cli.settings.config import Settings

REGION = "us-east-1"
TEST_BUCKET = "deeplens-test-face-crops"


def make_settings(**values: Any) -> Settings:
    """Validated settings from defaults plus `values` (dotted keys written with '__': function__name="x").

    Region and bucket default to the test ones so a planner has what it requires; pass bucket=None to test the
    "missing bucket" path. Nothing is read from files or the environment.
    """
    from deeplens_cli.settings.config import Settings, defaults

    values = {"region": REGION, "bucket": TEST_BUCKET, **values}
    return Settings(values=defaults()).replace(**values)


@pytest.fixture(scope="session")
def settings_for() -> Callable[..., Settings]:
    """`settings_for(bucket="b", function__memory_mb=512)` -> validated Settings (see make_settings)."""
    return make_settings
