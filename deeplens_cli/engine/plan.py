"""The plan model: ordered Actions; the planner only reads, one Executor (executor.py) performs every mutating
call.

The pipeline (after aws/chalice's deployer): desired state -> local build -> plan -> execute -> report.

* A planner (in roles.py, bucket.py, targets/...) compares desired state with what it reads from AWS
  (describe/get/list only) and returns a `Plan`: `Action`s, each with a verb (create/update/delete/noop), the
  reason, and the `steps` that would make it so. Steps are data: `ApiCall(service, operation, params)`, a
  `Wait` on a botocore waiter, or a `LocalStep` for local side effects (writing a device bundle).
* `--dry-run` is "stop after plan": render it and exit. Nothing in a plan has run.
* `Executor.execute(plan)` (executor.py) is the only code that performs mutating calls. Values produced by one step
  and needed by a later one (a certificate ARN, a new version id) flow through named variables:
  `outputs={"certificate_arn": "certificateArn"}` stores them, `Ref("certificate_arn")` in later params reads them.

A plan whose actions are all `noop` has no steps, so re-running a command whose desired state already holds
makes zero mutating calls by construction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Union

from deeplens_cli.errors import DeeplensError

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
        return (
            not self.message_pattern
            or re.search(self.message_pattern, str(error.get("Message", "")), re.I) is not None
        )


@dataclass(frozen=True)
class AlreadyExists:
    """How a create tells its own lost answer from someone else's resource, after an "already exists" error.

    When the answer to a create is lost on the way back (a connection reset after the request reached AWS),
    botocore retries the call and the retry finds what the first attempt made: EntityAlreadyExists,
    ResourceAlreadyExistsException, S3's 412 for If-None-Match. When the error came from a retry, the executor
    calls `read(ctx, params)` with the call's resolved parameters: it reads what exists (get/describe only) and
    returns a stand-in for the create's answer (the call's `outputs` are taken from it) when it is what the call
    asked for, or None when it differs. An "already exists" at the first attempt, or one that differs, is an
    error as before: the name is taken by something else.
    """

    codes: tuple[str, ...]
    read: Callable[[Any, Mapping[str, Any]], Mapping[str, Any] | None]


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
    exists: AlreadyExists | None = None  # a create: how to count its own lost answer as done (see AlreadyExists)

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
