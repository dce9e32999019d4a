"""Plans and the Executor: values flow between steps, IAM propagation is retried visibly within a budget, and a
failure names the resource and what was already done."""

from __future__ import annotations

import io

import boto3
import pytest
from botocore.stub import ANY, Stubber

from deeplens_cli.aws import AwsContext
from deeplens_cli.cli.app import App
from deeplens_cli.cli.output import Reporter
from deeplens_cli.engine.executor import ExecutionError, Executor, resolve
from deeplens_cli.engine.pipeline import run_plan
from deeplens_cli.engine.plan import Action, ApiCall, LocalStep, Plan, Ref, Retry, noop

ROLE_NOT_READY = "The role defined for the function cannot be assumed by Lambda."
LAMBDA_RETRY = Retry(codes=("InvalidParameterValueException",), message_pattern="cannot be assumed",
                     budget_s=30, first_delay_s=2, max_delay_s=8)
CREATE_FUNCTION = {"FunctionName": "deeplens-face-crops", "Role": "arn:aws:iam::123456789012:role/r",
                   "Runtime": "python3.12", "Handler": "h.h", "Code": {"ZipFile": b"zip"}}
FUNCTION = {
    "FunctionName": "deeplens-face-crops",
    "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:deeplens-face-crops",
    "Version": "$LATEST",
}


@pytest.fixture
def sleeps() -> list[float]:
    """Every delay the executor asked for; nothing really waits."""
    return []


@pytest.fixture
def ctx(sleeps) -> AwsContext:
    """A context whose clients never reach a network (each test stubs the calls it expects)."""
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    return AwsContext(session, endpoint_url=None, sleep=sleeps.append)


@pytest.fixture
def reporter() -> Reporter:
    return Reporter(stdout=io.StringIO(), stderr=io.StringIO())


def progress(reporter: Reporter) -> list[str]:
    return reporter.stderr.getvalue().splitlines()


def stub(ctx: AwsContext, service: str) -> Stubber:
    stubber = Stubber(ctx.client(service))
    stubber.activate()
    return stubber


# ---------------------------------------------------------------------------------------------- values between steps


def test_outputs_flow_into_later_steps_through_refs(ctx):
    iot = stub(ctx, "iot")
    iot.add_response("create_keys_and_certificate",
                     {"certificateArn": "arn:aws:iot:us-east-1:123456789012:cert/abc", "certificateId": "a" * 64,
                      "certificatePem": "PEM", "keyPair": {"PublicKey": "pub", "PrivateKey": "priv"}},
                     {"setAsActive": True})
    iot.add_response("attach_thing_principal", {},
                     {"thingName": "cam", "principal": "arn:aws:iot:us-east-1:123456789012:cert/abc"})
    iot.add_response(
        "attach_policy",
        {},
        {"policyName": "deeplens-cam", "target": "arn:aws:iot:us-east-1:123456789012:cert/abc"},
    )
    plan = Plan("register", [Action("iot-thing/cam", "create", "missing", (
        ApiCall("iot", "create_keys_and_certificate", {"setAsActive": True},
                outputs={"cert": "", "cert_arn": "certificateArn"}),
        ApiCall("iot", "attach_thing_principal", {"thingName": Ref("thing"), "principal": Ref("cert_arn")}),
        ApiCall("iot", "attach_policy", {"policyName": "deeplens-cam", "target": Ref("cert", "certificateArn")}),
    ))], known={"thing": "cam"})

    result = Executor(ctx).execute(plan)

    iot.assert_no_pending_responses()
    assert result.variables["cert_arn"] == "arn:aws:iot:us-east-1:123456789012:cert/abc"
    assert result.variables["cert"]["keyPair"]["PrivateKey"] == "priv"
    assert result.calls == 3


def test_local_steps_produce_variables_for_later_calls(ctx):
    iam = stub(ctx, "iam")
    iam.add_response("get_role", {"Role": {"Path": "/", "RoleName": "from-local", "RoleId": "AROAEXAMPLE123456789",
                                           "Arn": "arn:aws:iam::123456789012:role/from-local",
                                           "CreateDate": "2026-01-01T00:00:00Z"}}, {"RoleName": "from-local"})
    seen = []
    plan = Plan("t", [Action("r", "update", "x", (
        LocalStep("decide the name", lambda variables: {"name": "from-local"}),
        LocalStep("see it", lambda variables: seen.append(variables["name"])),
        ApiCall("iam", "get_role", {"RoleName": Ref("name")}),
    ))])

    Executor(ctx).execute(plan)

    assert seen == ["from-local"]
    iam.assert_no_pending_responses()


def test_refs_resolve_inside_nested_structures_and_unknown_refs_fail_loudly():
    variables = {"arn": "arn:x", "doc": {"Items": ["a", "b"]}}

    assert resolve({"A": [Ref("arn"), {"B": Ref("doc", "Items.1")}], "C": (Ref("arn"),)}, variables) == {
        "A": ["arn:x", {"B": "b"}], "C": ("arn:x",)}
    with pytest.raises(KeyError, match="plan variable missing was never produced"):
        resolve(Ref("missing"), variables)


# ---------------------------------------------------------------------------------------------- retries


def test_role_propagation_is_retried_with_growing_waits_then_succeeds(ctx, sleeps, reporter):
    lam = stub(ctx, "lambda")
    for _ in range(3):
        lam.add_client_error("create_function", service_error_code="InvalidParameterValueException",
                             service_message=ROLE_NOT_READY, http_status_code=400)
    lam.add_response("create_function", FUNCTION, {**CREATE_FUNCTION, "Code": ANY})
    plan = Plan("publish", [Action("lambda/deeplens-face-crops", "create", "missing", (
        ApiCall("lambda", "create_function", CREATE_FUNCTION, outputs={"arn": "FunctionArn"}, retry=LAMBDA_RETRY),))])

    result = Executor(ctx, reporter.progress).execute(plan)

    assert result.variables["arn"] == FUNCTION["FunctionArn"]
    assert sleeps == [2, 4, 8]
    waits = [line for line in progress(reporter) if line.startswith("waiting for IAM changes to propagate")]
    assert len(waits) == 3
    assert "retry in 2s, 0s of 30s spent" in waits[0] and "retry in 8s, 6s of 30s spent" in waits[2]


def test_retry_budget_exhausted_is_an_error_naming_the_resource(ctx, sleeps, reporter):
    lam = stub(ctx, "lambda")
    for _ in range(10):
        lam.add_client_error("create_function", service_error_code="InvalidParameterValueException",
                             service_message=ROLE_NOT_READY, http_status_code=400)
    plan = Plan("publish", [Action("lambda/deeplens-face-crops", "create", "missing", (
        ApiCall("lambda", "create_function", CREATE_FUNCTION, retry=LAMBDA_RETRY),))])

    with pytest.raises(ExecutionError) as error:
        Executor(ctx, reporter.progress).execute(plan)

    assert sleeps == [2, 4, 8, 8, 8]  # 30 s budget: a sixth wait would exceed it
    assert sum(sleeps) <= LAMBDA_RETRY.budget_s
    assert error.value.message.startswith(
        "lambda/deeplens-face-crops: CreateFunction failed while lambda:create_function: "
        "InvalidParameterValueException"
    )


def test_errors_that_do_not_match_the_retry_are_not_retried(ctx, sleeps):
    lam = stub(ctx, "lambda")
    lam.add_client_error("create_function", service_error_code="InvalidParameterValueException",
                         service_message="Unsupported runtime python3.7", http_status_code=400)
    plan = Plan("publish", [Action("lambda/f", "create", "missing", (
        ApiCall("lambda", "create_function", CREATE_FUNCTION, retry=LAMBDA_RETRY),))])

    with pytest.raises(ExecutionError, match="Unsupported runtime python3.7"):
        Executor(ctx).execute(plan)
    assert sleeps == []


def test_a_planner_can_explain_one_failure_it_knows_and_leave_the_rest_to_translation(ctx):
    from deeplens_cli.errors import DeeplensError

    def explain(exc):
        if "python3.7" in str(exc):
            return DeeplensError("Lambda refuses python3.7", "declare another runtime")
        return None

    lam = stub(ctx, "lambda")
    lam.add_client_error("create_function", service_error_code="InvalidParameterValueException",
                         service_message="Unsupported runtime python3.7", http_status_code=400)
    lam.add_client_error("create_function", service_error_code="InvalidParameterValueException",
                         service_message="Memory too small", http_status_code=400)
    plan = Plan("publish", [Action("lambda/f", "create", "missing", (
        ApiCall("lambda", "create_function", CREATE_FUNCTION, explain=explain),))])

    with pytest.raises(ExecutionError) as explained:
        Executor(ctx).execute(plan)
    assert explained.value.message == "lambda/f: Lambda refuses python3.7"
    assert explained.value.hint == "declare another runtime"
    with pytest.raises(ExecutionError, match="Memory too small"):
        Executor(ctx).execute(plan)


def test_ignored_codes_mean_already_done(ctx):
    iam = stub(ctx, "iam")
    iam.add_client_error("delete_role", service_error_code="NoSuchEntity", http_status_code=404)
    plan = Plan("destroy", [Action("iam-role/r", "delete", "x", (
        ApiCall("iam", "delete_role", {"RoleName": "r"}, ignore_codes=("NoSuchEntity",)),))])

    result = Executor(ctx).execute(plan)

    assert [a.resource for a in result.completed] == ["iam-role/r"]


# ---------------------------------------------------------------------------------------------- failures


def test_a_failure_lists_what_was_already_applied(ctx, reporter):
    iam = stub(ctx, "iam")
    iam.add_response("delete_role", {}, {"RoleName": "first"})
    iam.add_client_error("delete_role", service_error_code="AccessDenied", http_status_code=403,
                         service_message="User: u is not authorized to perform: iam:DeleteRole on resource: "
                                         "arn:aws:iam::123456789012:role/second")
    plan = Plan("destroy", [
        Action("iam-role/first", "delete", "x", (ApiCall("iam", "delete_role", {"RoleName": "first"}),)),
        noop("iam-role/kept"),
        Action("iam-role/second", "delete", "x", (ApiCall("iam", "delete_role", {"RoleName": "second"}),)),
        Action("iam-role/third", "delete", "x", (ApiCall("iam", "delete_role", {"RoleName": "third"}),)),
    ])

    with pytest.raises(ExecutionError) as error:
        Executor(ctx, reporter.progress).execute(plan)

    assert [a.resource for a in error.value.completed] == ["iam-role/first"]
    assert error.value.action.resource == "iam-role/second"
    assert error.value.one_line() == (
        "iam-role/second: access denied: iam:DeleteRole on arn:aws:iam::123456789012:role/second while "
        "iam:delete_role; 1 earlier change(s) were applied, re-running converges "
        "(hint: grant iam:DeleteRole to the calling identity, or use a profile that has it)")
    assert error.value.exit_code == 1
    assert "delete iam-role/third: x" not in progress(reporter)


def test_noop_actions_run_nothing_and_cannot_carry_steps(ctx):
    plan = Plan("t", [noop("iam-role/a", "up to date")])

    assert plan.is_noop
    assert Executor(ctx).execute(plan).calls == 0
    with pytest.raises(ValueError, match="noop action cannot have steps"):
        Action("iam-role/a", "noop", "x", (ApiCall("iam", "get_role", {"RoleName": "a"}),))
    with pytest.raises(ValueError, match="unknown verb"):
        Action("iam-role/a", "recreate", "x")


def test_plan_counts_and_document():
    plan = Plan("t", [
        Action("a", "create", "missing", (ApiCall("iam", "create_role", {"RoleName": "a"}),)),
        Action("b", "update", "trust differs", (ApiCall("iam", "update_assume_role_policy", {}),), {"trust": "x"}),
        noop("c"),
    ])
    other = Plan("u", [Action("d", "delete", "gone", (ApiCall("iam", "delete_role", {"RoleName": "d"}),))], {"k": 1})
    plan.extend(other)

    assert plan.counts() == {"create": 1, "update": 1, "delete": 1, "noop": 1}
    assert [a.resource for a in plan.changes] == ["a", "b", "d"]
    assert plan.known == {"k": 1}
    document = plan.to_dict()
    assert document["changes"] == 3
    assert document["actions"][1] == {"resource": "b", "action": "update", "reason": "trust differs",
                                      "steps": ["iam:update_assume_role_policy"], "details": {"trust": "x"}}
    assert document["actions"][2] == {"resource": "c", "action": "noop", "reason": "up to date"}


def test_dry_run_stops_after_the_plan(ctx):
    app = App(reporter=Reporter(stdout=io.StringIO(), stderr=io.StringIO()))
    app._ctx = ctx
    plan = Plan("t", [Action("a", "create", "missing", (ApiCall("iam", "create_role", {"RoleName": "a"}),))])

    run = run_plan(app, plan, dry_run=True)
    assert run.result is None and run.dry_run
    assert ctx.recorder.calls == []
