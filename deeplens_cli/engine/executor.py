"""The one place in deeplens-cli that performs mutating AWS calls: `Executor.execute(plan)`.

It runs each changing action's steps in order, passes values from one step to the next through plan variables
(`Ref`), retries a call within its `Retry` budget, and translates a failure into one line that says what was
already applied. Progress goes to a callback (`progress`), so this module knows nothing about how it is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from deeplens_cli.aws import translate_error
from deeplens_cli.engine.plan import Action, ApiCall, LocalStep, Plan, Ref, Step, Wait
from deeplens_cli.errors import DeeplensError

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext


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

    def __init__(self, ctx: AwsContext, progress: Callable[[str], None] | None = None,
                 on_action: Callable[[Action], None] | None = None) -> None:
        self.ctx = ctx
        self.progress = progress
        self.on_action = on_action  # told when each action starts, instead of a progress line (the plan says it)

    def execute(self, plan: Plan) -> ExecutionResult:
        variables: dict[str, Any] = dict(plan.known)
        completed: list[Action] = []
        calls = 0
        for action in plan.changes:
            if self.on_action is not None:
                self.on_action(action)
            else:
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
        if self.progress is not None:
            self.progress(message)

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
                found = self._created_by_a_retry(call, exc, params)
                if found is not None:
                    response = found
                    break
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

    def _created_by_a_retry(self, call: ApiCall, exc: Any, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """What the create made, when its "already exists" came from botocore's retry of a lost answer and what
        exists is what the call asked for; None otherwise (the error stands)."""
        if call.exists is None or exc.response.get("Error", {}).get("Code") not in call.exists.codes:
            return None
        if not exc.response.get("ResponseMetadata", {}).get("RetryAttempts"):
            return None  # answered at the first attempt: the name was taken before this call
        found = call.exists.read(self.ctx, params)
        if found is not None:
            self._say(f"{call.describe()}: its answer was lost and botocore asked again; what the first attempt "
                      "created is what was asked for")
        return found
