"""Global options go before or after the command, as the AWS CLI's do, with one precedence: flags > environment >
config file, and a flag typed after the command wins over one typed before it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

BUCKET = "deeplens-global-options"


def region_used(recorded_aws) -> str:
    assert recorded_aws.contexts, "the command built no AWS context"
    return recorded_aws.contexts[-1].region


@pytest.mark.parametrize("args", [
    ("--region", "eu-west-1", "--output", "json", "devices"),
    ("devices", "--region", "eu-west-1", "--output", "json"),
    ("--output", "json", "devices", "--region", "eu-west-1"),
], ids=["before", "after", "mixed"])
def test_global_options_work_before_and_after_the_command(aws, run_cli, recorded_aws, args):
    result = run_cli(*args)

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["devices"] == []
    assert region_used(recorded_aws) == "eu-west-1"


def test_a_flag_after_the_command_wins_over_the_same_flag_before_it(aws, run_cli, recorded_aws):
    result = run_cli("--region", "us-west-2", "--output", "text", "devices", "--region", "eu-west-1",
                     "--output", "json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["devices"] == []
    assert region_used(recorded_aws) == "eu-west-1"


@pytest.mark.parametrize("position", ["before", "after"])
def test_precedence_is_flag_then_environment_then_file_in_either_position(aws, run_cli, recorded_aws, position):
    Path("deeplens.yaml").write_text("region: ap-south-1\n")

    from_file = run_cli("--output", "json", "devices")
    assert from_file.exit_code == 0, from_file.stderr
    assert region_used(recorded_aws) == "ap-south-1"

    from_env = run_cli("--output", "json", "devices", env={"DEEPLENS_REGION": "eu-central-1"})
    assert from_env.exit_code == 0, from_env.stderr
    assert region_used(recorded_aws) == "eu-central-1"

    flag = ("--region", "eu-west-1")
    args = (*flag, "--output", "json", "devices") if position == "before" else ("--output", "json", "devices", *flag)
    from_flag = run_cli(*args)
    assert from_flag.exit_code == 0, from_flag.stderr
    assert region_used(recorded_aws) == "eu-west-1"


def test_config_after_the_command_wins_over_the_environment_variable(run_cli):
    result = run_cli("init", "--bucket", BUCKET, "--config", "after.yaml", env={"DEEPLENS_CONFIG": "from-env.yaml"})

    assert result.exit_code == 0, result.stderr
    assert Path("after.yaml").is_file() and not Path("from-env.yaml").exists()


def test_an_environment_variable_does_not_undo_a_flag_given_before_the_command(run_cli):
    """The command re-reads only what was typed after it: DEEPLENS_CONFIG must not override `--config` before it."""
    result = run_cli("--config", "before.yaml", "init", "--bucket", BUCKET, env={"DEEPLENS_CONFIG": "from-env.yaml"})

    assert result.exit_code == 0, result.stderr
    assert Path("before.yaml").is_file() and not Path("from-env.yaml").exists()


def test_a_command_keeps_its_own_option_with_a_global_spelling(run_cli):
    """`init --region` is the region to record in the file, not a global option."""
    result = run_cli("init", "--region", "eu-west-1", "--output", "json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["region"] == "eu-west-1"
    assert "region: eu-west-1" in Path("deeplens.yaml").read_text()


def test_the_output_format_can_come_from_the_environment(run_cli):
    result = run_cli("init", "--bucket", BUCKET, env={"DEEPLENS_OUTPUT": "json"})

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["bucket"] == BUCKET


def test_verbose_after_the_command_prints_the_traceback(aws, run_cli):
    quiet = run_cli("register-roles")
    verbose = run_cli("register-roles", "-v")

    assert quiet.exit_code == verbose.exit_code == 2
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in verbose.stderr and "missing required setting 'bucket'" in verbose.stderr


def test_a_usage_error_after_the_command_is_one_line_with_exit_2(run_cli):
    result = run_cli("devices", "--output", "yaml")

    assert result.exit_code == 2
    assert "'yaml' is not one of 'json', 'table', 'text'" in result.stderr


def test_every_command_accepts_the_global_options_after_its_name():
    from deeplens_cli.cli import cli
    from deeplens_cli.cli.cli_options import GLOBAL_OPTIONS

    spellings = {decl for option in GLOBAL_OPTIONS for decl in option.decls}
    for name, command in cli.commands.items():
        own = {spelling for param in command.params for spelling in (*param.opts, *param.secondary_opts)}
        missing = spellings - own
        assert not missing, f"{name} does not accept {sorted(missing)} after its name"


def test_subcommand_help_lists_the_global_options(run_cli):
    result = run_cli("status", "--help")

    assert result.exit_code == 0
    for spelling in ("--profile", "--region", "--endpoint-url", "--output", "--query", "--config", "--verbose"):
        assert spelling in result.stdout


def test_no_arguments_at_all_shows_the_usage_not_a_crash(run_cli):
    result = run_cli()

    assert result.exit_code == 2
    assert "Usage: deeplens-cli" in result.stdout + result.stderr
    assert "unexpected error" not in result.stderr and "Traceback" not in result.stderr


def test_a_usage_error_is_a_json_document_when_the_environment_asks_for_json(run_cli):
    result = run_cli("deploy", "--timeout", "soon", env={"DEEPLENS_OUTPUT": "json"})

    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "usage"
