"""The face-crops bucket: created private and encrypted in the configured region, repaired on drift, never an
ACL, and a clear error when the name belongs to another account or region."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

import deeplens_cli.account.bucket as bucket_module
from deeplens_cli.account.bucket import LIFECYCLE_RULE_ID, plan_bucket, plan_bucket_teardown
from deeplens_cli.engine.executor import Executor
from deeplens_cli.engine.plan import ApiCall, Plan
from deeplens_cli.errors import DeeplensError

BUCKET = "deeplens-test-face-crops"
ACL_PARAMS = {"ACL", "GrantFullControl", "GrantRead", "GrantReadACP", "GrantWrite", "GrantWriteACP",
              "AccessControlPolicy"}


@pytest.fixture
def aws(aws_plain):
    """The bucket needs no IAM managed policies (see `aws_plain`)."""
    return aws_plain


def apply(aws, settings) -> tuple[Plan, object]:
    ctx = aws.context(settings)
    plan = plan_bucket(ctx, settings)
    if not plan.is_noop:
        Executor(ctx).execute(plan)
    return plan, ctx


def only_action(plan: Plan):
    (found,) = plan.actions
    return found


def test_created_in_us_east_1_without_a_location_constraint(aws, settings_for):
    plan, ctx = apply(aws, settings_for())

    create = only_action(plan).steps[0]
    assert create.operation == "create_bucket"
    assert create.params == {"Bucket": BUCKET, "ObjectOwnership": "BucketOwnerEnforced"}
    assert aws.client("s3").get_bucket_location(Bucket=BUCKET)["LocationConstraint"] is None


def test_created_in_the_configured_region(aws, settings_for):
    plan, _ = apply(aws, settings_for(region="eu-west-2"))

    assert only_action(plan).steps[0].params["CreateBucketConfiguration"] == {"LocationConstraint": "eu-west-2"}
    assert aws.client("s3").get_bucket_location(Bucket=BUCKET)["LocationConstraint"] == "eu-west-2"


def test_new_bucket_is_private_encrypted_and_never_gets_an_acl(aws, settings_for):
    plan, ctx = apply(aws, settings_for())
    s3 = aws.client("s3")

    assert s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    assert s3.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}]
    sse = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert sse["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    for step in only_action(plan).steps:
        if isinstance(step, ApiCall):
            assert not ACL_PARAMS & set(step.params), step
    assert not [op for _, op in ctx.recorder.calls if "Acl" in op]


def test_second_run_is_a_noop_without_mutating_calls(aws, settings_for):
    apply(aws, settings_for(retention_days=30))

    plan, ctx = apply(aws, settings_for(retention_days=30))

    assert only_action(plan).verb == "noop"
    assert ctx.recorder.mutating == []


def test_drifted_privacy_settings_are_named_and_repaired(aws, settings_for):
    apply(aws, settings_for())
    s3 = aws.client("s3")
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
    s3.put_bucket_ownership_controls(Bucket=BUCKET, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    s3.delete_bucket_encryption(Bucket=BUCKET)

    plan, _ = apply(aws, settings_for())

    update = only_action(plan)
    assert update.verb == "update"
    assert update.details["differences"] == [
        "public access not fully blocked (BlockPublicPolicy, RestrictPublicBuckets off)",
        "object ownership is ObjectWriter, ACLs not disabled",
        "default encryption is unset",
    ]
    assert [step.operation for step in update.steps] == [
        "put_public_access_block", "put_bucket_ownership_controls", "put_bucket_encryption"]
    assert only_action(apply(aws, settings_for())[0]).verb == "noop"


def test_an_owner_chosen_kms_encryption_is_kept(aws, settings_for):
    apply(aws, settings_for())
    aws.client("s3").put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/faces"}}]})

    plan, ctx = apply(aws, settings_for())

    kept = only_action(plan)
    assert kept.verb == "noop" and ctx.recorder.mutating == []
    assert "kms:GenerateDataKey" in kept.details["warning"]  # the device grants cover S3 only: say so


class TestRetention:
    other_rule = {"ID": "someone-elses-rule", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
                  "Expiration": {"Days": 400}}

    def rules(self, aws):
        return {
            rule["ID"]: rule
            for rule in aws.client("s3").get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
        }

    def test_retention_expires_crops_under_the_prefix_only(self, aws, settings_for):
        apply(aws, settings_for(retention_days=30, prefix="faces/"))

        rule = self.rules(aws)[LIFECYCLE_RULE_ID]
        assert rule["Filter"] == {"Prefix": "faces/"}
        assert rule["Status"] == "Enabled"
        assert rule["Expiration"] == {"Days": 30}
        assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}

    def test_changed_retention_updates_our_rule_and_keeps_other_rules(self, aws, settings_for):
        apply(aws, settings_for(retention_days=30))
        rules = list(self.rules(aws).values()) + [self.other_rule]
        aws.client("s3").put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": rules})

        plan, _ = apply(aws, settings_for(retention_days=7))

        assert only_action(plan).reason == f"lifecycle rule {LIFECYCLE_RULE_ID} differs (want faces/* after 7 days)"
        assert self.rules(aws)[LIFECYCLE_RULE_ID]["Expiration"] == {"Days": 7}
        assert self.rules(aws)["someone-elses-rule"]["Expiration"] == {"Days": 400}

    def test_unset_retention_removes_only_our_rule(self, aws, settings_for):
        apply(aws, settings_for(retention_days=30))
        rules = list(self.rules(aws).values()) + [self.other_rule]
        aws.client("s3").put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": rules})

        plan, _ = apply(aws, settings_for(retention_days=None))

        assert "present but retention_days is unset" in only_action(plan).reason
        assert set(self.rules(aws)) == {"someone-elses-rule"}

    def test_unset_retention_deletes_the_configuration_when_ours_was_the_only_rule(self, aws, settings_for):
        apply(aws, settings_for(retention_days=30))

        plan, _ = apply(aws, settings_for())

        assert [step.operation for step in only_action(plan).steps] == ["delete_bucket_lifecycle"]
        with pytest.raises(aws.client("s3").exceptions.ClientError, match="NoSuchLifecycleConfiguration"):
            aws.client("s3").get_bucket_lifecycle_configuration(Bucket=BUCKET)


# ---------------------------------------------------------------------------------------------- foreign buckets


def test_bucket_in_another_region_is_an_error_naming_it(aws, settings_for):
    aws.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    ctx = aws.context(settings_for(region="us-east-1"))

    with pytest.raises(DeeplensError) as error:
        plan_bucket(ctx, settings_for(region="us-east-1"))

    assert error.value.message == f"bucket {BUCKET} is in region eu-west-1, not us-east-1"
    assert "--region eu-west-1" in error.value.hint
    assert ctx.recorder.mutating == []


def test_bucket_owned_by_another_account_is_an_error_naming_it(aws_env, settings_for):
    from deeplens_cli.aws import make_context

    ctx = make_context(settings_for())
    with Stubber(ctx.client("s3")) as stub:
        stub.add_client_error("head_bucket", service_error_code="403", http_status_code=403)
        with pytest.raises(DeeplensError) as error:
            plan_bucket(ctx, settings_for())

    assert error.value.message.startswith(f"bucket {BUCKET} exists but this account cannot use it (HTTP 403")
    assert "choose another bucket name" in error.value.hint


def test_a_redirect_to_another_region_is_an_error_naming_the_region(aws_env, settings_for):
    from deeplens_cli.aws import make_context

    ctx = make_context(settings_for())
    with Stubber(ctx.client("s3")) as stub:
        stub.add_client_error("head_bucket", service_error_code="301", http_status_code=301,
                              response_meta={"HTTPHeaders": {"x-amz-bucket-region": "ap-south-1"}})
        with pytest.raises(DeeplensError, match=f"bucket {BUCKET} is in ap-south-1, not us-east-1"):
            plan_bucket(ctx, settings_for())


def test_the_command_reports_a_foreign_region_bucket_in_one_line(aws, run_cli):
    aws.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})

    result = run_cli("--region", "us-east-1", "register-roles", "--bucket", BUCKET)

    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: bucket {BUCKET} is in region eu-west-1, not us-east-1 "
        f"(hint: use --region eu-west-1, or choose another bucket name for us-east-1)"]


# ---------------------------------------------------------------------------------------------- teardown


def test_teardown_deletes_every_version_and_delete_marker_then_the_bucket(aws, settings_for, monkeypatch):
    apply(aws, settings_for())
    s3 = aws.client("s3")
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=BUCKET, Key="faces/a.jpg", Body=b"1")
    s3.put_object(Bucket=BUCKET, Key="faces/a.jpg", Body=b"2")
    s3.put_object(Bucket=BUCKET, Key="faces/b.jpg", Body=b"3")
    s3.delete_object(Bucket=BUCKET, Key="faces/b.jpg")  # leaves a delete marker
    monkeypatch.setattr(bucket_module, "DELETE_BATCH", 2)

    ctx = aws.context(settings_for())
    plan = plan_bucket_teardown(ctx, settings_for())

    delete = only_action(plan)
    assert delete.verb == "delete" and delete.details == {"objects": 4}
    assert [step.operation for step in delete.steps] == ["delete_objects", "delete_objects", "delete_bucket"]
    Executor(ctx).execute(plan)
    assert s3.list_buckets()["Buckets"] == []

    again = aws.context(settings_for())
    assert only_action(plan_bucket_teardown(again, settings_for())).verb == "noop"
    assert again.recorder.mutating == []
