"""The simulated Greengrass V1 core runs exactly what was deployed, or refuses it and says why.

These tests build a group by hand in the emulator (no deeplens-cli planner involved) around a tiny probe
package, so the core is specified on its own: it follows deployment -> group version -> function version ->
package, checks the package against CodeSha256, runs it in a separate process that sees only the package
and the shims, and reports Success / Failure through GetDeploymentStatus.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import pytest

from deeplens_cli.simulator.core import (
    CodeRefused,
    DeviceIo,
    MotoDeploymentReporter,
    SimulatedCore,
    code_sha256,
    unpack_code,
    verify_code,
)
from tests.support.archives import zip_of
from tests.support.polling import HANG_GUARD_S, wait_for

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
BUCKET = "deeplens-core-test"
THING = "deeplens_probe"

PROBE = """
import json, os, threading
import awscam
import greengrasssdk

def _run():
    ok, frame = awscam.getLastFrame()
    try:
        import deeplens_cli  # noqa: F401
        host = "importable"
    except ImportError:
        host = "blocked"
    greengrasssdk.client("iot-data").publish(
        topic="$aws/things/%s/infer" % os.environ["AWS_IOT_THING_NAME"],
        payload=json.dumps({"ok": ok, "shape": list(frame.shape) if ok else None, "host": host,
                            "setting": os.environ.get("PROBE_SETTING"), "file": os.path.realpath(__file__),
                            "spool": os.environ.get("DEEPLENS_SPOOL_DIR"),
                            "preview": os.environ.get("DEEPLENS_PREVIEW"),
                            "endpoint": os.environ.get("AWS_ENDPOINT_URL"), "profile": os.environ.get("AWS_PROFILE")}))

threading.Thread(target=_run).start()

def handler(event, context):
    return None
"""
BROKEN = "raise RuntimeError('boom at import')\n"


class Emulated:
    """A hand-made Greengrass V1 group with one pinned function, in the emulator."""

    def __init__(self, endpoint: str) -> None:
        import boto3

        self.endpoint = endpoint
        self.session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        self.clients = {name: self.session.client(name, endpoint_url=endpoint)
                        for name in ("s3", "iam", "lambda", "greengrass")}
        self.clients["s3"].create_bucket(Bucket=BUCKET)
        role = self.clients["iam"].create_role(RoleName="probe-role", AssumeRolePolicyDocument="{}")
        self.role_arn = role["Role"]["Arn"]
        core = self.clients["greengrass"].create_core_definition(InitialVersion={"Cores": [{
            "Id": "core", "ThingArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/probe",
            "CertificateArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/abc", "SyncShadow": False}]})
        self.core_version_arn = core["LatestVersionArn"]
        self.group_id = ""
        self._names = iter(range(1_000_000))

    def new_group(self) -> None:
        """A fresh group per test: deployments of one test never reach another test's core."""
        self.group_id = self.clients["greengrass"].create_group(Name=f"probe-group-{next(self._names)}")["Id"]

    def publish(self, name: str, package: bytes, handler: str, env: dict[str, str] | None = None,
                stored: bytes | None = None) -> str:
        """Upload, create and publish a function; put it in a new group version; return that version id.

        `stored` replaces the S3 object after Lambda recorded the package's CodeSha256 (a tampered download).
        """
        name = f"{name}-{next(self._names)}"
        key = f"greengrass-artifacts/lambda/{name}/{hashlib.sha256(package).hexdigest()}.zip"
        s3, lam, gg = self.clients["s3"], self.clients["lambda"], self.clients["greengrass"]
        s3.put_object(Bucket=BUCKET, Key=key, Body=package)
        lam.create_function(FunctionName=name, Runtime="python3.11", Role=self.role_arn, Handler=handler,
                            Code={"S3Bucket": BUCKET, "S3Key": key})
        version_arn = lam.publish_version(FunctionName=name)["FunctionArn"]
        if stored is not None:
            s3.put_object(Bucket=BUCKET, Key=key, Body=stored)
        functions = gg.create_function_definition(InitialVersion={"Functions": [{
            "Id": name, "FunctionArn": version_arn,
            "FunctionConfiguration": {"Pinned": True, "Environment": {"Variables": env or {}}}}]})
        version = gg.create_group_version(GroupId=self.group_id, CoreDefinitionVersionArn=self.core_version_arn,
                                          FunctionDefinitionVersionArn=functions["LatestVersionArn"])
        return version["Version"]

    def deploy(self, group_version: str) -> str:
        return self.clients["greengrass"].create_deployment(GroupId=self.group_id, GroupVersionId=group_version,
                                                            DeploymentType="NewDeployment")["DeploymentId"]

    def wait_for_verdict(self, deployment_id: str, timeout_s: float = HANG_GUARD_S) -> dict:
        def verdict() -> dict | None:
            status = self.clients["greengrass"].get_deployment_status(GroupId=self.group_id, DeploymentId=deployment_id)
            return None if status["DeploymentStatus"] == "InProgress" else status

        found = wait_for(verdict, timeout_s, interval=0.1)
        assert found, "the simulated core never reported the deployment"
        return found


@pytest.fixture(scope="module")
def emulator(moto_server_session: str, reset_moto) -> Emulated:
    """One emptied emulator for this module; each test gets its own group in it."""
    reset_moto(moto_server_session)
    return Emulated(moto_server_session)


@pytest.fixture
def emulated(emulator: Emulated, aws_env) -> Emulated:
    emulator.new_group()
    return emulator


@pytest.fixture
def core(emulated: Emulated, small_clip, tmp_path: Path, child_pids):
    reporter = MotoDeploymentReporter(ACCOUNT, REGION)
    simulated = SimulatedCore(
        emulated.session,
        emulated.endpoint,
        emulated.group_id,
        THING,
        BUCKET,
        tmp_path / "device",
        DeviceIo(source=str(small_clip.directory), fps=1000, messages_path=tmp_path / "messages.jsonl"),
        reporter=reporter,
        poll_s=0.05,
        start_timeout_s=30,
    )
    simulated.start()
    yield simulated
    simulated.stop()
    assert not set(child_pids()) & {run.process.pid for run in simulated.runs}, "a device process was left behind"


def messages(path: Path) -> list[dict]:
    return [json.loads(json.loads(line)["payload"]) for line in path.read_text().splitlines()] if path.exists() else []


# ---------------------------------------------------------------------------------------------- packages


def test_code_sha256_is_what_lambda_reports():
    assert code_sha256(b"abc") == base64.b64encode(hashlib.sha256(b"abc").digest()).decode()


def test_verify_accepts_the_published_bytes_and_refuses_any_other():
    package = zip_of({"a.py": "x = 1\n"})
    verify_code(package, code_sha256(package))
    with pytest.raises(CodeRefused, match="does not match"):
        verify_code(package + b"\0", code_sha256(package))
    with pytest.raises(CodeRefused, match="no usable CodeSha256"):
        verify_code(package, "")


@pytest.mark.parametrize("name", ["../escape.py", "/etc/evil.py", "pkg/../../escape.py"])
def test_unpack_refuses_entries_outside_the_destination(tmp_path, name):
    with pytest.raises(CodeRefused, match="unsafe entry"):
        unpack_code(zip_of({"ok.py": "", name: ""}), tmp_path / "code")
    assert not (tmp_path / "escape.py").exists()


def test_unpack_extracts_the_package(tmp_path):
    names = unpack_code(zip_of({"pkg/__init__.py": "", "pkg/mod.py": "y = 2\n"}), tmp_path / "code")
    assert sorted(names) == ["pkg/__init__.py", "pkg/mod.py"]
    assert (tmp_path / "code" / "pkg" / "mod.py").read_text() == "y = 2\n"


def test_unpack_refuses_what_is_not_a_zip(tmp_path):
    with pytest.raises(CodeRefused, match="not a zip"):
        unpack_code(b"definitely not a zip", tmp_path / "code")


# ---------------------------------------------------------------------------------------------- deployments


def test_runs_the_deployed_package_in_its_own_process_and_reports_success(emulated, core, small_clip, tmp_path):
    version = emulated.publish("deeplens-probe", zip_of({"probe.py": PROBE}), "probe.handler",
                               env={"PROBE_SETTING": "from the group"})
    deployment = emulated.deploy(version)

    status = emulated.wait_for_verdict(deployment)
    assert status["DeploymentStatus"] == "Success"
    run = core.current_run()
    assert run.deployment_id == deployment and run.function.pinned
    assert run.wait(30) == 0, run.log_tail()

    [message] = messages(tmp_path / "messages.jsonl")
    assert message["ok"] is True and message["shape"] == [small_clip.size[1], small_clip.size[0], 3]
    assert message["setting"] == "from the group"
    assert message["host"] == "blocked", "the host tool is not importable on the device"
    assert message["file"].startswith(str((tmp_path / "device").resolve())), "the unpacked package ran"
    device_tmp = str(run.root / "tmp")
    assert message["spool"].startswith(device_tmp) and message["preview"].startswith(device_tmp), "no host /tmp"
    assert message["endpoint"] == emulated.endpoint and message["profile"] is None


def test_refuses_a_package_whose_sha256_does_not_match(emulated, core):
    package = zip_of({"probe.py": PROBE})
    tampered = zip_of({"probe.py": PROBE + "\nprint('injected')\n"})
    deployment = emulated.deploy(emulated.publish("deeplens-probe", package, "probe.handler", stored=tampered))

    status = emulated.wait_for_verdict(deployment)
    assert status["DeploymentStatus"] == "Failure"
    assert "does not match the published code" in status["ErrorMessage"]
    assert [d["DetailedErrorCode"] for d in status["ErrorDetails"]] == ["CodeIntegrity"]
    assert core.runs == [], "nothing was started"


def test_reports_failure_when_the_function_cannot_be_imported(emulated, core):
    deployment = emulated.deploy(emulated.publish("deeplens-broken", zip_of({"broken.py": BROKEN}), "broken.handler"))

    status = emulated.wait_for_verdict(deployment)
    assert status["DeploymentStatus"] == "Failure"
    assert status["ErrorDetails"][0]["DetailedErrorCode"] == "FunctionStartFailed"
    assert "RuntimeError: boom at import" in status["ErrorMessage"]


def test_a_missing_package_is_a_failed_download(emulated, core):
    version = emulated.publish("deeplens-probe", zip_of({"probe.py": PROBE}), "probe.handler")
    for item in emulated.clients["s3"].list_objects_v2(Bucket=BUCKET)["Contents"]:
        emulated.clients["s3"].delete_object(Bucket=BUCKET, Key=item["Key"])

    status = emulated.wait_for_verdict(emulated.deploy(version))
    assert status["DeploymentStatus"] == "Failure"
    assert status["ErrorDetails"][0]["DetailedErrorCode"] == "CodeDownloadFailed"


def test_deployments_made_before_the_core_started_are_not_replayed(emulated, core):
    assert core.outcomes == {}
    version = emulated.publish("deeplens-probe", zip_of({"probe.py": PROBE}), "probe.handler")
    emulated.deploy(version)
    emulated.wait_for_verdict(emulated.deploy(version))
    later = SimulatedCore(emulated.session, emulated.endpoint, emulated.group_id, THING, BUCKET, core.root / "again",
                          core.io)
    later.start()
    try:
        time.sleep(0.5)
        assert later.outcomes == {} and later.runs == []
    finally:
        later.stop()


def test_stopping_restores_moto_and_ends_the_function(emulated, core, child_pids):
    from moto.greengrass.models import GreengrassBackend

    original = GreengrassBackend.get_deployment_status
    emulated.wait_for_verdict(emulated.deploy(emulated.publish("deeplens-broken", zip_of({"broken.py": BROKEN}),
                                                               "broken.handler")))
    assert GreengrassBackend.get_deployment_status is not original, "error details are being served"
    core.stop()
    assert GreengrassBackend.get_deployment_status is original
