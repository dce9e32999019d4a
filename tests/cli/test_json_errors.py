"""With --output json, stdout holds exactly one JSON document on every exit, errors included:
{"error": {"code", "message", "hint"}} beside the usual one line on stderr, so CI scripts can parse failures."""

from __future__ import annotations

import json

import pytest


def only_document(stdout: str) -> dict:
    document = json.loads(stdout)  # raises on nothing, or on two documents
    return document


@pytest.mark.parametrize("args, exit_code, code", [
    (("register-roles", "--bucket", "My_Crops"), 2, "config"),  # a bad setting
    (("no-such-command",), 2, "usage"),  # click's own usage error
    (("register-device",), 2, "usage"),  # a missing required option
    (("--config", "nowhere.yaml", "status"), 2, "config"),
])
def test_errors_before_any_aws_call_are_one_json_document(run_cli, aws_env, args, exit_code, code):
    result = run_cli("--output", "json", *args)

    assert result.exit_code == exit_code
    error = only_document(result.stdout)["error"]
    assert error["code"] == code
    assert error["message"] and error["hint"]
    assert result.stderr.strip()  # the human line is still there


def test_an_aws_error_is_one_json_document_with_the_same_message_as_stderr(run_cli, aws_env):
    result = run_cli("--output=json", "register-roles", "--bucket", "deeplens-json-crops",
                     env={"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None,
                          "AWS_SECURITY_TOKEN": None})

    assert result.exit_code == 1
    error = only_document(result.stdout)["error"]
    assert error["code"] == "no_credentials"
    assert result.stderr.strip().splitlines()[-1] == f"error: {error['message']} (hint: {error['hint']})"


def test_a_command_that_printed_its_document_does_not_print_a_second(run_cli, aws_env):
    # doctor reports its failed checks in its own document, then exits 5
    result = run_cli("--output", "json", "--endpoint-url", "http://127.0.0.1:9", "doctor",
                     env={"DEEPLENS_AWS_MAX_ATTEMPTS": "1"})

    assert result.exit_code == 5
    assert only_document(result.stdout)["ok"] is False


def test_text_output_keeps_stdout_empty_on_errors(run_cli, aws_env):
    result = run_cli("register-roles", "--bucket", "My_Crops")

    assert result.exit_code == 2 and result.stdout == ""


@pytest.mark.parametrize("args", [
    ("deploy", "--timeout", "0", "--output", "json"),  # click failed on --timeout before it reached --output
    ("register-device", "--out", "notes.txt", "--output=json"),
    ("--query", "devices[?", "devices", "--output", "json"),  # the group failed before the command's options
])
def test_output_json_after_the_command_still_gets_its_document_when_parsing_fails_first(run_cli, aws_env, args):
    with open("notes.txt", "w", encoding="utf-8") as handle:
        handle.write("a file\n")

    result = run_cli(*args)

    assert result.exit_code == 2
    error = only_document(result.stdout)["error"]
    assert error["code"] == "usage"
    assert result.stderr.splitlines() == [f"error: {error['message']} (hint: {error['hint']})"]  # one line
