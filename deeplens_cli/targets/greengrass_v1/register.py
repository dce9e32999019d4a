"""register-device for Greengrass V1: thing (name pending), certificate and bundle, core definition, group,
group role and core policy, then the name. Resumable: names are derived, so a re-run finds each step again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deeplens_cli.aws import collect, maybe
from deeplens_cli.errors import ConfigError, DeeplensError
from deeplens_cli.plan import Action, ApiCall, LocalStep, Plan, Ref, Step, noop
from deeplens_cli.roles import GROUP_ROLE
from deeplens_cli.targets import TARGET_ATTRIBUTE
from deeplens_cli.targets import iot as device_iot
from deeplens_cli.targets.greengrass_v1.core_bundle import (
    Certificate,
    certificate_in_bundle,
    check_bundle_folder,
    complete_bundle,
    write_bundle,
)
from deeplens_cli.targets.greengrass_v1.groups import by_id
from deeplens_cli.targets.greengrass_v1.naming import (
    TARGET,
    core_policy,
    definition_name,
    group_name_for,
    policy_name_for,
    thing_name_for,
)
from deeplens_cli.targets.iot import NOT_FOUND


class Registration:
    """register-device (thing, certificate, core definition, group, group role, core policy)."""

    def _certificates(self, thing_name: str) -> list[Certificate]:
        principals = maybe(lambda: collect(self.iot, "list_thing_principals", "principals", thingName=thing_name),
                           NOT_FOUND) or []
        certificates = []
        for arn in principals:
            if ":cert/" not in arn:
                continue
            cert_id = arn.rsplit("/", 1)[-1]
            described = maybe(lambda cert_id=cert_id: self.iot.describe_certificate(certificateId=cert_id), NOT_FOUND)
            if described:
                description = described["certificateDescription"]
                certificates.append(Certificate(arn, cert_id, description.get("status", ""),
                                                description.get("certificatePem", "")))
        return certificates

    def _describe_certificate(self, cert_id: str) -> Certificate | None:
        described = maybe(lambda: self.iot.describe_certificate(certificateId=cert_id), NOT_FOUND)
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

        check_bundle_folder(Path(out_dir), thing)
        plan = Plan(f"register device {name} (Greengrass V1)")
        plan.known.update(thing_arn=thing_arn, group_role_arn=group_role_arn)

        # 1. the thing, named for the device, with the name pending until the registration is complete
        described = maybe(lambda: self.iot.describe_thing(thingName=thing), NOT_FOUND)
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
        reused, orphan = certificate_in_bundle(Path(out_dir), thing, certificates, self._describe_certificate)
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
        elif reused and current_cores is not None and by_id(current_cores) == by_id(cores):
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
        associated = maybe(lambda: self.gg.get_associated_role(GroupId=group.id), NOT_FOUND) if group else None
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
            if maybe(lambda: self.iot.get_policy(policyName=policy), NOT_FOUND) is None:
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
