"""The IAM documents deeplens-cli writes, and the semantic comparison that keeps re-runs from rewriting them."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from deeplens_cli.account.policies import (
    NUCLEUS_LOG_ACTIONS,
    face_crops_upload_policy,
    managed_policy_arn,
    normalise_policy,
    partition_for,
    same_policy,
    token_exchange_policy,
    trust_policy,
    trusted_services,
)


def test_face_crops_policy_allows_only_putobject_under_the_prefix():
    policy = face_crops_upload_policy("deeplens-crops", "faces/")

    (allow,) = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert allow["Action"] == "s3:PutObject"
    assert allow["Resource"] == "arn:aws:s3:::deeplens-crops/faces/*"


def test_face_crops_policy_denies_reading_and_listing_what_the_managed_deeplens_policy_would_allow():
    """AWSDeepLensLambdaFunctionAccessPolicy (also on the V1 group role) allows Get/List on deeplens* buckets."""
    (deny,) = [s for s in face_crops_upload_policy("deeplens-crops", "faces/")["Statement"] if s["Effect"] == "Deny"]

    assert deny["Action"] == ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:ListBucketVersions"]
    assert deny["Resource"] == ["arn:aws:s3:::deeplens-crops", "arn:aws:s3:::deeplens-crops/*"]


def test_token_exchange_policy_scopes_artifacts_and_crops_to_their_prefixes():
    policy = token_exchange_policy("crops", "faces/", "artifacts", "greengrass-artifacts/")

    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert set(by_sid["NucleusLogs"]["Action"]) == set(NUCLEUS_LOG_ACTIONS) == {
        "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"}
    assert by_sid["NucleusLogs"]["Resource"] == "arn:aws:logs:*:*:log-group:/aws/greengrass/*"
    assert by_sid["LocateArtifactBucket"] == {"Sid": "LocateArtifactBucket", "Effect": "Allow",
                                              "Action": "s3:GetBucketLocation", "Resource": "arn:aws:s3:::artifacts"}
    assert by_sid["DownloadComponentArtifacts"] == {
        "Sid": "DownloadComponentArtifacts", "Effect": "Allow", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::artifacts/greengrass-artifacts/*"}
    assert by_sid["UploadFaceCrops"]["Action"] == "s3:PutObject"
    assert by_sid["UploadFaceCrops"]["Resource"] == "arn:aws:s3:::crops/faces/*"


def test_generated_identity_policies_pass_parliament():
    from parliament import analyze_policy_string

    upload = analyze_policy_string(json.dumps(face_crops_upload_policy("deeplens-crops", "faces/")))
    assert upload.findings == []

    exchange = analyze_policy_string(json.dumps(token_exchange_policy("c", "faces/", "a", "art/")))
    assert exchange.findings == []


@pytest.mark.parametrize(("region", "partition"), [("us-east-1", "aws"), ("cn-north-1", "aws-cn"),
                                                   ("us-gov-west-1", "aws-us-gov")])
def test_arns_use_the_region_partition(region, partition):
    assert partition_for(region) == partition
    assert managed_policy_arn("AmazonS3FullAccess", partition) == f"arn:{partition}:iam::aws:policy/AmazonS3FullAccess"
    assert face_crops_upload_policy("b", "p/", partition)["Statement"][0]["Resource"] == f"arn:{partition}:s3:::b/p/*"


def test_trust_policy_names_one_service_principal():
    assert trust_policy("greengrass.amazonaws.com") == {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "greengrass.amazonaws.com"},
                       "Action": "sts:AssumeRole"}]}
    assert trusted_services(trust_policy("lambda.amazonaws.com")) == ["lambda.amazonaws.com"]


class TestSemanticComparison:
    base = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": "arn:aws:s3:::b/faces/*"},
        {"Effect": "Allow", "Action": ["logs:PutLogEvents", "logs:CreateLogStream"], "Resource": "*"},
    ]}

    def test_single_string_equals_one_element_list(self):
        spelled = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": ["arn:aws:s3:::b/faces/*"]},
            {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": ["*"]},
        ]}
        assert same_policy(self.base, spelled)

    def test_statement_order_and_sids_do_not_matter(self):
        reordered = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Logs",
                    "Effect": "Allow",
                    "Action": ["logs:PutLogEvents", "logs:CreateLogStream"],
                    "Resource": "*",
                },
                {
                    "Sid": "Crops",
                    "Effect": "Allow",
                    "Action": "s3:PutObject",
                    "Resource": "arn:aws:s3:::b/faces/*",
                },
            ],
        }
        assert same_policy(self.base, reordered)

    def test_json_text_and_url_encoded_json_parse_to_the_same_document(self):
        assert same_policy(self.base, json.dumps(self.base))
        assert same_policy(self.base, quote(json.dumps(self.base)))

    def test_a_single_statement_object_equals_a_list_of_one(self):
        single = {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}
        listed = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}],
        }
        assert normalise_policy(single) == normalise_policy(listed)

    @pytest.mark.parametrize("change", [
        lambda d: d["Statement"][0].update(Resource="arn:aws:s3:::b/*"),
        lambda d: d["Statement"][0].update(Action=["s3:PutObject", "s3:GetObject"]),
        lambda d: d["Statement"][0].update(Effect="Deny"),
        lambda d: d["Statement"].pop(),
        lambda d: d["Statement"][0].update(Condition={"Bool": {"aws:SecureTransport": "true"}}),
    ], ids=["resource", "extra-action", "effect", "fewer-statements", "condition"])
    def test_any_change_in_meaning_is_a_difference(self, change):
        changed = json.loads(json.dumps(self.base))
        change(changed)
        assert not same_policy(self.base, changed)

    def test_missing_document_only_equals_missing(self):
        assert same_policy(None, None)
        assert not same_policy(self.base, None)

    def test_principals_compare_as_sets(self):
        one = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
               "Principal": {"Service": ["b.amazonaws.com", "a.amazonaws.com"]}}]}
        two = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole"],
               "Principal": {"Service": ["a.amazonaws.com", "b.amazonaws.com"]}}]}
        assert same_policy(one, two)
        assert trusted_services(one) == ["a.amazonaws.com", "b.amazonaws.com"]
