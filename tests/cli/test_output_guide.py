"""docs/troubleshooting.md, "Output formats, queries and CI exit codes": every row is provoked here and the
documented line and exit code must be what the tool really prints."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md"
BUCKET = "my-face-crops"


def rows() -> dict[str, tuple[int, str]]:
    section = GUIDE.read_text(encoding="utf-8").split("## Output formats, queries and CI exit codes", 1)[1]
    section = section.split("\n## ", 1)[0]
    found = {}
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("| case") and not line.startswith("|---"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            found[cells[0].strip("`")] = (int(cells[2]), cells[3].strip("`").replace("<TAB>", "\t"))
    return found


def provoke(case: str, run_cli: Callable[..., object]):
    if case == "query-invalid":
        return run_cli("init", "--bucket", BUCKET, "--query", "devices[?")
    if case == "query-no-match":
        return run_cli("devices", "--output", "json", "--query", "devices[0].health")
    if case == "output-invalid":
        return run_cli("devices", "--output", "yaml")
    if case == "piped-output-is-text":
        return run_cli("register-roles", "--dry-run", "--bucket", BUCKET)
    if case == "detailed-exitcode-without-dry-run":
        return run_cli("register-roles", "--detailed-exitcode", "--bucket", BUCKET)
    if case == "dry-run-changes-pending":
        return run_cli("register-roles", "--dry-run", "--detailed-exitcode", "--bucket", BUCKET)
    raise AssertionError(f"no provocation for documented case {case}")


def test_the_section_documents_the_cases():
    assert set(rows()) == {"query-invalid", "query-no-match", "output-invalid", "piped-output-is-text",
                           "detailed-exitcode-without-dry-run", "dry-run-changes-pending"}


@pytest.mark.parametrize("case", sorted(rows()))
def test_each_documented_case_prints_what_the_guide_says(aws, run_cli, case):
    exit_code, shown = rows()[case]
    result = provoke(case, run_cli)

    assert result.exit_code == exit_code, (result.stdout, result.stderr)
    assert shown in (result.stdout + result.stderr).splitlines(), (shown, result.stdout, result.stderr)
