"""Claim-based fleet provisioning (`register-device --fleet G --claim`): the provisioning role and template, a
claim certificate with a minimal policy, and one bundle with the fleet provisioning plugin's configuration and an
install.sh.

moto has no provisioning templates, so every request of the plan is checked with botocore's Stubber: the client's
parameter validation checks each request against the IoT / IAM service model before the stub answers, the
Stubber checks each canned answer against the output shape, and `expected_params` pins what is sent.

Not exercised here (no device, no IoT Core): the plugin's MQTT exchange on first boot (CreateKeysAndCertificate /
RegisterThing over `$aws/...` topics), IoT evaluating the template's intrinsic functions, and the installer run.
"""

from __future__ import annotations

import io
import json
import stat
import subprocess

import boto3
import pytest
import yaml
from botocore.stub import ANY, Stubber

from deeplens_cli.aws import AwsContext
from deeplens_cli.executor import Executor
from deeplens_cli.output import Reporter
from deeplens_cli.targets.greengrass_v2 import GreengrassV2Target
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
CERT_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/" + "c" * 64
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{NAMES.role}"


def stubbed_context(settings) -> tuple[AwsContext, Stubber, Stubber]:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    ctx = AwsContext(session, None, sleep=lambda seconds: None)
    ctx._account_id = ACCOUNT
    iot, iam = ctx.client("iot"), ctx.client("iam")
    return ctx, Stubber(iot), Stubber(iam)


def expect_reads(iot: Stubber, iam: Stubber, template_body: str | None = None) -> None:
    iot.add_response("describe_role_alias", {"roleAliasDescription": {"roleAlias": ALIAS}}, {"roleAlias": ALIAS})
    iot.add_response("describe_endpoint", {"endpointAddress": DATA}, {"endpointType": "iot:Data-ATS"})
    iot.add_response("describe_endpoint", {"endpointAddress": CREDENTIALS}, {"endpointType": "iot:CredentialProvider"})
    iot.add_client_error("describe_thing_group", "ResourceNotFoundException", http_status_code=404,
                         expected_params={"thingGroupName": FLEET})
    iam.add_client_error("get_role", "NoSuchEntity", http_status_code=404, expected_params={"RoleName": NAMES.role})
    if template_body is None:
        iot.add_client_error("describe_provisioning_template", "ResourceNotFoundException", http_status_code=404,
                             expected_params={"templateName": NAMES.template})
    else:
        iot.add_response("describe_provisioning_template", {"templateName": NAMES.template,
                                                            "templateBody": template_body},
                         {"templateName": NAMES.template})
    iot.add_client_error("get_policy", "ResourceNotFoundException", http_status_code=404,
                         expected_params={"policyName": NAMES.claim_policy})


def expect_writes(iot: Stubber, iam: Stubber) -> None:
    iot.add_response("create_thing_group", {"thingGroupName": FLEET}, {
        "thingGroupName": FLEET, "thingGroupProperties": ANY})
    iam.add_response("create_role", {"Role": {"Path": "/", "RoleName": NAMES.role, "RoleId": "AROAEXAMPLE12345678",
                                              "Arn": ROLE_ARN, "CreateDate": "2026-11-30T00:00:00Z"}},
                     {"RoleName": NAMES.role, "AssumeRolePolicyDocument": ANY, "Description": ANY})
    iam.add_response("attach_role_policy", {}, {
        "RoleName": NAMES.role, "PolicyArn": "arn:aws:iam::aws:policy/service-role/AWSIoTThingsRegistration"})
    iot.add_response("create_provisioning_template", {"templateName": NAMES.template}, {
        "templateName": NAMES.template, "templateBody": ANY, "enabled": True, "provisioningRoleArn": ROLE_ARN,
        "type": "FLEET_PROVISIONING", "description": ANY})
    iot.add_response("create_policy", {"policyName": NAMES.claim_policy}, {
        "policyName": NAMES.claim_policy,
        "policyDocument": json.dumps(claim_policy("aws", REGION, ACCOUNT, NAMES.template))})
    iot.add_response("create_keys_and_certificate", {
        "certificateArn": CERT_ARN, "certificateId": "c" * 64, "certificatePem": "-----BEGIN CERTIFICATE-----\nMIIB\n"
        "-----END CERTIFICATE-----\n", "keyPair": {"PublicKey": "pub", "PrivateKey": "-----BEGIN RSA PRIVATE KEY-----"
                                                   "\nsecret\n-----END RSA PRIVATE KEY-----\n"}}, {"setAsActive": True})
    iot.add_response("attach_policy", {}, {"policyName": NAMES.claim_policy, "target": CERT_ARN})


def test_the_claim_plan_sends_model_valid_requests_and_writes_one_bundle(settings_for, tmp_path):
    settings = settings_for()
    ctx, iot, iam = stubbed_context(settings)
    expect_reads(iot, iam)
    expect_writes(iot, iam)
    out = tmp_path / "claim"

    with iot, iam:
        plan = GreengrassV2Target(ctx, settings).plan_claim_provisioning(FLEET, str(out))
        Executor(ctx, Reporter(stderr=io.StringIO()).progress).execute(plan)
        iot.assert_no_pending_responses()
        iam.assert_no_pending_responses()

    assert stat.S_IMODE((out / CLAIM_KEY).stat().st_mode) == 0o600
    assert (out / CLAIM_CERTIFICATE).read_text().startswith("-----BEGIN CERTIFICATE-----")
    plugin = yaml.safe_load((out / "config.yaml").read_text())["services"][PLUGIN]["configuration"]
    assert plugin["provisioningTemplate"] == NAMES.template
    assert (plugin["iotDataEndpoint"], plugin["iotCredentialEndpoint"], plugin["iotRoleAlias"]) == (DATA, CREDENTIALS,
                                                                                                 ALIAS)
    assert plugin["claimCertificatePath"].endswith(CLAIM_CERTIFICATE)
    assert plugin["claimCertificatePrivateKeyPath"].endswith(CLAIM_KEY)
    assert plugin["templateParameters"] == {"DeviceName": "DEVICE_NAME"}
    install = (out / "install.sh").read_text()
    assert "--trusted-plugin" in install and f"{PLUGIN}.jar" in install
    subprocess.run(["sh", "-n", str(out / "install.sh")], check=True)  # it parses


def test_an_unchanged_template_is_kept(settings_for, tmp_path):
    settings = settings_for()
    ctx, iot, iam = stubbed_context(settings)
    body = json.dumps(provisioning_template("aws", REGION, ACCOUNT, FLEET, ALIAS), sort_keys=True)
    expect_reads(iot, iam, template_body=body)

    with iot, iam:
        plan = GreengrassV2Target(ctx, settings).plan_claim_provisioning(FLEET, str(tmp_path / "claim"))

    [template] = [a for a in plan.actions if a.resource.startswith("iot-provisioning-template/")]
    assert template.verb == "noop"


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
