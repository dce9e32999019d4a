"""The Greengrass V2 target: any Linux camera (or a reflashed DeepLens) running the Greengrass V2 nucleus.

What deeplens-cli creates for one device `NAME`:

* the IoT thing `deeplens-NAME` (attributes `deeplens_name=NAME`, `deeplens_target=v2`, which is how every later
  command finds it), an active certificate attached to it, and the IoT policy `deeplens-v2-core-NAME` attached
  to the certificate (never to a thing group: thing-group policies do not grant Greengrass data-plane actions).
  Registration is resumable: the name waits in `deeplens_pending` until the last step, and a re-run after an
  interruption finds the thing by name and the certificate by the bundle already written to `--out`;
* with `--fleet G`, membership of the IoT thing group `G` (created when missing, marked as ours);
* a device bundle: certificate, private key (mode 0600, written once - IoT issues it only in the create call),
  Amazon Root CA 1, the nucleus `config.yaml` and `install.sh` with the exact installer command.

The Greengrass core device record appears when the nucleus first connects; deployments made before that wait
in the cloud until it does. `deploy` publishes the component (component.py) and sends the complete component
set to the thing or thing group, then follows the device's own report (`list_effective_deployments`), and for a
single device also the component's lifecycle state (`list_installed_components`): a deployment can report
success the moment `Run` starts, even if `Run` then fails.

Health is what the device last reported (at startup, after a deployment, when a component breaks and every 24 h
by default), so a HEALTHY status can be stale; status output always shows when it was reported.

Thing names never contain ':' (IoT rejects it); device names are letters, digits and hyphens, so
`deeplens-NAME` is always valid. The IoT policy names the thing exactly - client IDs `T` and `T#N` (the nucleus
opens `T#2`, `T#3`... after 50 subscriptions) - instead of the documented `T*`, which would also match the
thing of a device whose name merely starts with this one's.

destroy keeps no device resource: deployments (canceled, then deleted), the core device record, certificates
(detached, deactivated, deleted), the policy and the thing. Software already installed on the device keeps
running, but without its certificate it can neither connect nor obtain AWS credentials. With every V2 device
gone, destroy also deletes the fleet deployments and empty thing groups deeplens-cli created, the component
versions, and their artifacts: an artifact exists only for its version, and a version without its artifact
could not be deployed anyway.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from deeplens_cli.aws import collect, maybe
from deeplens_cli.errors import DeeplensError
from deeplens_cli.plan import Action, ApiCall, LocalStep, Plan, Ref, Step, noop
from deeplens_cli.policies import partition_for
from deeplens_cli.targets import NAME_ATTRIBUTE, TARGET_ATTRIBUTE, DeploymentOutcome, Device, WaitClock
from deeplens_cli.targets import bundle as bundle_files
from deeplens_cli.targets import component as comp
from deeplens_cli.targets import iot as device_iot
from deeplens_cli.targets.iot import PENDING_ATTRIBUTE

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.config import Settings
    from deeplens_cli.output import Reporter
    from deeplens_cli.package import Package
    from deeplens_cli.plan import ExecutionResult

TARGET = "v2"
THING_PREFIX = "deeplens-"
POLICY_PREFIX = "deeplens-v2-core-"
MANAGED_GROUP_ATTRIBUTE = "deeplens_cli"  # on thing groups created by register-device --fleet
MANAGED = "managed"
GREENGRASS_ROOT = "/greengrass/v2"
CERTIFICATE_FILE, PRIVATE_KEY_FILE = "device.pem.crt", "private.pem.key"  # in the device bundle
DERIVED_FILES = ("config.yaml", "install.sh", "README.md")
NUCLEUS_DOWNLOAD = "https://d2s8p88vqu9w66.cloudfront.net/releases/greengrass-nucleus-latest.zip"
ROOT_CA_DOWNLOAD = "https://www.amazontrust.com/repository/AmazonRootCA1.pem"
# SHA-256 of Amazon Root CA 1 (DER), as published by Amazon Trust Services; checked before it goes in a bundle.
AMAZON_ROOT_CA_1_SHA256 = "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e"
_MISSING = ("ResourceNotFoundException",)  # how IoT and Greengrass V2 say "no such resource"

SUCCESS_STATUSES = ("COMPLETED", "SUCCEEDED")  # COMPLETED for a thing target, SUCCEEDED for a thing group
FAILURE_STATUSES = ("FAILED", "TIMED_OUT", "CANCELED", "REJECTED")
RUNNING_STATES = ("RUNNING", "FINISHED")
BROKEN_STATES = ("ERRORED", "BROKEN")
COMPONENT_READY_WAIT_S = 300.0
COMPONENT_READY_POLL_S = 2.0
STALE_HEALTH_NOTE = "a core reports at startup, after deployments, when a component breaks and every 24 h by default"
FLEET_PIN_LIMIT = 100  # beyond this many members the nucleus is not pinned (one read per member)

# Where a failed deployment's error stack points, and what to do about it (codes: nucleus DeploymentErrorCode).
FAILURE_HINTS: tuple[tuple[str, str], ...] = (
    ("ARTIFACT_CHECKSUM_MISMATCH", "the artifact object changed after its component version was created; "
                                   "run `deeplens-cli deploy` again: it publishes a new version under a new key"),
    ("S3_", "the token exchange role cannot read the artifact: run `deeplens-cli register-roles` (it grants "
            "s3:GetObject on the artifact prefix)"),
    ("ACCESS_DENIED", "the device's IoT policy or token exchange role lacks a permission: run "
                      "`deeplens-cli register-roles`, then deploy again (deploy repairs the device policy)"),
    ("NO_AVAILABLE_COMPONENT_VERSION", "another deployment to this device (e.g. its thing group) requires "
                                       "different component versions; deploy to one target only"),
    ("COMPONENT_VERSION_REQUIREMENTS_NOT_MET", "another deployment to this device (e.g. its thing group) requires "
                                               "different component versions; deploy to one target only"),
    ("COMPONENT_BROKEN", "the component failed to start: read /greengrass/v2/logs/<component>.log on the device"),
    ("INSTALL", "the Install step failed (pip): read /greengrass/v2/logs/<component>.log on the device"),
)


def thing_name(device_name: str) -> str:
    return f"{THING_PREFIX}{device_name}"


def policy_name(device_name: str) -> str:
    return f"{POLICY_PREFIX}{device_name}"


# ---------------------------------------------------------------------------------------------- IoT policy


def core_policy(partition: str, region: str, account: str, thing: str, role_alias: str) -> dict[str, Any]:
    """The minimal IoT policy of a Greengrass V2 core (research/ggv2_facts.md §1), for one thing.

    MQTT: connect as the thing (`T`, and `T#N` for the extra connections the nucleus opens), health reports,
    jobs (deployments arrive as IoT jobs), shadows, and the results topic. Credentials: AssumeRoleWithCertificate
    on our role alias only. Greengrass data plane: the four actions nucleus 2.5+ needs.
    """
    iot = f"arn:{partition}:iot:{region}:{account}"
    things = f"$aws/things/{thing}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect",
             "Resource": [f"{iot}:client/{thing}", f"{iot}:client/{thing}#*"]},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": [
                f"{iot}:topic/{things}/greengrass/health/json",
                f"{iot}:topic/{things}/greengrassv2/health/json",
                f"{iot}:topic/{things}/jobs/*",
                f"{iot}:topic/{things}/shadow/*",
                f"{iot}:topic/{comp.results_topic(thing)}",
            ]},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [
                f"{iot}:topicfilter/{things}/jobs/*",
                f"{iot}:topicfilter/{things}/shadow/*",
            ]},
            {"Effect": "Allow", "Action": "iot:AssumeRoleWithCertificate",
             "Resource": f"{iot}:rolealias/{role_alias}"},
            {"Effect": "Allow", "Action": [
                "greengrass:GetComponentVersionArtifact",
                "greengrass:ResolveComponentCandidates",
                "greengrass:GetDeploymentConfiguration",
                "greengrass:ListThingGroupsForCoreDevice",
            ], "Resource": "*"},
        ],
    }


# ---------------------------------------------------------------------------------------------- device bundle


@dataclass(frozen=True)
class CoreBundle:
    """What a device needs to join as a Greengrass V2 core; written by `write` (the key never leaves it)."""

    thing: str
    region: str
    role_alias: str
    data_endpoint: str
    credential_endpoint: str

    def config_yaml(self) -> str:
        """The nucleus `--init-config` file (manual provisioning). install.sh fills in the nucleus version."""
        def q(value: str) -> str:
            return json.dumps(value)  # a JSON string is a valid, safely quoted YAML scalar

        root = GREENGRASS_ROOT
        return "\n".join([
            f"# AWS IoT Greengrass V2 nucleus configuration of core device {self.thing} (written by deeplens-cli).",
            "# install.sh replaces NUCLEUS_VERSION with the version of the nucleus it installs.",
            "system:",
            f"  certificateFilePath: {q(root + '/device.pem.crt')}",
            f"  privateKeyPath: {q(root + '/private.pem.key')}",
            f"  rootCaPath: {q(root + '/AmazonRootCA1.pem')}",
            f"  rootpath: {q(root)}",
            f"  thingName: {q(self.thing)}",
            "services:",
            "  aws.greengrass.Nucleus:",
            '    componentType: "NUCLEUS"',
            '    version: "NUCLEUS_VERSION"',
            "    configuration:",
            f"      awsRegion: {q(self.region)}",
            f"      iotRoleAlias: {q(self.role_alias)}",
            f"      iotDataEndpoint: {q(self.data_endpoint)}",
            f"      iotCredEndpoint: {q(self.credential_endpoint)}",
            "",
        ])

    def installer_command(self) -> str:
        return (f'java -Droot="{GREENGRASS_ROOT}" -Dlog.store=FILE -jar ./GreengrassInstaller/lib/Greengrass.jar '
                "--init-config ./GreengrassInstaller/config.yaml --component-default-user ggc_user:ggc_group "
                "--setup-system-service true")

    def install_sh(self) -> str:
        root = GREENGRASS_ROOT
        return f"""#!/bin/sh
# Installs the AWS IoT Greengrass V2 nucleus as core device {self.thing} (written by deeplens-cli).
# Run on the device, as root, from this folder:   sudo sh ./install.sh
# Needs Java 8 or later (e.g. apt-get install -y default-jre-headless), curl and unzip. Safe to run again.
# WARNING: --init-config replaces an existing Greengrass configuration on this device.
set -eu
cd "$(dirname "$0")"
command -v java >/dev/null 2>&1 || {{ echo "install Java 8 or later first (apt-get install -y default-jre-headless)" >&2; exit 1; }}
# The component builds its own Python environment (python3 -m venv); Debian ships venv support separately.
PACKAGES=""
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || PACKAGES="python3-venv"
case "$(uname -m)" in
  armv6l|armv7l)  # no numpy/OpenCV wheels for 32-bit ARM on PyPI: the component uses Debian's
    python3 -c 'import numpy' >/dev/null 2>&1 || PACKAGES="$PACKAGES python3-numpy"
    python3 -c 'import cv2' >/dev/null 2>&1 || PACKAGES="$PACKAGES python3-opencv" ;;
esac
if [ -n "$PACKAGES" ]; then
  command -v apt-get >/dev/null 2>&1 || {{ echo "install$PACKAGES with your package manager first" >&2; exit 1; }}
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PACKAGES
fi
mkdir -p {root}
chmod 755 {os.path.dirname(root)}
install -m 644 device.pem.crt {root}/device.pem.crt
install -m 600 private.pem.key {root}/private.pem.key
if [ -f AmazonRootCA1.pem ]; then
  install -m 644 AmazonRootCA1.pem {root}/AmazonRootCA1.pem
else
  curl -fsS {ROOT_CA_DOWNLOAD} -o {root}/AmazonRootCA1.pem
fi
if [ ! -f GreengrassInstaller/lib/Greengrass.jar ]; then
  curl -fsSL {NUCLEUS_DOWNLOAD} -o greengrass-nucleus-latest.zip
  unzip -q -o greengrass-nucleus-latest.zip -d GreengrassInstaller
fi
VERSION=$(java -jar GreengrassInstaller/lib/Greengrass.jar --version | sed -n 's/^AWS Greengrass v//p')
[ -n "$VERSION" ] || {{ echo "could not read the nucleus version from GreengrassInstaller/lib/Greengrass.jar" >&2; exit 1; }}
sed "s/NUCLEUS_VERSION/$VERSION/" config.yaml > GreengrassInstaller/config.yaml
{self.installer_command()}
# USB cameras are root:video 0660; the installer creates ggc_user without supplementary groups.
getent group video >/dev/null 2>&1 || groupadd --system video
usermod -aG video ggc_user
echo "Greengrass $VERSION installed as {self.thing}; now run: deeplens-cli deploy --device <name>"
"""

    def readme(self, device_name: str, has_root_ca: bool) -> str:
        ca = ("AmazonRootCA1.pem     Amazon Root CA 1 (verified by its SHA-256 fingerprint)\n" if has_root_ca else
              "(AmazonRootCA1.pem is downloaded by install.sh from Amazon Trust Services)\n")
        return f"""# Greengrass V2 core device {self.thing}

Bundle written by `deeplens-cli register-device --name {device_name} --greengrass v2`.

```
device.pem.crt        the device certificate (active, attached to IoT thing {self.thing})
private.pem.key       its private key - issued once, mode 0600: keep it secret, never commit it
{ca}config.yaml           nucleus configuration (region {self.region}, role alias {self.role_alias})
install.sh            installs the nucleus with that configuration
```

On the device (Linux, Java 8 or later, as root):

```
sudo sh ./install.sh
```

which copies the certificate, key and root CA to {GREENGRASS_ROOT}, downloads the nucleus installer
({NUCLEUS_DOWNLOAD}) unless ./GreengrassInstaller exists, and runs:

```
{self.installer_command()}
```

`--init-config` replaces any existing Greengrass configuration on the device. Then, on your workstation:

```
deeplens-cli deploy --device {device_name}
deeplens-cli status --device {device_name}
```

install.sh also installs `python3-venv` when it is missing (the component builds its own Python environment)
and adds ggc_user to the `video` group, which owns USB cameras (`/dev/video*`, mode 0660), so the
component can open the camera. It is safe to run again.
"""

    def write(self, out_dir: str, certificate_pem: str, private_key: str, root_ca: str | None) -> Path:
        """Write the bundle (bundle.py's order): the certificate first - it names the certificate the folder was
        made for, so an interruption before the key is resumable - then the key (0600, never overwritten), then
        the derived files."""
        folder = Path(out_dir)
        bundle_files.prepare_folder(folder)
        bundle_files.replace_file(folder / CERTIFICATE_FILE, certificate_pem)
        bundle_files.write_secret(folder / PRIVATE_KEY_FILE, private_key)
        self.complete(folder, certificate_pem, root_ca)
        return folder

    def complete(self, folder: Path, certificate_pem: str, root_ca: str | None) -> None:
        """The bundle's non-secret files, each replaced atomically; the key is never touched."""
        bundle_files.prepare_folder(folder)
        bundle_files.replace_file(folder / CERTIFICATE_FILE, certificate_pem)
        if root_ca:
            bundle_files.replace_file(folder / "AmazonRootCA1.pem", root_ca)
        bundle_files.replace_file(folder / "config.yaml", self.config_yaml())
        bundle_files.replace_file(folder / "install.sh", self.install_sh(), mode=0o755)
        bundle_files.replace_file(folder / "README.md", self.readme(self.thing[len(THING_PREFIX):], root_ca is not None))


def amazon_root_ca_1() -> str | None:
    """Amazon Root CA 1 from botocore's CA bundle, checked against its published fingerprint; None if absent."""
    import botocore

    bundle = Path(botocore.__file__).parent / "cacert.pem"
    try:
        text = bundle.read_text()
    except OSError:
        return None
    marker = text.find('# Label: "Amazon Root CA 1"')
    begin = text.find("-----BEGIN CERTIFICATE-----", marker)
    end = text.find("-----END CERTIFICATE-----", begin)
    if marker < 0 or begin < 0 or end < 0:
        return None
    pem = text[begin:end + len("-----END CERTIFICATE-----")] + "\n"
    body = "".join(line for line in pem.splitlines() if "-----" not in line)
    if hashlib.sha256(base64.b64decode(body)).hexdigest() != AMAZON_ROOT_CA_1_SHA256:
        return None
    return pem


# ---------------------------------------------------------------------------------------------- outcomes


def describe_failure(effective: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """(detail, errors) of a failed effective deployment: status and reason, the error stack and a hint."""
    status = effective.get("coreDeviceExecutionStatus", "FAILED")
    reason = effective.get("reason") or "no reason reported"
    details = effective.get("statusDetails") or {}
    stack = list(details.get("errorStack") or [])
    types = list(details.get("errorTypes") or [])
    errors = []
    if stack:
        errors.append("error stack: " + " > ".join(stack))
    if types:
        errors.append("error types: " + ", ".join(types))
    hint = failure_hint([*stack, reason])
    if hint:
        errors.append("hint: " + hint)
    return f"{status}: {reason}", tuple(errors)


def failure_hint(codes: Iterable[str]) -> str | None:
    text = " ".join(codes)
    for needle, hint in FAILURE_HINTS:
        if needle in text:
            return hint
    return None


# ---------------------------------------------------------------------------------------------- the target


class GreengrassV2Target:
    """Greengrass V2: IoT thing + certificate + policy per device, one component, thing/thing-group deployments."""

    name = TARGET

    def __init__(self, ctx: AwsContext, settings: Settings, package: Package | None = None) -> None:
        self.ctx = ctx
        self.settings = settings
        self._package = package  # tests pass a prebuilt zip; otherwise package.build_package() on first use
        self._build: comp.ComponentBuild | None = None

    # -- small helpers ------------------------------------------------------------------------------------

    @property
    def partition(self) -> str:
        return partition_for(self.ctx.region)

    @property
    def component_name(self) -> str:
        return self.settings["greengrass.component_name"]

    def component(self) -> comp.ComponentBuild:
        if self._build is None:
            self._build = comp.build_component(self.settings, self._package)
        return self._build

    def _component_arn(self, version: str | None = None) -> str:
        return comp.component_arn(self.partition, self.ctx.region, self.ctx.account_id, self.component_name, version)

    # -- devices ------------------------------------------------------------------------------------------

    def list_devices(self) -> list[Device]:
        things = collect(self.ctx.client("iot"), "list_things", "things", attributeName=TARGET_ATTRIBUTE,
                         attributeValue=TARGET)
        return sorted((device_iot.device_from_thing(thing, TARGET) for thing in things), key=lambda d: d.name)

    def plan_register_device(self, name: str, out_dir: str, fleet: str | None = None) -> Plan:
        """Thing (name pending), policy, fleet, certificate + bundle, attachments, then the name: resumable.

        Every step is found again by a re-run after an interruption: the thing by its name, the certificate by
        the bundle in `out_dir` (its ID is the SHA-256 of the certificate), attachments by listing them. Only the
        last step records `deeplens_name`, so until then the device lists as "NAME (incomplete)".
        """
        iot = self.ctx.client("iot")
        thing = thing_name(name)
        policy = policy_name(name)
        plan = Plan(f"register-device {name} (Greengrass V2)")
        described = maybe(lambda: iot.describe_thing(thingName=thing), _MISSING)
        attributes = (described or {}).get("attributes") or {}
        if described is not None and (attributes.get(TARGET_ATTRIBUTE) != TARGET
                                      or name not in (attributes.get(PENDING_ATTRIBUTE), attributes.get(NAME_ATTRIBUTE))):
            raise DeeplensError(f"IoT thing {thing} already exists but is not a deeplens-cli Greengrass V2 device "
                                f"named {name}", "choose another --name, or delete that thing if it is a leftover")
        alias_name = self.settings["greengrass.role_alias"]
        if maybe(lambda: iot.describe_role_alias(roleAlias=alias_name), _MISSING) is None:
            raise DeeplensError(f"IoT role alias {alias_name} does not exist (devices get AWS credentials through it)",
                                "run `deeplens-cli register-roles` first")
        bundle = CoreBundle(
            thing=thing, region=self.ctx.region, role_alias=alias_name,
            data_endpoint=iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"],
            credential_endpoint=iot.describe_endpoint(endpointType="iot:CredentialProvider")["endpointAddress"])

        # 1. the thing; the device name stays pending until the last step
        if described is None:
            plan.add(device_iot.create_thing_action(
                thing, TARGET, name, f"Greengrass V2 core device {name}",
                {"endpoints": {"data": bundle.data_endpoint, "credentials": bundle.credential_endpoint}}))
        else:
            plan.add(noop(f"iot-thing/{thing}", "exists (an earlier registration was interrupted)", thing=thing))

        # 2. the policy, 3. the fleet
        kept, unfinished = self._certificate_in_bundle(Path(out_dir))
        plan.add(self._plan_core_policy(name, thing))
        plan.actions.extend(self._plan_orphaned_certificates(name, keep=kept["certificateArn"] if kept else None))
        if fleet:
            plan.add(self._plan_thing_group(fleet))

        # 4. the certificate: the one whose key the bundle holds, else a new one written to the bundle
        attached = [p for p in collect(self.ctx.client("iot"), "list_thing_principals", "principals", thingName=thing)
                    if ":cert/" in p] if described else []
        root_ca = amazon_root_ca_1()
        if kept is None:

            def write_bundle(variables: dict[str, Any]) -> dict[str, Any]:
                private_key = variables.pop("private_key")  # kept in memory no longer than needed
                bundle.write(out_dir, variables["certificate_pem"], private_key, root_ca)
                return {"bundle_dir": out_dir}

            plan.add(Action(f"iot-certificate/{thing}", "create", f"new active certificate; its key goes to {out_dir}", (
                ApiCall("iot", "create_keys_and_certificate", {"setAsActive": True},
                        outputs={"certificate_arn": "certificateArn", "certificate_id": "certificateId",
                                 "certificate_pem": "certificatePem", "private_key": "keyPair.PrivateKey"}),
                LocalStep(f"write the device bundle to {out_dir} (private key mode 0600)", write_bundle),
                ApiCall("iot", "attach_thing_principal", {"thingName": thing, "principal": Ref("certificate_arn")}),
                ApiCall("iot", "attach_policy", {"policyName": policy, "target": Ref("certificate_arn")}),
            ), details={"bundle": out_dir, "policy": policy}))
        else:
            plan.known["certificate_arn"] = kept["certificateArn"]
            plan.add(self._plan_kept_certificate(kept, thing, policy, attached, out_dir, bundle, root_ca))
        if unfinished is not None and unfinished["certificateArn"] not in attached:
            arn = unfinished["certificateArn"]
            plan.add(Action(f"iot-certificate/{unfinished['certificateId'][:12]}", "delete",
                            f"issued by an interrupted registration whose key never reached {out_dir}",
                            device_iot.certificate_teardown(arn, device_iot.attached_policies(iot, arn),
                                                            status=unfinished.get("status"))))
        for stale in attached:
            if kept is None or stale != kept["certificateArn"]:
                plan.add(Action(f"iot-certificate/{stale.rsplit('/', 1)[-1][:12]}", "delete",
                                f"issued by an interrupted registration whose key is not in {out_dir}",
                                device_iot.certificate_teardown(stale, device_iot.attached_policies(iot, stale),
                                                                thing=thing)))

        # 5. fleet membership, 6. the name: registration complete
        if fleet:
            groups = collect(iot, "list_thing_groups_for_thing", "thingGroups", thingName=thing) if described else []
            if fleet in [g.get("groupName") for g in groups]:
                plan.add(noop(f"iot-thing-group-member/{fleet}/{thing}", "already a member"))
            else:
                plan.add(Action(f"iot-thing-group-member/{fleet}/{thing}", "create", f"add {thing} to fleet {fleet}", (
                    ApiCall("iot", "add_thing_to_thing_group", {"thingGroupName": fleet, "thingName": thing}),
                )))
        plan.add(device_iot.record_name_action(thing, name))
        return plan

    def _certificate_in_bundle(self, out_dir: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(kept, unfinished): the IoT certificate whose private key the bundle folder already holds (an
        interrupted run), else the certificate whose PEM is there without its key (a run interrupted between the
        two writes: bundle.py writes the certificate first), which is to be retired.

        An IoT certificate ID is the SHA-256 of the certificate (DER); moto's default is the SHA-256 of the PEM
        text, tried second. A key whose certificate IoT does not know is refused rather than overwritten.
        """
        certificate_file, key_file = out_dir / CERTIFICATE_FILE, out_dir / PRIVATE_KEY_FILE
        pem = certificate_file.read_text() if certificate_file.exists() else ""
        found = self._certificate_of_pem(pem) if pem.strip() else None
        if not key_file.exists():
            return None, found
        if found is None:
            raise DeeplensError(f"{key_file} holds a private key whose certificate this account does not have",
                                "choose another --out, or move that folder away if it belongs to another device")
        return found, None

    def _certificate_of_pem(self, pem: str) -> dict[str, Any] | None:
        """IoT's description of the certificate with this PEM, or None when IoT does not have it."""
        body = "".join(line for line in pem.splitlines() if line and "-----" not in line)
        candidates = [hashlib.sha256(pem.encode()).hexdigest()]
        try:
            candidates.insert(0, hashlib.sha256(base64.b64decode(body, validate=True)).hexdigest())
        except ValueError:
            pass
        iot = self.ctx.client("iot")
        for certificate_id in candidates:
            found = maybe(lambda cid=certificate_id: iot.describe_certificate(certificateId=cid), _MISSING)
            if found and found["certificateDescription"].get("certificatePem", "").strip() == pem.strip():
                return found["certificateDescription"]
        return None

    def _plan_kept_certificate(self, certificate: Mapping[str, Any], thing: str, policy: str, attached: list[str],
                               out_dir: str, bundle: CoreBundle, root_ca: str | None) -> Action:
        arn = certificate["certificateArn"]
        steps: list[Step] = []
        reasons = []
        if certificate.get("status") != "ACTIVE":
            reasons.append(f"activate it (it is {certificate.get('status')})")
            steps.append(ApiCall("iot", "update_certificate", {"certificateId": certificate["certificateId"],
                                                               "newStatus": "ACTIVE"}))
        if arn not in attached:
            reasons.append(f"attach it to {thing}")
            steps.append(ApiCall("iot", "attach_thing_principal", {"thingName": thing, "principal": arn}))
        if policy not in device_iot.attached_policies(self.ctx.client("iot"), arn):
            reasons.append(f"attach {policy}")
            steps.append(ApiCall("iot", "attach_policy", {"policyName": policy, "target": arn}))
        folder = Path(out_dir)
        missing = [name for name in DERIVED_FILES if not (folder / name).exists()]
        if missing:
            reasons.append("complete the bundle: " + ", ".join(missing))
            pem = certificate["certificatePem"]
            steps.append(LocalStep(f"complete the device bundle in {out_dir} (the key is already there)",
                                   lambda variables: bundle.complete(folder, pem, root_ca)))
        resource = f"iot-certificate/{certificate['certificateId'][:12]}"
        if not steps:
            return noop(resource, f"active and attached; its private key is in {out_dir}")
        return Action(resource, "update", f"the certificate whose key is in {out_dir}: " + ", ".join(reasons),
                      tuple(steps))

    def _plan_core_policy(self, name: str, thing: str) -> Action:
        """Create the device's IoT policy, or repair it (a new default version) when it drifted."""
        desired = core_policy(self.partition, self.ctx.region, self.ctx.account_id, thing,
                              self.settings["greengrass.role_alias"])
        return device_iot.plan_core_policy(self.ctx.client("iot"), policy_name(name), desired,
                                           "minimal Greengrass V2 core policy", "up to date")

    def _plan_orphaned_certificates(self, name: str, keep: str | None = None) -> list[Action]:
        """Certificates holding this device's policy but attached to no thing (a registration interrupted in an
        earlier version of this tool, or a half-finished destroy): deleted - unless the bundle holds its key."""
        iot = self.ctx.client("iot")
        policy = policy_name(name)
        if maybe(lambda: iot.get_policy(policyName=policy), _MISSING) is None:
            return []
        actions = []
        for target in collect(self.ctx.client("iot"), "list_targets_for_policy", "targets", policyName=policy):
            if ":cert/" not in target or target == keep or \
                    collect(self.ctx.client("iot"), "list_principal_things", "things", principal=target):
                continue
            certificate_id = target.rsplit("/", 1)[-1]
            actions.append(Action(f"iot-certificate/{certificate_id[:12]}", "delete",
                                  "left over from an interrupted registration (no thing attached)",
                                  device_iot.certificate_teardown(target, [policy])))
        return actions

    def _plan_thing_group(self, fleet: str) -> Action:
        iot = self.ctx.client("iot")
        resource = f"iot-thing-group/{fleet}"
        if maybe(lambda: iot.describe_thing_group(thingGroupName=fleet), _MISSING) is not None:
            return noop(resource, "exists")
        return Action(resource, "create", "fleet for thing-group deployments", (
            ApiCall("iot", "create_thing_group", {"thingGroupName": fleet, "thingGroupProperties": {
                "thingGroupDescription": "Greengrass V2 fleet of deeplens-cli devices",
                "attributePayload": {"attributes": {MANAGED_GROUP_ATTRIBUTE: MANAGED}}}}),
        ))

    # -- publish ------------------------------------------------------------------------------------------

    def plan_publish(self) -> Plan:
        plan = Plan("publish (Greengrass V2 component)")
        self._plan_component(plan)
        return plan

    def _plan_component(self, plan: Plan) -> str:
        """Add the artifact upload and component version actions; returns the version devices should run."""
        gg = self.ctx.client("greengrassv2")
        build = self.component()
        bucket = comp.artifact_bucket(self.settings)
        self._require_bucket(bucket)
        latest = comp.highest_version(v["componentVersion"] for v in self._component_versions())
        reason = "first version"
        if latest is not None:
            described = gg.describe_component(arn=self._component_arn(latest))
            tags = described.get("tags") or {}
            state = (described.get("status") or {}).get("componentState")
            artifact_key = comp.artifact_key(self.settings, self.component_name, latest)
            if tags.get(comp.TAG_CONTENT) != build.content_sha256:
                reason = f"code or settings changed since {latest}"
            elif state != "DEPLOYABLE":
                reason = f"{latest} is {state}"
            elif self._artifact_sha256(bucket, artifact_key) != tags.get(comp.TAG_ARTIFACT):
                reason = f"the artifact of {latest} was deleted or overwritten (s3://{bucket}/{artifact_key})"
            else:
                resource = f"gg-component/{self.component_name}@{latest}"
                plan.add(noop(resource, f"up to date (content sha256 {build.content_sha256[:12]})",
                              version=latest, artifact=build.artifact_uri(latest)))
                plan.known["component_version"] = latest
                return latest

        version, skipped, reuse = comp.bump_patch(latest), [], False
        while True:  # never overwrite an artifact key: skip versions whose key holds other bytes
            found = self._artifact_sha256(bucket, comp.artifact_key(self.settings, self.component_name, version))
            if found is None or found == build.package.sha256_hex:
                reuse = found is not None
                break
            skipped.append(version)
            version = comp.bump_patch(version)
        key = comp.artifact_key(self.settings, self.component_name, version)
        uri = build.artifact_uri(version)
        note = f" (skipped {', '.join(skipped)}: their artifact keys already hold other bytes)" if skipped else ""
        if reuse:
            plan.add(noop(f"s3-object/{uri}", "already uploaded with the same sha256 (by an interrupted run)"))
        else:
            plan.add(Action(f"s3-object/{uri}", "create", f"artifact of {self.component_name} {version}{note}", (
                ApiCall("s3", "put_object", {
                    "Bucket": bucket, "Key": key, "Body": build.package.zip_bytes, "ContentType": "application/zip",
                    "ChecksumSHA256": build.package.code_sha256_b64,
                    "Metadata": {"sha256": build.package.sha256_hex, comp.TAG_MANAGED: MANAGED},
                    "IfNoneMatch": "*",  # S3 itself refuses to overwrite an existing key
                }),
            ), details={"sha256": build.package.sha256_hex, "size": build.package.size}))
        plan.add(Action(f"gg-component/{self.component_name}@{version}", "create", reason, (
            ApiCall("greengrassv2", "create_component_version",
                    {"inlineRecipe": build.recipe_bytes(version), "tags": build.tags()},
                    outputs={"component_version_arn": "arn"}),
            LocalStep(f"wait until {self.component_name} {version} is DEPLOYABLE", self._wait_deployable),
        ), details={"version": version, "previous": latest, "content_sha256": build.content_sha256}))
        plan.known["component_version"] = version
        return version

    def _component_versions(self) -> list[dict[str, Any]]:
        """Every version of our component, highest first; [] before the first publish."""
        return maybe(lambda: collect(self.ctx.client("greengrassv2"), "list_component_versions", "componentVersions",
                                                   arn=self._component_arn()), _MISSING) or []

    def _require_bucket(self, bucket: str) -> None:
        if maybe(lambda: self.ctx.client("s3").head_bucket(Bucket=bucket), ("404", "NoSuchBucket")) is None:
            raise DeeplensError(f"artifact bucket {bucket} does not exist",
                                "run `deeplens-cli register-roles` (it creates the bucket), or fix greengrass.artifact_bucket")

    def _artifact_sha256(self, bucket: str, key: str) -> str | None:
        """The sha256 we stored on an artifact object, "" for an object of unknown content, None when absent."""
        head = maybe(lambda: self.ctx.client("s3").head_object(Bucket=bucket, Key=key),
                               ("404", "NoSuchKey", "NotFound"))
        if head is None:
            return None
        return (head.get("Metadata") or {}).get("sha256", "")

    def _wait_deployable(self, variables: dict[str, Any]) -> None:
        """Poll describe_component until the new version is DEPLOYABLE (botocore has no greengrassv2 waiters)."""
        arn = variables["component_version_arn"]
        clock = WaitClock(self.ctx.sleep)
        while True:
            status = self.ctx.client("greengrassv2").describe_component(arn=arn).get("status") or {}
            state = status.get("componentState")
            if state == "DEPLOYABLE":
                return None
            if state in ("FAILED", "DEPRECATED"):
                errors = "; ".join(f"{uri}: {message}" for uri, message in (status.get("errors") or {}).items())
                raise DeeplensError(f"component version {arn} is {state}: {status.get('message', '')}"
                                    + (f" ({errors})" if errors else ""),
                                    "the Greengrass service must be able to read the artifact: check the bucket "
                                    "policy and that the bucket is in this region; then run the command again")
            if clock.elapsed() >= COMPONENT_READY_WAIT_S:
                raise DeeplensError(f"component version {arn} is still {state} after {COMPONENT_READY_WAIT_S:.0f}s",
                                    "run the command again later")
            clock.wait(COMPONENT_READY_POLL_S)

    # -- deploy -------------------------------------------------------------------------------------------

    def plan_deploy(self, device: Device, force: bool = False) -> Plan:
        plan = Plan(f"deploy {device.name} (Greengrass V2)")
        version = self._plan_component(plan)
        plan.add(self._plan_core_policy(device.name, device.thing_name))
        core = self._core_device(device.thing_name)
        components = comp.deployment_components(self.component_name, version, self._nucleus_pin([core]))
        target_arn = device.thing_arn or self._thing_arn(device.thing_name)
        plan.add(self._plan_deployment(plan, target_arn, f"gg-deployment/{device.thing_name}", components, None,
                                       force, device_things=[device.thing_name]))
        return plan

    def _thing_arn(self, thing: str) -> str:
        return self.ctx.client("iot").describe_thing(thingName=thing)["thingArn"]

    def _core_device(self, thing: str) -> dict[str, Any] | None:
        """get_core_device, or None while the nucleus has never connected."""
        return maybe(lambda: self.ctx.client("greengrassv2").get_core_device(coreDeviceThingName=thing), _MISSING)

    def _nucleus_pin(self, cores: list[dict[str, Any] | None]) -> tuple[str, str] | None:
        """(nucleus component, version) when every core reports the same one; None otherwise (nothing to pin)."""
        pins = set()
        for core in cores:
            if not core or not core.get("coreVersion"):
                return None
            pins.add((comp.NUCLEUS_COMPONENTS.get(core.get("runtime") or "aws_nucleus_classic",
                                                  "aws.greengrass.Nucleus"), core["coreVersion"]))
        return pins.pop() if len(pins) == 1 else None

    def _latest_deployment(self, target_arn: str) -> dict[str, Any] | None:
        gg = self.ctx.client("greengrassv2")
        latest = collect(self.ctx.client("greengrassv2"), "list_deployments", "deployments", targetArn=target_arn,
                             historyFilter="LATEST_ONLY")
        if not latest:
            return None
        return gg.get_deployment(deploymentId=latest[0]["deploymentId"])

    def _plan_deployment(self, plan: Plan, target_arn: str, resource: str, components: dict[str, Any],
                         job: dict[str, Any] | None, force: bool, device_things: list[str]) -> Action:
        """A new deployment when the desired component set differs from the target's current one (or the last
        one failed, or --force). Components someone else deployed to the same target are kept: a new deployment
        replaces the old one, and dropping them would uninstall them."""
        latest = self._latest_deployment(target_arn)
        if latest is not None:
            ours = set(components) | set(comp.NUCLEUS_COMPONENTS.values())
            for other, spec in (latest.get("components") or {}).items():
                if other not in ours:
                    components[other] = spec
        params: dict[str, Any] = {
            "targetArn": target_arn, "deploymentName": self.settings["project.name"], "components": components,
            "deploymentPolicies": comp.DEPLOYMENT_POLICIES, "tags": {comp.TAG_MANAGED: MANAGED},
        }
        if job:
            params["iotJobConfiguration"] = job
        step = ApiCall("greengrassv2", "create_deployment", params,
                       outputs={"deployment_id": "deploymentId", "iot_job_id": "iotJobId"})
        versions = {name: spec["componentVersion"] for name, spec in components.items()}
        if latest is None:
            return Action(resource, "create", "first deployment", (step,), details={"components": versions})
        differences = comp.deployment_differences(latest, components, job)
        previous = latest.get("deploymentId")
        if force:
            return Action(resource, "update", f"--force (replaces {previous})", (step,), details={"components": versions})
        if differences:
            return Action(resource, "update", "; ".join(differences) + f" (replaces {previous})", (step,),
                          details={"components": versions, "previous": previous})
        failed = self._failed_on_devices(latest, device_things)
        if latest.get("deploymentStatus") in ("CANCELED", "FAILED") or failed:
            why = failed or f"deployment {previous} is {latest.get('deploymentStatus')}"
            return Action(resource, "update", f"{why}; deploying again", (step,), details={"components": versions})
        plan.known["deployment_id"] = previous
        return noop(resource, f"deployment {previous} already has this component set", deployment_id=previous,
                    components=versions)

    def _failed_on_devices(self, deployment: Mapping[str, Any], things: list[str]) -> str | None:
        for thing in things:
            effective = self._effective_deployment(thing, deployment["deploymentId"])
            if effective and effective.get("coreDeviceExecutionStatus") in FAILURE_STATUSES:
                return f"deployment {deployment['deploymentId']} ended {effective['coreDeviceExecutionStatus']} on {thing}"
        return None

    def _effective_deployment(self, thing: str, deployment_id: str) -> dict[str, Any] | None:
        for effective in self._effective_deployments(thing):
            if effective.get("deploymentId") == deployment_id:
                return effective
        return None

    def _effective_deployments(self, thing: str) -> list[dict[str, Any]]:
        found = maybe(lambda: collect(self.ctx.client("greengrassv2"), "list_effective_deployments",
                                                    "effectiveDeployments", coreDeviceThingName=thing), _MISSING)
        return found or []

    def _installed_components(self, thing: str) -> list[dict[str, Any]]:
        found = maybe(lambda: collect(self.ctx.client("greengrassv2"), "list_installed_components",
                                                    "installedComponents", coreDeviceThingName=thing), _MISSING)
        return found or []

    def wait_for_deployment(self, device: Device, result: ExecutionResult, timeout_s: float,
                            reporter: Reporter) -> DeploymentOutcome:
        deployment_id = result.variables.get("deployment_id")
        version = result.variables.get("component_version")
        thing = device.thing_name
        if not deployment_id:
            return DeploymentOutcome(None, "not_waited", "no deployment was made")
        clock = WaitClock(self.ctx.sleep)
        poll = float(self.settings["deploy.poll_s"])
        connected = self._core_device(thing) is not None
        if not connected:
            reporter.progress(f"{thing} has not connected to Greengrass yet; the deployment waits for it "
                              f"(install the nucleus with the device bundle's install.sh)")
        last = None
        while True:
            effective = self._effective_deployment(thing, deployment_id)
            status = effective["coreDeviceExecutionStatus"] if effective else "QUEUED"
            if status != last:
                reporter.progress(f"deployment {deployment_id} on {thing}: {status}")
                last = status
            if status in SUCCESS_STATUSES:
                break
            if status in FAILURE_STATUSES:
                detail, errors = describe_failure(effective or {})
                return DeploymentOutcome(deployment_id, "failed", detail, errors,
                                         extra={"device_status": status, "reason": (effective or {}).get("reason")})
            if clock.elapsed() >= timeout_s:
                never = "" if connected or self._core_device(thing) else "; the device has never connected to Greengrass"
                return DeploymentOutcome(deployment_id, "timed_out", f"still {status} after {timeout_s:.0f}s{never}",
                                         extra={"device_status": status})
            clock.wait(poll)
        return self._wait_component_running(deployment_id, thing, version, clock, timeout_s, poll, reporter)

    def _wait_component_running(self, deployment_id: str, thing: str, version: str | None, clock: WaitClock,
                                timeout_s: float, poll: float, reporter: Reporter) -> DeploymentOutcome:
        """After the device reported success: is our component RUNNING (or FINISHED) at the deployed version?"""
        last = None
        while True:
            mine = next((c for c in self._installed_components(thing)
                         if c.get("componentName") == self.component_name), None)
            state = mine.get("lifecycleState") if mine else None
            current = mine is not None and (version is None or mine.get("componentVersion") == version)
            if current and state != last:
                reporter.progress(f"{self.component_name} {mine.get('componentVersion')} on {thing}: {state}")
                last = state
            extra = {"component_state": state, "component_version": mine.get("componentVersion") if mine else None}
            if current and state in RUNNING_STATES:
                return DeploymentOutcome(deployment_id, "succeeded", f"{self.component_name} {state}", extra=extra)
            if current and state in BROKEN_STATES:
                details = mine.get("lifecycleStateDetails") or ""
                codes = list(mine.get("lifecycleStatusCodes") or [])
                errors = tuple(filter(None, ["status codes: " + ", ".join(codes) if codes else "",
                                             "hint: " + (failure_hint(codes + ["COMPONENT_BROKEN"]) or "")]))
                return DeploymentOutcome(deployment_id, "failed",
                                         f"{self.component_name} is {state} after the deployment: {details}".rstrip(": "),
                                         errors, extra=extra)
            if clock.elapsed() >= timeout_s:
                seen = f"{state} ({mine.get('componentVersion')})" if mine else "not reported"
                return DeploymentOutcome(deployment_id, "timed_out",
                                         f"deployment completed but {self.component_name} is {seen}; the device "
                                         f"reports component states only now and then", extra=extra)
            clock.wait(poll)

    # -- fleets -------------------------------------------------------------------------------------------

    def _fleet_members(self, fleet: str) -> list[str]:
        return sorted(collect(self.ctx.client("iot"), "list_things_in_thing_group", "things", thingGroupName=fleet))

    def plan_deploy_fleet(self, fleet: str, force: bool = False, rollout_per_minute: int | None = None,
                          abort_failure_percent: float | None = None) -> Plan:
        group = maybe(lambda: self.ctx.client("iot").describe_thing_group(thingGroupName=fleet), _MISSING)
        if group is None:
            raise DeeplensError(f"fleet {fleet}: no such IoT thing group",
                              "add a device to it with `deeplens-cli register-device --name N --fleet " + fleet + "`")
        members = self._fleet_members(fleet)
        plan = Plan(f"deploy fleet {fleet} (Greengrass V2, {len(members)} device(s))")
        version = self._plan_component(plan)
        cores = [self._core_device(thing) for thing in members] if 0 < len(members) <= FLEET_PIN_LIMIT else [None]
        components = comp.deployment_components(self.component_name, version, self._nucleus_pin(cores))
        job = comp.fleet_job_configuration(rollout_per_minute, abort_failure_percent, len(members))
        plan.add(self._plan_deployment(plan, group["thingGroupArn"], f"gg-deployment/thinggroup/{fleet}", components,
                                       job, force, device_things=members))
        plan.known["fleet_members"] = members
        return plan

    def wait_for_fleet(self, fleet: str, result: ExecutionResult | None, timeout_s: float,
                       reporter: Reporter) -> DeploymentOutcome:
        variables = result.variables if result is not None else {}
        deployment_id = variables.get("deployment_id")
        if not deployment_id:
            group = self.ctx.client("iot").describe_thing_group(thingGroupName=fleet)
            latest = self._latest_deployment(group["thingGroupArn"])
            deployment_id = latest["deploymentId"] if latest else None
        if not deployment_id:
            return DeploymentOutcome(None, "not_waited", f"fleet {fleet} has no deployment")
        members = self._fleet_members(fleet)
        outcomes: dict[str, dict[str, Any]] = {thing: {"status": "QUEUED"} for thing in members}
        clock = WaitClock(self.ctx.sleep)
        poll = float(self.settings["deploy.poll_s"])
        last_summary = None
        while True:
            for thing, outcome in outcomes.items():
                if outcome["status"] in SUCCESS_STATUSES + FAILURE_STATUSES:
                    continue
                effective = self._effective_deployment(thing, deployment_id)
                if effective is None:
                    continue
                outcome["status"] = effective["coreDeviceExecutionStatus"]
                if outcome["status"] in FAILURE_STATUSES:
                    detail, errors = describe_failure(effective)
                    outcome.update(reason=detail, errors=list(errors))
            counts = _fleet_counts(outcomes)
            summary = _fleet_summary(fleet, counts)
            if summary != last_summary:
                reporter.progress(summary)
                last_summary = summary
            if counts["pending"] == 0:
                break
            status = self.ctx.client("greengrassv2").get_deployment(deploymentId=deployment_id).get("deploymentStatus")
            if status in ("CANCELED", "FAILED"):
                break  # the IoT job was canceled (abort criteria) or failed: the pending devices will not run it
            if clock.elapsed() >= timeout_s:
                break
            clock.wait(poll)
        deployment_status = self.ctx.client("greengrassv2").get_deployment(deploymentId=deployment_id).get(
            "deploymentStatus")
        counts = _fleet_counts(outcomes)
        aborted = deployment_status in ("CANCELED", "FAILED") and bool(counts["failed"] or counts["canceled"])
        errors = tuple(f"{thing}: {o.get('reason', o['status'])}" for thing, o in outcomes.items()
                       if o["status"] in FAILURE_STATUSES and o["status"] != "CANCELED")
        pending = [thing for thing, o in outcomes.items() if o["status"] not in SUCCESS_STATUSES + FAILURE_STATUSES]
        extra = {"fleet": fleet, "devices": outcomes, "deployment_status": deployment_status, **counts}
        tally = (f"{counts['succeeded']} of {len(members)} succeeded, {counts['failed']} failed"
                 + (f", {counts['canceled']} canceled" if counts["canceled"] else "") + f", {counts['pending']} pending")
        if counts["failed"] or counts["canceled"] or aborted:
            why = " (rollout aborted)" if aborted else ""
            return DeploymentOutcome(deployment_id, "failed", tally + why, errors, extra=extra)
        if pending:
            return DeploymentOutcome(deployment_id, "timed_out", f"{tally} after {timeout_s:.0f}s: {', '.join(pending)}",
                                     errors, extra=extra)
        return DeploymentOutcome(deployment_id, "succeeded", tally, extra=extra)

    # -- status -------------------------------------------------------------------------------------------

    def device_status(self, device: Device) -> dict[str, Any]:
        """Certificate, core device health (with when it was reported: it can be stale), our component's state
        and the last effective deployment. `health` is "ok" when nothing is wrong (status.py's contract), else a
        short word; `problems` says what is wrong."""
        thing = device.thing_name
        problems: list[str] = []
        info: dict[str, Any] = {"target": TARGET, "thing_name": thing}
        words: list[tuple[int, str]] = []  # (priority, one-word health) of what is wrong; the first one is shown
        if device.details.get("registration") == "incomplete":
            problems.append("registration incomplete (run register-device again with the same --out)")
            words.append((0, "incomplete"))

        certificates = self._certificate_states(thing)
        info["certificates"] = certificates
        if "ACTIVE" not in certificates.values():
            problems.append("no active certificate attached to the thing")
            words.append((0, "no certificate"))

        core = self._core_device(thing)
        if core is None:
            info.update(core_status=None, health_reported_at=None, nucleus_version=None,
                        health_detail="never connected to Greengrass")
            problems.append("the device has never connected (install the nucleus with the bundle's install.sh)")
            words.append((1, "never connected"))
        else:
            reported = core.get("lastStatusUpdateTimestamp")
            info.update(core_status=core.get("status"), health_reported_at=_iso(reported),
                        health_detail=f"{core.get('status')}, reported {_age(reported) or 'at an unknown time'} "
                                      f"(can be stale: {STALE_HEALTH_NOTE})",
                        nucleus_version=core.get("coreVersion"), runtime=core.get("runtime"),
                        platform="/".join(filter(None, [core.get("platform"), core.get("architecture")])) or None)
            if core.get("status") != "HEALTHY":
                problems.append(f"core device reports {core.get('status')} ({_age(reported) or 'time unknown'})")
                words.append((2, "unhealthy"))

        installed = self._installed_components(thing) if core else []
        info["components"] = [{"name": c.get("componentName"), "version": c.get("componentVersion"),
                               "state": c.get("lifecycleState"), "details": c.get("lifecycleStateDetails"),
                               "reported_at": _iso(c.get("lastReportedTimestamp"))} for c in installed]
        mine = next((c for c in info["components"] if c["name"] == self.component_name), None)
        info["component"] = mine
        info["component_state"] = mine["state"] if mine else "not installed"
        if core and (mine is None or mine["state"] not in RUNNING_STATES):
            problems.append(f"{self.component_name} is {info['component_state']}")
            words.append((4, "component " + info["component_state"].lower()))

        effective = sorted(self._effective_deployments(thing) if core else [],
                           key=lambda e: e.get("modifiedTimestamp") or e.get("creationTimestamp"), reverse=True)
        last = next((e for e in effective if e.get("deploymentName") == self.settings["project.name"]),
                    effective[0] if effective else None)
        if last is None:
            info.update(last_deployment_id=None, last_deployment_status="none")
            if core is not None:
                problems.append(f"never deployed (run `deeplens-cli deploy --device {device.name}`)")
        else:
            status = last.get("coreDeviceExecutionStatus")
            info.update(last_deployment_id=last.get("deploymentId"), last_deployment_status=status,
                        last_deployment_at=_iso(last.get("modifiedTimestamp")),
                        last_deployment_target=last.get("targetArn"))
            if status in FAILURE_STATUSES:
                detail, errors = describe_failure(last)
                info.update(last_deployment_reason=detail, last_deployment_errors=list(errors))
                problems.append(f"last deployment {detail}")
                words.append((3, "deployment failed"))
            elif status not in SUCCESS_STATUSES:
                problems.append(f"last deployment is {status}")
                words.append((5, "deploying"))
        info["health"] = min(words)[1] if words else ("not deployed" if problems else "ok")
        info["problems"] = problems
        return info

    def _certificate_states(self, thing: str) -> dict[str, str]:
        iot = self.ctx.client("iot")
        states = {}
        for principal in maybe(lambda: collect(self.ctx.client("iot"), "list_thing_principals", "principals",
                                                             thingName=thing), _MISSING) or []:
            if ":cert/" in principal:
                certificate_id = principal.rsplit("/", 1)[-1]
                described = maybe(lambda cid=certificate_id: iot.describe_certificate(certificateId=cid), _MISSING)
                states[certificate_id] = described["certificateDescription"]["status"] if described else "missing"
        return states

    def project_status(self) -> dict[str, Any]:
        """The component (status.py's keys: exists, name, latest_version, code_sha256, up_to_date, problems),
        its state and artifact, and whether it matches what `deploy` would publish now."""
        gg = self.ctx.client("greengrassv2")
        info: dict[str, Any] = {"target": TARGET, "name": self.component_name, "kind": "Greengrass V2 component"}
        versions = [v["componentVersion"] for v in self._component_versions()]
        latest = comp.highest_version(versions)
        info["versions"] = len(versions)
        if latest is None:
            info.update(exists=False, latest_version=None, up_to_date=None,
                        problems=["not published yet (run `deeplens-cli deploy`)"])
            return info
        described = gg.describe_component(arn=self._component_arn(latest))
        tags = described.get("tags") or {}
        state = (described.get("status") or {}).get("componentState")
        bucket = comp.artifact_bucket(self.settings)
        key = comp.artifact_key(self.settings, self.component_name, latest)
        stored = self._artifact_sha256(bucket, key)
        problems = []
        if state != "DEPLOYABLE":
            problems.append(f"{latest} is {state}")
        if stored is None:
            problems.append(f"artifact s3://{bucket}/{key} is missing")
        elif stored != tags.get(comp.TAG_ARTIFACT):
            problems.append(f"artifact s3://{bucket}/{key} was overwritten")
        try:
            local: str | None = self.component().content_sha256
        except DeeplensError:
            local = None
        info.update(exists=True, latest_version=latest, state=state, artifact=f"s3://{bucket}/{key}",
                    code_sha256=tags.get(comp.TAG_ARTIFACT), content_sha256=tags.get(comp.TAG_CONTENT),
                    created=_iso(described.get("creationTimestamp")),
                    up_to_date=None if local is None else local == tags.get(comp.TAG_CONTENT), problems=problems)
        return info

    # -- destroy ------------------------------------------------------------------------------------------

    def plan_destroy(self, device: Device | None) -> Plan:
        if device is None:
            return self._plan_shared_teardown()
        iot = self.ctx.client("iot")
        thing = device.thing_name
        plan = Plan(f"destroy {device.name} (Greengrass V2)")
        target_arn = device.thing_arn or self._thing_arn(thing)
        for deployment in collect(self.ctx.client("greengrassv2"), "list_deployments", "deployments", targetArn=target_arn,
                                      historyFilter="ALL"):
            plan.add(_deployment_teardown(deployment))
        if self._core_device(thing) is not None:
            plan.add(Action(f"gg-core-device/{thing}", "delete", "Greengrass core device record", (
                ApiCall("greengrassv2", "delete_core_device", {"coreDeviceThingName": thing},
                        ignore_codes=("ResourceNotFoundException",)),
            )))
        for principal in collect(iot, "list_thing_principals", "principals", thingName=thing):
            resource = f"iot-certificate/{principal.rsplit('/', 1)[-1][:12]}"
            if ":cert/" in principal:
                steps = device_iot.certificate_teardown(principal, device_iot.attached_policies(iot, principal),
                                                        thing=thing)
            else:
                steps = (ApiCall("iot", "detach_thing_principal", {"thingName": thing, "principal": principal},
                                 ignore_codes=device_iot.NOT_FOUND),)
            plan.add(Action(resource, "delete", f"certificate of {thing}", steps))
        # the policy name comes from the thing name: also right for an incomplete registration
        policy = device_iot.policy_teardown(iot, POLICY_PREFIX + thing[len(THING_PREFIX):], "core device policy")
        if policy is not None:
            plan.add(policy)
        plan.add(device_iot.thing_teardown(thing, f"device {device.name}"))
        return plan

    def _plan_shared_teardown(self) -> Plan:
        """With no V2 device left (devices.destroy plans this after every device's own teardown, in the same run):
        fleet deployments, fleets we created that hold no other thing, component versions, artifacts."""
        iot = self.ctx.client("iot")
        gg = self.ctx.client("greengrassv2")
        plan = Plan("destroy Greengrass V2 shared resources")
        for deployment in collect(self.ctx.client("greengrassv2"), "list_deployments", "deployments", historyFilter="ALL"):
            if ":thinggroup/" in deployment.get("targetArn", "") and \
                    deployment.get("deploymentName") == self.settings["project.name"]:
                plan.add(_deployment_teardown(deployment))
        ours = {device.thing_name for device in self.list_devices()}  # all being destroyed in the same run
        for group in collect(self.ctx.client("iot"), "list_thing_groups", "thingGroups"):
            described = iot.describe_thing_group(thingGroupName=group["groupName"])
            attributes = ((described.get("thingGroupProperties") or {}).get("attributePayload") or {}).get("attributes") or {}
            if attributes.get(MANAGED_GROUP_ATTRIBUTE) != MANAGED:
                continue
            if set(self._fleet_members(group["groupName"])) - ours:
                plan.add(noop(f"iot-thing-group/{group['groupName']}", "kept: it still has members"))
                continue
            plan.add(Action(f"iot-thing-group/{group['groupName']}", "delete", "empty fleet created by deeplens-cli", (
                ApiCall("iot", "delete_thing_group", {"thingGroupName": group["groupName"]},
                        ignore_codes=("ResourceNotFoundException",)),
            )))
        for entry in self._component_versions():
            arn = entry.get("arn") or self._component_arn(entry["componentVersion"])
            tags = gg.describe_component(arn=arn).get("tags") or {}
            if tags.get(comp.TAG_MANAGED) != MANAGED:
                plan.add(noop(f"gg-component/{self.component_name}@{entry['componentVersion']}",
                              "kept: not published by deeplens-cli"))
                continue
            plan.add(Action(f"gg-component/{self.component_name}@{entry['componentVersion']}", "delete",
                            "component version published by deeplens-cli", (
                                ApiCall("greengrassv2", "delete_component", {"arn": arn},
                                        ignore_codes=("ResourceNotFoundException",)),
                            )))
        bucket = comp.artifact_bucket(self.settings)
        prefix = f"{self.settings['greengrass.artifact_prefix']}{self.component_name}/"
        keys = [o["Key"] for o in maybe(lambda: collect(self.ctx.client("s3"), "list_objects_v2", "Contents",
                                                                      Bucket=bucket, Prefix=prefix),
                                                  ("NoSuchBucket",)) or []]
        if keys:
            batches = [keys[i:i + 1000] for i in range(0, len(keys), 1000)]
            plan.add(Action(f"s3-objects/s3://{bucket}/{prefix}", "delete",
                            f"{len(keys)} component artifact(s); face crops are not touched", tuple(
                                ApiCall("s3", "delete_objects", {"Bucket": bucket, "Delete": {
                                    "Objects": [{"Key": k} for k in batch], "Quiet": True}}) for batch in batches)))
        return plan


def _deployment_teardown(deployment: Mapping[str, Any]) -> Action:
    """Cancel an active deployment (a deleted-but-active one would keep its IoT job running), then delete it."""
    deployment_id = deployment["deploymentId"]
    steps: list[Step] = []
    if deployment.get("deploymentStatus") == "ACTIVE":
        steps.append(ApiCall("greengrassv2", "cancel_deployment", {"deploymentId": deployment_id},
                             ignore_codes=("ResourceNotFoundException", "ConflictException")))
    steps.append(ApiCall("greengrassv2", "delete_deployment", {"deploymentId": deployment_id},
                         ignore_codes=("ResourceNotFoundException",)))
    return Action(f"gg-deployment/{deployment_id}", "delete",
                  f"deployment {deployment.get('deploymentName') or ''} to {deployment.get('targetArn')}".replace("  ", " "),
                  tuple(steps))


def _fleet_counts(outcomes: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    statuses = [o["status"] for o in outcomes.values()]
    succeeded = sum(s in SUCCESS_STATUSES for s in statuses)
    canceled = sum(s == "CANCELED" for s in statuses)
    failed = sum(s in FAILURE_STATUSES for s in statuses) - canceled
    return {"succeeded": succeeded, "failed": failed, "canceled": canceled,
            "pending": len(statuses) - succeeded - failed - canceled}


def _fleet_summary(fleet: str, counts: Mapping[str, int]) -> str:
    canceled = f", {counts['canceled']} canceled" if counts["canceled"] else ""
    return f"fleet {fleet}: {counts['succeeded']} succeeded, {counts['failed']} failed{canceled}, {counts['pending']} pending"


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat(timespec="seconds")
    return None if value is None else str(value)


def _age(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    seconds = max(0.0, (datetime.now(timezone.utc) - value.astimezone(timezone.utc)).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"
