"""Fixtures for the after-deploy command tests (on top of the tests/support plugins):

* `broker` (module): a real MQTT broker, Debian's mosquitto (mosquitto_broker.py), for the tests of one module,
  stopped after them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    from mosquitto_broker import RunningBroker


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBroker]:
    from mosquitto_broker import start_broker

    process, running = start_broker(tmp_path_factory.mktemp("mosquitto"))
    yield running
    process.terminate()
    process.wait(10)
