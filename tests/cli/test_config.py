"""Settings: YAML file < environment (DEEPLENS_*) < flags, and every bad input is one line with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from deeplens_cli.errors import ConfigError
from deeplens_cli.settings.config import load_settings
from deeplens_cli.settings.settings_schema import SCHEMA, check_bucket_name


def usage_error(result) -> str:
    """The single error line of a failed run; fails the test unless it is exit 2, one line, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def config_file(tmp_path: Path):
    """Write ./deeplens.yaml (the default config path) in the test's working directory."""

    def write(text: str | bytes) -> Path:
        path = tmp_path / "deeplens.yaml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return write


# ---------------------------------------------------------------------------------------------- bad input, exit 2


def test_unknown_top_level_key_suggests_the_closest(aws_env, run_cli, config_file):
    config_file("buckt: deeplens-crops\n")

    assert usage_error(run_cli("register-roles")) == (
        "error: config file deeplens.yaml: unknown key 'buckt' (hint: did you mean 'bucket'?)")


def test_unknown_nested_key_suggests_the_closest(aws_env, run_cli, config_file):
    config_file("bucket: deeplens-crops\nfunction:\n  memory: 512\n")

    assert usage_error(run_cli("register-roles")) == (
        "error: config file deeplens.yaml: unknown key 'function.memory' (hint: did you mean 'function.memory_mb'?)")


@pytest.mark.parametrize(("yaml_value", "shown"), [("lots", "'lots'"), ("true", "True"), ("[1, 2]", "[1, 2]")])
def test_wrong_type_names_key_value_and_expected_type(aws_env, run_cli, config_file, yaml_value, shown):
    config_file(f"bucket: deeplens-crops\nfunction:\n  memory_mb: {yaml_value}\n")

    assert usage_error(run_cli("register-roles")) == (
        f"error: setting 'function.memory_mb' (from deeplens.yaml) is {shown}, expected an integer "
        "(hint: fix function.memory_mb; default is 1024)")


def test_out_of_range_number_says_the_range(aws_env, run_cli, config_file):
    config_file("bucket: deeplens-crops\ndetection:\n  threshold: 1.5\n")

    assert "expected a number from 0.01 to 0.99" in usage_error(run_cli("register-roles"))


@pytest.mark.parametrize(("name", "rule"), [
    ("ab", "3 to 63 characters"),
    ("x" * 64, "3 to 63 characters"),
    ("My_Bucket", "lowercase letters, digits, dots and hyphens"),
    ("-faces", "starting and ending with a letter or digit"),
    ("faces..crops", "no two adjacent periods"),
    ("faces.-crops", "no period next to a hyphen"),
    ("192.168.5.4", "not formatted as an IP address"),
    ("xn--faces", "reserved prefix 'xn--'"),
    ("sthree-faces", "reserved prefix 'sthree-'"),
    ("faces-s3alias", "reserved suffix '-s3alias'"),
    ("faces--ol-s3", "reserved suffix '--ol-s3'"),
])
def test_invalid_bucket_names_say_which_rule_they_break(aws_env, run_cli, name, rule):
    line = usage_error(run_cli("register-roles", "--bucket", name))

    assert line.startswith(f"error: setting 'bucket' (--bucket) is '{name}', expected ")
    assert rule in line


@pytest.mark.parametrize("name", ["deeplens-face-crops", "abc", "a.b.c", "x" * 63, "faces-2026.example"])
def test_valid_bucket_names_pass(name):
    assert check_bucket_name(name) is None


def test_bad_region_from_a_flag(aws_env, run_cli):
    assert usage_error(run_cli("--region", "mars-1", "register-roles", "--bucket", "deeplens-crops")) == (
        "error: setting 'region' (--region) is 'mars-1', expected an AWS region such as us-east-1 "
        "or eu-west-2 (hint: fix region)")


def test_bad_value_from_the_environment_names_the_variable(aws_env, run_cli):
    line = usage_error(run_cli("register-roles", env={"DEEPLENS_BUCKET": "deeplens-crops",
                                                      "DEEPLENS_FUNCTION_MEMORY_MB": "lots"}))

    assert line.startswith("error: setting 'function.memory_mb' (from DEEPLENS_FUNCTION_MEMORY_MB) is 'lots'")


def test_missing_config_file_given_explicitly(aws_env, run_cli):
    assert usage_error(run_cli("--config", "nowhere.yaml", "register-roles")) == (
        "error: config file nowhere.yaml not found (hint: create it from config.example.yaml or pass --config PATH)")


def test_unreadable_config_file(aws_env, run_cli, config_file):
    config_file(b"bucket: \xff\xfe not utf-8\n")

    line = usage_error(run_cli("register-roles"))

    assert line.startswith("error: config file deeplens.yaml cannot be read: UnicodeDecodeError")
    assert line.endswith("(hint: check the path and its permissions)")


def test_malformed_yaml_gives_the_line_number(aws_env, run_cli, config_file):
    config_file("bucket: deeplens-crops\nprefix: faces/\nfunction:\n  name: [unclosed\n  memory_mb: 512\n")

    line = usage_error(run_cli("register-roles"))

    assert line.startswith("error: config file deeplens.yaml: invalid YAML at line 5,")
    assert "(hint: fix the YAML syntax" in line


def test_a_config_that_is_not_a_mapping(aws_env, run_cli, config_file):
    config_file("- bucket\n- prefix\n")

    assert "expected a mapping of keys at the top level, got list" in usage_error(run_cli("register-roles"))


def test_verbose_adds_the_traceback_but_keeps_the_one_line_error_last(aws_env, run_cli, config_file):
    config_file("buckt: deeplens-crops\n")

    result = run_cli("-v", "register-roles")

    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: config file deeplens.yaml: unknown key 'buckt'")


def test_missing_required_setting_names_every_way_to_set_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./deeplens.yaml
    settings = load_settings(None, environ={}, flags={})

    with pytest.raises(ConfigError) as error:
        settings.require("bucket")

    assert error.value.exit_code == 2
    assert error.value.one_line() == ("missing required setting 'bucket' (hint: set bucket in deeplens.yaml, "
                                      "or DEEPLENS_BUCKET, or --bucket where the command has it)")


# ---------------------------------------------------------------------------------------------- layering


def test_environment_overrides_a_number(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    settings = load_settings(None, environ={"DEEPLENS_FUNCTION_MEMORY_MB": "512"}, flags={})

    assert settings["function.memory_mb"] == 512
    assert settings.origins["function.memory_mb"] == "DEEPLENS_FUNCTION_MEMORY_MB"


def test_flag_beats_environment_beats_file_beats_default(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("region: eu-west-1\nbucket: from-file-bucket\nprefix: file/\n", encoding="utf-8")
    environ = {"DEEPLENS_REGION": "eu-central-1", "DEEPLENS_BUCKET": "from-env-bucket"}

    settings = load_settings(str(path), environ=environ, flags={"region": "ap-south-1"})

    assert settings["region"] == "ap-south-1"  # flag over env over file
    assert settings["bucket"] == "from-env-bucket"  # env over file
    assert settings["prefix"] == "file/"  # file over default
    assert settings["function.memory_mb"] == 1024  # default
    assert settings.origins == {**settings.origins, "region": "flag", "bucket": "DEEPLENS_BUCKET",
                                "prefix": str(path), "function.memory_mb": "default"}


def test_a_flag_replaces_a_bad_environment_value_before_validation(tmp_path):
    settings = load_settings(
        str(_empty(tmp_path)), environ={"DEEPLENS_REGION": "mars-1"}, flags={"region": "us-west-2"}
    )

    assert settings["region"] == "us-west-2"


def test_config_path_from_the_environment(tmp_path):
    path = tmp_path / "elsewhere.yaml"
    path.write_text("bucket: deeplens-elsewhere\n", encoding="utf-8")

    settings = load_settings(None, environ={"DEEPLENS_CONFIG": str(path)}, flags={})

    assert settings["bucket"] == "deeplens-elsewhere"
    assert settings.config_path == path


def test_environment_values_are_read_as_yaml_scalars_for_non_strings(tmp_path):
    settings = load_settings(str(_empty(tmp_path)), environ={
        "DEEPLENS_DETECTION_THRESHOLD": "0.75", "DEEPLENS_RETENTION_DAYS": "30",
        "DEEPLENS_FUNCTION_VENDOR": "[boto3==1.33.13]", "DEEPLENS_PROJECT_NAME": "123"}, flags={})

    assert settings["detection.threshold"] == 0.75
    assert settings["retention_days"] == 30
    assert settings["function.vendor"] == ["boto3==1.33.13"]
    assert settings["project.name"] == "123"  # a string key keeps the text, even when it looks like a number


def test_every_schema_key_has_its_own_environment_variable():
    variables = [key.env_var for key in SCHEMA]

    assert len(set(variables)) == len(variables)
    assert "DEEPLENS_FUNCTION_MEMORY_MB" in variables and "DEEPLENS_GREENGRASS_ROLE_ALIAS" in variables


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    return path


def test_a_command_flag_wins_over_an_invalid_environment_value(aws, run_cli):
    """--bucket on register-roles is layered like a global flag: the bad DEEPLENS_BUCKET never gets validated."""
    result = run_cli("register-roles", "--dry-run", "--bucket", "deeplens-good-name",
                     env={"DEEPLENS_BUCKET": "Bad_Name"})

    assert result.exit_code == 0, result.stderr
    assert "deeplens-good-name" in result.stdout
    assert "Bad_Name" not in result.stdout + result.stderr
