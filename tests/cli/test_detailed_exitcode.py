"""`--dry-run --detailed-exitcode`: 0 when nothing would change, 2 when something would, 1 for any error (Terraform's
convention), so a CI step can ask "is anything pending?" without parsing output."""

from __future__ import annotations

import json

from deeplens_cli.errors import EXIT_CHANGES_PENDING

BUCKET = "deeplens-detailed-exitcode"


def test_pending_changes_exit_2_and_change_nothing(aws, run_cli, recorded_aws):
    result = run_cli("register-roles", "--dry-run", "--detailed-exitcode", "--bucket", BUCKET)

    assert result.exit_code == EXIT_CHANGES_PENDING == 2, result.stderr
    assert "create" in result.stdout
    assert recorded_aws.mutating == []


def test_nothing_pending_exits_0(aws, run_cli):
    applied = run_cli("register-roles", "--bucket", BUCKET, "--no-save")
    assert applied.exit_code == 0, applied.stderr

    again = run_cli("register-roles", "--dry-run", "--detailed-exitcode", "--bucket", BUCKET)

    assert again.exit_code == 0, again.stderr
    assert all(line.startswith("noop\t") for line in again.stdout.splitlines())


def test_without_the_flag_a_dry_run_with_changes_exits_0(aws, run_cli):
    assert run_cli("register-roles", "--dry-run", "--bucket", BUCKET).exit_code == 0


def test_json_output_still_prints_the_plan_document(aws, run_cli):
    result = run_cli("--output", "json", "register-roles", "--dry-run", "--detailed-exitcode", "--bucket", BUCKET)

    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["dry_run"] is True and document["plan"]["changes"] == 8


def test_an_error_exits_1_not_2_so_2_always_means_changes(aws, run_cli):
    missing_setting = run_cli("register-roles", "--dry-run", "--detailed-exitcode")  # exit 2 without the flag
    usage = run_cli("deploy", "--dry-run", "--detailed-exitcode", "--timeout", "soon")

    assert missing_setting.exit_code == 1
    assert "missing required setting 'bucket'" in missing_setting.stderr
    assert usage.exit_code == 1
    assert run_cli("register-roles", "--dry-run").exit_code == 2, "without the flag the documented 2 stays"


def test_the_flag_needs_dry_run(aws, run_cli, recorded_aws):
    result = run_cli("register-roles", "--detailed-exitcode", "--bucket", BUCKET)

    assert result.exit_code == 1
    assert "--detailed-exitcode needs --dry-run" in result.stderr
    assert recorded_aws.mutating == []


def test_every_command_with_dry_run_has_the_flag():
    from deeplens_cli.cli import cli

    for name, command in cli.commands.items():
        spellings = {spelling for param in command.params for spelling in param.opts}
        if "--dry-run" in spellings:
            assert "--detailed-exitcode" in spellings, name
