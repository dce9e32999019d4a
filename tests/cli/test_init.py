"""`deeplens-cli init` writes a commented deeplens.yaml that later commands read; it never replaces a file without
--force. `register-roles --bucket X --save` records the bucket so `deploy` needs no flag afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from deeplens_cli.settings.config import load_settings

BUCKET = "deeplens-init-face-crops"


def test_init_writes_a_commented_file_that_later_commands_read(run_cli, tmp_path):
    result = run_cli("init", "--bucket", BUCKET, "--region", "eu-west-1", "--profile", "work")

    assert result.exit_code == 0, result.stderr
    text = Path("deeplens.yaml").read_text()
    assert text.startswith("# deeplens-cli configuration")
    assert "# env: DEEPLENS_BUCKET" in text  # each key keeps its sentence and variable
    settings = load_settings(tmp_path / "deeplens.yaml", environ={})
    assert (settings["bucket"], settings["region"], settings["profile"]) == (BUCKET, "eu-west-1", "work")


def test_init_without_values_leaves_the_keys_commented_and_points_at_the_shipped_example(run_cli):
    result = run_cli("init")

    assert result.exit_code == 0, result.stderr
    text = Path("deeplens.yaml").read_text()
    assert yaml.safe_load(text) is None  # every key commented out: the defaults apply
    example = text.split("meaning: ", 1)[1].splitlines()[0]
    assert Path(example).is_file() and Path(example).name == "config.example.yaml"
    assert "set bucket" in result.stdout


def test_init_never_overwrites_without_force(run_cli):
    Path("deeplens.yaml").write_text("bucket: mine-and-precious\n")

    refused = run_cli("init", "--bucket", BUCKET)
    assert refused.exit_code == 2
    assert refused.stderr.strip().endswith(
        "error: deeplens.yaml already exists (hint: edit it, or pass --force to replace it)"
    )
    assert Path("deeplens.yaml").read_text() == "bucket: mine-and-precious\n"

    forced = run_cli("init", "--bucket", BUCKET, "--force")
    assert forced.exit_code == 0, forced.stderr
    assert f"bucket: {BUCKET}" in Path("deeplens.yaml").read_text()


def test_init_validates_before_writing_and_leaves_nothing_behind(run_cli, tmp_path):
    result = run_cli("init", "--bucket", "My_Crops")

    assert result.exit_code == 2
    assert "setting 'bucket'" in result.stderr and "My_Crops" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no deeplens.yaml, no temporary file


def test_init_honours_config_and_answers_in_json(run_cli):
    result = run_cli("--config", "site.yaml", "--output", "json", "init", "--bucket", BUCKET)

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["config"] == "site.yaml"
    assert load_settings("site.yaml", environ={})["bucket"] == BUCKET


def test_register_roles_save_records_the_bucket_so_later_commands_need_no_flag(aws, run_cli):
    Path("deeplens.yaml").write_text("# my settings\nregion: us-east-1\n")

    result = run_cli("register-roles", "--bucket", BUCKET, "--save")

    assert result.exit_code == 0, result.stderr
    text = Path("deeplens.yaml").read_text()
    assert text.startswith("# my settings\nregion: us-east-1\n")  # the user's lines and comments are kept
    assert load_settings("deeplens.yaml", environ={})["bucket"] == BUCKET
    assert f"recorded bucket {BUCKET} in deeplens.yaml" in result.stderr
    again = run_cli("register-roles", "--dry-run")  # no --bucket: read from the file
    assert again.exit_code == 0, again.stderr


def test_register_roles_in_a_script_gives_a_tip_instead_of_a_prompt(aws, run_cli):
    result = run_cli("register-roles", "--bucket", BUCKET)

    assert result.exit_code == 0, result.stderr
    assert not Path("deeplens.yaml").exists()
    assert "tip: pass --save to record bucket" in result.stderr


def test_register_roles_save_replaces_the_commented_bucket_line_init_wrote(aws, run_cli):
    run_cli("init", "--region", "us-east-1")

    result = run_cli("register-roles", "--bucket", BUCKET, "--save")

    assert result.exit_code == 0, result.stderr
    text = Path("deeplens.yaml").read_text()
    assert text.count("bucket:") == 1 and f"\nbucket: {BUCKET}\n" in text
