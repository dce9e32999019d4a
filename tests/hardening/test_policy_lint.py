"""Policy lint: every IAM and IoT policy deeplens-cli generates passes parliament with no findings, and the
device's S3 grant is PutObject on the crops prefix and nothing else.

Documents linted (built from settings exactly as the planners build them, for both `s3_access` modes, a
custom prefix and a separate artifact bucket): the trust policy and inline policies of every role
register-roles creates, the Greengrass V1 core IoT policy, the Greengrass V2 core IoT policy, and a fleet claim's
policies (the pre-provisioning hook's role, the claim certificate's IoT policy).

parliament (`analyze_policy_string`) checks identity policies against the IAM service authorization
reference. Its findings on our documents fall in two groups: real ones, which must be fixed in the policy, and
false positives on things parliament cannot know, each listed in ALLOWLIST with the reason. Nothing is
ignored silently: a finding outside the allowlist fails, and an allowlist entry that no document produces
any more fails too (so the list cannot rot into a blanket exception).

parliament cannot judge trust policies (it reads them as identity policies without a Resource), so their
shape is checked here directly: one statement, Allow, sts:AssumeRole, one named AWS service principal.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from typing import Any

import pytest
from parliament import analyze_policy_string

from deeplens_cli.account.policies import normalise_policy
from deeplens_cli.account.roles import GROUP_ROLE, desired_roles
from deeplens_cli.settings.config import Settings, defaults
from deeplens_cli.targets import greengrass_v1, greengrass_v2
from deeplens_cli.targets.greengrass_v2 import claim_guard, provisioning

REGION, ACCOUNT = "us-east-1", "123456789012"
EXAMPLE_BUCKET = "deeplens-example-face-crops"  # config.example.yaml's bucket


@dataclass(frozen=True)
class Generated:
    name: str
    kind: str  # "trust" | "iam" | "iot-v1" | "iot-v2"
    document: dict[str, Any]


def settings(**values: Any) -> Settings:
    return Settings(values=defaults()).replace(**{"region": REGION, "bucket": EXAMPLE_BUCKET, **values})


SETTINGS_VARIANTS = {
    "least-privilege": settings(),
    "full-s3": settings(s3_access="full"),
    "custom-prefix-and-artifact-bucket": settings(prefix="cam/crops/", bucket="acme-face-crops",
                                                  greengrass__artifact_bucket="acme-gg-artifacts"),
}


def generated_policies() -> list[Generated]:
    found: dict[str, Generated] = {}
    for variant, values in SETTINGS_VARIANTS.items():
        for spec in desired_roles(values, REGION):
            found[f"trust/{spec.name}"] = Generated(f"trust/{spec.name}", "trust", spec.trust)
            for policy_name, document in spec.inline_policies.items():
                name = f"inline/{spec.name}/{policy_name}/{variant}"
                found[name] = Generated(name, "iam", dict(document))
    v1_thing = greengrass_v1.thing_name_for(ACCOUNT, REGION, "Cam1")
    found["iot/v1-core"] = Generated("iot/v1-core", "iot-v1", greengrass_v1.core_policy(
        "aws", REGION, ACCOUNT, v1_thing, "4a1b2c3d-0000-4000-8000-000000000000"))
    found["iot/v2-core"] = Generated("iot/v2-core", "iot-v2", greengrass_v2.core_policy(
        "aws", REGION, ACCOUNT, greengrass_v2.thing_name("Cam1"), settings()["greengrass.role_alias"]))
    hook = claim_guard.HookNames("Stores")
    found["trust/claim-hook"] = Generated("trust/claim-hook", "trust", claim_guard.HOOK_TRUST)
    found["inline/claim-hook"] = Generated("inline/claim-hook", "iam", claim_guard.hook_role_policy(
        "aws", REGION, ACCOUNT, hook, EXAMPLE_BUCKET, hook.allow_list_key))
    found["iot/v2-claim"] = Generated("iot/v2-claim", "iot-v2", provisioning.claim_policy(
        "aws", REGION, ACCOUNT, provisioning.ClaimNames("Stores").template))
    return list(found.values())


POLICIES = generated_policies()

# (document kind, parliament issue, the action or detail it is about) -> why it is not a problem.
ALLOWLIST: dict[tuple[str, str, str], str] = {
    ("trust", "MALFORMED", "Statement contains neither Resource nor NotResource"):
        "a role trust policy is a resource policy: it names a Principal and never a Resource; parliament reads "
        "every document as an identity policy (trust policies are checked by test_trust_policies instead)",
    # IoT policies are evaluated by AWS IoT for a device certificate, not by IAM; they use data-plane actions
    # that the IAM service authorization reference (parliament's database) does not list.
    ("iot-v1", "UNKNOWN_ACTION", "greengrass:AssumeRoleForGroup"):
        "Greengrass V1 core data-plane action (GGDG device-auth, minimal core policy): fetch group role credentials",
    ("iot-v1", "UNKNOWN_ACTION", "greengrass:CreateCertificate"):
        "Greengrass V1 core data-plane action (minimal core policy): the core's local server certificate",
    ("iot-v1", "UNKNOWN_ACTION", "greengrass:GetDeploymentArtifacts"):
        "Greengrass V1 core data-plane action (minimal core policy): download a deployment",
    ("iot-v1", "UNKNOWN_ACTION", "greengrass:UpdateCoreDeploymentStatus"):
        "Greengrass V1 core data-plane action (minimal core policy): report a deployment's status",
    ("iot-v1", "RESOURCE_STAR", "iot:Connect"):
        "AWS's documented minimal Greengrass V1 core policy grants iot:Connect on '*' (GGDG device-auth.md); the "
        "client IDs a V1 core uses are not documented and the V1 service is retired, so a narrower scope cannot be "
        "verified and could lock a real core out. The V2 policy, which can be checked, is scoped to the thing",
    ("iot-v1", "RESOURCE_MISMATCH", "greengrass:GetConnectivityInfo"):
        "in a core's IoT policy these actions are scoped to the core's IoT thing ARN (minimal core policy); "
        "parliament expects the IAM resource type of the control-plane API (/greengrass/things/*/connectivityInfo)",
    ("iot-v1", "RESOURCE_MISMATCH", "greengrass:UpdateConnectivityInfo"):
        "as greengrass:GetConnectivityInfo",
    ("iot-v2", "RESOURCE_STAR", "iot:Connect"):
        "the claim certificate's policy (fleet provisioning by claim): the plugin connects with a client ID it picks "
        "before any thing exists, so Connect cannot name one; AWS's documented claim policy grants it on '*'. Ours "
        "then denies connecting as any deeplens-* client ID (an existing camera's)",
    ("iot-v2", "UNKNOWN_ACTION", "iot:AssumeRoleWithCertificate"):
        "IoT credentials provider action, valid only in IoT policies: the core exchanges its certificate for "
        "token-exchange-role credentials through the role alias",
    ("iot-v2", "UNKNOWN_ACTION", "greengrass:GetDeploymentConfiguration"):
        "Greengrass V2 nucleus data-plane action (GGDG v2 device-auth, minimal IoT policy)",
    ("iot-v2", "UNKNOWN_ACTION", "greengrass:ListThingGroupsForCoreDevice"):
        "Greengrass V2 nucleus data-plane action (minimal IoT policy): thing-group deployments",
}


def findings(policy: Generated) -> list[tuple[str, str, str]]:
    """(kind, issue, subject) of every parliament finding on the document, one per action where it names them."""
    analysed = analyze_policy_string(json.dumps(policy.document), include_community_auditors=True)
    result = []
    for finding in analysed.findings:
        detail = finding.detail
        if finding.issue == "UNKNOWN_ACTION" and isinstance(detail, str):
            result.append((policy.kind, finding.issue, detail.removeprefix("Unknown action ")))
        elif finding.issue == "RESOURCE_MISMATCH" and isinstance(detail, list):
            result.extend(sorted({(policy.kind, finding.issue, item["action"]) for item in detail}))
        elif isinstance(detail, list):
            result.extend((policy.kind, finding.issue, str(item)) for item in detail)
        else:
            result.append((policy.kind, finding.issue, str(detail)))
    return result


@pytest.mark.parametrize("policy", POLICIES, ids=[p.name for p in POLICIES])
def test_parliament_finds_nothing(policy: Generated) -> None:
    unexpected = [finding for finding in findings(policy) if finding not in ALLOWLIST]
    assert not unexpected, f"{policy.name}: {unexpected}\n{json.dumps(policy.document, indent=1)}"


def test_every_allowlist_entry_is_still_needed() -> None:
    produced = {finding for policy in POLICIES for finding in findings(policy)}
    stale = [entry for entry in ALLOWLIST if entry not in produced]
    assert not stale, f"allowlisted findings no document produces any more (remove them): {stale}"


def test_the_documents_cover_every_kind_of_policy() -> None:
    kinds = {policy.kind for policy in POLICIES}
    assert kinds == {"trust", "iam", "iot-v1", "iot-v2"}
    # five DeepLens roles, the V2 token exchange role and a fleet claim's pre-provisioning hook
    assert len([p for p in POLICIES if p.kind == "trust"]) == 7


EXPECTED_PRINCIPALS = {"deeplens.amazonaws.com", "greengrass.amazonaws.com", "lambda.amazonaws.com",
                       "sagemaker.amazonaws.com", "credentials.iot.amazonaws.com"}


@pytest.mark.parametrize("policy", [p for p in POLICIES if p.kind == "trust"],
                         ids=[p.name for p in POLICIES if p.kind == "trust"])
def test_trust_policies(policy: Generated) -> None:
    (statement,) = normalise_policy(policy.document)["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == ["sts:AssumeRole"]
    assert set(statement["Principal"]) == {"Service"}
    (service,) = statement["Principal"]["Service"]
    assert service in EXPECTED_PRINCIPALS
    assert not {"Resource", "NotPrincipal", "NotAction"} & set(statement)


# ---------------------------------------------------------------------------------------------- the device's S3 grant

S3_ACTIONS = ("s3:PutObject", "s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:DeleteObject",
              "s3:PutObjectAcl", "s3:PutBucketPolicy", "s3:DeleteBucket", "s3:PutBucketAcl")


def allowed(documents: list[dict[str, Any]], action: str, resource: str) -> bool:
    """IAM's rule for identity policies without conditions: some Allow matches and no Deny does."""
    verdicts = set()
    for document in documents:
        for statement in normalise_policy(document)["Statement"]:
            assert "Condition" not in statement, "this evaluator does not handle conditions"
            if "NotAction" in statement:
                action_matches = not any(_match(pattern, action) for pattern in statement["NotAction"])
            else:
                action_matches = any(_match(pattern, action) for pattern in statement.get("Action", []))
            if "NotResource" in statement:
                resource_matches = not any(fnmatch.fnmatchcase(resource, p) for p in statement["NotResource"])
            else:
                resource_matches = any(fnmatch.fnmatchcase(resource, p) for p in statement.get("Resource", []))
            if action_matches and resource_matches:
                verdicts.add(statement["Effect"])
    return "Allow" in verdicts and "Deny" not in verdicts


def _match(pattern: str, action: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def managed_documents(arns: tuple[str, ...]) -> list[dict[str, Any]]:
    """AWS managed policy documents, from moto's offline copy of them (no network)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    everything = json.loads(aws_managed_policies_data)
    return [everything[arn.rsplit("/", 1)[-1]]["Document"] for arn in arns]


def s3_grant(documents: list[dict[str, Any]], bucket: str, prefix: str) -> set[tuple[str, str]]:
    """(action, what) the documents allow on the bucket: the bucket itself, a face crop, another object."""
    resources = {"bucket": f"arn:aws:s3:::{bucket}", "face crop": f"arn:aws:s3:::{bucket}/{prefix}11_24/3_10/1.jpg",
                 "other object": f"arn:aws:s3:::{bucket}/private/report.csv"}
    return {(action, what) for action in S3_ACTIONS for what, arn in resources.items()
            if allowed(documents, action, arn)}


@pytest.mark.parametrize("bucket", [EXAMPLE_BUCKET, "acme-face-crops"])
def test_a_v1_devices_s3_grant_is_put_object_on_the_prefix_only(bucket: str) -> None:
    """The device's functions run with the Greengrass group role: its inline grant AND its managed policy count.

    AWSDeepLensLambdaFunctionAccessPolicy allows s3:GetObject and s3:ListBucket on `arn:aws:s3:::deeplens*`,
    so with a bucket named deeplens-... (as config.example.yaml suggests) a device could read and list every
    face collected, unless the inline grant denies it."""
    spec = next(s for s in desired_roles(settings(bucket=bucket), REGION) if s.name == GROUP_ROLE)
    documents = list(spec.inline_policies.values()) + managed_documents(spec.managed_policies)
    assert s3_grant(documents, bucket, "faces/") == {("s3:PutObject", "face crop")}


def test_a_v2_devices_s3_grant_is_put_object_on_the_prefix_only() -> None:
    """Greengrass V2 devices get the token exchange role's credentials: crops write-only, artifacts read-only
    (under their own prefix, so no face crop is readable even when both share the bucket)."""
    values = settings()
    spec = next(s for s in desired_roles(values, REGION) if s.name == values["greengrass.token_exchange_role"])
    documents = list(spec.inline_policies.values()) + managed_documents(spec.managed_policies)
    assert s3_grant(documents, EXAMPLE_BUCKET, "faces/") == {("s3:PutObject", "face crop")}
    artifact = f"arn:aws:s3:::{EXAMPLE_BUCKET}/greengrass-artifacts/com.deeplens.FaceCrops/1.0.0/edge.zip"
    assert allowed(documents, "s3:GetObject", artifact) and not allowed(documents, "s3:PutObject", artifact)


def test_the_evaluator_can_fail() -> None:
    """The grant check would notice a broader grant, a wildcard and a deny."""
    broad = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    assert ("s3:GetObject", "face crop") in s3_grant([broad], "b", "faces/")
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "NotAction": "s3:PutObject",
                                                    "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]}]}
    assert s3_grant([broad, deny], "b", "faces/") == {("s3:PutObject", "bucket"), ("s3:PutObject", "face crop"),
                                                      ("s3:PutObject", "other object")}
