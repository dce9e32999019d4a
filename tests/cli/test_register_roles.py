"""`deeplens-cli register-roles`: the five DeepLens roles, the device's S3 grant, the Greengrass V2 token exchange
role and role alias, and the bucket - created on a fresh account, left alone on a re-run, repaired on drift."""

from __future__ import annotations

import json

import pytest

from deeplens_cli.account.roles import (
    FACE_CROPS_INLINE_POLICY,
    TOKEN_EXCHANGE_INLINE_POLICY,
    alias_duration,
    plan_account,
    plan_account_teardown,
)
from deeplens_cli.engine.executor import Executor
from deeplens_cli.engine.plan import Plan
from deeplens_cli.errors import DeeplensError

BUCKET = "deeplens-test-face-crops"
TER = "DeepLensGreengrassV2TokenExchangeRole"
ALIAS = "DeepLensGreengrassV2TokenExchangeRoleAlias"
S3_FULL = "arn:aws:iam::aws:policy/AmazonS3FullAccess"
ACCOUNT = {"greengrass__artifact_bucket": "deeplens-artifacts"}  # settings of the shared class accounts

EXPECTED_ROLES = {
    # name: (path, trusted service, managed policy ARNs)
    "AWSDeepLensServiceRole": ("/", "deeplens.amazonaws.com",
                               {"arn:aws:iam::aws:policy/service-role/AWSDeepLensServiceRolePolicy"}),
    "AWSDeepLensGreengrassRole": ("/", "greengrass.amazonaws.com",
                                  {"arn:aws:iam::aws:policy/service-role/AWSGreengrassResourceAccessRolePolicy"}),
    "AWSDeepLensGreengrassGroupRole": ("/", "greengrass.amazonaws.com",
                                       {"arn:aws:iam::aws:policy/AWSDeepLensLambdaFunctionAccessPolicy"}),
    "AWSDeepLensLambdaRole": ("/service-role/", "lambda.amazonaws.com",
                              {"arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}),
    "AWSDeepLensSagemakerRole": ("/", "sagemaker.amazonaws.com",
                                 {"arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"}),
    TER: ("/", "credentials.iot.amazonaws.com", set()),
}


def register(aws, settings):
    """Plan and apply register-roles the way the command does; returns the plan and the context used."""
    ctx = aws.context(settings)
    plan = plan_account(ctx, settings)
    if not plan.is_noop:
        Executor(ctx).execute(plan)
    return plan, ctx


def attached(iam, role):
    return {p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]}


def action(plan: Plan, resource: str):
    (found,) = [a for a in plan.actions if a.resource == resource]
    return found


# ---------------------------------------------------------------------------------------------- fresh account


@pytest.fixture(scope="class")
def account(aws_class, settings_for):
    """One registration on an empty account, shared by the tests of a class (which only read)."""
    plan, _ = register(aws_class, settings_for(**ACCOUNT))
    return aws_class, plan


class TestFreshAccount:

    def test_everything_is_created(self, account):
        _, plan = account
        assert [a.verb for a in plan.actions] == ["create"] * 8

    def test_every_role_has_its_path_trust_tag_and_managed_policies(self, account):
        iam = account[0].client("iam")
        for name, (path, service, managed) in EXPECTED_ROLES.items():
            role = iam.get_role(RoleName=name)["Role"]
            assert role["Path"] == path, name
            (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
            assert statement["Principal"] == {"Service": service}, name
            assert statement["Action"] == "sts:AssumeRole"
            assert attached(iam, name) == managed, name
            assert {"Key": "deeplens-cli", "Value": "managed"} in role["Tags"]

    def test_group_role_gets_putobject_on_the_crops_prefix_only(self, account):
        iam = account[0].client("iam")
        assert iam.list_role_policies(RoleName="AWSDeepLensGreengrassGroupRole")["PolicyNames"] == [
            FACE_CROPS_INLINE_POLICY
        ]
        document = iam.get_role_policy(RoleName="AWSDeepLensGreengrassGroupRole",
                                       PolicyName=FACE_CROPS_INLINE_POLICY)["PolicyDocument"]
        (statement,) = [s for s in document["Statement"] if s["Effect"] == "Allow"]
        assert statement["Action"] in ("s3:PutObject", ["s3:PutObject"])
        assert statement["Resource"] == f"arn:aws:s3:::{BUCKET}/faces/*"
        (deny,) = [s for s in document["Statement"] if s["Effect"] == "Deny"]
        assert f"arn:aws:s3:::{BUCKET}/*" in deny["Resource"] and "s3:GetObject" in deny["Action"]

    def test_token_exchange_role_policy_and_role_alias(self, account):
        iam, iot = account[0].client("iam"), account[0].client("iot")
        document = iam.get_role_policy(RoleName=TER, PolicyName=TOKEN_EXCHANGE_INLINE_POLICY)["PolicyDocument"]
        resources = {s["Sid"]: s["Resource"] for s in document["Statement"]}
        assert resources == {"NucleusLogs": "arn:aws:logs:*:*:log-group:/aws/greengrass/*",
                             "LocateArtifactBucket": "arn:aws:s3:::deeplens-artifacts",
                             "DownloadComponentArtifacts": "arn:aws:s3:::deeplens-artifacts/greengrass-artifacts/*",
                             "UploadFaceCrops": f"arn:aws:s3:::{BUCKET}/faces/*"}
        alias = iot.describe_role_alias(roleAlias=ALIAS)["roleAliasDescription"]
        assert alias["roleArn"] == iam.get_role(RoleName=TER)["Role"]["Arn"]
        assert alias["credentialDurationSeconds"] == 3600

    def test_bucket_is_private_and_encrypted(self, account):
        s3 = account[0].client("s3")
        assert all(s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"].values())
        assert s3.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"]["Rules"] == [
            {"ObjectOwnership": "BucketOwnerEnforced"}]
        rule = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    def test_new_roles_are_waited_for_before_policies_are_attached(self, account):
        steps = [step.describe() for step in action(account[1], "iam-role/AWSDeepLensServiceRole").steps]
        assert steps == ["iam:create_role", "wait iam:role_exists", "iam:attach_role_policy"]

    def test_second_run_plans_nothing_and_makes_no_mutating_call(self, account, settings_for):
        aws = account[0]
        settings = settings_for(**ACCOUNT)
        ctx = aws.context(settings)
        plan = plan_account(ctx, settings)

        assert [a.verb for a in plan.actions] == ["noop"] * 8
        assert ctx.recorder.calls, "the planner must have read the account"
        assert ctx.recorder.mutating == []


# ---------------------------------------------------------------------------------------------- drift


class TestReRuns:
    """Drift and mode changes on one shared account. Each test starts from, and leaves, a converged account."""

    @pytest.fixture
    def converged(self, account, settings_for):
        aws = account[0]
        register(aws, settings_for(**ACCOUNT))  # repairs whatever an earlier test left, normally a no-op
        return aws

    def test_drift_is_shown_with_what_differed_and_repaired(self, converged, settings_for):
        aws = converged
        iam, iot = aws.client("iam"), aws.client("iot")
        # By hand, as someone clicking in the console might:
        iam.update_assume_role_policy(RoleName="AWSDeepLensGreengrassRole", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
        service_policy = "arn:aws:iam::aws:policy/service-role/AWSDeepLensServiceRolePolicy"
        iam.detach_role_policy(RoleName="AWSDeepLensServiceRole", PolicyArn=service_policy)
        iam.attach_role_policy(RoleName="AWSDeepLensGreengrassGroupRole", PolicyArn=S3_FULL)
        iam.put_role_policy(RoleName=TER, PolicyName=TOKEN_EXCHANGE_INLINE_POLICY, PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        other_role = iam.create_role(RoleName="SomeoneElsesRole", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        iot.update_role_alias(roleAlias=ALIAS, roleArn=other_role, credentialDurationSeconds=7200)

        plan, _ = register(aws, settings_for(**ACCOUNT))

        reasons = {a.resource: a.reason for a in plan.changes}
        assert reasons == {
            "iam-role/AWSDeepLensGreengrassRole": "trust policy differs (trusts ec2.amazonaws.com, want "
                                                  "greengrass.amazonaws.com)",
            "iam-role/AWSDeepLensServiceRole": "managed policy not attached: AWSDeepLensServiceRolePolicy",
            "iam-role/AWSDeepLensGreengrassGroupRole": "managed policy to remove: AmazonS3FullAccess",
            f"iam-role/{TER}": f"inline policy {TOKEN_EXCHANGE_INLINE_POLICY} differs",
            f"iot-role-alias/{ALIAS}": f"points at {other_role}, want role {TER}; "
                                       "credential duration 7200s, want 3600s",
        }
        assert {a.verb for a in plan.changes} == {"update"}
        assert action(plan, "iam-role/AWSDeepLensServiceRole").details["attach"] == [service_policy]

        trust = iam.get_role(RoleName="AWSDeepLensGreengrassRole")["Role"]["AssumeRolePolicyDocument"]["Statement"][0]
        assert trust["Principal"] == {"Service": "greengrass.amazonaws.com"}
        assert attached(iam, "AWSDeepLensServiceRole") == {service_policy}
        assert S3_FULL not in attached(iam, "AWSDeepLensGreengrassGroupRole")
        ter_policy = iam.get_role_policy(RoleName=TER, PolicyName=TOKEN_EXCHANGE_INLINE_POLICY)["PolicyDocument"]
        assert {s["Sid"] for s in ter_policy["Statement"]} == {"NucleusLogs", "LocateArtifactBucket",
                                                               "DownloadComponentArtifacts", "UploadFaceCrops"}
        alias = iot.describe_role_alias(roleAlias=ALIAS)["roleAliasDescription"]
        assert alias["roleArn"].endswith(f":role/{TER}") and alias["credentialDurationSeconds"] == 3600

        repaired, ctx = register(aws, settings_for(**ACCOUNT))
        assert repaired.is_noop and ctx.recorder.mutating == []


    def test_equivalent_spellings_and_unmanaged_policies_are_not_drift(self, converged, settings_for):
        aws = converged
        iam = aws.client("iam")
        respelled = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "",
                    "Effect": "Allow",
                    "Principal": {"Service": ["sagemaker.amazonaws.com"]},
                    "Action": ["sts:AssumeRole"],
                }
            ],
        }
        iam.update_assume_role_policy(RoleName="AWSDeepLensSagemakerRole", PolicyDocument=json.dumps(respelled))
        unmanaged = "arn:aws:iam::aws:policy/CloudWatchLogsReadOnlyAccess"
        iam.attach_role_policy(RoleName="AWSDeepLensGreengrassGroupRole", PolicyArn=unmanaged)

        plan, ctx = register(aws, settings_for(**ACCOUNT))

        assert plan.is_noop and ctx.recorder.mutating == []
        assert unmanaged in attached(iam, "AWSDeepLensGreengrassGroupRole")


    def test_s3_full_access_mode_swaps_the_grant_both_ways(self, converged, settings_for):
        aws = converged
        iam = aws.client("iam")

        plan, _ = register(aws, settings_for(**ACCOUNT, s3_access="full"))
        group = action(plan, "iam-role/AWSDeepLensGreengrassGroupRole")
        assert group.details["attach"] == [S3_FULL] and group.details["delete_inline"] == [FACE_CROPS_INLINE_POLICY]
        assert S3_FULL in attached(iam, "AWSDeepLensGreengrassGroupRole")
        assert iam.list_role_policies(RoleName="AWSDeepLensGreengrassGroupRole")["PolicyNames"] == []

        register(aws, settings_for(**ACCOUNT, s3_access="least-privilege"))
        assert S3_FULL not in attached(iam, "AWSDeepLensGreengrassGroupRole")
        assert iam.list_role_policies(RoleName="AWSDeepLensGreengrassGroupRole")["PolicyNames"] == [
            FACE_CROPS_INLINE_POLICY
        ]


@pytest.mark.parametrize(("max_session", "wanted", "expected"), [
    (3600, 3600, 3600), (43200, 3600, 3600), (3600, 7200, 3600), (7200, 7200, 7200), (3600, 60, 900)])
def test_alias_duration_never_exceeds_the_role_session_limit(max_session, wanted, expected):
    assert alias_duration(max_session, wanted) == expected


def test_adopted_console_role_is_repaired_but_not_tagged(aws, settings_for):
    iam = aws.client("iam")
    iam.create_role(RoleName="AWSDeepLensSagemakerRole", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}))

    plan, _ = register(aws, settings_for())

    adopted = action(plan, "iam-role/AWSDeepLensSagemakerRole")
    assert adopted.verb == "update" and adopted.details["adopted"] is True
    assert attached(iam, "AWSDeepLensSagemakerRole") == {"arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"}
    assert iam.get_role(RoleName="AWSDeepLensSagemakerRole")["Role"].get("Tags", []) == []


def test_a_retired_managed_policy_is_reported_before_anything_changes(aws, settings_for, monkeypatch):
    import deeplens_cli.account.roles as roles

    # AWSLambdaFullAccess, the policy the DeepLens console attached, is deprecated: not present in moto either.
    real = roles.desired_roles

    def with_retired_policy(settings, region):
        specs = real(settings, region)
        specs[3] = roles.RoleSpec(specs[3].name, specs[3].service, specs[3].description, specs[3].path,
                                  ("arn:aws:iam::aws:policy/AWSLambdaFullAccess",))
        return specs

    monkeypatch.setattr(roles, "desired_roles", with_retired_policy)
    ctx = aws.context(settings_for())
    with pytest.raises(
        DeeplensError, match="managed policy arn:aws:iam::aws:policy/AWSLambdaFullAccess .* does not exist"
    ):
        plan_account(ctx, settings_for())
    assert ctx.recorder.mutating == []


# ---------------------------------------------------------------------------------------------- teardown


def test_teardown_removes_what_register_roles_created_and_a_second_teardown_is_a_noop(aws, settings_for):
    settings = settings_for()
    register(aws, settings)
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key="faces/01_01/00_00/1_0.jpg", Body=b"jpeg")

    ctx = aws.context(settings)
    plan = plan_account_teardown(ctx, settings, roles=True, bucket=True)
    assert {a.verb for a in plan.actions} == {"delete"}
    Executor(ctx).execute(plan)

    iam = aws.client("iam")
    assert not [r for r in iam.list_roles()["Roles"] if r["RoleName"] in EXPECTED_ROLES]
    assert aws.client("iot").list_role_aliases()["roleAliases"] == []
    assert s3.list_buckets()["Buckets"] == []

    again = aws.context(settings)
    second = plan_account_teardown(again, settings, roles=True, bucket=True)
    assert second.is_noop and again.recorder.mutating == []


def test_roles_can_be_torn_down_with_no_bucket_configured(aws, settings_for):
    """Role names and ownership do not depend on the bucket; the inline grants go with the roles."""
    register(aws, settings_for())
    unconfigured = settings_for(bucket=None)

    ctx = aws.context(unconfigured)
    Executor(ctx).execute(plan_account_teardown(ctx, unconfigured, roles=True, bucket=False))

    assert not [r for r in aws.client("iam").list_roles()["Roles"] if r["RoleName"] in EXPECTED_ROLES]


def test_teardown_keeps_roles_it_did_not_create_but_removes_its_own_grant(aws, settings_for):
    iam = aws.client("iam")
    iam.create_role(
        RoleName="AWSDeepLensGreengrassGroupRole",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "greengrass.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    register(aws, settings_for())

    ctx = aws.context(settings_for())
    plan = plan_account_teardown(ctx, settings_for(), roles=True, bucket=False)
    Executor(ctx).execute(plan)

    assert iam.get_role(RoleName="AWSDeepLensGreengrassGroupRole")["Role"]["RoleName"]
    assert iam.list_role_policies(RoleName="AWSDeepLensGreengrassGroupRole")["PolicyNames"] == []
    assert aws.client("s3").list_buckets()["Buckets"], "the bucket stays unless asked"


# ---------------------------------------------------------------------------------------------- the command


def test_dry_run_prints_the_plan_and_creates_nothing(aws, run_cli, recorded_aws):
    result = run_cli("register-roles", "--dry-run", "--bucket", BUCKET, "--output", "table")

    assert result.exit_code == 0, result.stderr
    assert "dry run: nothing changed" in result.stdout
    assert "8 to create, 0 to update, 0 to delete, 0 unchanged" in result.stdout
    assert recorded_aws.mutating == []
    assert aws.client("iam").list_roles()["Roles"] == []
    assert aws.client("s3").list_buckets()["Buckets"] == []


def test_json_output_is_exactly_one_document(aws, run_cli, recorded_aws):
    result = run_cli("--output", "json", "register-roles", "--s3-full-access", env={"DEEPLENS_BUCKET": BUCKET})

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)  # fails on anything but exactly one JSON document
    assert document["dry_run"] is False
    assert document["plan"]["counts"] == {"create": 8, "update": 0, "delete": 0, "noop": 0}
    group = [a for a in document["plan"]["actions"] if a["resource"] == "iam-role/AWSDeepLensGreengrassGroupRole"][0]
    assert S3_FULL in group["details"]["managed_policies"]
    assert len(document["result"]["applied"]) == 8
    assert S3_FULL in attached(aws.client("iam"), "AWSDeepLensGreengrassGroupRole")


def test_missing_bucket_is_a_usage_error(aws, run_cli):
    result = run_cli("register-roles")

    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: missing required setting 'bucket' (hint: set bucket in deeplens.yaml, or DEEPLENS_BUCKET, "
        "or --bucket where the command has it)"]


def test_end_to_end_against_a_moto_server_second_run_writes_nothing(moto_server, run_cli, recorded_aws):
    first = run_cli("--endpoint-url", moto_server, "--output", "table", "register-roles", "--bucket", BUCKET)
    assert first.exit_code == 0, first.stderr
    assert "8 to create" in first.stdout
    assert len(recorded_aws.mutating) > 8

    recorded_aws.clear()
    second = run_cli("--endpoint-url", moto_server, "--output", "table", "register-roles", "--bucket", BUCKET)

    assert second.exit_code == 0, second.stderr
    assert "0 to create, 0 to update, 0 to delete, 8 unchanged" in second.stdout
    assert recorded_aws.calls and recorded_aws.mutating == []
