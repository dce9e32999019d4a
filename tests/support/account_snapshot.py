"""What deeplens-cli has created in an (emulated) AWS account, as plain data two runs can be compared by.

Two runs that should leave the same account (an interrupted run plus its re-run, and one clean run) never
produce the same ids, ARNs, certificate PEMs or timestamps, so the snapshot keeps what must match: names,
counts and states. A duplicate role, policy, Lambda version, Greengrass group or definition, group version,
deployment, thing or active certificate changes a count or a name list, and so shows up in the comparison.

Read only: every call here is a get/list/describe, made with plain boto3 clients on the current mock.
"""

from __future__ import annotations

from typing import Any, Callable

import boto3
from botocore.exceptions import ClientError

REGION = "us-east-1"


def account_snapshot(region: str = REGION) -> dict[str, Any]:
    """Names, counts and states of every kind of resource deeplens-cli creates."""
    return {
        "iam": _iam(boto3.client("iam", region_name=region)),
        "s3": _s3(boto3.client("s3", region_name=region)),
        "iot": _iot(boto3.client("iot", region_name=region)),
        "lambda": _lambda(boto3.client("lambda", region_name=region)),
        "greengrass": _greengrass(boto3.client("greengrass", region_name=region)),
    }


def differences(actual: dict[str, Any], expected: dict[str, Any], path: str = "") -> list[str]:
    """Human-readable list of where two snapshots differ (empty when they are equal)."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        found = []
        for key in sorted(set(actual) | set(expected), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in actual:
                found.append(f"{where}: missing (expected {expected[key]!r})")
            elif key not in expected:
                found.append(f"{where}: unexpected {actual[key]!r}")
            else:
                found.extend(differences(actual[key], expected[key], where))
        return found
    return [] if actual == expected else [f"{path}: {actual!r} != expected {expected!r}"]


def _pages(client: Any, operation: str, key: str, **params: Any) -> list[Any]:
    if client.can_paginate(operation):
        return [item for page in client.get_paginator(operation).paginate(**params) for item in page.get(key, [])]
    return list(getattr(client, operation)(**params).get(key, []))


def _or_none(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ClientError:
        return None


# ---------------------------------------------------------------------------------------------- services


def _iam(iam: Any) -> dict[str, Any]:
    roles = {}
    for role in _pages(iam, "list_roles", "Roles"):
        name = role["RoleName"]
        roles[name] = {
            "path": role["Path"],
            "attached": sorted(p["PolicyArn"].rsplit("/", 1)[-1]
                               for p in _pages(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=name)),
            "inline": sorted(_pages(iam, "list_role_policies", "PolicyNames", RoleName=name)),
        }
    local_policies = sorted(p["PolicyName"] for p in _pages(iam, "list_policies", "Policies", Scope="Local"))
    return {"roles": roles, "customer_managed_policies": local_policies}


def _s3(s3: Any) -> dict[str, Any]:
    buckets = {}
    for bucket in s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        block = _or_none(lambda name=name: s3.get_public_access_block(Bucket=name))
        ownership = _or_none(lambda name=name: s3.get_bucket_ownership_controls(Bucket=name))
        encryption = _or_none(lambda name=name: s3.get_bucket_encryption(Bucket=name))
        buckets[name] = {
            "public_access_block": (block or {}).get("PublicAccessBlockConfiguration"),
            "ownership": [
                r["ObjectOwnership"] for r in (ownership or {}).get("OwnershipControls", {}).get("Rules", [])
            ],
            "encryption": [
                r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
                for r in (encryption or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
            ],
            "objects": sorted(o["Key"] for o in _pages(s3, "list_objects_v2", "Contents", Bucket=name)),
        }
    return buckets


def _iot(iot: Any) -> dict[str, Any]:
    certificates = _pages(iot, "list_certificates", "certificates")
    statuses: dict[str, int] = {}
    for certificate in certificates:
        statuses[certificate["status"]] = statuses.get(certificate["status"], 0) + 1
    # an ACTIVE certificate that no thing holds is a live credential nobody can use or will ever clean up
    orphans = 0
    for certificate in certificates:
        if certificate["status"] != "ACTIVE":
            continue
        holders = _pages(iot, "list_principal_things", "things", principal=certificate["certificateArn"])
        if not holders:
            orphans += 1
    things = {}
    for thing in _pages(iot, "list_things", "things"):
        name = thing["thingName"]
        principals = _pages(iot, "list_thing_principals", "principals", thingName=name)
        things[name] = {
            "attributes": {k: v for k, v in sorted((thing.get("attributes") or {}).items())},
            "certificates": sorted(_certificate_status(iot, arn) for arn in principals if ":cert/" in arn),
            "certificate_policies": sorted(
                p["policyName"] for arn in principals if ":cert/" in arn
                for p in _pages(iot, "list_attached_policies", "policies", target=arn)),
        }
    policies = {p["policyName"]: len(_pages(iot, "list_policy_versions", "policyVersions", policyName=p["policyName"]))
                for p in _pages(iot, "list_policies", "policies")}
    aliases = sorted(_pages(iot, "list_role_aliases", "roleAliases"))
    groups = sorted(g["groupName"] for g in _pages(iot, "list_thing_groups", "thingGroups"))
    return {"things": things, "certificates": statuses, "orphan_active_certificates": orphans,
            "policies (versions)": policies, "role_aliases": aliases, "thing_groups": groups}


def _certificate_status(iot: Any, arn: str) -> str:
    described = iot.describe_certificate(certificateId=arn.rsplit("/", 1)[-1])
    return described["certificateDescription"]["status"]


def _lambda(lam: Any) -> dict[str, Any]:
    functions = {}
    for function in _pages(lam, "list_functions", "Functions"):
        name = function["FunctionName"]
        versions = [v for v in _pages(lam, "list_versions_by_function", "Versions", FunctionName=name)
                    if v["Version"] != "$LATEST"]
        functions[name] = {
            "versions": len(versions),
            "distinct_code_in_versions": len({v["CodeSha256"] for v in versions}),
            "aliases": sorted(a["Name"] for a in _pages(lam, "list_aliases", "Aliases", FunctionName=name)),
        }
    return functions


_KINDS = ("core", "function", "resource", "subscription")


def _greengrass(gg: Any) -> dict[str, Any]:
    groups = {}
    for group in _pages(gg, "list_groups", "Groups"):
        group_id = group["Id"]
        role = _or_none(lambda group_id=group_id: gg.get_associated_role(GroupId=group_id))
        groups[group["Name"]] = {
            "versions": len(_pages(gg, "list_group_versions", "Versions", GroupId=group_id)),
            "deployments": len(_pages(gg, "list_deployments", "Deployments", GroupId=group_id)),
            "role": (role or {}).get("RoleArn", "").rsplit("/", 1)[-1] or None,
            "copies": groups.get(group["Name"], {}).get("copies", 0) + 1,  # >1: a duplicate group
        }
    definitions: dict[str, dict[str, int]] = {}
    for kind in _KINDS:
        label = kind.capitalize()
        for definition in _pages(gg, f"list_{kind}_definitions", "Definitions"):
            versions = _pages(gg, f"list_{kind}_definition_versions", "Versions",
                              **{f"{label}DefinitionId": definition["Id"]})
            name = definition.get("Name") or "(unnamed)"
            definitions.setdefault(kind, {})
            definitions[kind][name] = definitions[kind].get(name, 0) + 1  # >1: a duplicate definition
            definitions.setdefault(f"{kind} versions", {})[name] = len(versions)
    return {"groups": groups, "definitions": definitions}
