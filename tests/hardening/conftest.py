"""Fixtures for the hardening tests: the CLI on a fresh emulated account with injectable AWS faults.

* `bare_cli`: the CLI without an account (the test enters `fresh_account()` itself: mocks must not be nested);
* `cli`: the same inside a fresh account.

The accounts (`fresh_account`), the faults (`faults`) and the V1 core's reports (`v1_core`) are tests/support
plugins; the bad-input table and its helpers are in bad_input_table.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.hardening.bad_input_table import Cli
from tests.support.aws_faults import Faults


@pytest.fixture
def bare_cli(run_cli: Callable[..., Any], faults: Faults, fresh_account: Callable[[], Any], tmp_path: Path) -> Cli:
    """The CLI without an account: the test enters `fresh_account()` itself (mocks must not be nested)."""
    return Cli(run_cli, faults, tmp_path)


@pytest.fixture
def cli(bare_cli: Cli, fresh_account: Callable[[], Any]) -> Iterator[Cli]:
    with fresh_account():
        yield bare_cli
