"""Fixtures for the CLI and target tests, on top of the tests/support plugins.

`v2_account` (moto plus the fake Greengrass V2 endpoint) is defined in fake_greengrassv2.py, which is being turned
into product code; it is registered here, in one place, until it has a home in tests/support/.
"""

from tests.cli.fake_greengrassv2 import v2_account  # noqa: F401 - registers the fixture for tests/cli
