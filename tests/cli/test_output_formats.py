"""`--output json|table|text` and `--query`, as the AWS CLI has them: table for a person at a terminal, text (plain
tab-separated lines) when piped, one JSON document for CI; a JMESPath query applies to the document in every mode."""

from __future__ import annotations

import io
import json
from pathlib import Path

from deeplens_cli.cli.output import Reporter, Styled
from deeplens_cli.cli.text_format import text_lines
from deeplens_cli.engine.plan import Action, Plan

BOX = set("│┃┏┓┗┛━─┡┩└┘┌┐╇╈┼")
BUCKET = "deeplens-output-formats"


def reporter(output: str, query: str | None = None) -> Reporter:
    return Reporter(output=output, stdout=io.StringIO(), stderr=io.StringIO(), query=query)


def a_plan() -> Plan:
    return Plan("register-roles", [Action("iam-role/A", "create", "missing; trust greengrass"),
                                   Action("s3-bucket/b", "noop", "up to date")])


# ---------------------------------------------------------------------------------------------- text output


def test_text_output_is_tab_separated_rows_without_titles_headers_or_boxes():
    out = reporter("text")
    out.table("Devices", ("name", "target", "health"), [("Cam", "v2", Styled("ok", "green")), ("Door", "v1", None)])

    assert out.stdout.getvalue() == "Cam\tv2\tok\nDoor\tv1\t\n"


def test_a_plan_in_text_output_is_one_line_per_action_and_the_summary_goes_to_stderr():
    out = reporter("text")
    out.plan(a_plan(), dry_run=True)

    lines = out.stdout.getvalue().splitlines()
    assert lines == ["create\tiam-role/A\tmissing; trust greengrass", "noop\ts3-bucket/b\tup to date"]
    assert [line.split("\t")[0] for line in lines] == ["create", "noop"]  # what `cut -f1` sees
    assert "1 to create" in out.stderr.getvalue() and "dry run" in out.stderr.getvalue()


def test_table_output_draws_the_plan_with_its_title_and_summary():
    out = reporter("table")
    out.plan(a_plan(), dry_run=True)

    printed = out.stdout.getvalue()
    assert "register-roles (dry run: nothing changed)" in printed and BOX & set(printed)
    assert printed.rstrip().endswith("1 to create, 0 to update, 0 to delete, 1 unchanged (dry run: nothing changed)")


def test_values_never_break_a_text_line():
    assert list(text_lines({"message": "two\nlines\tand a tab", "ok": True, "missing": None})) == [
        "two\\nlines\\tand a tab\ttrue\t"]


def test_text_lines_follow_the_aws_cli_shape():
    document = {"ok": False, "devices": [{"name": "Cam", "health": "ok", "status": {"problems": []}},
                                         {"name": "Door", "health": "offline", "status": {"problems": ["late"]}}],
                "counts": {"create": 1, "noop": 2}}

    assert list(text_lines(document)) == [
        "false",
        "DEVICES\tCam\tok",
        "DEVICES\tDoor\toffline",
        "PROBLEMS\tlate",
        "COUNTS\t1\t2",
    ]


def test_a_note_is_printed_once_however_many_rows_it_concerns():
    out = reporter("table")
    for _ in range(3):
        out.note("health can be stale")

    assert out.stdout.getvalue().count("health can be stale") == 1


def test_a_note_stays_off_stdout_in_text_and_json_output():
    text, as_json = reporter("text"), reporter("json")
    text.note("health can be stale")
    as_json.note("health can be stale")

    assert text.stdout.getvalue() == "" and "health can be stale" in text.stderr.getvalue()
    assert as_json.stdout.getvalue() == as_json.stderr.getvalue() == ""


# ---------------------------------------------------------------------------------------------- --query


def test_a_query_reads_the_document_and_prints_its_result_in_each_format():
    document = {"devices": [{"name": "Cam", "health": "ok"}, {"name": "Door", "health": "offline"}]}
    printed = {}
    for output in ("json", "text", "table"):
        out = reporter(output, query="devices[?health!='ok'].name")
        assert out.json, "with a query the command must hand over its document"
        out.emit_json(document)
        printed[output] = out.stdout.getvalue()

    assert json.loads(printed["json"]) == ["Door"]
    assert printed["text"] == "Door\n"
    assert "Door" in printed["table"] and "Cam" not in printed["table"]


def test_a_query_for_columns_gives_awk_ready_text():
    out = reporter("text", query="devices[].[name, health]")
    out.emit_json({"devices": [{"name": "Cam", "health": "ok"}, {"name": "Door", "health": "offline"}]})

    assert out.stdout.getvalue() == "Cam\tok\nDoor\toffline\n"


def test_query_on_the_command_line_in_every_output_mode(run_cli):
    for output, expected in (("json", f'"{BUCKET}"\n'), ("text", f"{BUCKET}\n"), ("table", f"{BUCKET}\n")):
        Path("deeplens.yaml").unlink(missing_ok=True)
        result = run_cli("init", "--bucket", BUCKET, "--output", output, "--query", "bucket")
        assert result.exit_code == 0, result.stderr
        assert result.stdout == expected, output


def test_an_invalid_query_is_a_usage_error_before_any_work(run_cli):
    result = run_cli("init", "--bucket", BUCKET, "--query", "devices[?")

    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid --query 'devices[?'") and "jmespath" in result.stderr
    assert not Path("deeplens.yaml").exists(), "nothing may be written when the query is wrong"


def test_with_json_output_an_error_document_is_printed_whole_despite_a_query(run_cli):
    Path("deeplens.yaml").write_text("bucket: already-there\n")
    result = run_cli("init", "--output", "json", "--query", "bucket")

    assert result.exit_code != 0
    assert set(json.loads(result.stdout)["error"]) == {"code", "message", "hint"}


def test_the_query_reads_the_same_document_as_json_output(aws, run_cli):
    whole = json.loads(run_cli("register-roles", "--dry-run", "--bucket", BUCKET, "--output", "json").stdout)
    queried = run_cli("register-roles", "--dry-run", "--bucket", BUCKET, "--query", "plan.actions[].resource",
                      "--output", "text")

    assert queried.exit_code == 0, queried.stderr
    assert queried.stdout.rstrip("\n").split("\t") == [a["resource"] for a in whole["plan"]["actions"]]


# ---------------------------------------------------------------------------------------------- plans


def test_an_applied_plan_is_printed_once(aws, run_cli):
    result = run_cli("register-roles", "--bucket", BUCKET, "--no-save", "--output", "table")

    assert result.exit_code == 0, result.stderr
    printed = result.stdout + result.stderr
    for resource in ("s3-bucket/" + BUCKET, "iam-role/AWSDeepLensServiceRole", "iam-role/AWSDeepLensGreengrassRole"):
        assert printed.count(resource) == 1, resource
    assert "applied 8 change(s)" in result.stderr


def test_verbose_still_names_each_action_as_it_is_applied(aws, run_cli):
    result = run_cli("register-roles", "--bucket", BUCKET, "--no-save", "--output", "text", "-v")

    assert result.exit_code == 0, result.stderr
    assert f"debug: create s3-bucket/{BUCKET}" in result.stderr


# ---------------------------------------------------------------------------------------------- notes


def test_the_v2_staleness_note_is_printed_once_under_the_devices_table():
    from deeplens_cli.commands.status import render
    from deeplens_cli.targets.base import Device, DeviceStatus
    from deeplens_cli.targets.greengrass_v2.status import STALE_HEALTH_NOTE
    from deeplens_cli.views.status_report import StatusReport

    def row(name: str):
        from deeplens_cli.views.status_report import DeviceReport

        status = DeviceStatus("ok", health_detail="HEALTHY, reported 2 h ago",
                              details={"health_caveat": f"V2 health can be stale: {STALE_HEALTH_NOTE}"})
        return DeviceReport(Device(name=name, thing_name=f"deeplens-{name}", target="v2"), status)

    out = reporter("table")
    render(StatusReport(devices=[row("Cam"), row("Door"), row("Gate")]), out, settings=None)

    printed = out.stdout.getvalue()
    assert printed.count(STALE_HEALTH_NOTE) == 1
    assert printed.count("HEALTHY, reported 2 h ago") == 3


def test_status_rows_do_not_repeat_the_caveat():
    from deeplens_cli.targets.base import DeviceStatus
    from deeplens_cli.views.fleet_view import health_text

    status = DeviceStatus("ok", health_detail="HEALTHY, reported 2 h ago", details={"health_caveat": "stale"})
    assert health_text(status) == "ok (HEALTHY, reported 2 h ago)"


# ---------------------------------------------------------------------------------------------- start-up cost


def imported_modules(args: list[str], cwd: Path) -> set[str]:
    import subprocess
    import sys

    probe = ("import sys\nfrom deeplens_cli.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
             "sys.stderr.write('\\nMODULES ' + ' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n") % args
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=cwd)
    return set(done.stderr.rsplit("MODULES ", 1)[1].split())


def test_jmespath_is_imported_only_when_a_query_is_given(tmp_path):
    assert "jmespath" not in imported_modules(["--help"], tmp_path)
    assert "jmespath" not in imported_modules(["status", "--help"], tmp_path)
    assert "jmespath" not in imported_modules(["init", "--bucket", BUCKET, "--config", "a.yaml"], tmp_path)
    assert "jmespath" in imported_modules(["init", "--bucket", BUCKET, "--config", "b.yaml", "--query", "bucket"],
                                          tmp_path)
