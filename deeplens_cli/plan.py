"""Plan = ordered Actions; the planner only reads, one Executor performs every mutating call.

The pipeline (after aws/chalice's deployer): desired state -> local build -> plan -> execute -> report.

* A planner (in roles.py, bucket.py, targets/...) compares desired state with what it reads from AWS
  (describe/get/list only) and returns a `Plan`: `Action`s, each with a verb (create/update/delete/noop), the
  reason, and the `steps` that would make it so. Steps are data: `ApiCall(service, operation, params)`, a
  `Wait` on a botocore waiter, or a `LocalStep` for local side effects (writing a device bundle).
* `--dry-run` is "stop after plan": render it and exit. Nothing in a plan has run.
* `Executor.execute(plan)` is the only code that performs mutating calls. Values produced by one step and needed
  by a later one (a certificate ARN, a new version id) flow through named variables: `outputs={"certificate_arn":
  "certificateArn"}` stores them, `Ref("certificate_arn")` in later params reads them.

A plan whose actions are all `noop` has no steps, so re-running a command whose desired state already holds
makes zero mutating calls by construction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Union

from deeplens_cli.errors import DeeplensError

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.output import Reporter

Verb = Literal["create", "update", "delete", "noop"]
VERBS: tuple[Verb, ...] = ("create", "update", "delete", "noop")


@dataclass(frozen=True)
class Ref:
    """A value produced by an earlier step of the same plan (or seeded by the planner), read at execution time."""

    name: str
    path: str = ""  # optional dotted path into the stored value

    def __repr__(self) -> str:
        return f"<{self.name}{'.' + self.path if self.path else ''}>"


@dataclass(frozen=True)
class Retry:
    """Retry one call on a transient error that botocore's retry modes do not cover (IAM eventual consistency).

    Chalice, Terraform and aws-greengrass-provisioner all retry "role cannot be assumed by Lambda" after a role
    was just created; the budget is bounded and every wait is reported so the command never looks hung.
    """

    codes: tuple[str, ...]
    message_pattern: str = ""
    budget_s: float = 150.0
    first_delay_s: float = 2.0
    max_delay_s: float = 15.0
    waiting_for: str = "IAM changes to propagate"

    def matches(self, exc: BaseException) -> bool:
        response = getattr(exc, "response", None) or {}
        error = response.get("Error", {}) if isinstance(response, dict) else {}
        if error.get("Code") not in self.codes:
            return False
        return not self.message_pattern or re.search(self.message_pattern, str(error.get("Message", "")), re.I) is not None


@dataclass(frozen=True)
class ApiCall:
    """One AWS API call: `ctx.client(service).<operation>(**params)`."""

    service: str
    operation: str  # boto3 method name, e.g. "create_role"
    params: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict)  # variable -> dotted path in the response ("" = all)
    retry: Retry | None = None
    ignore_codes: tuple[str, ...] = ()  # error codes that mean "already in the desired state" (e.g. NotFound on delete)
    # A planner that knows what one particular failure means (and the way out) says so here; None = not that one.
    explain: Callable[[BaseException], DeeplensError | None] | None = None

    def describe(self) -> str:
        return f"{self.service}:{self.operation}"


@dataclass(frozen=True)
class Wait:
    """Wait on a botocore waiter (e.g. lambda function_updated_v2) before the next step."""

    service: str
    waiter: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"wait {self.service}:{self.waiter}"


@dataclass(frozen=True)
class LocalStep:
    """A local side effect (no AWS call), e.g. writing the device bundle. `run(variables)` may return new variables."""

    description: str
    run: Callable[[dict[str, Any]], Mapping[str, Any] | None]

    def describe(self) -> str:
        return self.description


Step = Union[ApiCall, Wait, LocalStep]


@dataclass(frozen=True)
class Action:
    """What should happen to one resource, and why."""

    resource: str  # "iam-role/AWSDeepLensServiceRole"
    verb: Verb
    reason: str
    steps: tuple[Step, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)  # differences found, ids; shown in JSON output

    def __post_init__(self) -> None:
        if self.verb not in VERBS:
            raise ValueError(f"unknown verb {self.verb}")
        if self.verb == "noop" and self.steps:
            raise ValueError(f"{self.resource}: a noop action cannot have steps")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"resource": self.resource, "action": self.verb, "reason": self.reason}
        if self.steps:
            data["steps"] = [step.describe() for step in self.steps]
        if self.details:
            data["details"] = dict(self.details)
        return data


def noop(resource: str, reason: str = "up to date", **details: Any) -> Action:
    return Action(resource, "noop", reason, details=details)


@dataclass
class Plan:
    """An ordered list of actions plus values the planner already knows (seeded into the executor's variables)."""

    title: str
    actions: list[Action] = field(default_factory=list)
    known: dict[str, Any] = field(default_factory=dict)

    def add(self, action: Action) -> Action:
        self.actions.append(action)
        return action

    def extend(self, other: Plan) -> None:
        self.actions.extend(other.actions)
        self.known.update(other.known)

    @property
    def changes(self) -> list[Action]:
        return [a for a in self.actions if a.verb != "noop"]

    @property
    def is_noop(self) -> bool:
        return not self.changes

    def counts(self) -> dict[str, int]:
        return {verb: sum(1 for a in self.actions if a.verb == verb) for verb in VERBS}

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "changes": len(self.changes), "counts": self.counts(),
                "actions": [a.to_dict() for a in self.actions]}


@dataclass
class ExecutionResult:
    plan: Plan
    variables: dict[str, Any]
    completed: list[Action]
    calls: int

    def to_dict(self) -> dict[str, Any]:
        return {"applied": [a.to_dict() for a in self.completed], "calls": self.calls}


class ExecutionError(DeeplensError):
    """A step failed; carries what was already done so the report can say so (and a re-run converges)."""

    def __init__(self, cause: DeeplensError, action: Action, completed: list[Action]) -> None:
        done = f"; {len(completed)} earlier change(s) were applied, re-running converges" if completed else ""
        super().__init__(f"{action.resource}: {cause.message}{done}", cause.hint)
        self.exit_code = cause.exit_code
        self.cause = cause
        self.action = action
        self.completed = completed


def resolve(value: Any, variables: Mapping[str, Any]) -> Any:
    """Replace Ref placeholders (also nested in dicts/lists) by their values."""
    if isinstance(value, Ref):
        if value.name not in variables:
            raise KeyError(f"plan variable {value.name} was never produced")
        return dig(variables[value.name], value.path)
    if isinstance(value, Mapping):
        return {k: resolve(v, variables) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(resolve(v, variables) for v in value)
    return value


def dig(value: Any, path: str) -> Any:
    for part in filter(None, path.split(".")):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


class Executor:
    """Runs a plan's steps in order. The one place in deeplens-cli that performs mutating AWS calls."""

    def __init__(self, ctx: AwsContext, reporter: Reporter | None = None) -> None:
        self.ctx = ctx
        self.reporter = reporter

    def execute(self, plan: Plan) -> ExecutionResult:
        from deeplens_cli.aws import translate_error

        variables: dict[str, Any] = dict(plan.known)
        completed: list[Action] = []
        calls = 0
        for action in plan.changes:
            self._say(f"{action.verb} {action.resource}: {action.reason}")
            for step in action.steps:
                try:
                    calls += self._run_step(step, variables)
                except Exception as exc:  # noqa: BLE001 - translated below, re-raised otherwise
                    explained = step.explain(exc) if isinstance(step, ApiCall) and step.explain else None
                    translated = explained or translate_error(exc, doing=step.describe())
                    if translated is None:
                        raise
                    raise ExecutionError(translated, action, completed) from exc
            completed.append(action)
        return ExecutionResult(plan, variables, completed, calls)

    def _say(self, message: str) -> None:
        if self.reporter is not None:
            self.reporter.progress(message)

    def _run_step(self, step: Step, variables: dict[str, Any]) -> int:
        if isinstance(step, LocalStep):
            produced = step.run(variables)
            if produced:
                variables.update(produced)
            return 0
        if isinstance(step, Wait):
            waiter = self.ctx.client(step.service).get_waiter(step.waiter)
            waiter.wait(**resolve(dict(step.params), variables))
            return 0
        return self._call(step, variables)

    def _call(self, call: ApiCall, variables: dict[str, Any]) -> int:
        from botocore.exceptions import ClientError

        method = getattr(self.ctx.client(call.service), call.operation)
        params = resolve(dict(call.params), variables)
        delay = call.retry.first_delay_s if call.retry else 0.0
        slept = 0.0  # the retry budget counts time spent waiting, so an injected sleep behaves like a real one
        attempts = 0
        while True:
            attempts += 1
            try:
                response = method(**params)
                break
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code in call.ignore_codes:
                    return attempts
                if call.retry is None or not call.retry.matches(exc) or slept + delay > call.retry.budget_s:
                    raise
                self._say(f"waiting for {call.retry.waiting_for} ({call.describe()}: {code}; "
                          f"retry in {delay:.0f}s, {slept:.0f}s of {call.retry.budget_s:.0f}s spent)")
                self.ctx.sleep(delay)
                slept += delay
                delay = min(delay * 2, call.retry.max_delay_s)
        for name, path in call.outputs.items():
            variables[name] = dig(response, path)
        return attempts
