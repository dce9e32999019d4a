"""Crash convergence: a command interrupted at any of its mutating AWS calls, then simply run again, leaves the
account as one uninterrupted run does - nothing missing, nothing duplicated.

For `register-roles`, `register-device` (Greengrass V1 and V2) and `deploy` (V1), an uninterrupted run in a
fresh emulated account first lists the command's mutating calls (M) and takes a snapshot of the account. Then,
for each interruption point, in a fresh account: the command runs and gets a Ctrl-C (KeyboardInterrupt) at that
point, the same command runs again, and the account snapshot must equal the clean one (account_snapshot.py:
names, counts and states of roles, policies, buckets, things, certificates, Lambda versions, Greengrass
groups, definitions, group versions and deployments).

Interruption points:

* before call N, for every N in 1..M - the Nth call never reaches AWS (Ctrl-C between two calls);
* after call N - AWS carried the call out but its answer was lost (Ctrl-C while the response was on its way).
  For the account this is the same as "before call N+1", except where a local step (writing the device
  bundle from the new certificate's answer) runs in between, and after the last call. Those are the points
  tested, found from the clean run's step sequence, so the test needs no list of "interesting" calls.

No known limit: the device's private key is generated here and written (0600) before
CreateCertificateFromCsr, so when that answer is lost the key is on disk and the re-run finds the certificate
issued for it (registration.certificate_for_key) - the account ends exactly as after a clean run. (With
CreateKeysAndCertificate, the key existed only in the lost answer and an ACTIVE orphan certificate stayed.)

The interruption is a botocore `before-call`/`after-call` hook on the session of every AwsContext the CLI
builds; it counts with `deeplens_cli.aws.is_mutating`, the rule the call recorder uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.support.account_snapshot import account_snapshot, differences

BUCKET = "deeplens-hardening-crops"
DEVICE = "Cam1"
ENV = {"DEEPLENS_BUCKET": BUCKET}


# ---------------------------------------------------------------------------------------------- machinery


@dataclass
class Interrupter:
    """Counts mutating calls and raises KeyboardInterrupt `when` ("before"/"after") the `at`-th one.

    `steps` records the executor's step sequence ("call:<service:Op>" or "local") of the last run, so the
    points where an answer-lost interruption differs from the next call's before-interruption can be found.
    """

    at: int | None = None
    when: str = "before"
    seen: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    fired: str | None = None

    def arm(self, at: int | None, when: str = "before") -> None:
        self.at, self.when, self.seen, self.steps, self.fired = at, when, [], [], None

    def hook(self, model: Any = None, event_name: str = "", **_: Any) -> None:
        from deeplens_cli.aws import is_mutating

        if model is None or not is_mutating(model.name):
            return
        name = f"{model.service_model.service_name}:{model.name}"
        if event_name.startswith("before-call"):
            self.seen.append(name)
            self.steps.append("call:" + name)
        if event_name.startswith(self.when) and self.at is not None and len(self.seen) == self.at and not self.fired:
            self.fired = name
            raise KeyboardInterrupt

    def answer_lost_points(self) -> list[int]:
        """Mutating calls (1-based) followed by a local step, and the last call."""
        points, count = [], 0
        for index, step in enumerate(self.steps):
            if step.startswith("call:"):
                count += 1
                following = self.steps[index + 1] if index + 1 < len(self.steps) else None
                if following == "local" or following is None:
                    points.append(count)
        return points


@pytest.fixture
def interrupter(monkeypatch: pytest.MonkeyPatch) -> Interrupter:
    """Every AwsContext the CLI makes reports to one Interrupter; waits take no time."""
    import deeplens_cli.aws as aws_module
    import deeplens_cli.engine.executor as executor_module
    import deeplens_cli.engine.plan as plan_module

    current = Interrupter()
    real_make_context = aws_module.make_context
    real_run_step = executor_module.Executor._run_step

    def make_context(settings: Any, sleep: Callable[[float], None] | None = None) -> Any:
        ctx = real_make_context(settings, sleep=lambda seconds: None)
        ctx.session.events.register("before-call.*.*", current.hook)
        ctx.session.events.register("after-call.*.*", current.hook)
        return ctx

    def run_step(self: Any, step: Any, variables: dict[str, Any]) -> int:
        if isinstance(step, plan_module.LocalStep):
            current.steps.append("local")
        return real_run_step(self, step, variables)

    monkeypatch.setattr(aws_module, "make_context", make_context)
    monkeypatch.setattr(executor_module.Executor, "_run_step", run_step)
    return current


@dataclass(frozen=True)
class Scenario:
    setup: tuple[tuple[str, ...], ...]  # commands run (uninterrupted) before the one under test
    command: tuple[str, ...]


def register_device(target: str) -> tuple[str, ...]:
    return ("register-device", "--name", DEVICE, "--greengrass", target, "--out", "bundle")


SCENARIOS = {
    "register-roles": Scenario((), ("register-roles",)),
    "register-device-v1": Scenario((("register-roles",),), register_device("v1")),
    "register-device-v2": Scenario((("register-roles",),), register_device("v2")),
    "deploy-v1": Scenario((("register-roles",), register_device("v1")), ("deploy", "--device", DEVICE, "--no-wait")),
}


@dataclass
class Convergence:
    """Runs a scenario clean, then interrupted-and-rerun at each point; collects every difference found."""

    run_cli: Callable[..., Any]
    interrupter: Interrupter
    monkeypatch: pytest.MonkeyPatch
    tmp_path: Path
    account: Callable[[], Any]  # a fresh, empty account each time

    def prepare(self, scenario: Scenario, workdir: str) -> None:
        folder = self.tmp_path / workdir
        folder.mkdir()
        self.monkeypatch.chdir(folder)  # the device bundle goes to ./bundle of this attempt
        self.interrupter.arm(None)
        for args in scenario.setup:
            result = self.run_cli(*args, env=ENV)
            assert result.exit_code == 0, result.stderr

    def clean(self, scenario: Scenario) -> tuple[list[str], list[int], dict[str, Any]]:
        with self.account():
            self.prepare(scenario, "clean")
            self.interrupter.arm(None)
            result = self.run_cli(*scenario.command, env=ENV)
            assert result.exit_code == 0, result.stderr
            return list(self.interrupter.seen), self.interrupter.answer_lost_points(), account_snapshot()

    def attempt(self, scenario: Scenario, at: int, when: str, expected: dict[str, Any]) -> list[str]:
        with self.account():
            self.prepare(scenario, f"{when}-{at}")
            self.interrupter.arm(at, when)
            stopped = self.run_cli(*scenario.command, env=ENV)
            call = self.interrupter.fired
            assert call, f"the command made fewer than {at} mutating calls"
            where = f"Ctrl-C {when} call {at} ({call})"
            if stopped.exit_code != 130:
                return [f"{where}: the interrupted run exited {stopped.exit_code}, not 130: {stopped.stderr[-300:]}"]
            self.interrupter.arm(None)
            again = self.run_cli(*scenario.command, env=ENV)
            if again.exit_code != 0:
                last = (again.stderr.strip().splitlines() or ["(no output)"])[-1]
                return [f"{where}: the re-run failed with exit {again.exit_code}: {last}"]
            return [f"{where}: {difference}" for difference in differences(account_snapshot(), expected)]

    def failures(self, scenario: Scenario) -> tuple[int, list[str]]:
        calls, lost_points, expected = self.clean(scenario)
        assert calls, "the command made no mutating call: nothing to interrupt"
        points = [(n, "before") for n in range(1, len(calls) + 1)] + [(n, "after") for n in lost_points]
        found: list[str] = []
        for at, when in points:
            found += self.attempt(scenario, at, when, expected)
        return len(points), found


@pytest.fixture
def convergence(run_cli: Callable[..., Any], interrupter: Interrupter, monkeypatch: pytest.MonkeyPatch,
                tmp_path: Path, fresh_account: Callable[[], Any]) -> Convergence:
    return Convergence(run_cli, interrupter, monkeypatch, tmp_path, fresh_account)


# ---------------------------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_an_interrupted_run_then_a_rerun_equals_one_clean_run(convergence: Convergence, name: str) -> None:
    tried, failures = convergence.failures(SCENARIOS[name])
    assert tried > 1
    assert not failures, f"{len(failures)} of {tried} interruption points do not converge:\n" + "\n".join(failures)


def test_interruptions_are_counted_on_mutating_calls_only(interrupter: Interrupter) -> None:
    """The hook ignores reads and fires once, at the requested call, before or after it."""
    class Model:
        def __init__(self, name: str) -> None:
            self.name = name
            self.service_model = type("ServiceModel", (), {"service_name": "iam"})()

    interrupter.arm(2, "after")
    interrupter.hook(model=Model("GetRole"), event_name="before-call.iam.GetRole")
    interrupter.hook(model=Model("CreateRole"), event_name="before-call.iam.CreateRole")
    interrupter.hook(model=Model("CreateRole"), event_name="after-call.iam.CreateRole")
    interrupter.hook(model=Model("AttachRolePolicy"), event_name="before-call.iam.AttachRolePolicy")
    with pytest.raises(KeyboardInterrupt):
        interrupter.hook(model=Model("AttachRolePolicy"), event_name="after-call.iam.AttachRolePolicy")
    assert interrupter.fired == "iam:AttachRolePolicy"
    assert interrupter.seen == ["iam:CreateRole", "iam:AttachRolePolicy"]
    interrupter.steps = ["call:a", "local", "call:b", "call:c"]
    assert interrupter.answer_lost_points() == [1, 3]


# ---------------------------------------------------------------------------------------------- network faults


@dataclass
class NetworkConvergence:
    """The same command through the fault proxy (tests/support/fault_proxy.py) on the session's moto server:
    one clean run lists the mutating operations; then, in a wiped account each time, one fault on one of them.
    botocore's retries absorb the fault, or the command fails and a plain re-run finishes the job; either way
    the account must equal the clean run's."""

    run_cli: Callable[..., Any]
    proxy: Any
    monkeypatch: pytest.MonkeyPatch
    tmp_path: Path

    def snapshot(self) -> dict[str, Any]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AWS_ENDPOINT_URL", self.proxy.upstream)  # read moto directly, not through the faults
            return account_snapshot()

    def run(self, scenario: Scenario, workdir: str) -> tuple[Any, list[str]]:
        from deeplens_cli.aws import is_mutating

        self.proxy.reset_upstream()
        folder = self.tmp_path / workdir
        folder.mkdir()
        self.monkeypatch.chdir(folder)
        env = {**ENV, "DEEPLENS_ENDPOINT_URL": None}
        for args in scenario.setup:
            assert self.run_cli("--endpoint-url", self.proxy.url, *args, env=env).exit_code == 0
        self.proxy.forwarded.clear()
        return self.run_cli("--endpoint-url", self.proxy.url, *scenario.command, env=env), [
            key for key in self.proxy.forwarded if is_mutating(key.split(":", 1)[1])]

    def failures(self, scenario: Scenario, fault: str) -> tuple[int, list[str]]:
        clean, operations = self.run(scenario, "clean")
        assert clean.exit_code == 0, clean.stderr
        expected = self.snapshot()
        found = []
        for operation in operations:
            service, name = operation.split(":", 1)
            self.proxy.clear()
            getattr(self.proxy, fault)(service, name, times=1)
            self.proxy.injected.clear()
            first, _ = self.run(scenario, f"{fault}-{name}")
            self.proxy.clear()
            where = f"{fault} on {operation}"
            assert self.proxy.injected == [(fault, operation)], where  # the fault really happened, once
            if first.exit_code != 0:
                again = self.run_cli("--endpoint-url", self.proxy.url, *scenario.command, env=ENV)
                if again.exit_code != 0:
                    found.append(
                        f"{where}: the re-run failed with exit {again.exit_code}: {again.stderr.strip()[-200:]}"
                    )
                    continue
            found += [f"{where}: {difference}" for difference in differences(self.snapshot(), expected)]
        return len(operations), found


@pytest.fixture
def network_convergence(run_cli: Callable[..., Any], fault_proxy: Any, monkeypatch: pytest.MonkeyPatch,
                        tmp_path: Path) -> NetworkConvergence:
    return NetworkConvergence(run_cli, fault_proxy, monkeypatch, tmp_path)


@pytest.mark.parametrize("fault", ["lose_answer", "reset", "throttle"])
@pytest.mark.parametrize("name", ["register-device-v1", "register-device-v2"])
def test_a_network_fault_on_any_mutating_call_converges(network_convergence: NetworkConvergence, name: str,
                                                          fault: str) -> None:
    """Lost answers (the request was carried out), resets (it was not) and throttling, one call at a time."""
    tried, failures = network_convergence.failures(SCENARIOS[name], fault)
    assert tried > 1
    assert not failures, f"{len(failures)} of {tried} faults do not converge:\n" + "\n".join(failures)
