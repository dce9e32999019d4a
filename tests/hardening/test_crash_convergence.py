"""Crash convergence: a command interrupted after any of its mutating AWS calls, then simply run again, leaves
the account exactly as one uninterrupted run does - nothing missing, nothing duplicated.

For `register-roles`, `register-device` (Greengrass V1 and V2) and `deploy`, an uninterrupted run in a fresh
emulated account first counts the command's mutating calls (M) and takes a snapshot of the account. Then, for
every N in 1..M, in a fresh account: the command runs with a Ctrl-C (KeyboardInterrupt) raised at its Nth
mutating call, the same command runs again, and the account snapshot must equal the clean one
(account_snapshot.py: names, counts and states of roles, policies, buckets, things, certificates, Lambda
versions, Greengrass groups, definitions, versions and deployments).

Two moments of interruption, because they leave different states behind:

* before - the Nth call never reaches AWS (Ctrl-C between two calls);
* after  - the Nth call was carried out by AWS but its answer is lost (Ctrl-C while the response was on its
  way). This is the harder case: e.g. a certificate whose private key existed only in the lost answer.

The interruption is a botocore `before-call`/`after-call` hook registered on the session of every AwsContext
the CLI builds; it counts with `deeplens_cli.aws.is_mutating`, the same rule as the call recorder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from account_snapshot import account_snapshot, differences

BUCKET = "deeplens-hardening-crops"
DEVICE = "Cam1"
ENV = {"DEEPLENS_BUCKET": BUCKET}


# ---------------------------------------------------------------------------------------------- machinery


@dataclass
class Interrupter:
    """Raises KeyboardInterrupt at the `at`-th mutating call (`when` = before it is sent / after it returned)."""

    at: int | None = None
    when: str = "before"
    seen: list[str] = field(default_factory=list)
    fired: str | None = None

    def hook(self, model: Any = None, event_name: str = "", **_: Any) -> None:
        from deeplens_cli.aws import is_mutating

        if model is None or not is_mutating(model.name) or not event_name.startswith(self.when):
            return
        self.seen.append(f"{model.service_model.service_name}:{model.name}")
        if self.at is not None and len(self.seen) == self.at and self.fired is None:
            self.fired = self.seen[-1]
            raise KeyboardInterrupt


@pytest.fixture
def interrupter(monkeypatch: pytest.MonkeyPatch) -> Interrupter:
    """Every AwsContext the CLI makes reports its calls to one Interrupter; waits take no time."""
    import deeplens_cli.aws as aws_module

    current = Interrupter()
    real_make_context = aws_module.make_context

    def make_context(settings: Any, sleep: Callable[[float], None] | None = None) -> Any:
        ctx = real_make_context(settings, sleep=lambda seconds: None)
        ctx.session.events.register("before-call.*.*", lambda **kw: current.hook(**kw))
        ctx.session.events.register("after-call.*.*", lambda **kw: current.hook(**kw))
        return ctx

    monkeypatch.setattr(aws_module, "make_context", make_context)
    return current


@pytest.fixture
def lean_managed_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load only the AWS managed policies the DeepLens roles attach: each fresh account then costs milliseconds
    instead of ~0.7 s for all ~1,500 (this test makes dozens of accounts)."""
    import moto.iam.models as iam_models

    from deeplens_cli.roles import S3_FULL_ACCESS, desired_roles
    from conftest import make_settings

    wanted = {arn.rsplit("/", 1)[-1] for spec in desired_roles(make_settings(), "us-east-1")
              for arn in spec.managed_policies} | {S3_FULL_ACCESS}
    everything = json.loads(iam_models.aws_managed_policies_data)
    monkeypatch.setattr(iam_models, "aws_managed_policies_data",
                        json.dumps({name: everything[name] for name in wanted}))


@pytest.fixture
def shared_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """One botocore model loader for every session of the test: each CLI run builds a new boto3 Session, and
    parsing the IoT, Greengrass and Lambda models again for each costs ~0.4 s a run. Only parsing is shared."""
    import botocore.session

    loaders: dict[Any, Any] = {}
    real = botocore.session.create_loader

    def shared(search_path_string: Any = None) -> Any:
        if search_path_string not in loaders:
            loaders[search_path_string] = real(search_path_string)
        return loaders[search_path_string]

    monkeypatch.setattr(botocore.session, "create_loader", shared)


@pytest.fixture
def fresh_account(shared_models: None, aws_env: dict[str, str], lean_managed_policies: None) -> Callable[[], Any]:
    """`with fresh_account(): ...` - a new, empty emulated account (moto resets when the mock starts)."""
    from moto import mock_aws

    return lambda: mock_aws(config={"iam": {"load_aws_managed_policies": True}})


@dataclass(frozen=True)
class Scenario:
    name: str
    setup: tuple[tuple[str, ...], ...]  # commands run (uninterrupted) before the one under test
    command: tuple[str, ...]


def register_device_args(target: str, out: str) -> tuple[str, ...]:
    return ("register-device", "--name", DEVICE, "--greengrass", target, "--out", out)


SCENARIOS = {
    "register-roles": Scenario("register-roles", (), ("register-roles",)),
    "register-device-v1": Scenario("register-device-v1", (("register-roles",),), register_device_args("v1", "bundle")),
    "register-device-v2": Scenario("register-device-v2", (("register-roles",),), register_device_args("v2", "bundle")),
    "deploy-v1": Scenario("deploy-v1", (("register-roles",), register_device_args("v1", "bundle")),
                          ("deploy", "--device", DEVICE, "--no-wait")),
}


class Runner:
    def __init__(self, run_cli: Callable[..., Any], interrupter: Interrupter, fresh_account: Callable[[], Any],
                 tmp_path: Path) -> None:
        self.run_cli, self.interrupter, self.fresh_account, self.tmp_path = run_cli, interrupter, fresh_account, tmp_path

    def run(self, args: tuple[str, ...]) -> Any:
        return self.run_cli(*args, env=ENV)

    def clean(self, scenario: Scenario, workdir: Path) -> tuple[list[str], dict[str, Any]]:
        """An uninterrupted run: the mutating calls of the command under test, and the account afterwards."""
        with self.fresh_account():
            self._setup(scenario, workdir)
            self.interrupter.at, self.interrupter.seen, self.interrupter.fired = None, [], None
            result = self.run(scenario.command)
            assert result.exit_code == 0, result.stderr
            return list(self.interrupter.seen), account_snapshot()

    def interrupted_then_rerun(self, scenario: Scenario, at: int, when: str, workdir: Path) -> dict[str, Any]:
        with self.fresh_account():
            self._setup(scenario, workdir)
            self.interrupter.at, self.interrupter.when, self.interrupter.seen, self.interrupter.fired = at, when, [], None
            stopped = self.run(scenario.command)
            assert self.interrupter.fired, f"the command made fewer than {at} mutating calls"
            assert stopped.exit_code == 130, stopped.stderr
            self.interrupter.at = None
            again = self.run(scenario.command)
            assert again.exit_code == 0, (f"re-run after a Ctrl-C {when} {self.interrupter.fired} (call {at}) "
                                          f"failed: {again.stderr.strip().splitlines()[-1:]}")
            return {"snapshot": account_snapshot(), "rerun": again}

    def _setup(self, scenario: Scenario, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.run_cli.__self__ if False else None  # noqa: B018 - keeps linters quiet about unused attribute
        import os

        os.chdir(workdir)
        self.interrupter.at = None
        for args in scenario.setup:
            result = self.run(args)
            assert result.exit_code == 0, result.stderr


@pytest.fixture
def runner(run_cli: Callable[..., Any], interrupter: Interrupter, fresh_account: Callable[[], Any],
           tmp_path: Path) -> Runner:
    return Runner(run_cli, interrupter, fresh_account, tmp_path)


def converge(runner: Runner, tmp_path: Path, scenario: Scenario, when: str) -> list[str]:
    calls, expected = runner.clean(scenario, tmp_path / "clean")
    assert calls, "the command made no mutating call: nothing to interrupt"
    failures = []
    for at in range(1, len(calls) + 1):
        try:
            outcome = runner.interrupted_then_rerun(scenario, at, when, tmp_path / f"{when}-{at}")
        except AssertionError as exc:
            failures.append(f"Ctrl-C {when} call {at} ({calls[at - 1]}): {str(exc).splitlines()[0]}")
            continue
        found = differences(outcome["snapshot"], expected)
        if found:
            failures.append(f"Ctrl-C {when} call {at} ({calls[at - 1]}): " + "; ".join(found))
    return failures


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_interrupted_then_rerun_equals_one_clean_run(runner: Runner, tmp_path: Path, name: str, when: str) -> None:
    failures = converge(runner, tmp_path, SCENARIOS[name], when)
    assert not failures, "\n".join(failures)
