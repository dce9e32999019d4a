"""The suite's one conftest at the root: it registers the test support layer (tests/support/) as pytest plugins.

No test touches the network or a real account. The fixtures every folder shares live in tests/support/ (see its
__init__ for the list); a test names them as arguments and pytest finds them. Folder conftests (tests/edge,
tests/demo) add only what their folder needs.
"""

pytest_plugins = [
    "tests.support.settings",  # first: the modules below import it
    "tests.support.environment",
    "tests.support.aws_accounts",
    "tests.support.botocore_models",
    "tests.support.moto_server",
    "tests.support.cli",
    "tests.support.aws_faults",
    "tests.support.greengrass_v1",
    "tests.support.fault_proxy",  # the fault-injecting proxy between boto3 and the moto server: `fault_proxy`
    "tests.support.iot_provisioning",  # provisioning templates next to moto's IoT, RegisterThing's decision
    "tests.support.moto_csr",  # moto's CreateCertificateFromCsr certifies the CSR's key, as AWS does
    "tests.support.filesystems",  # real tmpfs mounts, read-only or full: `tmpfs`, fill_up, free_up
]
