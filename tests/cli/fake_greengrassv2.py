"""The Greengrass V2 control plane the tests use now lives in the product (`deeplens_cli.simulator.
greengrassv2_service`), where the demo uses it too; this module keeps the old import path for the tests."""

from deeplens_cli.simulator.greengrassv2_service import (  # noqa: F401 - re-exported
    ACCOUNT,
    EmulatedAccount,
    FakeGreengrassV2,
    SimulatedCore,
    prepare_v2_account,
    share_botocore_loader,
    v2_account,
)
