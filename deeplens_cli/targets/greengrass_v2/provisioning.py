"""Claim-based fleet provisioning: one bundle that any number of cameras install with; each registers itself.

`register-device --fleet G --claim` makes, once per fleet:

* an IAM provisioning role that AWS IoT assumes to create things (trusted by iot.amazonaws.com, with the AWS
  managed policy AWSIoTThingsRegistration);
* an IoT fleet provisioning template: a thing `deeplens-<DeviceName>` carrying our attributes (so `devices` and
  `status` see it like any registered camera) in thing group G, its own minimal core policy (the document of
  naming.core_policy, with the thing name filled in by the template) and the certificate IoT issues to it;
* a claim certificate whose policy allows nothing but connecting and the two provisioning MQTT exchanges
  (`$aws/certificates/create/*` and `$aws/provisioning-templates/<template>/provision/*`);
* one bundle: the claim certificate and key (0600), the Greengrass fleet provisioning plugin's configuration in
  config.yaml (`aws.greengrass.FleetProvisioningByClaim`: provisioningTemplate, claimCertificatePath,
  claimCertificatePrivateKeyPath, rootCaPath, iotDataEndpoint, iotCredentialEndpoint, iotRoleAlias, awsRegion,
  rootPath, templateParameters), and an install.sh that takes the device name as its argument.

On first boot the plugin exchanges the claim for the device's own certificate and the nucleus starts as that
thing, with our role alias. The device side (the plugin's MQTT exchange) cannot run here; moto has no
provisioning templates, so the requests are checked with botocore's Stubber against the service model.

`plan_claim_provisioning` is a function of the shared `V2Context` (context.py); it uses register's
`shared_registration_reads` (role alias and endpoints) and `plan_thing_group` (the fleet).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deeplens_cli.aws import maybe
from deeplens_cli.errors import ConfigError
from deeplens_cli.plan import Action, ApiCall, LocalStep, Plan, Ref, noop
from deeplens_cli.targets import bundle as bundle_files
from deeplens_cli.targets.base import NAME_ATTRIBUTE, TARGET_ATTRIBUTE
from deeplens_cli.targets.greengrass_v2.core_bundle import (
    GREENGRASS_ROOT,
    NUCLEUS_DOWNLOAD,
    ROOT_CA_DOWNLOAD,
    amazon_root_ca_1,
    nucleus_config,
)
from deeplens_cli.targets.greengrass_v2.naming import TARGET, THING_PREFIX, core_policy
from deeplens_cli.targets.greengrass_v2.register import plan_thing_group, shared_registration_reads
from deeplens_cli.targets.iot import NOT_FOUND

if TYPE_CHECKING:
    from deeplens_cli.targets.greengrass_v2.context import V2Context

PLUGIN = "aws.greengrass.FleetProvisioningByClaim"
PLUGIN_DOWNLOAD = ("https://d2s8p88vqu9w66.cloudfront.net/releases/aws-greengrass-FleetProvisioningByClaim/"
                   "fleetprovisioningbyclaim-latest.jar")
REGISTRATION_POLICY_ARN = "arn:{partition}:iam::aws:policy/service-role/AWSIoTThingsRegistration"
CLAIM_CERTIFICATE, CLAIM_KEY = "claim.pem.crt", "claim.private.pem.key"
CLAIM_DIR = f"{GREENGRASS_ROOT}/claim-certs"
THING_PLACEHOLDER = "@@THING@@"  # where the template puts each device's thing name into its policy document


@dataclass(frozen=True)
class ClaimNames:
    """The fleet's provisioning resources, named after the fleet so a re-run finds them."""

    fleet: str

    @property
    def template(self) -> str:
        return f"deeplens-{self.fleet}-provisioning"

    @property
    def claim_policy(self) -> str:
        return f"deeplens-{self.fleet}-claim"

    @property
    def role(self) -> str:
        return f"deeplens-{self.fleet}-provisioning-role"


def claim_policy(partition: str, region: str, account: str, template: str) -> dict[str, Any]:
    """What a claim certificate may do: connect, and the two MQTT exchanges of provisioning by claim."""
    iot = f"arn:{partition}:iot:{region}:{account}"
    exchanges = ["$aws/certificates/create/*", f"$aws/provisioning-templates/{template}/provision/*"]
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
         "Resource": [f"{iot}:topic/{topic}" for topic in exchanges]},
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": [f"{iot}:topicfilter/{topic}" for topic in exchanges]},
    ]}


def provisioning_template(partition: str, region: str, account: str, fleet: str, role_alias: str) -> dict[str, Any]:
    """The template body: a thing named `deeplens-<DeviceName>` with our attributes, in the fleet, with its own
    minimal core policy and the certificate IoT issues it."""
    thing = {"Fn::Join": ["", [THING_PREFIX, {"Ref": "DeviceName"}]]}
    document = json.dumps(core_policy(partition, region, account, THING_PLACEHOLDER, role_alias), sort_keys=True)
    pieces: list[Any] = []
    for index, text in enumerate(document.split(THING_PLACEHOLDER)):
        if index:
            pieces.append(thing)
        pieces.append(text)
    return {
        "Parameters": {"DeviceName": {"Type": "String"}, "AWS::IoT::Certificate::Id": {"Type": "String"}},
        "Resources": {
            "thing": {"Type": "AWS::IoT::Thing", "Properties": {
                "ThingName": thing, "ThingGroups": [fleet],
                "AttributePayload": {TARGET_ATTRIBUTE: TARGET, NAME_ATTRIBUTE: {"Ref": "DeviceName"}}},
                "OverrideSettings": {"AttributePayload": "MERGE", "ThingGroups": "DO_NOTHING"}},
            "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": {"Fn::Join": ["", pieces]}}},
            "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {
                "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "Active"}},
        },
    }


@dataclass(frozen=True)
class ClaimBundle:
    """The one bundle every camera of the fleet installs with."""

    fleet: str
    template: str
    region: str
    role_alias: str
    data_endpoint: str
    credential_endpoint: str

    def config_yaml(self) -> str:
        return nucleus_config(
            [f"Greengrass V2 nucleus + fleet provisioning by claim for fleet {self.fleet} (written by deeplens-cli).",
             "install.sh fills in NUCLEUS_VERSION and DEVICE_NAME (its argument)."],
            {"services": {"aws.greengrass.Nucleus": {"version": "NUCLEUS_VERSION"}, PLUGIN: {"configuration": {
                "rootPath": GREENGRASS_ROOT, "awsRegion": self.region, "iotDataEndpoint": self.data_endpoint,
                "iotCredentialEndpoint": self.credential_endpoint, "iotRoleAlias": self.role_alias,
                "provisioningTemplate": self.template,
                "claimCertificatePath": f"{CLAIM_DIR}/{CLAIM_CERTIFICATE}",
                "claimCertificatePrivateKeyPath": f"{CLAIM_DIR}/{CLAIM_KEY}",
                "rootCaPath": f"{GREENGRASS_ROOT}/AmazonRootCA1.pem",
                "templateParameters": {"DeviceName": "DEVICE_NAME"}}}}})

    def install_sh(self) -> str:
        root = GREENGRASS_ROOT
        return f"""#!/bin/sh
# Installs the AWS IoT Greengrass V2 nucleus with fleet provisioning by claim (fleet {self.fleet}).
# Run on each camera, as root, from this folder, with the camera's name:   sudo sh ./install.sh Cam17
# On first start the camera registers itself as IoT thing {THING_PREFIX}Cam17 in thing group {self.fleet}.
set -eu
cd "$(dirname "$0")"
NAME="${{1:-}}"
echo "$NAME" | grep -Eq '^[A-Za-z0-9][A-Za-z0-9-]{{0,99}}$' || \
{{ echo "usage: sh install.sh DEVICE_NAME (letters, digits, hyphens)" >&2; exit 2; }}
command -v java >/dev/null 2>&1 || {{ echo "install Java 11 or later first" >&2; exit 1; }}
mkdir -p {CLAIM_DIR}
chmod 755 {Path(root).parent}
install -m 644 {CLAIM_CERTIFICATE} {CLAIM_DIR}/{CLAIM_CERTIFICATE}
install -m 600 {CLAIM_KEY} {CLAIM_DIR}/{CLAIM_KEY}
if [ -f AmazonRootCA1.pem ]; then install -m 644 AmazonRootCA1.pem {root}/AmazonRootCA1.pem
else curl -fsS {ROOT_CA_DOWNLOAD} -o {root}/AmazonRootCA1.pem; fi
if [ ! -f GreengrassInstaller/lib/Greengrass.jar ]; then
  curl -fsSL {NUCLEUS_DOWNLOAD} -o greengrass-nucleus-latest.zip
  unzip -q -o greengrass-nucleus-latest.zip -d GreengrassInstaller
fi
[ -f GreengrassInstaller/{PLUGIN}.jar ] || curl -fsSL {PLUGIN_DOWNLOAD} -o GreengrassInstaller/{PLUGIN}.jar
VERSION=$(java -jar GreengrassInstaller/lib/Greengrass.jar --version | sed -n 's/^AWS Greengrass v//p')
[ -n "$VERSION" ] || {{ echo "could not read the nucleus version" >&2; exit 1; }}
sed -e "s/NUCLEUS_VERSION/$VERSION/" -e "s/DEVICE_NAME/$NAME/" config.yaml > GreengrassInstaller/config.yaml
java -Droot="{root}" -Dlog.store=FILE -jar ./GreengrassInstaller/lib/Greengrass.jar \\
  --trusted-plugin ./GreengrassInstaller/{PLUGIN}.jar --init-config ./GreengrassInstaller/config.yaml \\
  --component-default-user ggc_user:ggc_group --setup-system-service true
echo "Greengrass $VERSION installed; the camera registers itself as {THING_PREFIX}$NAME in fleet {self.fleet}"
"""

    def write(self, out_dir: str, certificate_pem: str, private_key: str, root_ca: str | None) -> None:
        folder = Path(out_dir)
        bundle_files.prepare_folder(folder)
        bundle_files.replace_file(folder / CLAIM_CERTIFICATE, certificate_pem)
        bundle_files.write_secret(folder / CLAIM_KEY, private_key)
        if root_ca:
            bundle_files.replace_file(folder / "AmazonRootCA1.pem", root_ca)
        bundle_files.replace_file(folder / "config.yaml", self.config_yaml())
        bundle_files.replace_file(folder / "install.sh", self.install_sh(), mode=0o755)


def plan_claim_provisioning(v2: V2Context, fleet: str, out_dir: str) -> Plan:
    folder = Path(out_dir)
    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"--out {out_dir} already exists and is not empty",
                          "a claim bundle holds a private key issued once: choose another --out")
    names = ClaimNames(fleet)
    iot, iam = v2.ctx.client("iot"), v2.ctx.client("iam")
    alias_name, data_endpoint, credential_endpoint = shared_registration_reads(v2)
    partition, region, account = v2.partition, v2.ctx.region, v2.ctx.account_id
    plan = Plan(f"claim-based provisioning for fleet {fleet} (Greengrass V2)")
    plan.add(plan_thing_group(v2, fleet))

    role = maybe(lambda: iam.get_role(RoleName=names.role), ("NoSuchEntity",))
    if role is None:
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"Service": "iot.amazonaws.com"}}]}
        plan.add(Action(f"iam-role/{names.role}", "create", "AWS IoT assumes it to register the cameras", (
            ApiCall("iam", "create_role", {"RoleName": names.role, "AssumeRolePolicyDocument": json.dumps(trust),
                                           "Description": f"deeplens-cli fleet provisioning of {fleet}"},
                    outputs={"provisioning_role_arn": "Role.Arn"}),
            ApiCall("iam", "attach_role_policy", {"RoleName": names.role, "PolicyArn":
                                                  REGISTRATION_POLICY_ARN.format(partition=partition)}),
        )))
        role_arn: Any = Ref("provisioning_role_arn")
    else:
        plan.add(noop(f"iam-role/{names.role}", "exists"))
        role_arn = role["Role"]["Arn"]

    body = json.dumps(provisioning_template(partition, region, account, fleet, alias_name), sort_keys=True)
    current = maybe(lambda: iot.describe_provisioning_template(templateName=names.template), NOT_FOUND)
    resource = f"iot-provisioning-template/{names.template}"
    if current is None:
        plan.add(Action(resource, "create", f"cameras register themselves into {fleet}", (
            ApiCall("iot", "create_provisioning_template", {
                "templateName": names.template, "templateBody": body, "enabled": True,
                "provisioningRoleArn": role_arn, "type": "FLEET_PROVISIONING",
                "description": f"deeplens-cli: Greengrass V2 cameras of fleet {fleet}"}),
        )))
    elif json.loads(current.get("templateBody") or "{}") != json.loads(body):
        plan.add(Action(resource, "update", "template body differs", (
            ApiCall("iot", "create_provisioning_template_version", {
                "templateName": names.template, "templateBody": body, "setAsDefault": True}),
        )))
    else:
        plan.add(noop(resource, "up to date"))

    policy = claim_policy(partition, region, account, names.template)
    if maybe(lambda: iot.get_policy(policyName=names.claim_policy), NOT_FOUND) is None:
        plan.add(Action(f"iot-policy/{names.claim_policy}", "create", "claim certificates may only provision", (
            ApiCall("iot", "create_policy", {"policyName": names.claim_policy,
                                             "policyDocument": json.dumps(policy)}),
        )))
    else:
        plan.add(noop(f"iot-policy/{names.claim_policy}", "exists"))

    bundle = ClaimBundle(fleet, names.template, region, alias_name, data_endpoint, credential_endpoint)
    root_ca = amazon_root_ca_1()

    def write_bundle(variables: dict[str, Any]) -> dict[str, Any]:
        private_key = variables.pop("claim_private_key")
        bundle.write(out_dir, variables["claim_certificate_pem"], private_key, root_ca)
        return {"bundle_dir": out_dir}

    plan.add(Action(f"iot-certificate/claim-{fleet}", "create", f"claim certificate; its key goes to {out_dir}", (
        ApiCall("iot", "create_keys_and_certificate", {"setAsActive": True}, outputs={
            "claim_certificate_arn": "certificateArn", "claim_certificate_pem": "certificatePem",
            "claim_private_key": "keyPair.PrivateKey"}),
        LocalStep(f"write the claim bundle to {out_dir} (private key mode 0600)", write_bundle),
        ApiCall("iot", "attach_policy", {"policyName": names.claim_policy, "target": Ref("claim_certificate_arn")}),
    ), details={"bundle": out_dir, "template": names.template}))
    return plan
