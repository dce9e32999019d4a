"""`register-device --name N [--greengrass v2] [--fleet G]`: a Greengrass V2 core device - IoT thing, active
certificate, the minimal core policy, and a bundle the device can install from."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from deeplens_cli.targets.greengrass_v2 import AMAZON_ROOT_CA_1_SHA256, core_policy

try:  # tests/ importable as a package, or tests/cli on sys.path (pytest's default "prepend" import mode)
    from tests.cli.fake_greengrassv2 import v2_account  # noqa: F401 - a fixture
except ImportError:
    from fake_greengrassv2 import v2_account  # noqa: F401

BUCKET = "deeplens-test-face-crops"
ALIAS = "DeepLensGreengrassV2TokenExchangeRoleAlias"
ENV = {"DEEPLENS_BUCKET": BUCKET, "COLUMNS": "200"}  # wide tables: no wrapped resource names


def register(run_cli, tmp_path: Path, name: str = "Cam", *extra: str):
    return run_cli("register-device", "--name", name, "--out", str(tmp_path / name), *extra, env=ENV)


def statements_allowing(policy: dict, action: str) -> list[str]:
    resources: list[str] = []
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if action in actions:
            resources += statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    return resources


def allowed(policy: dict, action: str, resource: str) -> bool:
    """IoT policy matching: '*' matches any characters, everything else is literal."""
    return any(fnmatch.fnmatchcase(resource, pattern.replace("[", "[[]")) for pattern in
               statements_allowing(policy, action))


# ---------------------------------------------------------------------------------------------- AWS resources


def test_registers_a_v2_core_by_default(v2_account, run_cli, tmp_path):
    result = register(run_cli, tmp_path)

    assert result.exit_code == 0, result.stderr
    iot = v2_account.client("iot")
    thing = iot.describe_thing(thingName="deeplens-Cam")
    assert thing["attributes"] == {"deeplens_name": "Cam", "deeplens_target": "v2"}
    [principal] = iot.list_thing_principals(thingName="deeplens-Cam")["principals"]
    certificate = iot.describe_certificate(certificateId=principal.rsplit("/", 1)[-1])["certificateDescription"]
    assert certificate["status"] == "ACTIVE"
    assert [p["policyName"] for p in iot.list_attached_policies(target=principal)["policies"]] == [
        "deeplens-v2-core-Cam"
    ]
    assert "registered (v2)" in result.stdout
    assert "PRIVATE KEY" not in result.stdout + result.stderr


def test_core_policy_is_the_minimal_one_for_exactly_this_thing(v2_account, run_cli, tmp_path):
    register(run_cli, tmp_path)
    document = json.loads(v2_account.client("iot").get_policy(policyName="deeplens-v2-core-Cam")["policyDocument"])
    arn = "arn:aws:iot:us-east-1:123456789012"

    assert document == core_policy("aws", "us-east-1", "123456789012", "deeplens-Cam", ALIAS)
    assert allowed(document, "iot:Connect", f"{arn}:client/deeplens-Cam")
    assert allowed(document, "iot:Connect", f"{arn}:client/deeplens-Cam#2")  # the nucleus' extra connections
    assert not allowed(document, "iot:Connect", f"{arn}:client/deeplens-Cam2")  # another device's thing
    assert not allowed(document, "iot:Publish", f"{arn}:topic/$aws/things/deeplens-Cam2/shadow/update")
    assert allowed(document, "iot:Publish", f"{arn}:topic/$aws/things/deeplens-Cam/greengrassv2/health/json")
    assert allowed(document, "iot:Publish", f"{arn}:topic/deeplens/deeplens-Cam/infer")
    assert allowed(document, "iot:Subscribe", f"{arn}:topicfilter/$aws/things/deeplens-Cam/jobs/notify")
    assert statements_allowing(document, "iot:AssumeRoleWithCertificate") == [f"{arn}:rolealias/{ALIAS}"]
    for action in ("greengrass:GetComponentVersionArtifact", "greengrass:ResolveComponentCandidates",
                   "greengrass:GetDeploymentConfiguration", "greengrass:ListThingGroupsForCoreDevice"):
        assert statements_allowing(document, action) == ["*"]
    assert not allowed(document, "iot:Publish", f"{arn}:topic/$aws/things/deeplens-Cam/infer")  # reserved topic


def test_fleet_membership_creates_the_thing_group_once(v2_account, run_cli, tmp_path):
    first = register(run_cli, tmp_path, "Cam1", "--fleet", "Lobby")
    second = register(run_cli, tmp_path, "Cam2", "--fleet", "Lobby")

    assert first.exit_code == second.exit_code == 0, first.stderr + second.stderr
    iot = v2_account.client("iot")
    group = iot.describe_thing_group(thingGroupName="Lobby")
    assert group["thingGroupProperties"]["attributePayload"]["attributes"] == {"deeplens_cli": "managed"}
    assert sorted(iot.list_things_in_thing_group(thingGroupName="Lobby")["things"]) == [
        "deeplens-Cam1",
        "deeplens-Cam2",
    ]
    assert "create iot-thing-group/Lobby" not in second.stderr


def test_registering_the_same_name_again_changes_nothing(v2_account, run_cli, tmp_path):
    register(run_cli, tmp_path)
    again = run_cli("register-device", "--name", "Cam", "--out", str(tmp_path / "other"), env=ENV)

    assert again.exit_code == 0
    assert "already registered" in again.stdout
    assert len(v2_account.client("iot").list_certificates()["certificates"]) == 1
    assert not (tmp_path / "other").exists()


def test_dry_run_shows_the_plan_and_creates_nothing(v2_account, run_cli, tmp_path):
    result = register(run_cli, tmp_path, "Cam", "--dry-run", "--output", "table")

    assert result.exit_code == 0, result.stderr
    assert "iot-thing/deeplens-Cam" in result.stdout and "dry run" in result.stdout
    assert v2_account.client("iot").list_things()["things"] == []
    assert v2_account.client("iot").list_certificates()["certificates"] == []
    assert not (tmp_path / "Cam").exists()


def test_without_the_role_alias_it_says_to_run_register_roles(v2_account, run_cli, tmp_path):
    v2_account.client("iot").delete_role_alias(roleAlias=ALIAS)

    result = register(run_cli, tmp_path)

    assert result.exit_code == 1
    assert "role alias" in result.stderr and "register-roles" in result.stderr
    assert v2_account.client("iot").list_certificates()["certificates"] == []


def test_a_thing_of_that_name_made_elsewhere_is_not_taken_over(v2_account, run_cli, tmp_path):
    v2_account.client("iot").create_thing(thingName="deeplens-Cam")

    result = register(run_cli, tmp_path)

    assert result.exit_code == 1
    assert "deeplens-Cam already exists" in result.stderr


def test_certificate_left_by_an_interrupted_registration_is_deleted(v2_account, run_cli, tmp_path):
    iot = v2_account.client("iot")
    policy = core_policy("aws", "us-east-1", "123456789012", "deeplens-Cam", ALIAS)
    iot.create_policy(policyName="deeplens-v2-core-Cam", policyDocument=json.dumps(policy))
    orphan = iot.create_keys_and_certificate(setAsActive=True)  # its key went to a bundle that no longer exists
    iot.attach_policy(policyName="deeplens-v2-core-Cam", target=orphan["certificateArn"])

    result = register(run_cli, tmp_path)

    assert result.exit_code == 0, result.stderr
    assert "left over from an interrupted registration" in result.stdout  # the plan says why, once
    certificates = iot.list_certificates()["certificates"]
    assert orphan["certificateId"] not in [c["certificateId"] for c in certificates]
    assert [c["status"] for c in certificates] == ["ACTIVE"]


# ---------------------------------------------------------------------------------------------- the bundle


def test_bundle_holds_certificate_private_key_root_ca_and_nucleus_config(v2_account, run_cli, tmp_path):
    register(run_cli, tmp_path)
    bundle = tmp_path / "Cam"
    iot = v2_account.client("iot")
    [principal] = iot.list_thing_principals(thingName="deeplens-Cam")["principals"]
    pem = iot.describe_certificate(certificateId=principal.rsplit("/", 1)[-1])["certificateDescription"][
        "certificatePem"
    ]

    assert sorted(p.name for p in bundle.iterdir()) == ["AmazonRootCA1.pem", "README.md", "config.yaml",
                                                      "device.pem.crt", "install.sh", "private.pem.key"]
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o700
    assert stat.S_IMODE((bundle / "private.pem.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((bundle / "install.sh").stat().st_mode) == 0o755
    assert (bundle / "device.pem.crt").read_text() == pem
    assert _public_key_of_private(bundle / "private.pem.key") == _public_key_of_certificate(pem)
    ca = (bundle / "AmazonRootCA1.pem").read_text()
    der = base64.b64decode("".join(line for line in ca.splitlines() if "-----" not in line))
    assert hashlib.sha256(der).hexdigest() == AMAZON_ROOT_CA_1_SHA256

    config = yaml.safe_load((bundle / "config.yaml").read_text())
    assert config["system"] == {"certificateFilePath": "/greengrass/v2/device.pem.crt",
                                "privateKeyPath": "/greengrass/v2/private.pem.key",
                                "rootCaPath": "/greengrass/v2/AmazonRootCA1.pem", "rootpath": "/greengrass/v2",
                                "thingName": "deeplens-Cam"}
    nucleus = config["services"]["aws.greengrass.Nucleus"]
    assert nucleus["componentType"] == "NUCLEUS"
    assert nucleus["configuration"]["awsRegion"] == "us-east-1"
    assert nucleus["configuration"]["iotRoleAlias"] == ALIAS
    assert nucleus["configuration"]["iotDataEndpoint"].endswith("-ats.iot.us-east-1.amazonaws.com")
    assert nucleus["configuration"]["iotCredEndpoint"].endswith(".credentials.iot.us-east-1.amazonaws.com")


def test_install_script_runs_the_documented_installer_command(v2_account, run_cli, tmp_path):
    register(run_cli, tmp_path)
    script = (tmp_path / "Cam" / "install.sh").read_text()
    readme = (tmp_path / "Cam" / "README.md").read_text()
    command = ('java -Droot="/greengrass/v2" -Dlog.store=FILE -jar ./GreengrassInstaller/lib/Greengrass.jar '
               "--init-config ./GreengrassInstaller/config.yaml --component-default-user ggc_user:ggc_group "
               "--setup-system-service true")

    assert subprocess.run(["sh", "-n", str(tmp_path / "Cam" / "install.sh")], check=False).returncode == 0
    assert command in script and command in readme
    assert "install -m 600 private.pem.key /greengrass/v2/private.pem.key" in script
    assert "sed \"s/NUCLEUS_VERSION/$VERSION/\" config.yaml" in script
    assert "--provision" not in script  # manual provisioning: the device needs no AWS credentials


def test_json_output_is_one_document_without_the_private_key(v2_account, run_cli, tmp_path):
    result = run_cli("--output", "json", "register-device", "--name", "Cam", "--out", str(tmp_path / "Cam"), env=ENV)

    document = json.loads(result.stdout)
    assert document["bundle"] == str(tmp_path / "Cam")
    assert "PRIVATE KEY" not in result.stdout
    key = (tmp_path / "Cam" / "private.pem.key").read_text()
    assert key.strip() and key.strip().splitlines()[1] not in result.stdout + result.stderr


def test_an_existing_non_empty_bundle_folder_is_refused_before_any_aws_call(v2_account, run_cli, tmp_path):
    (tmp_path / "Cam").mkdir()
    (tmp_path / "Cam" / "private.pem.key").write_text("old key")

    result = register(run_cli, tmp_path)

    assert result.exit_code == 2
    assert v2_account.client("iot").list_things()["things"] == []


def _public_key_of_private(path: Path) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _public_key_of_certificate(pem: str) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    certificate = x509.load_pem_x509_certificate(pem.encode())
    return certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("name", ["Cam", "front-door-2"])
def test_thing_and_policy_names_follow_the_device_name(name):
    from deeplens_cli.targets.greengrass_v2 import policy_name, thing_name

    assert thing_name(name) == f"deeplens-{name}" and ":" not in thing_name(name)
    assert policy_name(name) == f"deeplens-v2-core-{name}"


# ---------------------------------------------------------------------------------------------- interrupted, resumed


class Interrupt:
    """A botocore before-call hook that raises KeyboardInterrupt at the n-th mutating call (Ctrl-C there)."""

    def __init__(self, at: int) -> None:
        self.at, self.count = at, 0

    def __call__(self, model=None, **_) -> None:
        from deeplens_cli.aws import is_mutating

        if model is not None and is_mutating(model.name):
            self.count += 1
            if self.count == self.at:
                raise KeyboardInterrupt


def _register_at_target(account, settings_for, out: Path, interrupt_at: int | None = None) -> None:
    import io

    from deeplens_cli.cli.output import Reporter
    from deeplens_cli.engine.executor import Executor
    from deeplens_cli.targets.greengrass_v2 import GreengrassV2Target

    ctx = account.context(settings_for())
    if interrupt_at:
        ctx.session.events.register("before-call.*.*", Interrupt(interrupt_at))
    plan = GreengrassV2Target(ctx, settings_for()).plan_register_device("Cam", str(out), fleet="Lobby")
    Executor(ctx, Reporter(stderr=io.StringIO()).progress).execute(plan)


@pytest.mark.parametrize("interrupt_at", range(1, 9))  # the 8 mutating calls of a registration with --fleet
def test_an_interrupted_registration_completes_when_run_again(v2_account, settings_for, tmp_path, interrupt_at):
    from deeplens_cli.targets.greengrass_v2 import GreengrassV2Target

    with pytest.raises(KeyboardInterrupt):
        _register_at_target(v2_account, settings_for, tmp_path / "Cam", interrupt_at)
    listed = [d.name for d in GreengrassV2Target(v2_account.context(settings_for()), settings_for()).list_devices()]

    _register_at_target(v2_account, settings_for, tmp_path / "Cam")

    assert listed in ([], ["Cam (incomplete)"])
    iot = v2_account.client("iot")
    assert iot.describe_thing(thingName="deeplens-Cam")["attributes"] == {
        "deeplens_name": "Cam",
        "deeplens_target": "v2",
    }
    [principal] = iot.list_thing_principals(thingName="deeplens-Cam")["principals"]
    certificate = iot.describe_certificate(certificateId=principal.rsplit("/", 1)[-1])["certificateDescription"]
    assert certificate["status"] == "ACTIVE"
    assert (tmp_path / "Cam" / "device.pem.crt").read_text() == certificate[
        "certificatePem"
    ]  # the key in the bundle fits
    assert [p["policyName"] for p in iot.list_attached_policies(target=principal)["policies"]] == [
        "deeplens-v2-core-Cam"
    ]
    assert iot.list_things_in_thing_group(thingGroupName="Lobby")["things"] == ["deeplens-Cam"]
    assert [c["status"] for c in iot.list_certificates()["certificates"]] == ["ACTIVE"]  # nothing left behind


def test_a_bundle_key_whose_certificate_is_unknown_is_refused(v2_account, settings_for, tmp_path):
    from deeplens_cli.errors import DeeplensError

    (tmp_path / "Cam").mkdir()
    (tmp_path / "Cam" / "private.pem.key").write_text(
        "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"
    )

    with pytest.raises(DeeplensError, match="holds a private key whose certificate this account does not have"):
        _register_at_target(v2_account, settings_for, tmp_path / "Cam")


def test_a_certificate_whose_answer_never_reached_the_bundle_is_found_by_its_key(v2_account, settings_for, tmp_path,
                                                                                 monkeypatch):
    """The key is written (0600) before IoT is asked; a run stopped after IoT issued the certificate but before
    the bundle holds it (a lost answer, a kill) leaves the key, and the re-run finds and uses that certificate:
    no orphan, no second certificate."""
    from deeplens_cli.targets.greengrass_v2.core_bundle import CoreBundle

    complete = CoreBundle.complete

    def interrupted(self, folder, certificate_pem, root_ca):
        monkeypatch.setattr(CoreBundle, "complete", complete)  # only the first run is interrupted
        raise KeyboardInterrupt

    monkeypatch.setattr(CoreBundle, "complete", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _register_at_target(v2_account, settings_for, tmp_path / "Cam")
    iot = v2_account.client("iot")
    [issued] = iot.list_certificates()["certificates"]
    assert (tmp_path / "Cam" / "private.pem.key").exists() and not (tmp_path / "Cam" / "device.pem.crt").exists()
    assert stat.S_IMODE((tmp_path / "Cam" / "private.pem.key").stat().st_mode) == 0o600

    _register_at_target(v2_account, settings_for, tmp_path / "Cam")

    [principal] = iot.list_thing_principals(thingName="deeplens-Cam")["principals"]
    certificate = iot.describe_certificate(certificateId=principal.rsplit("/", 1)[-1])["certificateDescription"]
    assert certificate["certificateId"] == issued["certificateId"] and certificate["status"] == "ACTIVE"
    assert [c["certificateId"] for c in iot.list_certificates()["certificates"]] == [certificate["certificateId"]]
    assert (tmp_path / "Cam" / "device.pem.crt").read_text() == certificate["certificatePem"]
    assert _public_key_of_private(tmp_path / "Cam" / "private.pem.key") == \
        _public_key_of_certificate(certificate["certificatePem"])


def test_a_bundle_interrupted_after_the_key_is_completed_with_the_same_certificate(v2_account, settings_for,
                                                                                  tmp_path):
    _register_at_target(v2_account, settings_for, tmp_path / "Cam")
    for derived in ("config.yaml", "install.sh", "README.md"):
        (tmp_path / "Cam" / derived).unlink()
    key = (tmp_path / "Cam" / "private.pem.key").read_text()

    _register_at_target(v2_account, settings_for, tmp_path / "Cam")

    assert len(v2_account.client("iot").list_certificates()["certificates"]) == 1
    assert (tmp_path / "Cam" / "private.pem.key").read_text() == key
    assert "thingName: \"deeplens-Cam\"" in (tmp_path / "Cam" / "config.yaml").read_text()
    assert stat.S_IMODE((tmp_path / "Cam" / "install.sh").stat().st_mode) == 0o755
    assert (tmp_path / "Cam" / "README.md").exists()


def test_install_script_prepares_what_the_component_needs_and_stays_idempotent(v2_account, run_cli, tmp_path):
    register(run_cli, tmp_path)
    script = (tmp_path / "Cam" / "install.sh").read_text()

    assert "\"$PYTHON\" -c 'import ensurepip, venv'" in script and 'PACKAGES="$VENV_PACKAGE"' in script
    assert "PYTHON=python3\nVENV_PACKAGE=python3-venv\n" in script
    assert "PROFILE=auto\n" in script  # greengrass.device_profile's default: install.sh looks at the device
    assert "apt-get install -y -q --no-install-recommends $PACKAGES" in script
    assert "usermod -aG video ggc_user" in script  # USB cameras are root:video 0660
    assert "Java 8 or later" in script and "Java 11" not in script
    # Proven to run twice on Debian 12/13 by tests/device_lab; here only the text.


def test_a_deeplens_bundle_prepares_java_8_python_37_and_stops_the_greengrass_v1_daemon(v2_account, run_cli,
                                                                                         tmp_path):
    run_cli("register-device", "--name", "Lens", "--greengrass", "v2", "--device-profile", "deeplens", "--out",
            str(tmp_path / "Lens"))
    script = (tmp_path / "Lens" / "install.sh").read_text()

    assert "PROFILE=deeplens\n" in script and "PYTHON=python3.7\n" in script
    assert "apt-get install -y -q --no-install-recommends openjdk-8-jre-headless" in script
    assert "systemctl stop greengrassd.service" in script and "systemctl disable greengrassd.service" in script
    assert 'echo "$PROFILE" > /greengrass/v2/deeplens-cli/device-profile' in script  # what Install reads
    # Run by tests/device_lab/test_deeplens_lab.py in a root file system made to look like a DeepLens.


def test_both_nucleus_configs_quote_every_value_so_none_changes_the_document() -> None:
    """config.yaml of a core bundle and of a fleet's claim bundle are written by one writer (nucleus_config):
    a value holding YAML syntax stays one string where it was put."""
    from deeplens_cli.targets.greengrass_v2.core_bundle import CoreBundle
    from deeplens_cli.targets.greengrass_v2.provisioning import ClaimBundle

    hostile = 'x: 1\n# "y" - [z]'
    core = yaml.safe_load(CoreBundle("deeplens-Cam", "eu-west-1", hostile, hostile, "cred").config_yaml())
    claim = yaml.safe_load(ClaimBundle("Lobby", "tpl", "eu-west-1", hostile, hostile, "cred").config_yaml())

    nucleus = core["services"]["aws.greengrass.Nucleus"]
    assert nucleus["configuration"] == {"awsRegion": "eu-west-1", "iotRoleAlias": hostile,
                                        "iotDataEndpoint": hostile, "iotCredEndpoint": "cred"}
    assert core["system"]["thingName"] == "deeplens-Cam" and nucleus["version"] == "NUCLEUS_VERSION"
    plugin = claim["services"]["aws.greengrass.FleetProvisioningByClaim"]["configuration"]
    assert plugin["iotRoleAlias"] == hostile and plugin["iotDataEndpoint"] == hostile
    assert plugin["templateParameters"] == {"DeviceName": "DEVICE_NAME"} and plugin["provisioningTemplate"] == "tpl"
