"""The classic DeepLens target: an AWS IoT Greengrass V1 core, its group, and a pinned Lambda function.

What a DeepLens "project" is in Greengrass V1 terms (research/deeplens_facts.md §2-§3), and therefore what this
target plans:

* **register-device** - an IoT thing named like DeepLens names them (`deeplens_<22 chars>`), a key pair and an
  active certificate, the minimal Greengrass V1 core IoT policy (named `deeplens...`, the only names the DeepLens
  service policy may attach), a core definition (thing + certificate), a group `deeplens-<name>` whose first
  version holds the core, and the group role. The device bundle (certificate, private key 0600, public key,
  `config/config.json`, the root CA reference) is written by a LocalStep right after the key is issued, because
  the private key exists only in that one API response.
* **publish** - the deterministic zip (package.py) as the Lambda function `function.name`, configured through
  environment variables, published as a numbered version; skipped when `CodeSha256` and the configuration match.
* **deploy** - a new function definition version that keeps every function that is not ours and pins ours (the
  published *version* ARN, never `$LATEST`), the GPU device resource (and an ML model resource when
  `model.s3_uri` is set), the `$aws/things/<thing>/infer -> cloud` subscription, a group version holding all of
  that plus the group's existing core and other definitions, then a `NewDeployment`.

Names are deterministic: the thing name is derived from account, region and device name, and every definition is
named after the thing. So a registration interrupted half way (AccessDenied, Ctrl-C) is found again by the
next run, which plans only what is missing instead of creating duplicates. A registration is marked complete
by its last step, which moves the device name from the thing attribute `deeplens_pending` to `deeplens_name`;
until then `list_devices` shows the device as "<name> (incomplete)" (details: registration, pending_name).
The bundle folder carries `deeplens-bundle.json` (thing and certificate ids, no secret), written before the key:
a re-run pointed at the same folder reuses the certificate whose key is there; a re-run pointed elsewhere issues
a new one and retires the orphaned certificate. A folder holding anything else is never written to. Deploy
definitions are found by name the same way, so an interrupted deploy is finished, not duplicated.

Deployment status seam: moto's `GetDeploymentStatus` answers `InProgress` forever, and there is no DeepLens in a
test. Where a deployment's status comes from is therefore a `DeploymentStatusSource`: by default the
`GetDeploymentStatus` API; tests pass a scripted function (`GreengrassV1Target(ctx, settings,
deployment_status=...)`, or replace `status_source_for`). The demo's simulated core needs neither: it records
Success/Failure on the emulator's deployment record, the way a real core reports to the cloud, and the API
source reads it. The seam is read only for status; it never writes anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Protocol

from deeplens_cli.aws import collect, error_code, maybe
from deeplens_cli.errors import ConfigError, DeeplensError
from deeplens_cli.plan import Action, ApiCall, LocalStep, Plan, Ref, Retry, Step, Wait, noop
from deeplens_cli.policies import partition_for
from deeplens_cli.roles import GROUP_ROLE
from deeplens_cli.targets import TARGET_ATTRIBUTE, DeploymentOutcome, Device, WaitClock, bundle
from deeplens_cli.targets import iot as device_iot
from deeplens_cli.targets.iot import PENDING_ATTRIBUTE

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.config import Settings
    from deeplens_cli.output import Reporter
    from deeplens_cli.package import Package
    from deeplens_cli.plan import ExecutionResult

TARGET = "v1"
SERVICE_ROLE = "AWSDeepLensGreengrassRole"  # the Greengrass service role DeepLens associates with the account
LAMBDA_ROLE = "AWSDeepLensLambdaRole"
HANDLER = "edge_function.lambda_function.function_handler"
FUNCTION_DESCRIPTION = "deeplens-cli edge face detection: uploads face crops to S3 (Greengrass V1 long-lived)"

# Ids of what deeplens-cli puts into a group (Greengrass ids: [a-zA-Z0-9:_-]+). Anything else in the group
# (the DeepLens admin functions, a user's own resources) is kept as it is.
FUNCTION_ID = "deeplens-cli-edge-function"
GPU_RESOURCE_ID = "deeplens-cli-gpu"
MODEL_RESOURCE_ID = "deeplens-cli-model"
SUBSCRIPTION_ID = "deeplens-cli-infer"
GPU_DEVICE = "/dev/dri/renderD128"  # the DeepLens GPU, as in the device's own group.json
MODEL_DESTINATION = "/deeplens-cli/models"  # where an ML model resource is unpacked inside the container

ROOT_CA_URL = "https://www.amazontrust.com/repository/AmazonRootCA1.pem"
PROGRESS_EVERY_S = 30.0  # while a deployment's state does not change, say so this often
GREENGRASS_ROOT = "/greengrass"  # the Greengrass V1 default; a DeepLens keeps it under /opt/awscam/greengrass

# Lambda's answer for a runtime it no longer lets anyone create or update (real AWS; moto accepts any runtime).
RUNTIME_REJECTED = re.compile(r"runtime parameter of (\S+) is no longer supported", re.I)
IAM_PROPAGATION = Retry(codes=("InvalidParameterValueException",),
                        message_pattern="cannot be assumed|does not have permissions", budget_s=150,
                        waiting_for=f"IAM to let Lambda assume {LAMBDA_ROLE}")

# Codes that mean "no such resource" in the IoT and Greengrass V1 APIs (moto answers some with a bare "404").
_NOT_FOUND = ("ResourceNotFoundException", "IdNotFoundException", "NotFoundException", "404")
_DEFINITION_KINDS = {"cores": "Core", "functions": "Function", "resources": "Resource",
                     "subscriptions": "Subscription"}
_DEFINITION_ARN = re.compile(r"/definition/(?P<kind>\w+)/(?P<id>[^/]+)/versions/(?P<version>[^/]+)$")


# ---------------------------------------------------------------------------------------------- status seam


class DeploymentStatusSource(Protocol):
    """Where deployment status comes from: `(group_id, deployment_id) -> GetDeploymentStatus response`.

    The response needs `DeploymentStatus` (InProgress | Building | Success | Failure) and, on failure,
    `ErrorMessage` and `ErrorDetails` ([{DetailedErrorCode, DetailedErrorMessage}]).
    """

    def __call__(self, group_id: str, deployment_id: str) -> Mapping[str, Any]: ...


class ApiDeploymentStatus:
    """The real source: Greengrass `GetDeploymentStatus`, as the device reported it to the cloud."""

    def __init__(self, ctx: AwsContext) -> None:
        self.ctx = ctx

    def __call__(self, group_id: str, deployment_id: str) -> Mapping[str, Any]:
        return self.ctx.client("greengrass").get_deployment_status(GroupId=group_id, DeploymentId=deployment_id)


def status_source_for(ctx: AwsContext) -> DeploymentStatusSource:
    """Where targets built by `make_target` read deployment status: the API (tests replace this function)."""
    return ApiDeploymentStatus(ctx)


# ---------------------------------------------------------------------------------------------- naming


def thing_name_for(account: str, region: str, device_name: str) -> str:
    """`deeplens_` + 22 URL-safe characters, the shape of DeepLens thing names, derived from the device name so a
    re-run finds what an interrupted run created (the id is not the name, as on DeepLens)."""
    digest = hashlib.sha256(f"{account}:{region}:{device_name}".encode()).digest()[:16]
    return "deeplens_" + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def group_name_for(device_name: str) -> str:
    return f"deeplens-{device_name}"


def policy_name_for(thing_name: str) -> str:
    return f"{thing_name}-core-policy"  # starts with "deeplens": the DeepLens service policy attaches only those


def definition_name(thing_name: str, kind: str) -> str:
    return f"{thing_name}-{kind}"


def core_policy(partition: str, region: str, account: str, thing_name: str, group_id: str) -> dict[str, Any]:
    """The minimal Greengrass V1 core IoT policy (GGDG device-auth.md), scoped to this core and its group.

    Topics: the core's shadow and `$aws/things/<thing>/infer`, where the function's messages leave the core.
    """
    iot = f"arn:{partition}:iot:{region}:{account}"
    deployments = f"arn:{partition}:greengrass:{region}:{account}:/greengrass/groups/{group_id}/deployments"
    thing_arn = f"{iot}:thing/{thing_name}"
    encoded_thing = thing_arn.replace(":", "%3A").replace("/", "%2F")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["iot:Connect"], "Resource": ["*"]},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
             "Resource": [f"{iot}:topic/$aws/things/{thing_name}/*", f"{iot}:topic/$aws/things/{thing_name}-*"]},
            {"Effect": "Allow", "Action": ["iot:Subscribe"],
             "Resource": [f"{iot}:topicfilter/$aws/things/{thing_name}/*",
                          f"{iot}:topicfilter/$aws/things/{thing_name}-*"]},
            {"Effect": "Allow", "Action": ["iot:GetThingShadow", "iot:UpdateThingShadow", "iot:DeleteThingShadow"],
             "Resource": [thing_arn, f"{thing_arn}-*"]},
            {"Effect": "Allow", "Action": ["greengrass:AssumeRoleForGroup", "greengrass:CreateCertificate"],
             "Resource": ["*"]},
            {"Effect": "Allow", "Action": ["greengrass:GetDeployment", "greengrass:GetDeploymentArtifacts"],
             "Resource": [f"{deployments}/*"]},
            {"Effect": "Allow", "Action": ["greengrass:UpdateCoreDeploymentStatus"],
             "Resource": [f"{deployments}/*/cores/{encoded_thing}"]},
            {"Effect": "Allow", "Action": ["greengrass:GetConnectivityInfo", "greengrass:UpdateConnectivityInfo"],
             "Resource": [thing_arn]},
        ],
    }


# ---------------------------------------------------------------------------------------------- reading helpers


def _not_implemented(exc: BaseException) -> bool:
    """moto answers operations it lacks with a bare 404 "Not yet implemented" (or, in server mode, an HTML 404
    page). Only that exact shape means "this endpoint cannot do it"; real AWS errors carry a modeled code."""
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {})
    message = str(error.get("Message", ""))
    return error.get("Code") == "404" and ("Not yet implemented" in message or "<html" in message.lower()
                                           or "<!doctype html" in message.lower())


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _by_id(items: Iterable[Mapping[str, Any]]) -> str:
    return _canonical(sorted(items, key=lambda item: str(item.get("Id"))))


def parse_definition_arn(arn: str) -> tuple[str, str, str]:
    """(kind, definition id, version id) of a definition version ARN."""
    match = _DEFINITION_ARN.search(arn)
    if not match:
        raise DeeplensError(f"unexpected Greengrass definition version ARN {arn}", "rerun with -v and report it")
    return match["kind"], match["id"], match["version"]


def _function_name_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[6] if len(parts) >= 7 and parts[2] == "lambda" else None


# ---------------------------------------------------------------------------------------------- state records


@dataclass
class Certificate:
    arn: str
    id: str
    status: str
    pem: str


@dataclass
class GroupState:
    id: str
    name: str
    latest_version: str | None
    definition: dict[str, str] = field(default_factory=dict)  # Core/Function/... DefinitionVersionArn

    @property
    def core_version_arn(self) -> str | None:
        return self.definition.get("CoreDefinitionVersionArn")


@dataclass
class PublishedFunction:
    """What `plan_publish` found or will produce: the version ARN to pin (a Ref while it is being published)."""

    version_arn: Any
    changed: bool


# ---------------------------------------------------------------------------------------------- the target


class GreengrassV1Target:
    """`Target` implementation for DeepLens / Greengrass V1 cores (see the module docstring)."""

    name = TARGET

    def __init__(self, ctx: AwsContext, settings: Settings,
                 deployment_status: DeploymentStatusSource | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.settings = settings
        self.deployment_status = deployment_status or status_source_for(ctx)
        self.clock = clock
        self._package: Package | None = None
        self._definition_cache: dict[str, list[dict[str, Any]]] = {}

    # -- small accessors ----------------------------------------------------------------------------------

    @property
    def iot(self) -> Any:
        return self.ctx.client("iot")

    @property
    def gg(self) -> Any:
        return self.ctx.client("greengrass")

    @property
    def lam(self) -> Any:
        return self.ctx.client("lambda")

    @property
    def partition(self) -> str:
        return partition_for(self.ctx.region)

    def thing_arn(self, thing_name: str) -> str:
        return f"arn:{self.partition}:iot:{self.ctx.region}:{self.ctx.account_id}:thing/{thing_name}"

    def role_arn(self, role_name: str) -> str:
        """ARN of a role register-roles creates; a clear error (before any change) when it is missing."""
        role = maybe(lambda: self.ctx.client("iam").get_role(RoleName=role_name), ("NoSuchEntity",))
        if role is None:
            raise DeeplensError(f"IAM role {role_name} does not exist",
                                "run `deeplens-cli register-roles` first")
        return role["Role"]["Arn"]

    # -- devices ------------------------------------------------------------------------------------------

    def list_devices(self) -> list[Device]:
        """Our registered things (attribute deeplens_target=v1), plus groups whose core is a `deeplens_` thing
        that we did not register (devices registered by the DeepLens console)."""
        things = collect(self.iot, "list_things", "things", attributeName=TARGET_ATTRIBUTE, attributeValue=TARGET)
        groups = collect(self.gg, "list_groups", "Groups")
        by_name = {group["Name"]: group for group in groups if "Name" in group}
        devices: list[Device] = []
        claimed: set[str] = set()
        for thing in things:
            device = device_iot.device_from_thing(thing, TARGET, managed=True)
            if device.details.get("registration") == device_iot.INCOMPLETE:
                group = by_name.get(group_name_for((thing.get("attributes") or {}).get(PENDING_ATTRIBUTE, "")))
            else:
                group = by_name.get(group_name_for(device.name))
            if group:
                claimed.add(group["Id"])
                device = replace(device, group_id=group["Id"], group_name=group["Name"])
            devices.append(device)
        ours = {d.thing_name for d in devices}
        for group in groups:
            if group["Id"] in claimed or not group.get("LatestVersion"):
                continue
            core = self._group_core(group["Id"], group["LatestVersion"])
            thing_name = core["ThingArn"].rsplit("/", 1)[-1] if core else ""
            if thing_name.startswith("deeplens_") and thing_name not in ours:
                devices.append(Device(name=group["Name"], target=TARGET, thing_name=thing_name,
                                      thing_arn=core["ThingArn"], group_id=group["Id"], group_name=group["Name"],
                                      details={"managed": False}))
        return devices

    def _group_core(self, group_id: str, version: str) -> dict[str, Any] | None:
        definition = self._group_definition(group_id, version)
        arn = definition.get("CoreDefinitionVersionArn")
        if not arn:
            return None
        cores = self._definition_items(arn)
        return cores[0] if cores else None

    def _group_definition(self, group_id: str, version: str) -> dict[str, str]:
        return dict(self.gg.get_group_version(GroupId=group_id, GroupVersionId=version).get("Definition") or {})

    def _definition_items(self, version_arn: str) -> list[dict[str, Any]]:
        """Cores / Functions / Resources / Subscriptions of one definition version.

        Definition versions are immutable, so each is read once per target (a plan consults them several times).
        """
        if version_arn not in self._definition_cache:
            kind, definition_id, version = parse_definition_arn(version_arn)
            label = _DEFINITION_KINDS.get(kind)
            if label is None:
                return []
            getter = getattr(self.gg, f"get_{label.lower()}_definition_version")
            response = getter(**{f"{label}DefinitionId": definition_id, f"{label}DefinitionVersionId": version})
            self._definition_cache[version_arn] = list((response.get("Definition") or {}).get(f"{label}s", []))
        return [dict(item) for item in self._definition_cache[version_arn]]

    def _read_group(self, group_id: str) -> GroupState | None:
        group = maybe(lambda: self.gg.get_group(GroupId=group_id), _NOT_FOUND)
        if group is None:
            return None
        latest = group.get("LatestVersion")
        definition = self._group_definition(group_id, latest) if latest else {}
        return GroupState(group["Id"], group.get("Name", ""), latest, definition)

    def _find_group(self, name: str) -> GroupState | None:
        for group in collect(self.gg, "list_groups", "Groups"):
            if group.get("Name") == name:
                return self._read_group(group["Id"])
        return None

    def _find_definition(self, kind: str, name: str) -> dict[str, Any] | None:
        label = _DEFINITION_KINDS[kind]
        for definition in collect(self.gg, f"list_{label.lower()}_definitions", "Definitions"):
            if definition.get("Name") == name:
                return definition
        return None

    def _certificates(self, thing_name: str) -> list[Certificate]:
        principals = maybe(lambda: collect(self.iot, "list_thing_principals", "principals", thingName=thing_name),
                           _NOT_FOUND) or []
        certificates = []
        for arn in principals:
            if ":cert/" not in arn:
                continue
            cert_id = arn.rsplit("/", 1)[-1]
            described = maybe(lambda cert_id=cert_id: self.iot.describe_certificate(certificateId=cert_id), _NOT_FOUND)
            if described:
                description = described["certificateDescription"]
                certificates.append(Certificate(arn, cert_id, description.get("status", ""),
                                                description.get("certificatePem", "")))
        return certificates

    def _describe_certificate(self, cert_id: str) -> Certificate | None:
        described = maybe(lambda: self.iot.describe_certificate(certificateId=cert_id), _NOT_FOUND)
        if described is None:
            return None
        description = described["certificateDescription"]
        return Certificate(description["certificateArn"], cert_id, description.get("status", ""),
                           description.get("certificatePem", ""))

    def _plan_reused_certificate(self, thing: str, certificate: Certificate, attached: list[Certificate],
                                 out_dir: Path, thing_arn: str, endpoint: str) -> Action:
        """The certificate an interrupted run issued and whose key is in the bundle: make it active, attached to
        the thing, and the bundle complete - never a second certificate."""
        resource = f"iot-certificate/{certificate.id[:10]}"
        steps: list[Step] = []
        reasons = []
        if certificate.status != "ACTIVE":
            reasons.append(f"{certificate.status}, must be ACTIVE")
            steps.append(ApiCall("iot", "update_certificate", {"certificateId": certificate.id, "newStatus": "ACTIVE"}))
        if all(c.id != certificate.id for c in attached):
            reasons.append(f"not attached to {thing}")
            steps.append(ApiCall("iot", "attach_thing_principal", {"thingName": thing, "principal": certificate.arn}))
        prefix = certificate.id[:10]
        missing = [name for name in (f"certs/{prefix}.cert.pem", "config/config.json", "README.txt")
                   if not (out_dir / name).exists()]
        if missing:
            reasons.append("bundle incomplete: " + ", ".join(missing))
            region = self.ctx.region
            steps.append(LocalStep(f"complete the device bundle in {out_dir}/ (the key is already there)",
                                   lambda variables: complete_bundle(out_dir, certificate.id, certificate.pem, thing_arn,
                                                                     endpoint, region)))
        if not steps:
            return noop(resource, f"active; its private key is in {out_dir}", certificate_id=certificate.id)
        return Action(resource, "update", "; ".join(reasons) + f" (its private key is in {out_dir})", tuple(steps),
                      details={"certificate_id": certificate.id})

    # -- register-device ----------------------------------------------------------------------------------

    def plan_register_device(self, name: str, out_dir: str, fleet: str | None = None) -> Plan:
        if fleet:
            raise ConfigError("--fleet needs --greengrass v2", "IoT thing-group rollouts are a Greengrass V2 feature")
        account, region = self.ctx.account_id, self.ctx.region
        thing = thing_name_for(account, region, name)
        thing_arn = self.thing_arn(thing)
        policy = policy_name_for(thing)
        group_name = group_name_for(name)
        group_role_arn = self.role_arn(GROUP_ROLE)
        endpoint = self.iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]

        _check_bundle_folder(Path(out_dir), thing)
        plan = Plan(f"register device {name} (Greengrass V1)")
        plan.known.update(thing_arn=thing_arn, group_role_arn=group_role_arn)

        # 1. the thing, named for the device, with the name pending until the registration is complete
        described = maybe(lambda: self.iot.describe_thing(thingName=thing), _NOT_FOUND)
        attributes = (described or {}).get("attributes", {})
        if described is None:
            plan.add(device_iot.create_thing_action(thing, TARGET, name, f"the device's IoT thing (device name {name})"))
        elif attributes.get(TARGET_ATTRIBUTE, TARGET) != TARGET:
            raise DeeplensError(f"IoT thing {thing} already exists for a Greengrass {attributes[TARGET_ATTRIBUTE]} device",
                                "destroy that device first, or choose another --name")
        else:
            plan.add(noop(f"iot-thing/{thing}", "exists (an earlier registration was interrupted)", thing=thing))

        # 2. the certificate: reuse the one whose key is in the bundle folder, else issue one and write the bundle
        certificates = self._certificates(thing) if described else []
        reused, orphan = _certificate_in_bundle(Path(out_dir), thing, certificates, self._describe_certificate)
        if reused:
            plan.known.update(cert_arn=reused.arn, cert_id=reused.id)
            attached_policies = set(device_iot.attached_policies(self.iot, reused.arn))
            plan.add(self._plan_reused_certificate(thing, reused, certificates, Path(out_dir), thing_arn, endpoint))
        else:
            attached_policies = set()
            write = LocalStep(f"write the device bundle to {out_dir}/ (private key mode 0600)",
                              lambda variables: write_bundle(Path(out_dir), variables, thing_arn, endpoint, region))
            plan.add(Action("iot-certificate/new", "create",
                            f"key pair and active certificate for {thing}; the bundle goes to {out_dir}/", (
                                ApiCall("iot", "create_keys_and_certificate", {"setAsActive": True},
                                        outputs={"cert_arn": "certificateArn", "cert_id": "certificateId",
                                                 "cert_pem": "certificatePem", "key_pair": "keyPair"}),
                                write,
                                ApiCall("iot", "attach_thing_principal",
                                        {"thingName": thing, "principal": Ref("cert_arn")}),
                            ), details={"bundle": out_dir}))
        stale = [c for c in certificates if reused is None or c.id != reused.id]
        if orphan is not None and all(c.id != orphan.id for c in stale):
            stale.append(orphan)
        for certificate in stale:
            plan.add(self._retire_certificate(thing, certificate, "issued by an earlier, interrupted registration "
                                                                  "whose key is not in --out; replaced"))

        # 3. the core definition: this thing and the certificate whose key the bundle holds
        cert_arn: Any = reused.arn if reused else Ref("cert_arn")
        cores = [{"Id": thing, "ThingArn": thing_arn, "CertificateArn": cert_arn, "SyncShadow": True}]
        core_name = definition_name(thing, "core")
        existing_core = self._find_definition("cores", core_name)
        current_cores = self._definition_items(existing_core["LatestVersionArn"]) \
            if existing_core and existing_core.get("LatestVersionArn") else None
        if existing_core is None:
            plan.add(Action(f"greengrass-core-definition/{core_name}", "create", "the core: thing + certificate", (
                ApiCall("greengrass", "create_core_definition", {"Name": core_name, "InitialVersion": {"Cores": cores}},
                        outputs={"core_version_arn": "LatestVersionArn"}),
            )))
        elif reused and current_cores is not None and _by_id(current_cores) == _by_id(cores):
            plan.known["core_version_arn"] = existing_core["LatestVersionArn"]
            plan.add(noop(f"greengrass-core-definition/{core_name}", "holds this thing and certificate"))
        else:
            plan.add(Action(f"greengrass-core-definition/{core_name}", "update", "point the core at the certificate "
                            "the bundle holds", (
                                ApiCall("greengrass", "create_core_definition_version",
                                        {"CoreDefinitionId": existing_core["Id"], "Cores": cores},
                                        outputs={"core_version_arn": "Arn"}),
                            )))

        # 4. the group, whose version holds the core
        group = self._find_group(group_name)
        core_changed = "core_version_arn" not in plan.known
        if group is None:
            plan.add(Action(f"greengrass-group/{group_name}", "create", "the device's group, first version = the core", (
                ApiCall("greengrass", "create_group",
                        {"Name": group_name, "InitialVersion": {"CoreDefinitionVersionArn": Ref("core_version_arn")}},
                        outputs={"group_id": "Id"}),
            )))
        else:
            plan.known["group_id"] = group.id
            if core_changed or group.core_version_arn != plan.known.get("core_version_arn"):
                definition = {**group.definition, "CoreDefinitionVersionArn": Ref("core_version_arn")}
                plan.add(Action(f"greengrass-group/{group_name}", "update", "new group version with the current core", (
                    ApiCall("greengrass", "create_group_version", {"GroupId": group.id, **definition}),
                ), details={"group_id": group.id}))
            else:
                plan.add(noop(f"greengrass-group/{group_name}", "holds the core", group_id=group.id))

        # 5. the group role (credentials of the device's functions)
        associated = maybe(lambda: self.gg.get_associated_role(GroupId=group.id), _NOT_FOUND) if group else None
        if associated and associated.get("RoleArn") == group_role_arn:
            plan.add(noop(f"greengrass-group-role/{group_name}", f"{GROUP_ROLE} associated"))
        else:
            plan.add(Action(f"greengrass-group-role/{group_name}", "create" if not associated else "update",
                            f"associate {GROUP_ROLE} with the group", (
                                ApiCall("greengrass", "associate_role_to_group",
                                        {"GroupId": Ref("group_id"), "RoleArn": Ref("group_role_arn")}),
                            )))

        # 6. the core's IoT policy (scoped to the group id) and its attachment to the certificate
        plan.add(self._plan_core_policy(thing, policy, group.id if group else None))
        if policy in attached_policies:
            plan.add(noop(f"iot-policy-attachment/{policy}", "attached to the certificate"))
        else:
            plan.add(Action(f"iot-policy-attachment/{policy}", "create", "attach the core policy to the certificate", (
                ApiCall("iot", "attach_policy", {"policyName": policy, "target": Ref("cert_arn")}),
            )))

        # 7. done: the device name becomes findable
        plan.add(device_iot.record_name_action(thing, name, attributes))
        return plan

    def _plan_core_policy(self, thing: str, policy: str, group_id: str | None) -> Action:
        account, region = self.ctx.account_id, self.ctx.region
        if group_id is None:  # the group is created by this plan: render the policy once its id is known
            resource = f"iot-policy/{policy}"
            render = LocalStep("render the core policy for the new group", lambda variables: {
                "core_policy": json.dumps(core_policy(self.partition, region, account, thing, variables["group_id"]))})
            if maybe(lambda: self.iot.get_policy(policyName=policy), _NOT_FOUND) is None:
                return Action(resource, "create", "minimal Greengrass core policy for the new group", (
                    render, ApiCall("iot", "create_policy", {"policyName": policy, "policyDocument": Ref("core_policy")}),
                ))
            return Action(resource, "update", "scope the core policy to the new group",
                          (render, *device_iot.policy_version_steps(self.iot, policy, Ref("core_policy"))))
        return device_iot.plan_core_policy(self.iot, policy, core_policy(self.partition, region, account, thing, group_id),
                                           "minimal Greengrass core policy", "minimal Greengrass core policy in place")

    def _retire_certificate(self, thing: str, certificate: Certificate, reason: str) -> Action:
        """Detach thing and policies, deactivate, delete: the only order IoT accepts."""
        steps = device_iot.certificate_teardown(certificate.arn, device_iot.attached_policies(self.iot, certificate.arn),
                                                thing=thing, status=certificate.status)
        return Action(f"iot-certificate/{certificate.id[:10]}", "delete", reason, steps,
                      details={"certificate_id": certificate.id})

    # -- publish ------------------------------------------------------------------------------------------

    def package(self) -> Package:
        """The function zip for these settings (built once per target)."""
        if self._package is None:
            from deeplens_cli.package import build_package

            self._package = build_package(vendor_requirements=self.settings["function.vendor"],
                                          python_version=self.device_python)
        return self._package

    @property
    def device_python(self) -> str:
        return self.settings["function.runtime"].removeprefix("python")

    @property
    def lambda_runtime(self) -> str:
        return self.settings["function.lambda_runtime"] or self.settings["function.runtime"]

    def function_environment(self) -> dict[str, str]:
        from deeplens_cli.package import edge_environment

        model_path = None
        if self.settings["model.s3_uri"]:
            model_path = f"{self.model_destination}/{os.path.basename(self.settings['model.artifact_path'])}"
        return edge_environment(self.settings, on_deeplens=True, model_path=model_path)

    @property
    def model_destination(self) -> str:
        return f"{MODEL_DESTINATION}/{self.settings['model.name']}"

    def desired_function_configuration(self, role_arn: str) -> dict[str, Any]:
        return {"Role": role_arn, "Handler": HANDLER, "Runtime": self.lambda_runtime,
                "Timeout": self.settings["function.timeout_s"], "MemorySize": self.settings["function.memory_mb"],
                "Description": FUNCTION_DESCRIPTION, "Environment": {"Variables": self.function_environment()}}

    def plan_publish(self) -> Plan:
        plan = Plan(f"publish {self.settings['function.name']} (Lambda, Greengrass V1)")
        self.add_publish_actions(plan)
        return plan

    def add_publish_actions(self, plan: Plan) -> PublishedFunction:
        """The function action(s) of a plan; returns the version ARN to pin (a Ref when one is being published)."""
        function_name = self.settings["function.name"]
        package = self.package()
        desired = self.desired_function_configuration(self.role_arn(LAMBDA_ROLE))
        resource = f"lambda-function/{function_name}"
        details = {"sha256": package.sha256_hex, "code_sha256": package.code_sha256_b64, "size": package.size,
                   "runtime": self.lambda_runtime}
        # CodeSha256 makes Lambda refuse to publish if the code changed under us since our update.
        publish = ApiCall("lambda", "publish_version", {"FunctionName": function_name,
                                                        "CodeSha256": package.code_sha256_b64},
                          outputs={"function_version": "Version", "function_version_arn": "FunctionArn"})
        current = maybe(lambda: self.lam.get_function(FunctionName=function_name), ("ResourceNotFoundException",))
        code = self.code_location(package)
        if current is None:
            self._add_code_upload(plan, package, code)
            plan.add(Action(resource, "create", f"new function ({package.size} bytes, {self.lambda_runtime}), "
                            "first version", (
                                ApiCall("lambda", "create_function", {**desired, "FunctionName": function_name,
                                                                      "Code": code,
                                                                      "Publish": False}, retry=IAM_PROPAGATION,
                                        explain=self.explain_runtime_rejection),
                                Wait("lambda", "function_active_v2", {"FunctionName": function_name}),
                                publish,
                            ), details=details))
            return PublishedFunction(Ref("function_version_arn"), True)

        latest = current["Configuration"]
        code_changed = latest.get("CodeSha256") != package.code_sha256_b64
        config_diff = _configuration_differences(latest, desired)
        published = self._matching_version(function_name, package.code_sha256_b64, desired)
        if not code_changed and not config_diff and published is not None:
            plan.known["function_version_arn"] = published["FunctionArn"]
            plan.add(noop(resource, f"version {published['Version']} has this code and configuration",
                          version=published["Version"], **details))
            return PublishedFunction(published["FunctionArn"], False)

        steps: list[Step] = []
        reasons = []
        if code_changed:
            reasons.append("code changed")
            self._add_code_upload(plan, package, code)
            steps += [ApiCall("lambda", "update_function_code", {"FunctionName": function_name, **code},
                              explain=self.explain_runtime_rejection),
                      Wait("lambda", "function_updated_v2", {"FunctionName": function_name})]
        if config_diff:
            reasons.append("configuration differs: " + ", ".join(config_diff))
            steps += [ApiCall("lambda", "update_function_configuration", {**desired, "FunctionName": function_name},
                              retry=IAM_PROPAGATION, explain=self.explain_runtime_rejection),
                      Wait("lambda", "function_updated_v2", {"FunctionName": function_name})]
        if not steps:
            reasons.append("no published version has this code and configuration")
        steps.append(publish)
        plan.add(Action(resource, "update", "; ".join(reasons) + "; new version", tuple(steps),
                        details={**details, "changed": config_diff + (["code"] if code_changed else [])}))
        return PublishedFunction(Ref("function_version_arn"), True)

    def code_location(self, package: Package) -> dict[str, str]:
        """Where the function zip lives in S3: content-addressed, so a key is written once and never overwritten.

        Lambda copies the code from there; the key also stays readable for whoever needs the exact bytes that were
        published (the simulated core in `demo` fetches them from here and checks them against CodeSha256).
        """
        from deeplens_cli.targets.greengrass_v2.component import artifact_bucket

        key = f"{self.settings['greengrass.artifact_prefix']}lambda/{self.settings['function.name']}/{package.sha256_hex}.zip"
        return {"S3Bucket": artifact_bucket(self.settings), "S3Key": key}

    def _add_code_upload(self, plan: Plan, package: Package, code: Mapping[str, str]) -> None:
        """Upload the zip unless an earlier (perhaps interrupted) run already did: same key means same bytes."""
        bucket, key = code["S3Bucket"], code["S3Key"]
        resource = f"s3-object/s3://{bucket}/{key}"
        s3 = self.ctx.client("s3")
        # Real S3 answers HEAD without a body, so a missing bucket and a missing key both read "404": ask for the
        # bucket first, then for the key.
        if maybe(lambda: s3.head_bucket(Bucket=bucket), ("404", "NoSuchBucket", "NotFound")) is None:
            raise DeeplensError(f"bucket {bucket} for the function code does not exist",
                                "run `deeplens-cli register-roles` (it creates the bucket), or fix greengrass.artifact_bucket")
        present = maybe(lambda: s3.head_object(Bucket=bucket, Key=key), ("404", "NoSuchKey", "NotFound"))
        if present is not None:
            plan.add(noop(resource, "function code already uploaded (content-addressed key)"))
            return
        plan.add(Action(resource, "create", f"function code ({package.size} bytes)", (
            ApiCall("s3", "put_object", {"Bucket": bucket, "Key": key, "Body": package.zip_bytes,
                                         "ContentType": "application/zip",
                                         "ChecksumSHA256": package.code_sha256_b64,
                                         "Metadata": {"sha256": package.sha256_hex}}),
        ), details={"sha256": package.sha256_hex}))

    def _matching_version(self, function_name: str, code_sha256: str, desired: Mapping[str, Any]) -> dict[str, Any] | None:
        versions = collect(self.lam, "list_versions_by_function", "Versions", FunctionName=function_name)
        matching = [v for v in versions if v.get("Version") != "$LATEST" and v.get("CodeSha256") == code_sha256
                    and not _configuration_differences(v, desired)]
        return max(matching, key=lambda v: int(v["Version"]), default=None)

    def explain_runtime_rejection(self, exc: BaseException) -> DeeplensError | None:
        """Lambda's "runtime ... no longer supported", as one line with the way out; None for any other error.

        Lambda answers InvalidParameterValueException for many reasons; only this one has a fix we can name, so
        the function's ApiCalls carry this as their `explain` and the Executor asks it before translating.
        """
        response = getattr(exc, "response", None) or {}
        error = response.get("Error", {}) if isinstance(response, dict) else {}
        match = RUNTIME_REJECTED.search(str(error.get("Message", "")))
        if error.get("Code") != "InvalidParameterValueException" or not match:
            return None
        runtime = match.group(1).rstrip(".,")
        if self.settings["function.lambda_runtime"]:
            hint = "set function.lambda_runtime to a runtime Lambda still accepts (e.g. python3.12)"
        else:
            hint = (f"set function.lambda_runtime: python3.12 - Lambda then stores the function as python3.12 "
                    f"and Greengrass runs it on the device as {self.settings['function.runtime']} "
                    f"(FunctionRuntimeOverride)")
        return DeeplensError(f"AWS Lambda no longer accepts runtime {runtime} for new or updated functions", hint)

    # -- deploy -------------------------------------------------------------------------------------------

    def plan_deploy(self, device: Device, force: bool = False) -> Plan:
        if device.details.get("registration") == "incomplete":
            raise DeeplensError(f"device {device.name} was not fully registered",
                                "run register-device again with the same --name to finish it")
        if not device.group_id:
            raise DeeplensError(f"device {device.name} has no Greengrass group",
                                "register it again (`deeplens-cli register-device --name NAME --greengrass v1`)")
        group = self._read_group(device.group_id)
        if group is None:
            raise DeeplensError(f"Greengrass group {device.group_id} of device {device.name} does not exist",
                                "destroy the device and register it again")
        if not group.core_version_arn:
            raise DeeplensError(f"Greengrass group {group.name} has no core, so it cannot be deployed",
                                "register the device again: the group must hold the device's core")

        plan = Plan(f"deploy to {device.name} (Greengrass V1)")
        published = self.add_publish_actions(plan)
        plan.add(self._plan_service_role())

        definition = dict(group.definition)
        thing = device.thing_name
        changed: list[str] = []
        for kind, items in (
            ("functions", self._desired_functions(group, published.version_arn)),
            ("resources", self._desired_resources(group)),
            ("subscriptions", self._desired_subscriptions(group, published.version_arn, thing)),
        ):
            action, version_arn = self._plan_definition(kind, thing, group, items, published.changed)
            plan.add(action)
            key = f"{_DEFINITION_KINDS[kind]}DefinitionVersionArn"
            if version_arn != group.definition.get(key):
                changed.append(kind)
                definition[key] = version_arn

        group_resource = f"greengrass-group-version/{group.name}"
        deployment_resource = f"greengrass-deployment/{group.name}"
        if changed:
            plan.add(Action(group_resource, "create", "new project: " + ", ".join(changed), (
                ApiCall("greengrass", "create_group_version", {"GroupId": group.id, **definition},
                        outputs={"group_version_id": "Version"}),
            ), details={"group_id": group.id}))
            plan.add(self._deployment_action(deployment_resource, group.id, Ref("group_version_id"), "deploy the new version"))
            return plan

        plan.known["group_version_id"] = group.latest_version
        plan.add(noop(group_resource, "the latest group version holds this project", version=group.latest_version))
        last = self._last_deployment(group.id)
        reason = self._redeploy_reason(group, last, force)
        if reason is None:
            plan.add(noop(deployment_resource, f"version already deployed ({last['status']})",
                          deployment_id=last["id"], status=last["status"]))
        else:
            plan.add(self._deployment_action(deployment_resource, group.id, group.latest_version, reason))
        return plan

    def _redeploy_reason(self, group: GroupState, last: dict[str, Any] | None, force: bool) -> str | None:
        if force:
            return "--force"
        if last is None:
            return "never deployed"
        if last["group_version"] != group.latest_version:
            return "the latest group version was never deployed" if last["type"] != "ResetDeployment" \
                else "deployments were reset"
        if last["status"] == "Failure":
            return "the last deployment of this version failed"
        return None

    @staticmethod
    def _deployment_action(resource: str, group_id: str, version: Any, reason: str) -> Action:
        return Action(resource, "create", reason, (
            ApiCall("greengrass", "create_deployment", {"GroupId": group_id, "GroupVersionId": version,
                                                        "DeploymentType": "NewDeployment"},
                    outputs={"deployment_id": "DeploymentId"}),
        ), details={"group_id": group_id})

    def _plan_service_role(self) -> Action:
        """Deployments fail unless a Greengrass service role is associated with the account in the region."""
        from botocore.exceptions import ClientError

        resource = "greengrass-service-role/account"
        try:
            current = self.gg.get_service_role_for_account()
        except ClientError as exc:
            if _not_implemented(exc):
                return noop(resource, "not supported by this endpoint (an emulator); skipped")
            if error_code(exc) not in _NOT_FOUND:
                raise
            current = {}
        if current.get("RoleArn"):
            return noop(resource, f"{current['RoleArn'].rsplit('/', 1)[-1]} associated", role_arn=current["RoleArn"])
        role_arn = self.role_arn(SERVICE_ROLE)
        return Action(resource, "create", f"associate {SERVICE_ROLE} with Greengrass in {self.ctx.region}", (
            ApiCall("greengrass", "associate_service_role_to_account", {"RoleArn": role_arn}, retry=Retry(
                codes=("BadRequestException", "InvalidParameterValueException"), budget_s=60,
                message_pattern="role|assume", waiting_for=f"IAM to let Greengrass assume {SERVICE_ROLE}")),
        ))

    def _current_items(self, group: GroupState, kind: str) -> list[dict[str, Any]]:
        arn = group.definition.get(f"{_DEFINITION_KINDS[kind]}DefinitionVersionArn")
        return self._definition_items(arn) if arn else []

    def _is_our_function(self, function: Mapping[str, Any]) -> bool:
        return function.get("Id") == FUNCTION_ID or \
            _function_name_of(str(function.get("FunctionArn", ""))) == self.settings["function.name"]

    def _desired_functions(self, group: GroupState, version_arn: Any) -> list[dict[str, Any]]:
        if isinstance(version_arn, str) and version_arn.endswith(":$LATEST"):
            raise DeeplensError("refusing to pin $LATEST", "Greengrass V1 needs a published version")
        others = [f for f in self._current_items(group, "functions") if not self._is_our_function(f)]
        return others + [{"Id": FUNCTION_ID, "FunctionArn": version_arn,
                          "FunctionConfiguration": self._function_configuration(group)}]

    def _gpu_resource_id(self, group: GroupState) -> str:
        for resource in self._current_items(group, "resources"):
            data = resource.get("ResourceDataContainer", {}).get("LocalDeviceResourceData", {})
            if data.get("SourcePath") == GPU_DEVICE and resource.get("Id") != GPU_RESOURCE_ID:
                return str(resource["Id"])  # the device's own GPU resource (a DeepLens group has one): share it
        return GPU_RESOURCE_ID

    def _function_configuration(self, group: GroupState) -> dict[str, Any]:
        access = [{"ResourceId": self._gpu_resource_id(group), "Permission": "rw"}]
        if self.settings["model.s3_uri"]:
            access.append({"ResourceId": MODEL_RESOURCE_ID, "Permission": "ro"})
        configuration: dict[str, Any] = {
            "Pinned": True,  # long-lived: the loop starts with the core, as DeepLens projects do
            "MemorySize": self.settings["function.memory_mb"] * 1024,  # Greengrass V1 counts KB
            "Timeout": self.settings["function.timeout_s"],
            "EncodingType": "json",
            "Environment": {
                "Variables": self.function_environment(),
                "ResourceAccessPolicies": access,
                "AccessSysfs": True,
                "Execution": {"IsolationMode": "GreengrassContainer"},
            },
        }
        if self.settings["function.lambda_runtime"]:
            configuration["FunctionRuntimeOverride"] = self.settings["function.runtime"]
        return configuration

    def _desired_resources(self, group: GroupState) -> list[dict[str, Any]]:
        ours = {GPU_RESOURCE_ID, MODEL_RESOURCE_ID}
        resources = [r for r in self._current_items(group, "resources") if r.get("Id") not in ours]
        if self._gpu_resource_id(group) == GPU_RESOURCE_ID:
            resources.append({"Id": GPU_RESOURCE_ID, "Name": GPU_RESOURCE_ID, "ResourceDataContainer": {
                "LocalDeviceResourceData": {"SourcePath": GPU_DEVICE, "GroupOwnerSetting": {"AutoAddGroupOwner": True}}}})
        if self.settings["model.s3_uri"]:
            resources.append({"Id": MODEL_RESOURCE_ID, "Name": MODEL_RESOURCE_ID, "ResourceDataContainer": {
                "S3MachineLearningModelResourceData": {"S3Uri": self.settings["model.s3_uri"],
                                                       "DestinationPath": self.model_destination}}})
        return resources

    def _desired_subscriptions(self, group: GroupState, version_arn: Any, thing: str) -> list[dict[str, Any]]:
        def ours(subscription: Mapping[str, Any]) -> bool:
            ends = (str(subscription.get("Source", "")), str(subscription.get("Target", "")))
            return subscription.get("Id") == SUBSCRIPTION_ID or \
                any(_function_name_of(end) == self.settings["function.name"] for end in ends)

        others = [s for s in self._current_items(group, "subscriptions") if not ours(s)]
        return others + [{"Id": SUBSCRIPTION_ID, "Source": version_arn, "Subject": f"$aws/things/{thing}/infer",
                          "Target": "cloud"}]

    def _plan_definition(self, kind: str, thing: str, group: GroupState, desired: list[dict[str, Any]],
                         function_changed: bool) -> tuple[Action, Any]:
        """(action, the definition version ARN the group should hold - a Ref when the action creates it).

        The group's own definition gets a new version when its items differ. A group without one gets ours
        (named after the thing): found by name when an interrupted deploy already created it, so a re-run adds a
        version to it - or uses it as it is - instead of creating a second definition.
        """
        label = _DEFINITION_KINDS[kind]
        resource = f"greengrass-{label.lower()}-definition/{group.name}"
        current_arn = group.definition.get(f"{label}DefinitionVersionArn")
        definition_id: str | None = None
        if current_arn:
            definition_id = parse_definition_arn(current_arn)[1]
        else:
            ours = self._find_definition(kind, definition_name(thing, kind))
            if ours is not None:
                definition_id, current_arn = ours["Id"], ours.get("LatestVersionArn")
        current = self._definition_items(current_arn) if current_arn else None
        depends_on_version = kind != "resources" and function_changed
        if current is not None and not depends_on_version and _by_id(current) == _by_id(desired):
            in_group = current_arn == group.definition.get(f"{label}DefinitionVersionArn")
            return noop(resource, "up to date" if in_group else "holds the project (not yet in the group)",
                        version_arn=current_arn), current_arn
        reason = "pin the new function version" if depends_on_version else "differs from the project"
        if definition_id:
            return Action(resource, "update", reason, (
                ApiCall("greengrass", f"create_{label.lower()}_definition_version",
                        {f"{label}DefinitionId": definition_id, f"{label}s": desired},
                        outputs={f"{kind}_version_arn": "Arn"}),
            ), details={"items": len(desired)}), Ref(f"{kind}_version_arn")
        return Action(resource, "create", "the group has none yet", (
            ApiCall("greengrass", f"create_{label.lower()}_definition",
                    {"Name": definition_name(thing, kind), "InitialVersion": {f"{label}s": desired}},
                    outputs={f"{kind}_version_arn": "LatestVersionArn"}),
        ), details={"items": len(desired)}), Ref(f"{kind}_version_arn")

    def _last_deployment(self, group_id: str) -> dict[str, Any] | None:
        deployments = collect(self.gg, "list_deployments", "Deployments", GroupId=group_id)
        if not deployments:
            return None
        last = max(deployments, key=lambda d: str(d.get("CreatedAt", "")))
        group_arn = str(last.get("GroupArn", ""))
        version = group_arn.rsplit("/versions/", 1)[1] if "/versions/" in group_arn else None
        record = {"id": last.get("DeploymentId"), "type": last.get("DeploymentType"), "created_at": last.get("CreatedAt"),
                  "group_version": version, "status": None, "error_message": None, "error_details": []}
        if last.get("DeploymentType") == "ResetDeployment":
            record["status"] = "Reset"
            return record
        status = self.deployment_status(group_id, str(last["DeploymentId"]))
        record["status"] = status.get("DeploymentStatus")
        record["error_message"] = status.get("ErrorMessage")
        record["error_details"] = [_error_line(d) for d in status.get("ErrorDetails") or []]
        return record

    def wait_for_deployment(self, device: Device, result: ExecutionResult, timeout_s: float,
                            reporter: Reporter) -> DeploymentOutcome:
        """Poll the status source every deploy.poll_s until Success, Failure or the timeout; progress on stderr.

        Elapsed time is a `WaitClock` on the injected sleep and clock, so an injected sleep that returns at once
        still reaches the timeout after the same number of polls as a real one.
        """
        deployment_id = result.variables.get("deployment_id")
        if not deployment_id or not device.group_id:
            return DeploymentOutcome(None, "not_waited", "no deployment was started")
        poll = float(self.settings["deploy.poll_s"])
        clock = WaitClock(self.ctx.sleep, self.clock)
        last_state, last_said = None, 0.0
        while True:
            status = self.deployment_status(device.group_id, str(deployment_id))
            state = status.get("DeploymentStatus", "Unknown")
            elapsed = clock.elapsed()
            if state != last_state or elapsed - last_said >= PROGRESS_EVERY_S:
                still = "still " if state == last_state else ""
                reporter.progress(f"deployment {deployment_id} to {device.name}: {still}{state} "
                                  f"({elapsed:.0f}s of {timeout_s:g}s)")
                last_state, last_said = state, elapsed
            if state == "Success":
                return DeploymentOutcome(str(deployment_id), "succeeded", f"{device.name} runs the new project",
                                         extra={"group_id": device.group_id, "elapsed_s": round(elapsed, 1)})
            if state == "Failure":
                errors = tuple(_error_line(d) for d in status.get("ErrorDetails") or [])
                return DeploymentOutcome(str(deployment_id), "failed", status.get("ErrorMessage") or "the core reported Failure",
                                         errors, extra={"group_id": device.group_id})
            if elapsed >= timeout_s:
                return DeploymentOutcome(str(deployment_id), "timed_out", f"still {state} after {timeout_s:g}s",
                                         extra={"group_id": device.group_id, "last_status": state})
            clock.wait(min(poll, timeout_s - elapsed))

    # -- status -------------------------------------------------------------------------------------------

    def device_status(self, device: Device) -> dict[str, Any]:
        """Thing, certificate, core, group role, the deployed project and the last deployment (reads only)."""
        problems: list[str] = []
        info: dict[str, Any] = {"target": TARGET, "thing": device.thing_name, "group": device.group_name,
                                "group_id": device.group_id}
        if device.details.get("registration") == "incomplete":
            problems.append("registration incomplete (run register-device again)")
        thing = maybe(lambda: self.iot.describe_thing(thingName=device.thing_name), _NOT_FOUND)
        info["thing_exists"] = thing is not None
        if thing is None:
            problems.append(f"IoT thing {device.thing_name} missing")
        certificates = self._certificates(device.thing_name) if thing else []
        info["certificates"] = [{"id": c.id, "status": c.status} for c in certificates]
        if thing and not any(c.status == "ACTIVE" for c in certificates):
            problems.append("no active certificate")
        group = self._read_group(device.group_id) if device.group_id else None
        info["group_version"] = group.latest_version if group else None
        if group is None:
            problems.append("no Greengrass group")
        else:
            core = self._definition_items(group.core_version_arn)[0] if group.core_version_arn else None
            info["core"] = core.get("ThingArn") if core else None
            if core is None:
                problems.append("the group has no core")
            elif core.get("ThingArn", "").rsplit("/", 1)[-1] != device.thing_name:
                problems.append("the group's core is another thing")
            associated = maybe(lambda: self.gg.get_associated_role(GroupId=group.id), _NOT_FOUND)
            info["group_role"] = (associated or {}).get("RoleArn")
            if not info["group_role"]:
                problems.append("no group role")
            project = [f for f in self._current_items(group, "functions") if self._is_our_function(f)]
            info["function_version_arn"] = project[0]["FunctionArn"] if project else None
            last = self._last_deployment(group.id)
            info["last_deployment"] = last
            info["last_deployment_id"] = last["id"] if last else None
            info["last_deployment_status"] = last["status"] if last else "never"
            if last is None:
                problems.append("never deployed")
            elif last["status"] != "Success":
                problems.append(f"last deployment {last['status']}" + (f": {last['error_message']}"
                                                                       if last.get("error_message") else ""))
            elif last["group_version"] != group.latest_version:
                problems.append("the latest group version is not deployed")
        info.setdefault("last_deployment_status", "never")
        info["problems"] = problems
        info["health"] = "ok" if not problems else "problem"
        return info

    def project_status(self) -> dict[str, Any]:
        """The published function: latest version, its CodeSha256, and whether it matches the local build."""
        from deeplens_cli.package import vendor_dir_if_cached

        function_name = self.settings["function.name"]
        status: dict[str, Any] = {"target": TARGET, "kind": "lambda-function", "name": function_name}
        current = maybe(lambda: self.lam.get_function(FunctionName=function_name), ("ResourceNotFoundException",))
        status["exists"] = current is not None
        if current is None:
            status["problems"] = ["function not published (run publish or deploy)"]
            return status
        versions = [v for v in collect(self.lam, "list_versions_by_function", "Versions", FunctionName=function_name)
                    if v.get("Version") != "$LATEST"]
        latest = max(versions, key=lambda v: int(v["Version"]), default=None)
        status.update(latest_version=latest["Version"] if latest else None,
                      version_arn=latest["FunctionArn"] if latest else None,
                      code_sha256=latest["CodeSha256"] if latest else current["Configuration"].get("CodeSha256"),
                      runtime=current["Configuration"].get("Runtime"))
        vendor = self.settings["function.vendor"]
        if vendor and vendor_dir_if_cached(vendor, self.device_python) is None:
            status["local_code_sha256"] = None  # would need pip (maybe the network): not for a status command
        else:
            status["local_code_sha256"] = self.package().code_sha256_b64
        status["up_to_date"] = status["local_code_sha256"] == status["code_sha256"] if status["local_code_sha256"] else None
        status["problems"] = [] if latest else ["no published version"]
        if status["up_to_date"] is False:
            status["problems"].append("local edge_function differs from the published version (run deploy)")
        return status

    # -- destroy ------------------------------------------------------------------------------------------

    def plan_destroy(self, device: Device | None) -> Plan:
        if device is None:
            return self._plan_destroy_shared()
        plan = Plan(f"destroy {device.name} (Greengrass V1)")
        if not device.details.get("managed", True):
            plan.add(noop(f"greengrass-group/{device.group_name}", "not registered by deeplens-cli; left in place"))
            return plan
        thing = device.thing_name
        if device.group_id:
            group_resource = f"greengrass-group/{device.group_name}"
            if maybe(lambda: self.gg.get_group(GroupId=device.group_id), _NOT_FOUND) is None:
                plan.add(noop(group_resource, "already gone"))
            else:
                deployments = collect(self.gg, "list_deployments", "Deployments", GroupId=device.group_id)
                steps: list[Step] = []
                if any(d.get("DeploymentType") != "ResetDeployment" for d in deployments):
                    # Reset first: Greengrass keeps a deployed group's state on the core otherwise. moto's server
                    # has no route for `$reset` and answers a bare HTML 404; nothing else ever answers "404".
                    steps.append(ApiCall("greengrass", "reset_deployments", {"GroupId": device.group_id, "Force": True},
                                         ignore_codes=("404", "IdNotFoundException")))
                steps.append(ApiCall("greengrass", "delete_group", {"GroupId": device.group_id},
                                     ignore_codes=("IdNotFoundException", "404")))
                plan.add(Action(group_resource, "delete", "reset deployments, then delete the group", tuple(steps),
                                details={"group_id": device.group_id}))
        for label in _DEFINITION_KINDS.values():
            for definition in collect(self.gg, f"list_{label.lower()}_definitions", "Definitions"):
                if str(definition.get("Name", "")).startswith(f"{thing}-"):
                    plan.add(Action(f"greengrass-{label.lower()}-definition/{definition['Name']}", "delete",
                                    "created for this device", (
                                        ApiCall("greengrass", f"delete_{label.lower()}_definition",
                                                {f"{label}DefinitionId": definition["Id"]},
                                                ignore_codes=("IdNotFoundException", "404")),
                                    )))
        for certificate in self._certificates(thing):
            plan.add(self._retire_certificate(thing, certificate, "the device's certificate"))
        policy = device_iot.policy_teardown(self.iot, policy_name_for(thing), "the core's IoT policy")
        if policy is not None:
            plan.add(policy)
        if maybe(lambda: self.iot.describe_thing(thingName=thing), _NOT_FOUND) is not None:
            plan.add(device_iot.thing_teardown(thing, f"the IoT thing of {device.name}"))
        return plan

    def _plan_destroy_shared(self) -> Plan:
        """Once no V1 device is left: the Lambda function with all its versions."""
        plan = Plan("destroy Greengrass V1 shared resources")
        function_name = self.settings["function.name"]
        resource = f"lambda-function/{function_name}"
        if maybe(lambda: self.lam.get_function(FunctionName=function_name), ("ResourceNotFoundException",)) is None:
            plan.add(noop(resource, "already gone"))
        else:
            plan.add(Action(resource, "delete", "the edge function and all its published versions", (
                ApiCall("lambda", "delete_function", {"FunctionName": function_name},
                        ignore_codes=("ResourceNotFoundException",)),
            )))
        plan.extend(self._plan_delete_code_objects())
        return plan

    def _plan_delete_code_objects(self) -> Plan:
        """The function zips publish uploaded (our own content-addressed prefix; never the face crops)."""
        plan = Plan("function code objects")
        from deeplens_cli.targets.greengrass_v2.component import artifact_bucket

        bucket = artifact_bucket(self.settings)
        prefix = f"{self.settings['greengrass.artifact_prefix']}lambda/{self.settings['function.name']}/"
        try:
            keys = [o["Key"] for o in collect(self.ctx.client("s3"), "list_objects_v2", "Contents",
                                                Bucket=bucket, Prefix=prefix)]
        except Exception as exc:
            if error_code(exc) != "NoSuchBucket":
                raise
            keys = []
        for key in keys:
            plan.add(Action(f"s3-object/s3://{bucket}/{key}", "delete", "published function code", (
                ApiCall("s3", "delete_object", {"Bucket": bucket, "Key": key}),
            )))
        return plan


# ---------------------------------------------------------------------------------------------- helpers


def _configuration_differences(current: Mapping[str, Any], desired: Mapping[str, Any]) -> list[str]:
    """Names of the Lambda configuration fields that differ (Environment compared as a dict)."""
    differences = []
    for key, value in desired.items():
        if key == "Environment":
            if (current.get("Environment") or {}).get("Variables", {}) != value["Variables"]:
                differences.append("environment")
        elif current.get(key) != value:
            differences.append(key.lower())
    return differences


def _error_line(detail: Mapping[str, Any]) -> str:
    code = detail.get("DetailedErrorCode") or "error"
    return f"{code}: {detail.get('DetailedErrorMessage', '')}".rstrip(": ")


def _certificate_in_bundle(out_dir: Path, thing: str, certificates: list[Certificate],
                           describe: Callable[[str], Certificate | None]) -> tuple[Certificate | None, Certificate | None]:
    """(reusable, orphan): the certificate whose private key the bundle folder holds, if IoT still has it; else
    the certificate the folder was made for but whose key never reached it (an interrupted write), to retire.

    The manifest names the certificate; a folder without one (older bundles) is matched by its PEM files against
    the certificates attached to the thing.
    """
    manifest = bundle.read_manifest(out_dir)
    if manifest and manifest.get("thing_name") == thing and manifest.get("certificate_id"):
        cert_id = str(manifest["certificate_id"])
        certificate = next((c for c in certificates if c.id == cert_id), None) or describe(cert_id)
        if certificate is None:
            return None, None
        if (out_dir / "certs" / f"{cert_id[:10]}.private.key").exists():
            return certificate, None
        return None, certificate
    certs_dir = out_dir / "certs"
    if not certificates or not certs_dir.is_dir():
        return None, None
    for cert_file in sorted(certs_dir.glob("*.cert.pem")):
        key_file = cert_file.with_name(cert_file.name.replace(".cert.pem", ".private.key"))
        if not key_file.exists():
            continue
        pem = cert_file.read_text(encoding="utf-8").strip()
        for certificate in certificates:
            if certificate.pem.strip() == pem:
                return certificate, None
    return None, None


def _check_bundle_folder(out_dir: Path, thing: str) -> None:
    """An existing, non-empty --out is accepted only when it is this device's own bundle from an interrupted
    registration (its manifest names the thing); anything else may hold another device's key."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} is a file", "choose a folder for the device bundle")
    if not any(out_dir.iterdir()):
        return
    manifest = bundle.read_manifest(out_dir)
    if manifest is None or manifest.get("thing_name") != thing:
        owner = f"thing {manifest.get('thing_name')}" if manifest else "something else"
        raise ConfigError(f"--out {out_dir} already holds files of {owner}",
                          "a bundle holds a private key issued only once: choose another --out or move the old one")


def write_bundle(out_dir: Path, variables: dict[str, Any], thing_arn: str, endpoint: str, region: str) -> dict[str, Any]:
    """Write the device bundle; the private key is written 0600 and then dropped from the plan variables.

    Layout (a Greengrass V1 core bundle): certs/<id>.cert.pem, certs/<id>.private.key, certs/<id>.public.key,
    config/config.json, README.txt, plus deeplens-bundle.json naming the thing and certificate. The root CA is
    a reference (ROOT_CA_URL): it is public, and fetching it here would mean a download.

    The manifest is written first, so a run interrupted in the middle of this step still tells the next run
    which certificate the folder was for. Key material is only ever created (O_EXCL, never overwritten); the
    derived files (config, README, manifest) are replaced when a re-run issues a new certificate.
    """
    cert_id = str(variables["cert_id"])
    prefix = cert_id[:10]
    key_pair = variables["key_pair"]
    _bundle_dirs(out_dir)
    bundle.write_manifest(out_dir, {
        "thing_arn": thing_arn, "thing_name": thing_arn.rsplit("/", 1)[-1], "certificate_id": cert_id,
        "certificate_arn": variables["cert_arn"], "region": region})
    bundle.write_secret(out_dir / "certs" / f"{prefix}.private.key", key_pair["PrivateKey"])
    bundle.write_new(out_dir / "certs" / f"{prefix}.public.key", key_pair["PublicKey"], 0o644)
    complete_bundle(out_dir, cert_id, variables["cert_pem"], thing_arn, endpoint, region)
    return {"key_pair": "<written to the device bundle>", "bundle_dir": str(out_dir)}


def complete_bundle(out_dir: Path, cert_id: str, cert_pem: str, thing_arn: str, endpoint: str, region: str) -> None:
    """The bundle's non-secret files: certificate, core config, README (rewritten; the key is never touched)."""
    prefix = cert_id[:10]
    _bundle_dirs(out_dir)
    bundle.replace_file(out_dir / "certs" / f"{prefix}.cert.pem", cert_pem)
    bundle.replace_file(out_dir / "config" / "config.json", json.dumps(core_config(prefix, thing_arn, endpoint, region), indent=2) + "\n")
    bundle.replace_file(out_dir / "README.txt", _bundle_readme(prefix, thing_arn))


def _bundle_dirs(out_dir: Path) -> None:
    bundle.prepare_folder(out_dir)
    (out_dir / "certs").mkdir(mode=0o700, exist_ok=True)
    (out_dir / "config").mkdir(mode=0o755, exist_ok=True)


def core_config(prefix: str, thing_arn: str, endpoint: str, region: str) -> dict[str, Any]:
    """The core's config/config.json (Greengrass V1 `coreThing` + `crypto` sections)."""
    certs = f"file://{GREENGRASS_ROOT}/certs"
    return {
        "coreThing": {"caPath": "root.ca.pem", "certPath": f"{prefix}.cert.pem", "keyPath": f"{prefix}.private.key",
                      "thingArn": thing_arn, "iotHost": endpoint, "ggHost": f"greengrass-ats.iot.{region}.amazonaws.com",
                      "keepAlive": 600},
        "runtime": {"cgroup": {"useSystemd": "yes"}},
        "managedRespawn": False,
        "crypto": {"caPath": f"{certs}/root.ca.pem", "principals": {
            "IoTCertificate": {"privateKeyPath": f"{certs}/{prefix}.private.key",
                               "certificatePath": f"{certs}/{prefix}.cert.pem"},
            "SecretsManager": {"privateKeyPath": f"{certs}/{prefix}.private.key"}}},
    }


def _bundle_readme(prefix: str, thing_arn: str) -> str:
    return (
        f"Greengrass V1 core bundle for {thing_arn}\n\n"
        f"certs/{prefix}.cert.pem     the core's certificate\n"
        f"certs/{prefix}.private.key  its private key (mode 0600) - keep it secret; it was issued once\n"
        f"certs/{prefix}.public.key   its public key\n"
        "config/config.json          the core's configuration\n\n"
        f"The root CA is not included: download Amazon Root CA 1 from {ROOT_CA_URL}\n"
        f"into {GREENGRASS_ROOT}/certs/root.ca.pem on the device.\n"
        f"Copy certs/ and config/ to {GREENGRASS_ROOT}/ on the device (a DeepLens keeps Greengrass under\n"
        "/opt/awscam/greengrass) and restart the Greengrass daemon.\n"
    )
