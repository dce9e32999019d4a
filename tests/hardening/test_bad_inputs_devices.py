"""Bad input about devices and deployments (rows of bad_input_table.TABLE): unknown, ambiguous or core-less
devices, a runtime Lambda refuses, a deployment that fails, times out or is interrupted."""

from __future__ import annotations

from pathlib import Path

from tests.hardening.bad_input_table import BUCKET, DEVICE, Cli, expect
from tests.support.account_snapshot import account_snapshot
from tests.support.greengrass_v1 import V1CoreReports

# ---------------------------------------------------------------------------------------------- devices


def test_roles_missing(cli: Cli) -> None:
    result = cli("register-device", "--name", DEVICE, "--greengrass", "v1", "--out", "bundle")
    expect("roles-missing", result.exit_code, result.stderr)
    assert cli.mutations == []
    assert not Path("bundle").exists()


def test_claim_allow_list_unreadable(cli: Cli) -> None:
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="deeplens-claims/Stores/allow-list.json", Body=b'{"fleet": "Stores", "names": 1}')
    result = cli("register-device", "--fleet", "Stores", "--claim", "--allow", "Cam2")
    expect("claim-allow-list-unreadable", result.exit_code, result.stderr)
    assert cli.mutations == [] and not Path("devices").exists()


def test_device_unknown(cli: Cli) -> None:
    cli.register_v1_device()
    before = len(cli.mutations)
    result = cli("deploy", "--device", "Nope")
    expect("device-unknown", result.exit_code, result.stderr)
    assert len(cli.mutations) == before


def test_device_ambiguous(cli: Cli) -> None:
    import boto3

    iot = boto3.client("iot", region_name="us-east-1")
    iot.create_thing(thingName="deeplens_old", attributePayload={"attributes": {
        "deeplens_name": DEVICE, "deeplens_target": "v1"}})
    iot.create_thing(thingName="deeplens-Cam1", attributePayload={"attributes": {
        "deeplens_name": DEVICE, "deeplens_target": "v2"}})
    result = cli("deploy", "--device", DEVICE)
    expect("device-ambiguous", result.exit_code, result.stderr)
    assert cli.mutations == []


def test_device_without_core(cli: Cli) -> None:
    import boto3

    cli.register_v1_device()
    gg = boto3.client("greengrass", region_name="us-east-1")
    (group,) = gg.list_groups()["Groups"]
    gg.create_group_version(GroupId=group["Id"])  # the latest version: no core
    before = len(cli.mutations)
    result = cli("deploy", "--device", DEVICE)
    expect("device-without-core", result.exit_code, result.stderr)
    assert len(cli.mutations) == before
    assert boto3.client("lambda", region_name="us-east-1").list_functions()["Functions"] == []


# ---------------------------------------------------------------------------------------------- deploy


def test_lambda_runtime_rejected(cli: Cli, v1_core: V1CoreReports) -> None:
    import boto3

    cli.register_v1_device()
    cli.faults.fail("lambda", "CreateFunction", "InvalidParameterValueException",
                    "The runtime parameter of python3.7 is no longer supported for creating or updating AWS Lambda "
                    "functions. We recommend you use a supported runtime while creating or updating functions.",
                    when=lambda request: b'"Runtime": "python3.7"' in (request.body or b""))
    result = cli("deploy", "--device", DEVICE)
    expect("lambda-runtime-rejected", result.exit_code, result.stderr)
    lam = boto3.client("lambda", region_name="us-east-1")
    assert lam.list_functions()["Functions"] == []  # the first step failed: nothing half-made
    # the hint works: Lambda gets python3.12, the device still runs python3.7 through the override
    cli.ok("deploy", "--device", DEVICE, env={"DEEPLENS_FUNCTION_LAMBDA_RUNTIME": "python3.12"})
    (function,) = lam.list_functions()["Functions"]
    assert function["Runtime"] == "python3.12"


def test_deployment_failed(cli: Cli, v1_core: V1CoreReports) -> None:
    cli.register_v1_device()
    v1_core.will_report("InProgress", {
        "DeploymentStatus": "Failure", "ErrorMessage": "Greengrass core failed to download the function",
        "ErrorDetails": [{"DetailedErrorCode": "GG-402", "DetailedErrorMessage": "AccessDenied on the artifact"}]})
    result = cli("deploy", "--device", DEVICE)
    expect("deployment-failed", result.exit_code, result.stderr)
    assert account_snapshot()["greengrass"]["groups"]["deeplens-Cam1"]["deployments"] == 1
    # nothing half-done: once the cause is fixed, deploy simply deploys the same version again
    v1_core.will_report("InProgress", "Success")
    again = cli.ok("deploy", "--device", DEVICE)
    assert "succeeded" in again.stdout
    groups = account_snapshot()["greengrass"]["groups"]["deeplens-Cam1"]
    assert groups["deployments"] == 2 and groups["versions"] == 2  # no new project version, one more deployment


def test_deployment_timeout(cli: Cli, v1_core: V1CoreReports) -> None:
    cli.register_v1_device()
    v1_core.will_report("InProgress")
    result = cli("deploy", "--device", DEVICE, "--timeout", "20", env={"DEEPLENS_DEPLOY_POLL_S": "5"})
    expect("deployment-timeout", result.exit_code, result.stderr)
    assert sum(cli.faults.backoffs) == 20  # polled for exactly --timeout (waits recorded, not slept)
    # the deployment stays queued for the device; a re-run does not queue a second one
    cli("deploy", "--device", DEVICE, "--timeout", "5", env={"DEEPLENS_DEPLOY_POLL_S": "5"})
    assert account_snapshot()["greengrass"]["groups"]["deeplens-Cam1"]["deployments"] == 1


def test_interrupted(cli: Cli, v1_core: V1CoreReports) -> None:
    cli.register_v1_device()
    cli.faults.interrupt_at = "CreateGroupVersion"
    result = cli("deploy", "--device", DEVICE)
    expect("interrupted", result.exit_code, result.stderr)
    cli.faults.interrupt_at = None
    cli.ok("deploy", "--device", DEVICE)
    groups = account_snapshot()["greengrass"]["groups"]["deeplens-Cam1"]
    assert groups["deployments"] == 1 and groups["versions"] == 2
