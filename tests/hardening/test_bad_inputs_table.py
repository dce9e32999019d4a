"""The bad-input table itself: a test for every row, and docs/troubleshooting.md in step with it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.hardening.bad_input_table import GUIDE, REPO, TABLE

AREA_FILES = sorted(Path(__file__).parent.glob("test_bad_inputs_*.py"))


def guide_rows() -> dict[str, tuple[str, str]]:
    """{row id: (exit code cell, example line)} from the table in docs/troubleshooting.md."""
    rows = {}
    for line in GUIDE.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) >= 5 and cells[0].startswith("`") and not cells[0].startswith("``"):
            rows[cells[0].strip("`")] = (cells[2], cells[3].strip("`").strip().replace("\\|", "|"))
    return rows


def test_the_table_has_enough_rows_and_a_test_for_each() -> None:
    assert len(TABLE) >= 25
    tests = {node.name for path in AREA_FILES for node in ast.parse(path.read_text(encoding="utf-8")).body
             if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}
    missing = [row_id for row_id in TABLE if "test_" + row_id.replace("-", "_") not in tests]
    assert not missing, f"rows without a test: {missing}"


def test_the_troubleshooting_guide_matches_the_table() -> None:
    rows = guide_rows()
    assert sorted(rows) == sorted(TABLE), "docs/troubleshooting.md and the table list different situations"
    for row_id, row in TABLE.items():
        exit_cell, example = rows[row_id]
        expected_exit = "-" if row.exit_code is None else str(row.exit_code)
        assert exit_cell == expected_exit, f"{row_id}: the guide says exit {exit_cell}, the table {expected_exit}"
        assert re.fullmatch(row.line, example), f"{row_id}: the guide's example does not match:\n  {example}"


def test_the_readme_has_a_troubleshooting_section_pointing_to_the_guide() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert re.search(r"^## Troubleshooting", readme, re.MULTILINE), "README.md has no '## Troubleshooting' section"
    assert "docs/troubleshooting.md" in readme
