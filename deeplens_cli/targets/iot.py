"""The AWS IoT side of a device, the same for both targets: thing, name attributes, core policy, certificates.

A Greengrass V1 core and a Greengrass V2 core are both an IoT thing with an X.509 certificate and an IoT policy
attached to that certificate; only the policy document and the Greengrass resources around them differ. So how
a registration creates the thing and marks itself complete, how a policy is created or repaired, and how a
certificate, a policy and a thing are torn down live here once.

The teardown carries the retries IoT needs on real AWS: `DetachThingPrincipal` and `DetachPolicy` complete
asynchronously, so an immediate `DeleteCertificate`, `DeletePolicy` or `DeleteThing` can still find the
attachment and be refused (DeleteConflictException, or InvalidRequestException "... attached") for a few seconds.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from deeplens_cli.account.policies import partition_for, same_policy
from deeplens_cli.aws import collect, maybe
from deeplens_cli.engine.plan import Action, AlreadyExists, ApiCall, Retry, Step, noop
from deeplens_cli.targets.base import NAME_ATTRIBUTE, TARGET_ATTRIBUTE, Device, ExistingIot

PENDING_ATTRIBUTE = "deeplens_pending"  # the device name while its registration is incomplete
INCOMPLETE = "incomplete"
LIST_THINGS_PAGE = 250  # ListThings' maximum page (botocore's model): fleet views read 250 devices a call
POLICY_VERSION_LIMIT = 5  # IoT keeps at most five versions of a policy
LIST_POLICIES_PAGE = 250  # ListPolicies' maximum pageSize (botocore's model)

# Codes meaning "no such resource" in IoT (moto answers some with a bare "404"); ignored by teardown steps.
NOT_FOUND = ("ResourceNotFoundException", "IdNotFoundException", "NotFoundException", "404")

CERTIFICATE_DETACH = Retry(codes=("DeleteConflictException", "CertificateStateException"), budget_s=60,
                           first_delay_s=1.0, waiting_for="IoT to finish detaching the certificate")
POLICY_DETACH = Retry(codes=("DeleteConflictException",), budget_s=60, waiting_for="IoT to detach the policy")
THING_DETACH = Retry(codes=("InvalidRequestException",), message_pattern="attached", budget_s=60,
                     waiting_for="IoT to detach the certificate")


# ---------------------------------------------------------------------------------------------- many names


def read_existing(iot: Any, max_pages: int) -> ExistingIot | None:
    """The account's thing and policy names, or None when either listing is longer than `max_pages` pages."""
    things = _listed_names(iot, "list_things", "things", "thingName", LIST_THINGS_PAGE, max_pages)
    if things is None:
        return None
    policies = _listed_names(iot, "list_policies", "policies", "policyName", LIST_POLICIES_PAGE, max_pages)
    return None if policies is None else ExistingIot(things, policies)


def _listed_names(iot: Any, operation: str, key: str, name: str, page_size: int,
                  max_pages: int) -> frozenset[str] | None:
    names: set[str] = set()
    pages = iot.get_paginator(operation).paginate(PaginationConfig={"PageSize": page_size})
    for number, page in enumerate(pages, start=1):
        if number > max_pages:
            return None
        names.update(item[name] for item in page.get(key, []))
    return frozenset(names)


def describe_thing(iot: Any, thing: str, known: ExistingIot | None = None) -> dict[str, Any] | None:
    """DescribeThing, None when there is no such thing (without a call when `known` says so)."""
    if known is not None and known.lacks_thing(thing):
        return None
    return maybe(lambda: iot.describe_thing(thingName=thing), NOT_FOUND)


def get_policy(iot: Any, policy: str, known: ExistingIot | None = None) -> dict[str, Any] | None:
    """GetPolicy, None when there is no such policy (without a call when `known` says so)."""
    if known is not None and known.lacks_policy(policy):
        return None
    return maybe(lambda: iot.get_policy(policyName=policy), NOT_FOUND)


# ---------------------------------------------------------------------------------------------- devices


def thing_arn_for(region: str, account_id: str, thing: str) -> str:
    """A thing's ARN from its name, without a call (IoT thing ARNs are arn:PARTITION:iot:REGION:ACCOUNT:thing/NAME)."""
    return f"arn:{partition_for(region)}:iot:{region}:{account_id}:thing/{thing}"


def device_from_thing(thing: Mapping[str, Any], target: str, **details: Any) -> Device:
    """The `Device` an IoT thing (a `list_things` entry) stands for.

    A registration records the device name in `deeplens_name` only in its last step; until then the thing
    carries it in `deeplens_pending` and the device lists as "NAME (incomplete)" - not findable by its name, so
    deploy cannot pick up a half-registered device, but visible so that status and destroy can.
    """
    attributes = thing.get("attributes") or {}
    name = attributes.get(NAME_ATTRIBUTE)
    if not name:
        pending = attributes.get(PENDING_ATTRIBUTE) or thing["thingName"]
        name = f"{pending} ({INCOMPLETE})"
        details.update(registration=INCOMPLETE, pending_name=pending)
    return Device(name=name, target=target, thing_name=thing["thingName"], thing_arn=thing.get("thingArn"),
                  details=details)


def create_thing_action(thing: str, target: str, name: str, reason: str,
                        details: Mapping[str, Any] | None = None) -> Action:
    """Create the device's thing with its target and the name still pending (see `device_from_thing`)."""
    return Action(f"iot-thing/{thing}", "create", reason, (
        ApiCall("iot", "create_thing", {"thingName": thing, "attributePayload": {"attributes": {
            TARGET_ATTRIBUTE: target, PENDING_ATTRIBUTE: name}}}),
    ), details={"thing": thing, **(details or {})})


def record_name_action(thing: str, name: str, attributes: Mapping[str, Any] | None = None) -> Action:
    """The last step of a registration: the device name moves from pending to `deeplens_name`.

    With the thing's current `attributes`, a registration that is already complete is a no-op.
    """
    resource = f"iot-thing/{thing}#name"
    if attributes is not None and attributes.get(NAME_ATTRIBUTE) == name and PENDING_ATTRIBUTE not in attributes:
        return noop(resource, f"registered as {name}")
    return Action(resource, "update", f"record the device name {name}: registration complete", (
        ApiCall("iot", "update_thing", {"thingName": thing, "attributePayload": {
            "attributes": {NAME_ATTRIBUTE: name, PENDING_ATTRIBUTE: ""}, "merge": True}}),
    ))


def attached_policies(iot: Any, principal: str) -> list[str]:
    """Names of the IoT policies attached to a certificate (or any principal)."""
    return [p["policyName"] for p in collect(iot, "list_attached_policies", "policies", target=principal)]


# ---------------------------------------------------------------------------------------------- core policy


def plan_core_policy(iot: Any, policy: str, desired: Mapping[str, Any], created_as: str, in_place: str,
                     known: ExistingIot | None = None) -> Action:
    """Create the core's IoT policy, or repair it with a new default version when its document drifted.

    `created_as` is the reason shown when it is created, `in_place` the one shown when it already matches.
    """
    resource = f"iot-policy/{policy}"
    current = get_policy(iot, policy, known)
    if current is None:
        return Action(resource, "create", created_as, (
            create_policy_call(policy, json.dumps(desired)),
        ))
    if same_policy(current.get("policyDocument"), desired):
        return noop(resource, in_place)
    return Action(resource, "update", "policy document differs from the minimal core policy",
                  policy_version_steps(iot, policy, json.dumps(desired)))


def create_policy_call(policy: str, document: Any) -> ApiCall:
    """CreatePolicy that counts its own lost answer as done (`document` may be a Ref to a rendered policy)."""
    return ApiCall("iot", "create_policy", {"policyName": policy, "policyDocument": document},
                   exists=AlreadyExists(("ResourceAlreadyExistsException",), _policy_as_created))


def _policy_as_created(ctx: Any, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The policy a retried CreatePolicy found is ours when its document is the one we sent."""
    current = maybe(lambda: ctx.client("iot").get_policy(policyName=params["policyName"]), NOT_FOUND)
    if current is None or not same_policy(current.get("policyDocument"), params["policyDocument"]):
        return None
    return {key: current.get(key) for key in ("policyName", "policyArn", "policyDocument", "defaultVersionId")}


def policy_version_steps(iot: Any, policy: str, document: Any) -> tuple[Step, ...]:
    """A new default policy version; IoT keeps at most five, so the oldest non-default one goes first.

    `document` may be a Ref, for a policy rendered by an earlier step of the same plan.
    """
    versions = collect(iot, "list_policy_versions", "policyVersions", policyName=policy)
    steps: list[Step] = []
    old = sorted((v for v in versions if not v.get("isDefaultVersion")), key=lambda v: int(v["versionId"]))
    if len(versions) >= POLICY_VERSION_LIMIT and old:
        steps.append(ApiCall("iot", "delete_policy_version",
                             {"policyName": policy, "policyVersionId": old[0]["versionId"]}))
    steps.append(ApiCall("iot", "create_policy_version",
                         {"policyName": policy, "policyDocument": document, "setAsDefault": True}))
    return tuple(steps)


# ---------------------------------------------------------------------------------------------- teardown


def certificate_teardown(certificate_arn: str, policies: list[str], thing: str | None = None,
                         status: str | None = None) -> tuple[Step, ...]:
    """Detach the thing (when given) and the policies, deactivate, delete: IoT deletes only an inactive
    certificate with nothing attached. A certificate known (`status`) not to be ACTIVE is not deactivated again.
    """
    certificate_id = certificate_arn.rsplit("/", 1)[-1]
    steps: list[Step] = []
    if thing is not None:
        steps.append(ApiCall("iot", "detach_thing_principal", {"thingName": thing, "principal": certificate_arn},
                             ignore_codes=NOT_FOUND))
    steps += [ApiCall("iot", "detach_policy", {"policyName": policy, "target": certificate_arn},
                      ignore_codes=NOT_FOUND) for policy in policies]
    if status in (None, "ACTIVE"):
        steps.append(ApiCall("iot", "update_certificate", {"certificateId": certificate_id, "newStatus": "INACTIVE"},
                             ignore_codes=NOT_FOUND))
    steps.append(ApiCall("iot", "delete_certificate", {"certificateId": certificate_id}, retry=CERTIFICATE_DETACH,
                         ignore_codes=NOT_FOUND))
    return tuple(steps)


def policy_teardown(iot: Any, policy: str, reason: str) -> Action | None:
    """Delete the policy with its non-default versions; None when it is already gone.

    DeletePolicy is retried while IoT still finishes detaching it from the certificate deleted just before.
    """
    if maybe(lambda: iot.get_policy(policyName=policy), NOT_FOUND) is None:
        return None
    steps: list[Step] = [
        ApiCall("iot", "delete_policy_version", {"policyName": policy, "policyVersionId": v["versionId"]},
                ignore_codes=NOT_FOUND)
        for v in collect(iot, "list_policy_versions", "policyVersions", policyName=policy)
        if not v.get("isDefaultVersion")]
    steps.append(ApiCall("iot", "delete_policy", {"policyName": policy}, ignore_codes=NOT_FOUND, retry=POLICY_DETACH))
    return Action(f"iot-policy/{policy}", "delete", reason, tuple(steps))


def thing_teardown(thing: str, reason: str) -> Action:
    """Delete the thing; retried while a certificate detached just before still shows as attached."""
    return Action(f"iot-thing/{thing}", "delete", reason, (
        ApiCall("iot", "delete_thing", {"thingName": thing}, ignore_codes=NOT_FOUND, retry=THING_DETACH),
    ))
