"""Claim-based fleet provisioning (`register-device --fleet G --claim`): the provisioning role and template, a
claim certificate with a minimal policy, and one bundle with the fleet provisioning plugin's configuration and an
install.sh.

Runs against moto; moto has no provisioning templates, so those operations are answered next to it
(tests/support/iot_provisioning.py): botocore validates each request against the IoT service model before the
answer, and each answer is checked against the operation's output shape. The guard of the claim (hook,
allow-list, rotation) is tested in test_fleet_claim_guard.py.

Not exercised here (no device, no IoT Core): the plugin's MQTT exchange on first boot (CreateKeysAndCertificate /
RegisterThing over `$aws/...` topics), IoT evaluating the template's intrinsic functions, and the installer run.
"""

from __future__ import annotations

import json
import stat
import subprocess

import pytest
import yaml

try:
    from tests.cli.fake_greengrassv2 import claim_account  # noqa: F401 - a fixture
except ImportError:
    from fake_greengrassv2 import claim_account  # noqa: F401
from deeplens_cli.targets.greengrass_v2.provisioning import (
    CLAIM_CERTIFICATE,
    CLAIM_KEY,
    PLUGIN,
    ClaimNames,
    claim_policy,
    provisioning_template,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"
FLEET = "Stores"
NAMES = ClaimNames(FLEET)
ALIAS = "DeepLensGreengrassV2TokenExchangeRoleAlias"
DATA = "abc123-ats.iot.us-east-1.amazonaws.com"
CREDENTIALS = "abc123.credentials.iot.us-east-1.amazonaws.com"


def test_the_claim_bundle_holds_the_claim_and_the_plugin_configuration(claim_account, templates, run_cli, tmp_path):
    result = run_cli("--output", "json", "register-device", "--fleet", FLEET, "--claim", "--out", "claim",
                     env={"DEEPLENS_BUCKET": "deeplens-test-face-crops"})
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "claim"
    iot = claim_account.client("iot", region_name=REGION)
    [certificate] = iot.list_targets_for_policy(policyName=NAMES.claim_policy)["targets"]

    assert json.loads(result.stdout)["bundle"] == "claim"
    assert stat.S_IMODE((out / CLAIM_KEY).stat().st_mode) == 0o600
    assert (out / CLAIM_CERTIFICATE).read_text() == iot.describe_certificate(
        certificateId=certificate.rsplit("/", 1)[-1])["certificateDescription"]["certificatePem"]
    plugin = yaml.safe_load((out / "config.yaml").read_text())["services"][PLUGIN]["configuration"]
    assert plugin["provisioningTemplate"] == NAMES.template
    assert plugin["iotDataEndpoint"].endswith("-ats.iot.us-east-1.amazonaws.com")  # moto's endpoints are random
    assert plugin["iotCredentialEndpoint"].endswith(".credentials.iot.us-east-1.amazonaws.com")
    assert plugin["iotRoleAlias"] == ALIAS
    assert plugin["claimCertificatePath"].endswith(CLAIM_CERTIFICATE)
    assert plugin["claimCertificatePrivateKeyPath"].endswith(CLAIM_KEY)
    assert plugin["templateParameters"] == {"DeviceName": "DEVICE_NAME"}
    install = (out / "install.sh").read_text()
    assert "--trusted-plugin" in install and f"{PLUGIN}.jar" in install
    subprocess.run(["sh", "-n", str(out / "install.sh")], check=True)  # it parses
    [(operation, request)] = [call for call in templates.calls if call[0] == "CreateProvisioningTemplate"]
    assert request["provisioningRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{NAMES.role}"
    assert json.loads(request["templateBody"]) == provisioning_template("aws", REGION, ACCOUNT, FLEET, ALIAS)


def test_the_template_registers_a_camera_the_way_register_device_would():
    template = provisioning_template("aws", REGION, ACCOUNT, FLEET, ALIAS)
    thing = template["Resources"]["thing"]["Properties"]

    assert thing["ThingName"] == {"Fn::Join": ["", ["deeplens-", {"Ref": "DeviceName"}]]}
    assert thing["ThingGroups"] == [FLEET]
    assert thing["AttributePayload"] == {"deeplens_target": "v2", "deeplens_name": {"Ref": "DeviceName"}}
    # each camera gets the minimal core policy with its own thing name spliced in
    pieces = template["Resources"]["policy"]["Properties"]["PolicyDocument"]["Fn::Join"][1]
    document = json.loads("".join(p if isinstance(p, str) else "deeplens-Cam7" for p in pieces))
    assert f"arn:aws:iot:{REGION}:{ACCOUNT}:client/deeplens-Cam7" in document["Statement"][0]["Resource"]
    assert any(s["Action"] == "iot:AssumeRoleWithCertificate" and s["Resource"].endswith(f"rolealias/{ALIAS}")
               for s in document["Statement"])


def test_the_claim_policy_allows_only_the_provisioning_topics():
    document = claim_policy("aws", REGION, ACCOUNT, NAMES.template)
    resources = [r for s in document["Statement"] if s["Action"] != "iot:Connect" for r in s["Resource"]]

    assert all("$aws/certificates/create/" in r or f"$aws/provisioning-templates/{NAMES.template}/provision/" in r
               for r in resources)
    assert {
        a
        for s in document["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    } == {"iot:Connect", "iot:Publish", "iot:Receive", "iot:Subscribe"}


def test_claim_needs_a_fleet_and_no_names(run_cli, aws_env):
    assert run_cli("register-device", "--claim").exit_code == 2
    assert run_cli("register-device", "--claim", "--fleet", FLEET, "--name", "Cam1").exit_code == 2


@pytest.mark.parametrize("argument", ["", "bad name"])
def test_install_sh_refuses_a_missing_or_bad_device_name(settings_for, tmp_path, argument):
    from deeplens_cli.targets.greengrass_v2.provisioning import ClaimBundle

    script = tmp_path / "install.sh"
    script.write_text(ClaimBundle(FLEET, NAMES.template, REGION, ALIAS, DATA, CREDENTIALS).install_sh())
    result = subprocess.run(["sh", str(script), argument], capture_output=True, text=True)
    assert result.returncode == 2 and "usage" in result.stderr
