"""A fleet's claim is guarded: a stolen claim certificate cannot register a camera that exists, nor a name the
operator did not allow (`register-device --fleet G --claim --allow NAMES`), and `--rotate` revokes it.

Runs the CLI against moto (IoT things, certificates and policies, Lambda, IAM, S3) with the provisioning-template
operations moto lacks answered next to it (tests/support/iot_provisioning.py: requests checked against botocore's
IoT model, answers against its output shapes). A claim holder's RegisterThing is decided as IoT documents it: the
template's hook is invoked only if its resource policy lets IoT do so for this template, and its deployed code
(the zip whose CodeSha256 Lambda reports) runs with the documented event.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from deeplens_cli.targets.greengrass_v2.claim_guard import (
    HOOK_POLICY,
    PERMISSION_SID,
    HookNames,
    hook_package,
)
from deeplens_cli.targets.greengrass_v2.provisioning import DEVICE_NAME_PATTERN, ClaimNames

try:
    from tests.cli.fake_greengrassv2 import claim_account  # noqa: F401 - a fixture
except ImportError:
    from fake_greengrassv2 import claim_account  # noqa: F401

FLEET = "Stores"
BUCKET = "deeplens-test-face-crops"
ENV = {"DEEPLENS_BUCKET": BUCKET}
NAMES, HOOK = ClaimNames(FLEET), HookNames(FLEET)
ACCOUNT, REGION = "123456789012", "us-east-1"


def cli_ok(run_cli: Any, *args: str) -> dict[str, Any]:
    result = run_cli("--output", "json", *args, env=ENV)
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def claim(run_cli: Any, *args: str) -> dict[str, Any]:
    return cli_ok(run_cli, "register-device", "--fleet", FLEET, "--claim", *args)


def client(account: Any, service: str) -> Any:
    return account.client(service, region_name=REGION)


# ---------------------------------------------------------------------------------------------- the threat


def test_a_stolen_claim_cannot_register_the_name_of_an_existing_camera(claim_account, templates, run_cli):
    cli_ok(run_cli, "register-device", "--name", "Cam1", "--out", "cam1")  # a camera registered the usual way
    claim(run_cli, "--allow", "Cam1,Cam2", "--out", "claim")

    assert templates.register_thing(NAMES.template, {"DeviceName": "Cam1"}) is False
    certificates = client(claim_account, "iot").list_thing_principals(thingName="deeplens-Cam1")["principals"]
    assert len(certificates) == 1  # still only its own


def test_a_stolen_claim_cannot_register_a_name_nobody_allowed(claim_account, templates, run_cli):
    claim(run_cli, "--allow", "Cam2", "--out", "claim")

    assert templates.register_thing(NAMES.template, {"DeviceName": "Cam3"}) is False
    assert templates.register_thing(NAMES.template, {"DeviceName": "Cam 3"}) is False
    assert client(claim_account, "iot").list_things()["things"] == []


def test_an_allowed_name_registers_once(claim_account, templates, run_cli):
    claim(run_cli, "--allow", "Cam2", "--out", "claim")

    assert templates.register_thing(NAMES.template, {"DeviceName": "Cam2"}) is True
    assert templates.register_thing(NAMES.template, {"DeviceName": "Cam2"}) is False  # now it exists


def test_without_allow_no_camera_may_register_yet(claim_account, templates, run_cli):
    result = run_cli("register-device", "--fleet", FLEET, "--claim", "--out", "claim", env=ENV)

    assert result.exit_code == 0, result.stderr
    assert "0 name(s) may register" in result.stdout and "--allow" in result.stdout
    assert templates.register_thing(NAMES.template, {"DeviceName": "Cam2"}) is False


# ---------------------------------------------------------------------------------------------- the wiring


def test_the_template_names_the_hook_and_constrains_device_name(claim_account, templates, run_cli):
    claim(run_cli, "--allow", "Cam2", "--out", "claim")

    template = templates.templates[NAMES.template]
    assert template.hook == {"payloadVersion": "2020-04-01",
                             "targetArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{HOOK.function}"}
    parameter = json.loads(template.body)["Parameters"]["DeviceName"]
    assert parameter["AllowedPattern"] == DEVICE_NAME_PATTERN
    pattern = re.compile(DEVICE_NAME_PATTERN)
    assert [bool(pattern.match(n)) for n in ("Cam2", "a" * 100, "a" * 101, "Cam 2", "-Cam", "")] == [
        True, True, False, False, False, False]


def test_the_hook_runs_its_own_code_with_a_least_privilege_role(claim_account, templates, run_cli):
    claim(run_cli, "--allow", "Cam2", "--out", "claim")
    lam, iam = client(claim_account, "lambda"), client(claim_account, "iam")

    function = lam.get_function(FunctionName=HOOK.function)["Configuration"]
    assert function["CodeSha256"] == hook_package().code_sha256_b64
    assert function["Handler"] == "claim_hook.handler" and function["Role"].endswith(f":role/{HOOK.role}")
    role = iam.get_role(RoleName=HOOK.role)["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert iam.list_attached_role_policies(RoleName=HOOK.role)["AttachedPolicies"] == []
    statements = iam.get_role_policy(RoleName=HOOK.role, PolicyName=HOOK_POLICY)["PolicyDocument"]["Statement"]
    granted = {(a, s["Resource"]) for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str)
                                                              else s["Action"])}
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{HOOK.function}"
    assert granted == {("logs:CreateLogGroup", group), ("logs:CreateLogStream", f"{group}:*"),
                       ("logs:PutLogEvents", f"{group}:*"),
                       ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/deeplens-claims/{FLEET}/allow-list.json"),
                       ("iot:DescribeThing", f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/deeplens-*")}


def test_only_iot_may_invoke_the_hook_and_only_for_this_template(claim_account, templates, run_cli):
    claim(run_cli, "--allow", "Cam2", "--out", "claim")

    policy = client(claim_account, "lambda").get_policy(FunctionName=HOOK.function)["Policy"]
    [statement] = json.loads(policy)["Statement"]
    assert statement["Sid"] == PERMISSION_SID and statement["Action"] == "lambda:InvokeFunction"
    assert statement["Principal"] == {"Service": "iot.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == templates.templates[NAMES.template].arn
    assert statement["Condition"]["StringEquals"]["AWS:SourceAccount"] == ACCOUNT


def test_without_the_invoke_permission_iot_refuses_every_camera(claim_account, templates, run_cli):
    claim(run_cli, "--allow", "Cam2", "--out", "claim")
    client(claim_account, "lambda").remove_permission(FunctionName=HOOK.function, StatementId=PERMISSION_SID)

    assert templates.register_thing(NAMES.template, {"DeviceName": "Cam2"}) is False


def test_the_claim_policy_allows_connecting_and_the_json_exchanges_only(claim_account, templates, run_cli):
    claim(run_cli, "--out", "claim")
    iot = client(claim_account, "iot")

    document = json.loads(iot.get_policy(policyName=NAMES.claim_policy)["policyDocument"])
    [certificate] = iot.list_targets_for_policy(policyName=NAMES.claim_policy)["targets"]
    assert ":cert/" in certificate
    denied = [s for s in document["Statement"] if s["Effect"] == "Deny"]
    assert denied == [{"Effect": "Deny", "Action": "iot:Connect",
                       "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:client/deeplens-*"}]
    topics = {r.split(":", 5)[-1] for s in document["Statement"] if s["Effect"] == "Allow"
              and s["Action"] != "iot:Connect" for r in s["Resource"]}
    assert topics == {f"{kind}/{topic}{tail}" for kind in ("topic", "topicfilter") for tail in ("", "/*")
                      for topic in ("$aws/certificates/create/json",
                                    f"$aws/provisioning-templates/{NAMES.template}/provision/json")}


# ---------------------------------------------------------------------------------------------- edits and re-runs


def test_allow_adds_names_and_a_registered_camera_is_not_added(claim_account, templates, run_cli):
    cli_ok(run_cli, "register-device", "--name", "Cam1", "--out", "cam1")
    claim(run_cli, "--allow", "Cam2", "--out", "claim")
    document = claim(run_cli, "--allow", "Cam1", "--allow", "Cam3")

    stored = client(claim_account, "s3").get_object(Bucket=BUCKET, Key=HOOK.allow_list_key)["Body"].read()
    assert json.loads(stored) == {"fleet": FLEET, "names": ["Cam2", "Cam3"]}
    [listed] = [a for a in document["plan"]["actions"] if a["resource"].startswith("s3-object/")]
    assert listed["details"]["already_registered"] == ["Cam1"]
    assert len(client(claim_account, "iot").list_targets_for_policy(policyName=NAMES.claim_policy)["targets"]) == 1


def test_a_rerun_changes_nothing(claim_account, templates, run_cli, recorded_aws):
    claim(run_cli, "--allow", "Cam2", "--out", "claim")
    recorded_aws.clear()
    templates.calls.clear()

    document = claim(run_cli, "--allow", "Cam2")

    assert recorded_aws.mutating == [] and [op for op, _ in templates.calls] == ["DescribeProvisioningTemplate"]
    assert document["plan"]["changes"] == 0


def test_a_template_from_before_the_hook_gets_it(claim_account, templates, run_cli):
    claim(run_cli, "--allow", "Cam2", "--out", "claim")
    templates.templates[NAMES.template].hook = None  # what an earlier deeplens-cli made

    claim(run_cli)

    assert templates.templates[NAMES.template].hook["targetArn"].endswith(f":function:{HOOK.function}")
    assert templates.register_thing(NAMES.template, {"DeviceName": "Cam3"}) is False


def test_an_edit_made_meanwhile_is_never_lost(claim_account, templates, run_cli, monkeypatch):
    """The allow-list is written only if it is still what the plan read (If-Match on its ETag)."""
    import deeplens_cli.targets.greengrass_v2.claim_guard as guard

    claim(run_cli, "--allow", "Cam2", "--out", "claim")
    real = guard.read_allow_list

    def read_then_someone_edits(*args: Any) -> Any:
        found = real(*args)
        client(claim_account, "s3").put_object(Bucket=BUCKET, Key=HOOK.allow_list_key,
                                          Body=json.dumps({"fleet": FLEET, "names": ["Cam2", "Cam9"]}).encode())
        return found

    monkeypatch.setattr(guard, "read_allow_list", read_then_someone_edits)
    result = run_cli("register-device", "--fleet", FLEET, "--claim", "--allow", "Cam3", env=ENV)

    assert result.exit_code == 1 and "PreconditionFailed" in result.stderr
    stored = json.loads(client(claim_account, "s3").get_object(Bucket=BUCKET, Key=HOOK.allow_list_key)["Body"].read())
    assert stored["names"] == ["Cam2", "Cam9"]


def test_a_claim_run_stopped_at_any_change_is_finished_by_the_same_command(claim_account, templates, run_cli,
                                                                          faults, recorded_aws, tmp_path):
    """Each of the run's AWS changes denied in turn (a fleet of its own each time): the same command run again
    leaves exactly one claim, in its bundle, guarded - no second certificate, no half-made hook."""
    iot = client(claim_account, "iot")
    claim_cli = ("register-device", "--fleet", "{fleet}", "--claim", "--allow", "Cam2", "--out", "{fleet}-claim")
    cli_ok(run_cli, *(arg.format(fleet="Clean") for arg in claim_cli))
    changes = [call for call in recorded_aws.mutating if "ProvisioningTemplate" not in call[1]]
    assert len(changes) >= 10

    for n in range(1, len(changes) + 1):
        fleet = f"Stop{n}"
        faults.start_run()
        faults.deny_mutation_at = n
        assert run_cli(*(arg.format(fleet=fleet) for arg in claim_cli), env=ENV).exit_code == 1, changes[n - 1]
        faults.deny_mutation_at = None
        cli_ok(run_cli, *(arg.format(fleet=fleet) for arg in claim_cli))

        [claim_arn] = iot.list_targets_for_policy(policyName=ClaimNames(fleet).claim_policy)["targets"]
        pem = iot.describe_certificate(certificateId=claim_arn.rsplit("/", 1)[-1])["certificateDescription"]
        assert (tmp_path / f"{fleet}-claim" / "claim.pem.crt").read_text() == pem["certificatePem"], changes[n - 1]
        assert len(iot.list_certificates()["certificates"]) == n + 1, f"a certificate leaked at {changes[n - 1]}"
        assert templates.templates[ClaimNames(fleet).template].hook is not None
        assert templates.register_thing(ClaimNames(fleet).template, {"DeviceName": "Cam3"}) is False


# ---------------------------------------------------------------------------------------------- rotation


def test_rotate_issues_a_new_claim_and_revokes_the_old_one(claim_account, templates, run_cli, tmp_path):
    claim(run_cli, "--allow", "Cam2", "--out", "claim")
    iot = client(claim_account, "iot")
    [old] = iot.list_targets_for_policy(policyName=NAMES.claim_policy)["targets"]

    claim(run_cli, "--rotate", "--out", "claim-2")

    [new] = iot.list_targets_for_policy(policyName=NAMES.claim_policy)["targets"]
    assert new != old
    assert iot.describe_certificate(certificateId=new.rsplit("/", 1)[-1])["certificateDescription"]["status"] == \
        "ACTIVE"
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_certificate(certificateId=old.rsplit("/", 1)[-1])
    pem = iot.describe_certificate(certificateId=new.rsplit("/", 1)[-1])["certificateDescription"]["certificatePem"]
    assert (tmp_path / "claim-2" / "claim.pem.crt").read_text() == pem
    assert oct((tmp_path / "claim-2" / "claim.private.pem.key").stat().st_mode & 0o777) == "0o600"


def test_an_interrupted_rotation_is_finished_by_the_same_command(claim_account, templates, run_cli, faults):
    claim(run_cli, "--allow", "Cam2", "--out", "claim")
    iot = client(claim_account, "iot")
    [old] = iot.list_targets_for_policy(policyName=NAMES.claim_policy)["targets"]
    faults.fail("iot", "UpdateCertificate", "InternalFailureException", status=500, times=10)
    assert run_cli("register-device", "--fleet", FLEET, "--claim", "--rotate", "--out", "claim-2",
                   env=ENV).exit_code == 1
    faults.clear()

    claim(run_cli, "--rotate", "--out", "claim-2")  # the same command: keeps the new claim, revokes the old

    [new] = iot.list_targets_for_policy(policyName=NAMES.claim_policy)["targets"]
    assert new != old and len(iot.list_certificates()["certificates"]) == 1


# ---------------------------------------------------------------------------------------------- destroy


def test_destroy_removes_the_claim_and_its_hook_and_a_rerun_converges(claim_account, templates, run_cli, recorded_aws):
    claim(run_cli, "--allow", "Cam2", "--out", "claim")
    client(claim_account, "logs").create_log_group(logGroupName=f"/aws/lambda/{HOOK.function}")  # its first call

    cli_ok(run_cli, "destroy", "--yes")

    lam, iam, iot, s3 = (client(claim_account, s) for s in ("lambda", "iam", "iot", "s3"))
    assert templates.templates == {}
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]] == []
    assert not [r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(f"deeplens-{FLEET}-")]
    assert iot.list_certificates()["certificates"] == [] and iot.list_policies()["policies"] == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="deeplens-claims/")
    assert client(claim_account, "logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"] == []
    recorded_aws.clear()
    cli_ok(run_cli, "destroy", "--yes")
    assert recorded_aws.mutating == []


def test_an_interrupted_destroy_is_finished_by_the_next(claim_account, templates, run_cli, faults):
    claim(run_cli, "--allow", "Cam2", "--out", "claim")
    faults.fail("lambda", "DeleteFunction", "ServiceException", status=500, times=10)
    assert run_cli("destroy", "--yes", env=ENV).exit_code == 1
    assert NAMES.template not in templates.templates  # the template went first: nothing can register now
    faults.clear()

    cli_ok(run_cli, "destroy", "--yes")

    assert client(claim_account, "lambda").list_functions()["Functions"] == []
    assert not [r for r in client(claim_account, "iam").list_roles()["Roles"] if r["RoleName"].startswith("deeplens-")]


# ---------------------------------------------------------------------------------------------- the names given


def test_allow_takes_comma_lists_repeats_and_a_file(tmp_path):
    from deeplens_cli.settings.device_names import read_allowed_names

    (tmp_path / "store18.txt").write_text("# store 18\nStore18-Cam1\n\n Store18-Cam2 \nCam2\n")

    assert read_allowed_names(("Cam2, Cam3", "Cam4"), str(tmp_path / "store18.txt")) == [
        "Cam2", "Cam3", "Cam4", "Store18-Cam1", "Store18-Cam2"]


def test_allow_file_names_reach_the_allow_list(claim_account, templates, run_cli, tmp_path):
    (tmp_path / "names.txt").write_text("Store18-Cam1\nStore18-Cam2\n")

    claim(run_cli, "--allow-file", "names.txt", "--out", "claim")

    assert templates.register_thing(NAMES.template, {"DeviceName": "Store18-Cam2"}) is True


def test_a_dry_run_changes_nothing(claim_account, templates, run_cli, recorded_aws):
    document = claim(run_cli, "--allow", "Cam2", "--out", "claim", "--dry-run")

    assert recorded_aws.mutating == [] and templates.templates == {}
    resources = [a["resource"] for a in document["plan"]["actions"] if a["action"] != "noop"]
    # the guard comes before the template that names it
    assert resources.index(f"lambda-function/{HOOK.function}") < resources.index(
        f"iot-provisioning-template/{NAMES.template}")


def test_a_fleet_name_too_long_for_the_hooks_role_is_refused_before_any_call(run_cli, aws_env):
    result = run_cli("register-device", "--fleet", "F" * 38, "--claim", env=ENV)

    assert result.exit_code == 2 and "too long for claim provisioning" in result.stderr


def test_the_emulated_templates_hold_requests_and_answers_to_botocores_model(claim_account, templates, monkeypatch):
    from botocore.exceptions import ParamValidationError

    iot = templates.client()
    with pytest.raises(ParamValidationError):  # the request, before any answer: payloadVersion is 10-32 digits
        iot.create_provisioning_template(templateName="t", templateBody="{}", provisioningRoleArn="arn:aws:iam::1:r",
                                         preProvisioningHook={"payloadVersion": "v1", "targetArn": "arn"})
    iot.create_provisioning_template(templateName="t", templateBody="{}", provisioningRoleArn="arn:aws:iam::1:role/r")
    real = templates._DescribeProvisioningTemplate
    monkeypatch.setattr(templates, "_DescribeProvisioningTemplate", lambda params: {**real(params), "enabled": "yes"})
    with pytest.raises(ParamValidationError):  # the answer: `enabled` is a boolean in the output shape
        iot.describe_provisioning_template(templateName="t")


def test_the_hook_package_is_the_hook_file_alone_and_byte_reproducible():
    import io
    import zipfile
    from pathlib import Path

    from deeplens_cli.targets.greengrass_v2 import claim_hook

    first, second = hook_package(), hook_package()

    assert first.zip_bytes == second.zip_bytes and first.files == ("claim_hook.py",)
    assert zipfile.ZipFile(io.BytesIO(first.zip_bytes)).read("claim_hook.py") == Path(claim_hook.__file__).read_bytes()
