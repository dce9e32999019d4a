"""register-device for Greengrass V2: thing (name pending), core policy, fleet membership, certificate and
bundle, then the name. Resumable: each step is found again by a re-run after an interruption.

Functions of the shared `V2Context` (context.py). Other concerns use two of them: deploy repairs the core policy
(`plan_core_policy`), and claim provisioning shares the role alias and endpoint reads
(`shared_registration_reads`) and the fleet's thing group (`plan_thing_group`). This module needs no other concern.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deeplens_cli.aws import collect, maybe
from deeplens_cli.engine.plan import Action, ApiCall, LocalStep, Plan, Ref, noop
from deeplens_cli.errors import DeeplensError
from deeplens_cli.targets import bundle as bundle_files
from deeplens_cli.targets import iot as device_iot
from deeplens_cli.targets.base import NAME_ATTRIBUTE, TARGET_ATTRIBUTE, Device
from deeplens_cli.targets.bundle import HeldCertificate, held_certificate
from deeplens_cli.targets.greengrass_v2.core_bundle import (
    CERTIFICATE_FILE,
    DERIVED_FILES,
    KEY_PAIR,
    PRIVATE_KEY_FILE,
    CoreBundle,
    amazon_root_ca_1,
)
from deeplens_cli.targets.greengrass_v2.naming import (
    MANAGED,
    MANAGED_GROUP_ATTRIBUTE,
    TARGET,
    core_policy,
    policy_name,
    thing_name,
)
from deeplens_cli.targets.iot import NOT_FOUND, PENDING_ATTRIBUTE
from deeplens_cli.targets.registration import (
    Certificate,
    certificate_resource,
    csr_for,
    duplicates_step,
    issue_certificate_call,
    plan_kept_certificate,
    retire_certificate,
    thing_certificates,
)

if TYPE_CHECKING:
    from deeplens_cli.targets.greengrass_v2.context import V2Context


def plan_register_device(v2: V2Context, name: str, out_dir: str, fleet: str | None = None,
                         known: device_iot.ExistingIot | None = None) -> Plan:
    """Thing (name pending), policy, fleet, certificate + bundle, attachments, then the name: resumable.

    Every step is found again by a re-run after an interruption: the thing by its name, the certificate by
    the bundle in `out_dir` (bundle.held_certificate), attachments by listing them. Only the
    last step records `deeplens_name`, so until then the device lists as "NAME (incomplete)".
    """
    iot = v2.ctx.client("iot")
    thing = thing_name(name)
    policy = policy_name(name)
    plan = Plan(f"register-device {name} (Greengrass V2)")
    described = device_iot.describe_thing(iot, thing, known)
    attributes = (described or {}).get("attributes") or {}
    if described is not None and (attributes.get(TARGET_ATTRIBUTE) != TARGET
                                  or name not in (attributes.get(PENDING_ATTRIBUTE), attributes.get(NAME_ATTRIBUTE))):
        raise DeeplensError(f"IoT thing {thing} already exists but is not a deeplens-cli Greengrass V2 device "
                            f"named {name}", "choose another --name, or delete that thing if it is a leftover")
    alias_name, data_endpoint, credential_endpoint = shared_registration_reads(v2)
    bundle = CoreBundle(thing=thing, region=v2.ctx.region, role_alias=alias_name, data_endpoint=data_endpoint,
                        credential_endpoint=credential_endpoint,
                        device_profile=v2.settings["greengrass.device_profile"])

    attached = thing_certificates(iot, thing) if described else []
    held = _certificate_in_bundle(v2, Path(out_dir), thing, attached)
    kept, unfinished = held.kept, held.unfinished

    # 1. the thing; the device name stays pending until the last step
    if described is None:
        plan.add(device_iot.create_thing_action(
            thing, TARGET, name, f"Greengrass V2 core device {name}",
            {"endpoints": {"data": bundle.data_endpoint, "credentials": bundle.credential_endpoint}}))
    else:
        plan.add(noop(f"iot-thing/{thing}", "exists (an earlier registration was interrupted)", thing=thing))

    # 2. the policy, 3. the fleet
    plan.add(plan_core_policy(v2, name, thing, known))
    plan.actions.extend(_plan_orphaned_certificates(v2, name, keep=kept.arn if kept else None, known=known))
    if fleet:
        plan.add(plan_thing_group(v2, fleet))

    # 4. the certificate: the one whose key the bundle holds, else a new one written to the bundle
    root_ca = amazon_root_ca_1()
    if kept is None:
        folder = Path(out_dir)

        def prepare_key(variables: dict[str, Any]) -> dict[str, Any]:
            """The key first, on disk (0600), before IoT is asked: no key ever exists only in an answer."""
            bundle_files.prepare_folder(folder)
            return {"csr": csr_for(bundle_files.ensure_private_key(folder / PRIVATE_KEY_FILE), thing)}

        def write_bundle(variables: dict[str, Any]) -> dict[str, Any]:
            bundle.complete(folder, variables["certificate_pem"], root_ca)
            return {"bundle_dir": out_dir}

        plan.add(Action(f"iot-certificate/{thing}", "create",
                        f"key pair made here (its key goes to {out_dir}, 0600) and an active certificate for it", (
            LocalStep(f"write the device's private key to {out_dir} (mode 0600) and its signing request",
                      prepare_key),
            issue_certificate_call(),
            duplicates_step(iot, folder / PRIVATE_KEY_FILE),
            LocalStep(f"write the device bundle to {out_dir}", write_bundle),
            ApiCall("iot", "attach_thing_principal", {"thingName": thing, "principal": Ref("certificate_arn")}),
            ApiCall("iot", "attach_policy", {"policyName": policy, "target": Ref("certificate_arn")}),
        ), details={"bundle": out_dir, "policy": policy}))
    else:
        plan.known["certificate_arn"] = kept.arn
        folder = Path(out_dir)
        plan.add(plan_kept_certificate(
            iot, kept, thing, any(c.id == kept.id for c in attached), out_dir,
            [name for name in (CERTIFICATE_FILE, *DERIVED_FILES) if not (folder / name).exists()],
            lambda variables: bundle.complete(folder, kept.pem, root_ca), policy=policy))
    if unfinished is not None and all(c.id != unfinished.id for c in attached):
        plan.add(retire_certificate(iot, unfinished,
                                    f"issued by an interrupted registration whose key never reached {out_dir}"))
    for stale in attached:
        if kept is None or stale.id != kept.id:
            plan.add(retire_certificate(iot, stale, f"issued by an interrupted registration whose key is not in "
                                                    f"{out_dir}", thing=thing))

    # 5. fleet membership, 6. the name: registration complete
    if fleet:
        plan.add(_plan_fleet_membership(v2, fleet, thing, described is not None))
    plan.add(device_iot.record_name_action(thing, name))
    return plan


def shared_registration_reads(v2: V2Context) -> tuple[str, str, str]:
    """(role alias, data endpoint, credential endpoint): the same for every device, so read once per target
    instance - registering many names in one run costs these three calls once."""
    cached = v2.shared_reads
    if cached is None:
        iot = v2.ctx.client("iot")
        alias_name = v2.settings["greengrass.role_alias"]
        if maybe(lambda: iot.describe_role_alias(roleAlias=alias_name), NOT_FOUND) is None:
            raise DeeplensError(f"IoT role alias {alias_name} does not exist (devices get AWS credentials through "
                                f"it)", "run `deeplens-cli register-roles` first")
        cached = v2.shared_reads = (
            alias_name, iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"],
            iot.describe_endpoint(endpointType="iot:CredentialProvider")["endpointAddress"])
    return cached


def plan_join_fleet(v2: V2Context, device: Device, fleet: str) -> Plan:
    """An already registered device plus --fleet: the fleet (created when missing) and its membership -
    nothing else; its certificate and bundle stay as they are."""
    plan = Plan(f"add {device.name} to fleet {fleet} (Greengrass V2)")
    plan.add(plan_thing_group(v2, fleet))
    plan.add(_plan_fleet_membership(v2, fleet, device.thing_name, True))
    return plan


def _plan_fleet_membership(v2: V2Context, fleet: str, thing: str, thing_exists: bool) -> Action:
    iot = v2.ctx.client("iot")
    groups = collect(iot, "list_thing_groups_for_thing", "thingGroups", thingName=thing) if thing_exists else []
    resource = f"iot-thing-group-member/{fleet}/{thing}"
    if fleet in [g.get("groupName") for g in groups]:
        return noop(resource, "already a member")
    return Action(resource, "create", f"add {thing} to fleet {fleet}", (
        ApiCall("iot", "add_thing_to_thing_group", {"thingGroupName": fleet, "thingName": thing}),
    ))


def _certificate_in_bundle(v2: V2Context, out_dir: Path, thing: str, attached: list[Certificate]) -> HeldCertificate:
    """What the bundle folder holds (bundle.held_certificate), once the folder is accepted as this device's.

    Checked on every attempt, before anything is created: the folder holds nothing but this device's bundle
    (its config.yaml names this thing; the certificate it holds is attached to no other thing), so a resumed
    registration never takes over another device's certificate or writes over the user's files. A key
    file that holds no key (a kill between creating and writing it) is removed; a key next to a certificate
    IoT does not have is refused rather than overwritten.
    """
    iot = v2.ctx.client("iot")
    config_file = out_dir / "config.yaml"
    is_folder = bundle_files.is_folder(out_dir)
    config = config_file.read_text(encoding="utf-8", errors="replace") if is_folder and config_file.is_file() else None
    names_thing = f"thingName: {json.dumps(thing)}" in config if config is not None else \
        not (is_folder and (out_dir / "README.md").exists())

    def accept(certificate: Certificate | None) -> None:
        owners = [t for t in collect(iot, "list_principal_things", "things", principal=certificate.arn)
                  if t != thing] if certificate else []
        bundle_files.check_folder(out_dir, (CERTIFICATE_FILE, PRIVATE_KEY_FILE, "AmazonRootCA1.pem", *DERIVED_FILES),
                                  names_thing and not owners, f"thing {owners[0]}" if owners else None)
        bundle_files.check_creatable(out_dir)

    held = held_certificate(iot, out_dir, KEY_PAIR, attached, accept)
    bundle_files.discard_broken_keys(out_dir, KEY_PAIR)
    if held.kept is None and held.unknown_key is not None:
        raise bundle_files.unknown_key_error(held.unknown_key)
    return held


def plan_core_policy(v2: V2Context, name: str, thing: str, known: device_iot.ExistingIot | None = None) -> Action:
    """Create the device's IoT policy, or repair it (a new default version) when it drifted."""
    desired = core_policy(v2.partition, v2.ctx.region, v2.ctx.account_id, thing,
                          v2.settings["greengrass.role_alias"])
    return device_iot.plan_core_policy(v2.ctx.client("iot"), policy_name(name), desired,
                                       "minimal Greengrass V2 core policy", "up to date", known)


def _plan_orphaned_certificates(v2: V2Context, name: str, keep: str | None = None,
                                known: device_iot.ExistingIot | None = None) -> list[Action]:
    """Certificates holding this device's policy but attached to no thing (a registration interrupted in an
    earlier version of this tool, or a half-finished destroy): deleted - unless the bundle holds its key."""
    iot = v2.ctx.client("iot")
    policy = policy_name(name)
    if device_iot.get_policy(iot, policy, known) is None:
        return []
    actions = []
    for target in collect(v2.ctx.client("iot"), "list_targets_for_policy", "targets", policyName=policy):
        if ":cert/" not in target or target == keep or \
                collect(v2.ctx.client("iot"), "list_principal_things", "things", principal=target):
            continue
        certificate_id = target.rsplit("/", 1)[-1]
        actions.append(Action(certificate_resource(certificate_id), "delete",
                              "left over from an interrupted registration (no thing attached)",
                              device_iot.certificate_teardown(target, [policy])))
    return actions


def plan_thing_group(v2: V2Context, fleet: str) -> Action:
    iot = v2.ctx.client("iot")
    resource = f"iot-thing-group/{fleet}"
    if fleet in v2.known_groups or maybe(lambda: iot.describe_thing_group(thingGroupName=fleet), NOT_FOUND) is not None:
        v2.known_groups.add(fleet)  # many names into one fleet: read once
        return noop(resource, "exists")
    return Action(resource, "create", "fleet for thing-group deployments", (
        ApiCall("iot", "create_thing_group", {"thingGroupName": fleet, "thingGroupProperties": {
            "thingGroupDescription": "Greengrass V2 fleet of deeplens-cli devices",
            "attributePayload": {"attributes": {MANAGED_GROUP_ATTRIBUTE: MANAGED}}}}),
    ))
