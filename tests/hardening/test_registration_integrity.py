"""Registration integrity: a resumed or failed `register-device` never takes over another device's bundle,
never writes over (or chmods) the user's own files, never trusts a key file that holds no key, never leaks an
active certificate, and an existing device joins a fleet when asked to.

Each scenario is the one that broke the promise before (issue 13), run through the real CLI on a fresh
emulated account; "any failure after the thing exists" is an AccessDenied injected into a later call.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.support.aws_faults import Faults

BUCKET = "deeplens-integrity-crops"
ENV = {"DEEPLENS_BUCKET": BUCKET}
TARGETS = ("v1", "v2")
# A call each target makes after the thing exists (V1: the group role; V2: the certificate's policy).
LATE_CALL = {"v1": ("greengrass", "AssociateRoleToGroup"), "v2": ("iot", "AttachPolicy")}


@dataclass
class Cli:
    run_cli: Callable[..., Any]
    faults: Faults
    tmp_path: Path

    def __call__(self, *args: str) -> Any:
        self.faults.start_run()
        return self.run_cli(*args, env=ENV)

    def ok(self, *args: str) -> Any:
        result = self(*args)
        assert result.exit_code == 0, result.stderr
        return result

    def register(self, name: str, target: str, out: Path | str, *more: str) -> Any:
        return self("register-device", "--name", name, "--greengrass", target, "--out", str(out), *more)

    def fail_late(self, target: str) -> None:
        """The next registration fails after its thing exists (once)."""
        service, operation = LATE_CALL[target]
        self.faults.fail(service, operation, "AccessDeniedException", "injected", status=403, times=1)


@pytest.fixture
def cli(run_cli: Callable[..., Any], faults: Faults, fresh_account: Callable[[], Any], tmp_path: Path) -> Iterator[Cli]:
    with fresh_account():
        yield Cli(run_cli, faults, tmp_path)


def iot() -> Any:
    import boto3

    return boto3.client("iot", region_name="us-east-1")


def things_of_certificates() -> dict[str, list[str]]:
    """certificate id -> the things it is attached to, for every certificate in the account."""
    client = iot()
    return {c["certificateId"]: client.list_principal_things(principal=c["certificateArn"])["things"]
            for c in client.list_certificates()["certificates"]}


def active_certificates() -> list[str]:
    return [c["certificateId"] for c in iot().list_certificates()["certificates"] if c["status"] == "ACTIVE"]


def error_lines(stderr: str) -> int:
    """How many lines of stderr report an error (progress lines such as "resuming ..." are not errors)."""
    return sum(1 for line in stderr.splitlines() if line.startswith("error"))


def snapshot_folder(folder: Path) -> dict[str, Any]:
    return {
        "mode": stat.S_IMODE(folder.stat().st_mode),
        "files": {
            p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
        },
    }


# ---------------------------------------------------------------------------------------------- item 1


@pytest.mark.parametrize("target", TARGETS)
def test_a_resumed_registration_refuses_another_devices_bundle(cli: Cli, target: str) -> None:
    cli.ok("register-roles")
    dev_y = cli.tmp_path / "devices" / "DevY"
    cli.ok("register-device", "--name", "DevY", "--greengrass", target, "--out", str(dev_y))
    before = snapshot_folder(dev_y)
    certificates_before = things_of_certificates()

    cli.fail_late(target)
    assert cli.register("DevX", target, cli.tmp_path / "devx-first").exit_code != 0  # DevX is now incomplete
    for _attempt in range(2):  # refused on every resumed attempt, not only the first
        result = cli.register("DevX", target, dev_y)
        assert result.exit_code == 2, result.stderr
        assert "already holds" in result.stderr and error_lines(result.stderr) == 1
    assert snapshot_folder(dev_y) == before
    after = things_of_certificates()
    for certificate, things in certificates_before.items():
        assert after.get(certificate) == things  # DevY's certificate is attached to DevY only


@pytest.mark.parametrize("target", TARGETS)
def test_a_resumed_registration_leaves_a_users_folder_alone(cli: Cli, target: str) -> None:
    cli.ok("register-roles")
    project = cli.tmp_path / "myproject"
    project.mkdir(mode=0o755)
    os.chmod(project, 0o755)
    (project / "README.md").write_text("# my project\n")
    (project / "config.yaml").write_text("mine: true\n")
    before = snapshot_folder(project)

    cli.fail_late(target)
    assert cli.register("DevX", target, cli.tmp_path / "devx-first").exit_code != 0
    for _attempt in range(2):
        result = cli.register("DevX", target, project)
        assert result.exit_code == 2, result.stderr
        assert "already holds" in result.stderr
    assert snapshot_folder(project) == before


@pytest.mark.parametrize("target", TARGETS)
def test_a_users_folder_holding_keys_of_its_own_is_refused_before_they_are_read(cli: Cli, target: str) -> None:
    """Whose folder it is comes first: keys the user keeps there are never matched, used or reported on."""
    cli.ok("register-roles")
    project = cli.tmp_path / "myproject"
    (project / "certs").mkdir(parents=True)
    (project / "README.md").write_text("# my project\n")
    for key in (project / "private.pem.key", project / "certs" / "mine.private.key"):
        key.write_text("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")
    before = snapshot_folder(project)

    cli.fail_late(target)
    assert cli.register("DevX", target, cli.tmp_path / "devx-first").exit_code != 0
    result = cli.register("DevX", target, project)
    assert result.exit_code == 2, result.stderr
    assert "already holds" in result.stderr and "private key" not in result.stderr.split("(hint")[0]
    assert snapshot_folder(project) == before


@pytest.mark.parametrize("target", TARGETS)
def test_a_resumed_registration_still_completes_its_own_bundle(cli: Cli, target: str) -> None:
    """The check does not refuse what it must accept: the device's own half-written bundle."""
    cli.ok("register-roles")
    own = cli.tmp_path / "devices" / "DevX"
    cli.fail_late(target)
    assert cli.register("DevX", target, own).exit_code != 0
    result = cli.register("DevX", target, own)
    assert result.exit_code == 0, result.stderr
    assert len(active_certificates()) == 1


def write_v1_bundle_of_an_earlier_release(folder: Path, name: str, issued: dict[str, Any], with_key: bool) -> str:
    """What an earlier V1 release left when stopped after writing the key (the thing was made first, the
    certificate not attached yet): the manifest naming thing and certificate (written first), then
    certs/<id10>.private.key - and no certificate PEM yet. Stopped before the key: the manifest alone."""
    import boto3

    from deeplens_cli.targets.greengrass_v1.naming import thing_name_for

    account = boto3.client("sts", region_name="us-east-1").get_caller_identity()["Account"]
    thing = thing_name_for(account, "us-east-1", name)
    (folder / "certs").mkdir(parents=True, mode=0o700)
    (folder / "deeplens-bundle.json").write_text(json.dumps({
        "thing_arn": f"arn:aws:iot:us-east-1:{account}:thing/{thing}", "thing_name": thing,
        "certificate_id": issued["certificateId"], "certificate_arn": issued["certificateArn"], "region": "us-east-1"}))
    if with_key:
        (folder / "certs" / f"{issued['certificateId'][:10]}.private.key").write_text(issued["keyPair"]["PrivateKey"])
    return thing


def write_v2_bundle_of_an_earlier_release(folder: Path, name: str, issued: dict[str, Any], with_key: bool) -> str:
    """What an earlier V2 release left when stopped after writing the key (the thing was made first, the
    certificate not attached yet): device.pem.crt (written first), then private.pem.key - no manifest (V2 never
    wrote one) and no config.yaml yet. Stopped before the key: the certificate alone."""
    folder.mkdir(parents=True, mode=0o700)
    (folder / "device.pem.crt").write_text(issued["certificatePem"])
    if with_key:
        (folder / "private.pem.key").write_text(issued["keyPair"]["PrivateKey"])
    return f"deeplens-{name}"


EARLIER_RELEASE_BUNDLE = {"v1": write_v1_bundle_of_an_earlier_release, "v2": write_v2_bundle_of_an_earlier_release}


def earlier_release_left(target: str, folder: Path, with_key: bool) -> tuple[dict[str, Any], str]:
    """(the certificate CreateKeysAndCertificate issued, the thing) of an earlier release's interrupted run."""
    issued = iot().create_keys_and_certificate(setAsActive=True)
    thing = EARLIER_RELEASE_BUNDLE[target](folder, "DevX", issued, with_key)
    iot().create_thing(thingName=thing, attributePayload={"attributes": {  # the thing that run made first
        "deeplens_target": target, "deeplens_pending": "DevX"}})
    return issued, thing


@pytest.mark.parametrize("target", TARGETS)
def test_a_bundle_written_by_an_earlier_release_keeps_its_certificate(cli: Cli, target: str) -> None:
    """Earlier releases took key and certificate from CreateKeysAndCertificate and wrote them in their own order.
    Re-run on such a folder, register-device keeps the certificate whose key the folder holds (found by what the
    folder names, bundle.held_certificate): attached, bundle completed, the key untouched, no second certificate."""
    cli.ok("register-roles")
    folder = cli.tmp_path / "devices" / "DevX"
    issued, thing = earlier_release_left(target, folder, with_key=True)
    key = issued["keyPair"]["PrivateKey"]

    cli.ok("register-device", "--name", "DevX", "--greengrass", target, "--out", str(folder))

    assert things_of_certificates() == {issued["certificateId"]: [thing]}
    assert active_certificates() == [issued["certificateId"]]
    pems = [p for p in folder.rglob("*") if p.is_file() and p.read_text().strip() == issued["certificatePem"].strip()]
    assert pems, sorted(folder.rglob("*"))  # the bundle holds its certificate now
    assert [p for p in folder.rglob("*") if p.is_file() and "PRIVATE KEY" in p.read_text()] and all(
        p.read_text() == key for p in folder.rglob("*") if p.is_file() and "PRIVATE KEY" in p.read_text())
    mutations = len(cli.faults.mutating_attempts)
    cli.ok("register-device", "--name", "DevX", "--greengrass", target, "--out", str(folder))
    assert len(cli.faults.mutating_attempts) == mutations  # and a second re-run has nothing left to do


@pytest.mark.parametrize("target", TARGETS)
def test_a_bundle_of_an_earlier_release_without_its_key_has_its_certificate_retired(cli: Cli, target: str) -> None:
    """Stopped before the key was written, the folder still names the certificate (V1: its manifest; V2: its
    PEM), which is attached to nothing: the re-run retires it and issues one whose key is in the folder."""
    cli.ok("register-roles")
    folder = cli.tmp_path / "devices" / "DevX"
    issued, thing = earlier_release_left(target, folder, with_key=False)

    cli.ok("register-device", "--name", "DevX", "--greengrass", target, "--out", str(folder))

    [(certificate, things)] = things_of_certificates().items()
    assert certificate != issued["certificateId"] and things == [thing]  # the unfinished one is gone
    assert active_certificates() == [certificate]


# ---------------------------------------------------------------------------------------------- item 8


@pytest.mark.parametrize("target", TARGETS)
def test_an_uncreatable_out_is_refused_before_anything_is_created(cli: Cli, target: str) -> None:
    """/proc/x passes os.access for root; a file in the path fails for everyone: both refused, one line,
    exit 2, nothing created in IoT."""
    cli.ok("register-roles")
    (cli.tmp_path / "a-file").write_text("x")
    outs = [cli.tmp_path / "a-file" / "bundle"] + (["/proc/deeplens-x"] if os.geteuid() == 0 else [])
    for out in outs:
        for _attempt in range(2):
            result = cli.register("DevX", target, out)
            assert result.exit_code == 2, result.stderr
            assert "unexpected error" not in result.stderr
            assert error_lines(result.stderr) == 1 and "Traceback" not in result.stderr, result.stderr
            assert active_certificates() == []
    assert iot().list_things()["things"] == []


# ---------------------------------------------------------------------------------------------- item 9


@pytest.mark.parametrize("target", TARGETS)
def test_a_resume_replaces_a_zero_byte_private_key(cli: Cli, target: str) -> None:
    """A kill between creating the key file and writing it leaves 0 bytes: the resume must not report success
    with it, but retire that certificate and issue a new one whose key is really there."""
    cli.ok("register-roles")
    own = cli.tmp_path / "devices" / "DevX"
    cli.fail_late(target)
    assert cli.register("DevX", target, own).exit_code != 0
    keys = [p for p in own.rglob("*") if p.is_file() and "private" in p.name]
    assert keys, sorted(own.rglob("*"))
    for key in keys:
        key.write_text("")  # what the kill left

    result = cli.register("DevX", target, own)
    assert result.exit_code == 0, result.stderr
    keys = [p for p in own.rglob("*") if p.is_file() and "private" in p.name and not p.name.startswith(".")]
    assert keys and all("PRIVATE KEY-----" in k.read_text() for k in keys)
    assert all(stat.S_IMODE(k.stat().st_mode) == 0o600 for k in keys)
    assert len(active_certificates()) == 1


# ---------------------------------------------------------------------------------------------- item 7


def test_an_existing_device_plus_fleet_joins_the_fleet(cli: Cli) -> None:
    """It printed "nothing to do" and stayed outside the group, so `deploy --fleet` found no such group."""
    cli.ok("register-roles")
    own = cli.tmp_path / "devices" / "Cam1"
    cli.ok("register-device", "--name", "Cam1", "--greengrass", "v2", "--out", str(own))
    certificates = things_of_certificates()
    bundle = snapshot_folder(own)

    cli.ok("register-device", "--name", "Cam1", "--greengrass", "v2", "--fleet", "Lobby", "--out", str(own))
    thing = next(t["thingName"] for t in iot().list_things()["things"])
    assert [g["groupName"] for g in iot().list_thing_groups_for_thing(thingName=thing)["thingGroups"]] == ["Lobby"]
    assert things_of_certificates() == certificates and snapshot_folder(own) == bundle  # nothing else changed

    mutations = len(cli.faults.mutating_attempts)
    cli.ok("register-device", "--name", "Cam1", "--greengrass", "v2", "--fleet", "Lobby")
    assert len(cli.faults.mutating_attempts) == mutations  # a member already: nothing to do


# ---------------------------------------------------------------------------------------------- item 5


def test_destroy_with_an_unreachable_greengrass_v2_endpoint_is_an_error(cli: Cli) -> None:
    """A connection error was read as "Greengrass V2 is not here" and destroy said there was nothing to do."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    cli.ok("register-roles")
    result = cli.run_cli("destroy", "--yes", env={**ENV, "AWS_ENDPOINT_URL_GREENGRASSV2": f"http://127.0.0.1:{closed}",
                                                    "DEEPLENS_AWS__MAX_ATTEMPTS": "1"})
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert error_lines(result.stderr) == 1 and "Traceback" not in result.stderr
    assert f"127.0.0.1:{closed}" in result.stderr and "nothing to do" not in result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------- item 6


@pytest.mark.parametrize("template", ["{month}/{n:d}.jpg", "{n}_{hour:s}.jpg", "{n}/{day!z}.jpg"])
@pytest.mark.parametrize("target", TARGETS)
def test_a_key_template_the_device_cannot_format_is_refused_at_publish(cli: Cli, target: str, template: str) -> None:
    """The device formats its keys with edge_function/keys.py; a template it cannot format used to publish and
    deploy fine, and the device then restart-looped uploading nothing."""
    (cli.tmp_path / "deeplens.yaml").write_text(f"key_template: '{template}'\n")
    result = cli("publish", "--greengrass", target)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert error_lines(result.stderr) == 1 and "cannot be formatted on the device" in result.stderr
    assert cli.faults.mutating_attempts == []


def test_the_default_key_template_passes_the_check() -> None:
    from deeplens_cli.settings.config import Settings, defaults
    from deeplens_cli.targets.key_template import check_key_template
    from edge_function.keys import DEFAULT_TEMPLATE

    settings = Settings(values=defaults())
    assert DEFAULT_TEMPLATE.startswith("{prefix}/")
    assert check_key_template(settings).startswith(settings["prefix"].rstrip("/") + "/")
