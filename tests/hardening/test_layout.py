"""The layout rules docs/architecture.md states, kept true by the suite: no module of the provisioning side over
500 lines, and no import cycle among its modules (module-level imports; lazy imports inside functions are how
heavy modules stay off the start-up path and do not count)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "deeplens_cli"
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("deeplens_cli"):
                submodules = {f"{node.module}.{alias.name}" for alias in node.names} & modules.keys()
                targets |= submodules
                if len(submodules) < len(node.names) and node.module in modules:
                    targets.add(node.module)
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names} & modules.keys()
        graph[name] = targets - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target):] + [node, target] if target in path else [node, target]
            if target not in state and (cycle := visit(target, path + [node])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [])):
            return cycle
    return None


def test_no_provisioning_module_is_over_500_lines():
    long = {str(path.relative_to(PACKAGE.parent)): count for path in PACKAGE.rglob("*.py")
            if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, "split these by concern (docs/architecture.md)"


def test_the_provisioning_modules_import_each_other_without_a_cycle():
    assert find_cycle(import_graph()) is None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) is not None
    assert find_cycle({"a": {"b"}, "b": set()}) is None


CLICK_ALLOWED = ("deeplens_cli/cli.py", "deeplens_cli/cli_options.py", "deeplens_cli/commands/")


def click_importers(package: Path = PACKAGE) -> list[str]:
    """Modules outside the CLI layer that import click anywhere (lazy imports inside functions count here: the rule
    is about which layer may know the CLI framework, not about start-up time)."""
    found = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package.parent).as_posix()
        if relative.startswith(CLICK_ALLOWED):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name == "click" or name.startswith("click.") for name in names):
                found.append(f"{relative}:{node.lineno}")
    return found


def test_click_stays_in_the_cli_layer():
    """cli.py, cli_options.py and commands/ parse flags, ask and exit; everything below them is callable without
    click (planners, gatherers, the demo), and reports failures as typed errors from errors.py."""
    assert click_importers() == []


def test_the_click_check_finds_click_imported_below_the_cli_layer(tmp_path):
    package = tmp_path / "deeplens_cli"
    (package / "commands").mkdir(parents=True)
    (package / "cli.py").write_text("import click\n", encoding="utf-8")
    (package / "commands" / "destroy.py").write_text("import click\n", encoding="utf-8")
    (package / "status.py").write_text("def run():\n    from click.exceptions import Exit\n", encoding="utf-8")
    (package / "devices.py").write_text("import os\n\n\ndef confirm():\n    import click\n", encoding="utf-8")
    assert click_importers(package) == ["deeplens_cli/devices.py:5", "deeplens_cli/status.py:2"]
