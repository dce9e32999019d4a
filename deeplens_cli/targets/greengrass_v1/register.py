"""register-device for Greengrass V1: thing (name pending), certificate and bundle, core definition, group,
group role and core policy, then the name. Resumable: names are derived, so a re-run finds each step again.

Functions of the target's `V1Context`; reads groups and definitions through `groups`. `device_certificates` and
`retire_device_certificate` are also what status and destroy use for a device's certificates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deeplens_cli.account.roles import GROUP_ROLE
from deeplens_cli.aws import maybe
from deeplens_cli.engine.plan import Action, ApiCall, LocalStep, Plan, Ref, noop
from deeplens_cli.errors import ConfigError, DeeplensError
from deeplens_cli.targets import iot as device_iot
from deeplens_cli.targets.base import TARGET_ATTRIBUTE
from deeplens_cli.targets.bundle import MANIFEST, discard_broken_keys, held_certificate, read_manifest
from deeplens_cli.targets.greengrass_v1.core_bundle import (
    KEY_PAIR,
    PENDING_KEY,
    check_bundle_folder,
    finish_bundle,
    prepare_key,
    write_bundle,
)
from deeplens_cli.targets.greengrass_v1.groups import (
    by_id,
    converge_by_name,
    definition_items,
    find_definition,
    find_group,
)
from deeplens_cli.targets.greengrass_v1.naming import (
    TARGET,
    core_policy,
    definition_name,
    group_name_for,
    policy_name_for,
    thing_name_for,
)
from deeplens_cli.targets.iot import NOT_FOUND
from deeplens_cli.targets.registration import (
    Certificate,
    duplicates_step,
    issue_certificate_call,
    plan_kept_certificate,
    retire_certificate,
    thing_certificates,
)

if TYPE_CHECKING:
    from deeplens_cli.targets.greengrass_v1.context import V1Context


def device_certificates(v1: V1Context, thing_name: str) -> list[Certificate]:
    return thing_certificates(v1.iot, thing_name)


def retire_device_certificate(v1: V1Context, thing: str, certificate: Certificate, reason: str) -> Action:
    return retire_certificate(v1.iot, certificate, reason, thing=thing)


def plan_register_device(v1: V1Context, name: str, out_dir: str, fleet: str | None = None) -> Plan:
    if fleet:
        raise ConfigError("--fleet needs --greengrass v2", "IoT thing-group rollouts are a Greengrass V2 feature")
    account, region = v1.ctx.account_id, v1.ctx.region
    thing = thing_name_for(account, region, name)
    thing_arn = v1.thing_arn(thing)
    policy = policy_name_for(thing)
    group_name = group_name_for(name)
    group_role_arn = v1.role_arn(GROUP_ROLE)
    endpoint = v1.iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]

    check_bundle_folder(Path(out_dir), thing)
    plan = Plan(f"register device {name} (Greengrass V1)")
    plan.known.update(thing_arn=thing_arn, group_role_arn=group_role_arn)

    # 1. the thing, named for the device, with the name pending until the registration is complete
    described = maybe(lambda: v1.iot.describe_thing(thingName=thing), NOT_FOUND)
    attributes = (described or {}).get("attributes", {})
    if described is None:
        plan.add(device_iot.create_thing_action(thing, TARGET, name, f"the device's IoT thing (device name {name})"))
    elif attributes.get(TARGET_ATTRIBUTE, TARGET) != TARGET:
        raise DeeplensError(f"IoT thing {thing} already exists for a Greengrass {attributes[TARGET_ATTRIBUTE]} device",
                            "destroy that device first, or choose another --name")
    else:
        plan.add(noop(f"iot-thing/{thing}", "exists (an earlier registration was interrupted)", thing=thing))

    # 2. the certificate: keep the one whose key is in the bundle folder, else issue one and write the bundle
    # (a key next to a certificate IoT no longer has - the device was destroyed - is left; a new one is made)
    certificates = device_certificates(v1, thing) if described else []
    discard_broken_keys(Path(out_dir), KEY_PAIR)
    held = held_certificate(v1.iot, Path(out_dir), KEY_PAIR, certificates)
    kept, unfinished = held.kept, held.unfinished
    if kept:
        plan.known.update(certificate_arn=kept.arn, certificate_id=kept.id)
        attached_policies = set(device_iot.attached_policies(v1.iot, kept.arn))
        folder, prefix = Path(out_dir), kept.id[:10]
        manifest = read_manifest(folder) or {}
        missing = [name for name in (f"certs/{prefix}.private.key", f"certs/{prefix}.cert.pem", "config/config.json",
                                     "README.txt") if not (folder / name).exists()]
        if manifest.get("certificate_id") != kept.id:
            missing.append(f"{MANIFEST} (certificate)")
        plan.add(plan_kept_certificate(
            v1.iot, kept, thing, any(c.id == kept.id for c in certificates), f"{out_dir}/", missing,
            lambda variables: finish_bundle(folder, kept.id, kept.arn, kept.pem, thing_arn, endpoint, region)))
    else:
        attached_policies = set()
        key = LocalStep(f"write the device's private key to {out_dir}/certs (mode 0600) and its signing request",
                        lambda variables: {"csr": prepare_key(Path(out_dir), thing_arn, region)})
        write = LocalStep(f"write the device bundle to {out_dir}/",
                          lambda variables: write_bundle(Path(out_dir), variables, thing_arn, endpoint, region))
        plan.add(Action("iot-certificate/new", "create",
                        f"key pair made here and an active certificate for {thing}; the bundle goes to {out_dir}/", (
                            key,
                            issue_certificate_call(),
                            duplicates_step(v1.iot, Path(out_dir) / "certs" / PENDING_KEY),
                            write,
                            ApiCall("iot", "attach_thing_principal",
                                    {"thingName": thing, "principal": Ref("certificate_arn")}),
                        ), details={"bundle": out_dir}))
    stale = [c for c in certificates if kept is None or c.id != kept.id]
    if unfinished is not None and all(c.id != unfinished.id for c in stale):
        stale.append(unfinished)
    for certificate in stale:
        plan.add(retire_device_certificate(v1, thing, certificate, "issued by an earlier, interrupted registration "
                                                              "whose key is not in --out; replaced"))

    # 3. the core definition: this thing and the certificate whose key the bundle holds
    certificate_arn: Any = kept.arn if kept else Ref("certificate_arn")
    cores = [{"Id": thing, "ThingArn": thing_arn, "CertificateArn": certificate_arn, "SyncShadow": True}]
    core_name = definition_name(thing, "core")
    existing_core = find_definition(v1, "cores", core_name)
    current_cores = definition_items(v1, existing_core["LatestVersionArn"]) \
        if existing_core and existing_core.get("LatestVersionArn") else None
    if existing_core is None:
        plan.add(Action(f"greengrass-core-definition/{core_name}", "create", "the core: thing + certificate", (
            ApiCall("greengrass", "create_core_definition", {"Name": core_name, "InitialVersion": {"Cores": cores}},
                    outputs={"core_version_arn": "LatestVersionArn", "core_definition_id": "Id"}),
            _converge_step(v1, "cores", core_name, "core_definition_id"),
        )))
    elif kept and current_cores is not None and by_id(current_cores) == by_id(cores):
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
    group = find_group(v1, group_name)
    core_changed = "core_version_arn" not in plan.known
    if group is None:
        plan.add(Action(f"greengrass-group/{group_name}", "create", "the device's group, first version = the core", (
            ApiCall("greengrass", "create_group",
                    {"Name": group_name, "InitialVersion": {"CoreDefinitionVersionArn": Ref("core_version_arn")}},
                    outputs={"group_id": "Id"}),
            _converge_step(v1, "groups", group_name, "group_id"),
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
    associated = maybe(lambda: v1.gg.get_associated_role(GroupId=group.id), NOT_FOUND) if group else None
    if associated and associated.get("RoleArn") == group_role_arn:
        plan.add(noop(f"greengrass-group-role/{group_name}", f"{GROUP_ROLE} associated"))
    else:
        plan.add(Action(f"greengrass-group-role/{group_name}", "create" if not associated else "update",
                        f"associate {GROUP_ROLE} with the group", (
                            ApiCall("greengrass", "associate_role_to_group",
                                    {"GroupId": Ref("group_id"), "RoleArn": Ref("group_role_arn")}),
                        )))

    # 6. the core's IoT policy (scoped to the group id) and its attachment to the certificate
    plan.add(_plan_core_policy(v1, thing, policy, group.id if group else None))
    if policy in attached_policies:
        plan.add(noop(f"iot-policy-attachment/{policy}", "attached to the certificate"))
    else:
        plan.add(Action(f"iot-policy-attachment/{policy}", "create", "attach the core policy to the certificate", (
            ApiCall("iot", "attach_policy", {"policyName": policy, "target": Ref("certificate_arn")}),
        )))

    # 7. done: the device name becomes findable
    plan.add(device_iot.record_name_action(thing, name, attributes))
    return plan


def _converge_step(v1: V1Context, kind: str, name: str, created: str) -> LocalStep:
    """After a create: one resource of this name, the one the answer named (groups.converge_by_name)."""
    return LocalStep(f"check that {name} exists once (a retried create can make two)",
                     lambda variables: {f"{created}_duplicates_removed":
                                        converge_by_name(v1.gg, kind, name, str(variables[created]))})


def _plan_core_policy(v1: V1Context, thing: str, policy: str, group_id: str | None) -> Action:
    account, region = v1.ctx.account_id, v1.ctx.region
    if group_id is None:  # the group is created by this plan: render the policy once its id is known
        resource = f"iot-policy/{policy}"
        render = LocalStep("render the core policy for the new group", lambda variables: {
            "core_policy": json.dumps(core_policy(v1.partition, region, account, thing, variables["group_id"]))})
        if maybe(lambda: v1.iot.get_policy(policyName=policy), NOT_FOUND) is None:
            return Action(resource, "create", "minimal Greengrass core policy for the new group", (
                render, device_iot.create_policy_call(policy, Ref("core_policy")),
            ))
        return Action(resource, "update", "scope the core policy to the new group",
                      (render, *device_iot.policy_version_steps(v1.iot, policy, Ref("core_policy"))))
    return device_iot.plan_core_policy(v1.iot, policy, core_policy(v1.partition, region, account, thing, group_id),
                                       "minimal Greengrass core policy", "minimal Greengrass core policy in place")
