"""The layout rules docs/architecture.md states, kept true by the suite: no module of the provisioning side over
500 lines, no import cycle at any depth, and lazy imports only where each one says why.

An import inside a function is still an import: it runs the other module, only later. So the cycle check reads
every import statement - at module level, inside functions and under `if TYPE_CHECKING:` (a type a module names
is a dependency too) - of `deeplens_cli` and of `edge_function`, which must not import `deeplens_cli` at all (it
runs on the device). What does not count is a submodule's implicit import of its own package: Python runs a
package's `__init__` first, and a package whose `__init__` shows its face (`targets/greengrass_v2`, `demo`) is the
ordinary pattern; a module that imports a *name* from its own package's `__init__` is an explicit edge, and counted.

A lazy import of one of our own modules is allowed only for start-up (LAZY_IMPORTS says which and why): the
commands `cli/__init__.py` imports when one runs, the target factories of the registry, the demo behind its extra, and
the device-side ordering of `awscam` before OpenCV. Lazy imports of third-party libraries (boto3, yaml, cv2) are
not listed: they cannot form a cycle, and tests/hardening/test_startup.py keeps them off the `--help` path.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "deeplens_cli"
EDGE = ROOT / "edge_function"
MAX_LINES = 500

# (importing module, imported module or package) -> why the import waits until a function runs.
LAZY_IMPORTS: dict[tuple[str, str], str] = {
    ("deeplens_cli.cli", "deeplens_cli.commands"):
        "start-up: `--help` and usage errors load no command module",
    ("deeplens_cli.cli", "deeplens_cli.aws"):
        "start-up: only the last-resort error path translates AWS errors",
    ("deeplens_cli.cli.app", "deeplens_cli.settings.config"):
        "start-up: settings are read on first use, never for `--help`",
    ("deeplens_cli.cli.app", "deeplens_cli.aws"):
        "start-up: the AWS context is made on first use, never for `--help`",
    ("deeplens_cli.cli.app", "deeplens_cli.cli.query"):
        "start-up: jmespath loads only when --query is given (its expression is compiled before any work)",
    ("deeplens_cli.cli.output", "deeplens_cli.cli.query"):
        "start-up: jmespath loads only when --query is given",
    ("deeplens_cli.commands.demo", "deeplens_cli.demo"):
        "the demo extra (moto, OpenCV) is checked before it loads",
    ("deeplens_cli.targets.registry", "deeplens_cli.targets.greengrass_v1"):
        "a command loads the code of the targets it uses only (the factories and thing-name functions of the table)",
    ("deeplens_cli.targets.registry", "deeplens_cli.targets.greengrass_v2"):
        "a command loads the code of the targets it uses only (the factories and thing-name functions of the table)",
    ("deeplens_cli.simulator.awscam", "edge_function"):
        "copied alone onto the device's path as `awscam`, which the edge function imports before OpenCV",
    ("edge_function.__main__", "edge_function.loop"):
        "after `awscam`, which must precede any cv2 import on a DeepLens",
    ("edge_function.lambda_function", "edge_function.loop"):
        "after `awscam`, which must precede any cv2 import on a DeepLens",
}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(tree: ast.Module) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement of a module, at any depth, with whether it runs only when a function is called."""
    found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, inside))
            visit(child, inside)

    visit(tree, False)
    return found


def imported_modules(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool,
                     modules: set[str]) -> set[str]:
    """Our modules one import statement names: `from pkg import sub` names the submodule, `from mod import name`
    the module; relative imports are resolved against the importer's package."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names} & modules
    base = node.module or ""
    if node.level:
        package = importer.split(".") if is_package else importer.split(".")[:-1]
        package = package[:len(package) - (node.level - 1)]
        base = ".".join(package + ([base] if base else []))
    submodules = {f"{base}.{alias.name}" for alias in node.names} & modules
    if len(submodules) < len(node.names) and base in modules:
        submodules.add(base)
    return submodules


def import_graph(roots: tuple[Path, ...] = (PACKAGE, EDGE), lazy: bool = False) -> dict[str, set[str]]:
    """module -> our modules it imports (every import; with `lazy`, only those inside functions)."""
    paths = {module_name(path, root.parent): path for root in roots for path in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        targets: set[str] = set()
        for node, in_function in imports_of(ast.parse(path.read_text(encoding="utf-8"))):
            if in_function or not lazy:
                targets |= imported_modules(node, name, path.name == "__init__.py", set(paths))
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


def unexplained_lazy_imports(graph: dict[str, set[str]]) -> list[str]:
    """Lazy imports of our own modules that LAZY_IMPORTS does not explain."""
    def explained(importer: str, imported: str) -> bool:
        return any(importer == who and (imported == what or imported.startswith(what + "."))
                   for who, what in LAZY_IMPORTS)

    return sorted(f"{importer} -> {imported}" for importer, targets in graph.items() for imported in targets
                  if not explained(importer, imported))


def test_no_provisioning_module_is_over_500_lines():
    long = {str(path.relative_to(PACKAGE.parent)): count for path in PACKAGE.rglob("*.py")
            if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, "split these by concern (docs/architecture.md)"


def test_no_import_cycle_at_any_depth():
    """Module-level, function-level and type-checking imports of deeplens_cli and edge_function together."""
    assert find_cycle(import_graph()) is None


def test_the_edge_function_imports_nothing_of_the_provisioning_side():
    graph = import_graph()
    assert {f"{name} -> {target}" for name, targets in graph.items() if name.startswith("edge_function")
            for target in targets if target.startswith("deeplens_cli")} == set()


def test_every_lazy_import_of_our_modules_says_why():
    """An import inside a function that is not there for start-up hides a dependency (and, before, a cycle of 38
    modules): import at the top, or add the reason to LAZY_IMPORTS."""
    assert unexplained_lazy_imports(import_graph(lazy=True)) == []


def test_every_allowed_lazy_import_is_still_there():
    graph = import_graph(lazy=True)
    stale = [pair for pair in LAZY_IMPORTS
             if not any(target == pair[1] or target.startswith(pair[1] + ".") for target in graph.get(pair[0], ()))]
    assert stale == []


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) is not None
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_imports_inside_functions_and_type_checking_blocks(tmp_path):
    package = tmp_path / "deeplens_cli"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "sub" / "__init__.py").write_text("", encoding="utf-8")
    (package / "a.py").write_text("from deeplens_cli import b\n", encoding="utf-8")
    (package / "b.py").write_text("def later():\n    from deeplens_cli.sub.c import name\n", encoding="utf-8")
    (package / "sub" / "c.py").write_text("from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
                                          "    from ..a import Thing\n", encoding="utf-8")
    graph = import_graph((package,))
    assert graph["deeplens_cli.b"] == {"deeplens_cli.sub.c"} and graph["deeplens_cli.sub.c"] == {"deeplens_cli.a"}
    assert find_cycle(graph) is not None
    assert import_graph((package,), lazy=True)["deeplens_cli.b"] == {"deeplens_cli.sub.c"}
    assert unexplained_lazy_imports(import_graph((package,), lazy=True)) == ["deeplens_cli.b -> deeplens_cli.sub.c"]


CLICK_ALLOWED = ("deeplens_cli/cli/__init__.py", "deeplens_cli/cli/cli_options.py", "deeplens_cli/commands/")


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
    for allowed in CLICK_ALLOWED:  # each room of the CLI layer may import click
        module = tmp_path / (allowed + "destroy.py" if allowed.endswith("/") else allowed)
        module.parent.mkdir(parents=True, exist_ok=True)
        module.write_text("import click\n", encoding="utf-8")
    (package / "status.py").write_text("def run():\n    from click.exceptions import Exit\n", encoding="utf-8")
    (package / "devices.py").write_text("import os\n\n\ndef confirm():\n    import click\n", encoding="utf-8")
    assert click_importers(package) == ["deeplens_cli/devices.py:5", "deeplens_cli/status.py:2"]
