"""Claim-based fleet provisioning: one bundle that any number of cameras install with; each registers itself.

`register-device --fleet G --claim` makes, once per fleet:

* an IAM provisioning role that AWS IoT assumes to create things (trusted by iot.amazonaws.com, with the AWS
  managed policy AWSIoTThingsRegistration);
* the claim's guard (claim_guard.py): a pre-provisioning hook IoT asks before every registration, which lets
  through only a name on the fleet's allow-list (`--allow`, `--allow-file`) that is not a thing yet;
* an IoT fleet provisioning template naming that hook: a thing `deeplens-<DeviceName>` carrying our attributes
  (so `devices` and `status` see it like any registered camera) in thing group G, its own minimal core policy
  (the document of naming.core_policy, with the thing name filled in by the template) and the certificate IoT
  issues to it; `DeviceName` carries the device-name rule as its AllowedPattern;
* a claim certificate whose policy allows nothing but connecting (not as one of our things) and the two JSON
  provisioning MQTT exchanges (`$aws/certificates/create/json` and
  `$aws/provisioning-templates/<template>/provision/json`);
* one bundle: the claim certificate and key (0600), the Greengrass fleet provisioning plugin's configuration in
  config.yaml (`aws.greengrass.FleetProvisioningByClaim`: provisioningTemplate, claimCertificatePath,
  claimCertificatePrivateKeyPath, rootCaPath, iotDataEndpoint, iotCredentialEndpoint, iotRoleAlias, awsRegion,
  rootPath, templateParameters), and an install.sh that takes the device name as its argument.

A fleet has one claim: a re-run edits the allow-list and repairs the rest; `--rotate` issues a new claim
certificate and bundle, then revokes the old one. On first boot the plugin exchanges the claim for the device's own
certificate and the nucleus starts as that thing, with our role alias. The device side (the plugin's MQTT
exchange) cannot run here; moto has no provisioning templates, so tests answer those operations next to moto
and check them against botocore's model (tests/support/iot_provisioning.py).

`plan_claim_provisioning` is a function of the shared `V2Context` (context.py); it uses register's
`shared_registration_reads` (role alias and endpoints) and `plan_thing_group` (the fleet).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from deeplens_cli.account.roles import RoleSpec, create_role_call
from deeplens_cli.aws import collect, maybe
from deeplens_cli.engine.plan import Action, AlreadyExists, ApiCall, LocalStep, Plan, Ref, Step, noop
from deeplens_cli.errors import ConfigError
from deeplens_cli.settings.device_names import DEVICE_NAME
from deeplens_cli.targets import bundle as bundle_files
from deeplens_cli.targets import iot as device_iot
from deeplens_cli.targets import registration
from deeplens_cli.targets.base import NAME_ATTRIBUTE, TARGET_ATTRIBUTE
from deeplens_cli.targets.greengrass_v2 import claim_guard
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
from deeplens_cli.targets.registration import certificate_of_pem, certificate_resource, csr_for, new_private_key

if TYPE_CHECKING:
    from deeplens_cli.targets.greengrass_v2.context import V2Context

PLUGIN = "aws.greengrass.FleetProvisioningByClaim"
PLUGIN_DOWNLOAD = ("https://d2s8p88vqu9w66.cloudfront.net/releases/aws-greengrass-FleetProvisioningByClaim/"
                   "fleetprovisioningbyclaim-latest.jar")
REGISTRATION_POLICY_ARN = "arn:{partition}:iam::aws:policy/service-role/AWSIoTThingsRegistration"
CLAIM_CERTIFICATE, CLAIM_KEY = "claim.pem.crt", "claim.private.pem.key"
CLAIM_DIR = f"{GREENGRASS_ROOT}/claim-certs"
# The device-name rule as the template's AllowedPattern. AWS IoT documents only Type and Default for template
# parameters, so the hook (claim_hook.py, the same rule) is what enforces it; the pattern says it in the template.
DEVICE_NAME_PATTERN = "^" + DEVICE_NAME.pattern.removesuffix(r"\Z") + "$"
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
    """What a claim certificate may do: connect (never as one of our things, which would push that camera off
    IoT), and the two JSON MQTT exchanges of provisioning by claim (CreateKeysAndCertificate, then RegisterThing
    with this fleet's template) - what the fleet provisioning plugin uses, nothing else."""
    iot = f"arn:{partition}:iot:{region}:{account}"
    exchanges = ["$aws/certificates/create/json", f"$aws/provisioning-templates/{template}/provision/json"]
    topics = [f"{topic}{tail}" for topic in exchanges for tail in ("", "/*")]
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
        {"Effect": "Deny", "Action": "iot:Connect", "Resource": f"{iot}:client/{THING_PREFIX}*"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
         "Resource": [f"{iot}:topic/{topic}" for topic in topics]},
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": [f"{iot}:topicfilter/{topic}" for topic in topics]},
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
        "Parameters": {"DeviceName": {"Type": "String", "AllowedPattern": DEVICE_NAME_PATTERN},
                       "AWS::IoT::Certificate::Id": {"Type": "String"}},
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


def plan_claim_provisioning(v2: V2Context, fleet: str, out_dir: str, allow: Sequence[str] = (),
                            rotate: bool = False) -> Plan:
    """The fleet's claim: thing group, provisioning role, the guard (hook, its role and permission, the
    allow-list plus `allow`), the template naming the hook, the claim policy, and - once per fleet, or again with
    `rotate`, which then revokes the old ones - a claim certificate and its bundle in `out_dir`."""
    names, guard = ClaimNames(fleet), claim_guard.HookNames(fleet)
    longest = max((names.role, guard.role, guard.function), key=len)  # refused before any call, not half way
    if len(longest) > claim_guard.NAME_LIMIT:
        raise ConfigError(f"--fleet {fleet} is too long for claim provisioning ({longest} would be {len(longest)} "
                          f"characters, IAM and Lambda allow {claim_guard.NAME_LIMIT})",
                          f"use a fleet name of at most {claim_guard.NAME_LIMIT - len(ClaimNames('').role)} "
                          f"characters")
    claim_guard.allow_list_location(v2, guard)  # refused before any call when devices could write it
    iot, iam = v2.ctx.client("iot"), v2.ctx.client("iam")
    existing = _claim_certificates(iot, names.claim_policy)
    folder = Path(out_dir)
    # --out may hold what an interrupted run wrote: a claim it issued but did not attach yet, or (rotating) the new
    # claim, attached, with the old ones still to revoke. Either is finished, never issued again.
    held = _held_claim(iot, folder, names.template)
    others = [arn for arn in existing if arn != held]
    attach = held if held is not None and held not in existing else None
    issue = attach is None and not (rotate and held is not None and others) and (rotate or not existing)
    revoke = others if rotate else []
    if issue and folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"--out {out_dir} already exists and is not empty",
                          "a claim bundle holds a private key issued once: choose another --out")
    allow_list = claim_guard.read_allow_list(v2, guard)
    alias_name, data_endpoint, credential_endpoint = shared_registration_reads(v2)
    partition, region, account = v2.partition, v2.ctx.region, v2.ctx.account_id
    plan = Plan(f"claim-based provisioning for fleet {fleet} (Greengrass V2)")
    plan.add(plan_thing_group(v2, fleet))

    role = maybe(lambda: iam.get_role(RoleName=names.role), ("NoSuchEntity",))
    if role is None:
        spec = RoleSpec(names.role, "iot.amazonaws.com", f"deeplens-cli fleet provisioning of {fleet}")
        plan.add(Action(f"iam-role/{names.role}", "create", "AWS IoT assumes it to register the cameras", (
            create_role_call(spec, "provisioning_role_arn"),
            ApiCall("iam", "attach_role_policy", {"RoleName": names.role, "PolicyArn":
                                                  REGISTRATION_POLICY_ARN.format(partition=partition)}),
        )))
        role_arn: Any = Ref("provisioning_role_arn")
    else:
        plan.add(noop(f"iam-role/{names.role}", "exists"))
        role_arn = role["Role"]["Arn"]

    # the guard before the template that names it: IoT never meets a template whose hook is missing
    plan.actions.extend(claim_guard.plan_hook(v2, guard, names.template, allow_list))
    registered = [name for name in allow if name not in allow_list.names and _is_thing(iot, THING_PREFIX + name)]
    plan.add(claim_guard.plan_allow_list(allow_list, fleet, list(allow), registered))
    plan.add(_plan_template(v2, names, role_arn, claim_guard.function_arn(v2, guard),
                            json.dumps(provisioning_template(partition, region, account, fleet, alias_name),
                                       sort_keys=True)))

    policy = claim_policy(partition, region, account, names.template)
    plan.add(device_iot.plan_core_policy(iot, names.claim_policy, policy, "claim certificates may only provision",
                                         "up to date"))
    if attach is not None:
        plan.add(Action(f"iot-certificate/claim-{fleet}", "update",
                        f"the claim in {out_dir} is not attached to its policy yet (an interrupted run)", (
                            ApiCall("iot", "attach_policy", {"policyName": names.claim_policy, "target": attach}),
                        ), details={"bundle": out_dir}))
    elif not issue:
        plan.add(noop(f"iot-certificate/claim-{fleet}", f"the claim in {out_dir} is the new one" if held else
                      "a claim certificate exists; --rotate issues a new one and revokes it",
                      certificates=[arn.rsplit("/", 1)[-1] for arn in existing]))
    if not issue:
        plan.actions.extend(_revoke_claims(names, revoke))
        return plan

    bundle = ClaimBundle(fleet, names.template, region, alias_name, data_endpoint, credential_endpoint)
    root_ca = amazon_root_ca_1()

    def make_key(variables: dict[str, Any]) -> dict[str, Any]:
        private_key = new_private_key()
        return {"claim_private_key": private_key, "claim_key_made_at": time.time(),
                "csr": csr_for(private_key, f"claim-{fleet}")}

    def retire_duplicates(variables: dict[str, Any]) -> dict[str, Any]:
        return registration.retire_duplicates(iot, variables, lambda: (variables["claim_private_key"],
                                                                       variables["claim_key_made_at"]))

    def write_bundle(variables: dict[str, Any]) -> dict[str, Any]:
        private_key = variables.pop("claim_private_key")
        bundle.write(out_dir, variables["certificate_pem"], private_key, root_ca)
        return {"bundle_dir": out_dir}

    # the key is made here and IoT signs its CSR: a retry of a lost answer issues a second certificate for the same
    # key, which is found by that key and retired (there is no idempotency token to ask IoT for one certificate)
    plan.add(Action(f"iot-certificate/claim-{fleet}", "create", f"claim certificate; its key goes to {out_dir}", (
        LocalStep("make the claim's private key and its signing request", make_key),
        registration.issue_certificate_call(),
        LocalStep("check that one claim certificate was issued (a retried request can issue two)",
                  retire_duplicates),
        LocalStep(f"write the claim bundle to {out_dir} (private key mode 0600)", write_bundle),
        ApiCall("iot", "attach_policy", {"policyName": names.claim_policy, "target": Ref("certificate_arn")}),
    ), details={"bundle": out_dir, "template": names.template}))
    plan.actions.extend(_revoke_claims(names, revoke))  # after the new claim is in its bundle
    return plan


def _revoke_claims(names: ClaimNames, certificates: list[str]) -> list[Action]:
    """The claims a rotation replaces: inactive first (IoT refuses it from then on), then detached and deleted - so
    an interruption leaves it revoked, and still attached where the re-run finds it. Planned after the new claim
    is issued, so a rotation that fails half way leaves a working claim."""
    actions = []
    for arn in certificates:
        certificate_id = arn.rsplit("/", 1)[-1]
        actions.append(Action(certificate_resource(certificate_id), "delete",
                              "the claim it replaces: revoked (inactive, detached, deleted)", (
            ApiCall("iot", "update_certificate", {"certificateId": certificate_id, "newStatus": "INACTIVE"},
                    ignore_codes=NOT_FOUND),
            ApiCall("iot", "detach_policy", {"policyName": names.claim_policy, "target": arn}, ignore_codes=NOT_FOUND),
            ApiCall("iot", "delete_certificate", {"certificateId": certificate_id},
                    retry=device_iot.CERTIFICATE_DETACH, ignore_codes=NOT_FOUND))))
    return actions


def _held_claim(iot: Any, folder: Path, template: str) -> str | None:
    """The ARN of the active claim certificate whose certificate and key the bundle folder holds, when the folder
    is this fleet's claim bundle (its config.yaml names the template) and the certificate belongs to no thing."""
    certificate, key, config = folder / CLAIM_CERTIFICATE, folder / CLAIM_KEY, folder / "config.yaml"
    if not (bundle_files.is_folder(folder) and certificate.is_file() and config.is_file()
            and bundle_files.holds_private_key(key)):
        return None
    if f"provisioningTemplate: {json.dumps(template)}" not in config.read_text(encoding="utf-8", errors="replace"):
        return None
    found = certificate_of_pem(iot, certificate.read_text(encoding="utf-8", errors="replace"))
    if found is None or found.status != "ACTIVE" or collect(iot, "list_principal_things", "things",
                                                             principal=found.arn):
        return None
    return found.arn


def _is_thing(iot: Any, thing: str) -> bool:
    return maybe(lambda: iot.describe_thing(thingName=thing), NOT_FOUND) is not None


def _claim_certificates(iot: Any, claim_policy_name: str) -> list[str]:
    """The ARNs of the certificates holding the fleet's claim policy (the claim, and an unrotated old one)."""
    if maybe(lambda: iot.get_policy(policyName=claim_policy_name), NOT_FOUND) is None:
        return []
    return [t for t in collect(iot, "list_targets_for_policy", "targets", policyName=claim_policy_name)
            if ":cert/" in t]


def _plan_template(v2: V2Context, names: ClaimNames, role_arn: Any, hook_arn: str, body: str) -> Action:
    """Create the template with its hook, or bring body, hook and enablement back to what they should be."""
    iot = v2.ctx.client("iot")
    hook = {"payloadVersion": claim_guard.HOOK_PAYLOAD_VERSION, "targetArn": hook_arn}
    current = maybe(lambda: iot.describe_provisioning_template(templateName=names.template), NOT_FOUND)
    resource = f"iot-provisioning-template/{names.template}"
    if current is None:
        return Action(resource, "create", f"cameras register themselves into {names.fleet}, if the hook agrees", (
            ApiCall("iot", "create_provisioning_template", {
                "templateName": names.template, "templateBody": body, "enabled": True,
                "provisioningRoleArn": role_arn, "type": "FLEET_PROVISIONING", "preProvisioningHook": hook,
                "description": f"deeplens-cli: Greengrass V2 cameras of fleet {names.fleet}"},
                exists=AlreadyExists(("ResourceAlreadyExistsException",), _template_as_created)),
        ))
    steps: list[Step] = []
    reasons = []
    if json.loads(current.get("templateBody") or "{}") != json.loads(body):
        reasons.append("template body differs")
        steps.append(ApiCall("iot", "create_provisioning_template_version", {
            "templateName": names.template, "templateBody": body, "setAsDefault": True}))
    current_hook = current.get("preProvisioningHook") or {}
    if current_hook.get("targetArn") != hook_arn or current.get("enabled") is not True:
        reasons.append("no pre-provisioning hook" if not current_hook else "hook or enablement differs")
        steps.append(ApiCall("iot", "update_provisioning_template", {
            "templateName": names.template, "enabled": True, "preProvisioningHook": hook}))
    if not steps:
        return noop(resource, "up to date")
    return Action(resource, "update", "; ".join(reasons), tuple(steps))


def _template_as_created(ctx: Any, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """CreateProvisioningTemplate retried after a lost answer: the template that exists is ours when its body,
    role, hook and enablement are what we sent."""
    found = maybe(lambda: ctx.client("iot").describe_provisioning_template(templateName=params["templateName"]),
                  NOT_FOUND)
    if (found is None or json.loads(found.get("templateBody") or "{}") != json.loads(params["templateBody"])
            or found.get("provisioningRoleArn") != params["provisioningRoleArn"] or found.get("enabled") is not True
            or (found.get("preProvisioningHook") or {}).get("targetArn") != params["preProvisioningHook"]["targetArn"]):
        return None
    return {key: found.get(key) for key in ("templateArn", "templateName", "defaultVersionId")}
