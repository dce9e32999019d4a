"""README's "Use in CI" workflow is a real one: valid YAML, OIDC through aws-actions/configure-aws-credentials, valid
bash in every step, and every deeplens-cli command line in it is accepted by the CLI as it is today."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

README = Path(__file__).resolve().parents[2] / "README.md"


def workflow() -> dict:
    section = README.read_text(encoding="utf-8").split("## Use in CI", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, "the Use in CI section has no yaml block"
    return yaml.safe_load(block.group(1))


def steps() -> list[dict]:
    return workflow()["jobs"]["deploy"]["steps"]


def deeplens_commands() -> list[list[str]]:
    commands = []
    for step in steps():
        for line in step.get("run", "").splitlines():
            if "deeplens-cli " in line:
                words = shlex.split(line.split(">", 1)[0].replace('"$DEVICE"', "Lobby-Cam"))
                commands.append(words[words.index("deeplens-cli") + 1:])
    return commands


def test_the_workflow_assumes_a_role_through_oidc():
    flow = workflow()
    assert flow["permissions"]["id-token"] == "write"
    credentials = [s for s in steps() if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
    assert len(credentials) == 1 and credentials[0]["with"]["role-to-assume"].startswith("arn:aws:iam::")
    assert "aws-access-key-id" not in credentials[0]["with"], "no stored keys"


def test_the_workflow_deploys_with_json_output_behind_the_dry_run_gate():
    commands = deeplens_commands()
    gate = [c for c in commands if "--detailed-exitcode" in c]
    deploys = [c for c in commands if c[0] == "deploy" and "--dry-run" not in c]
    assert gate and "--dry-run" in gate[0] and gate[0][0] == "deploy"
    assert deploys and all("--output" in c and c[c.index("--output") + 1] == "json" for c in deploys)
    plan_step = next(s for s in steps() if s.get("id") == "plan")
    assert '0) echo "changes=false"' in plan_step["run"] and '2) echo "changes=true"' in plan_step["run"]


@pytest.mark.parametrize("index", range(3))
def test_every_deeplens_cli_line_is_accepted_by_the_cli(run_cli, index):
    commands = deeplens_commands()
    assert len(commands) == 3, commands  # doctor, the gate, the deploy
    result = run_cli(*commands[index], "--help")  # parses every option first: an unknown one is a usage error
    assert result.exit_code == 0, (commands[index], result.stderr)


def test_every_run_block_is_valid_bash():
    bash = shutil.which("bash") or pytest.fail("bash is needed")
    for step in steps():
        if "run" in step:
            checked = subprocess.run([bash, "-n"], input=step["run"], capture_output=True, text=True, timeout=30)
            assert checked.returncode == 0, (step.get("name"), checked.stderr)
