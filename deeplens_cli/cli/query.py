"""`--query`: a JMESPath expression over a command's JSON document, as the AWS CLI has it.

jmespath ships with botocore, so it costs no dependency; this module (and so jmespath) is imported only when a query
is given, so `--help` and commands without `--query` never load it. The expression is compiled before the command
does any work (`compile_query`), so a typo is a usage error (exit 2) and not a failure after a deployment.

jmespath has no limits of its own: `((((...a))))` or a long `a.a.a...` overflows Python's stack (RecursionError in
the parser or the interpreter), and twenty stages of `[@,@][]` build a million values, thirty a billion (hours, then
MemoryError). So a query is bounded twice, each overstep one exit-2 line: its nesting (`MAX_DEPTH` levels of the
parsed expression, checked when it is compiled), and what it builds on the document (a budget of `MAX_VALUES` plus a
few per value of the document: the values any single result would print, and, a few per value, the steps the whole
evaluation takes).
`_BoundedInterpreter` is jmespath's own tree interpreter with a count after each step: a result is measured from its
parts, which were measured when they were made, so the count stays linear in the work done even when parts are
shared.
"""

from __future__ import annotations

from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.visitor import TreeInterpreter

from deeplens_cli.errors import ConfigError

QUERY_HINT = "see https://jmespath.org for the syntax, e.g. --query 'devices[].name'"
MAX_DEPTH = 64  # levels of the parsed expression; the interpreter takes about two Python frames a level
MAX_VALUES = 1_000_000  # values a query may build beyond what the document holds (a result once printed; steps)
_BUDGET_PER_VALUE = 4  # ...plus this many per value of the document: `devices[*].{a: a, b: b}` on a large fleet
_STEPS_PER_VALUE = 4  # steps an evaluation may take per value of that budget (a projection visits, then lists)
_SHOWN = 40  # characters of a long expression echoed in an error line
_CHARS_A_VALUE = 16  # a string counts as one value per this many characters (join() can double one at every step)


def compile_query(expression: str) -> Any:
    try:
        compiled = jmespath.compile(expression)
    except JMESPathError as exc:
        first = str(exc).strip().splitlines()[0].rstrip(": ") if str(exc).strip() else exc.__class__.__name__
        raise ConfigError(f"invalid --query {expression!r}: {first}", QUERY_HINT, code="usage") from None
    except RecursionError:
        raise _too_deep(expression) from None
    if _depth(compiled.parsed) > MAX_DEPTH:
        raise _too_deep(expression)
    return compiled


def apply_query(expression: str, document: Any) -> Any:
    compiled = compile_query(expression)
    try:
        return _BoundedInterpreter(expression, document).visit(compiled.parsed, document)
    except JMESPathError as exc:  # a type error in a function call shows only against real data
        raise ConfigError(f"--query {expression!r} failed on this document: {exc}", QUERY_HINT, code="usage") from None


def _shown(expression: str) -> str:
    return repr(expression if len(expression) <= _SHOWN else expression[:_SHOWN] + "...")


def _too_deep(expression: str) -> ConfigError:
    return ConfigError(f"--query {_shown(expression)} nests more than {MAX_DEPTH} levels deep",
                       "write a flatter expression (a pipe | per stage, not nested parentheses)", code="usage")


def _depth(tree: dict[str, Any]) -> int:
    """Levels of a parsed expression, walked without recursion (the tree may be as deep as the parser allowed)."""
    deepest, pending = 0, [(tree, 1)]
    while pending:
        node, level = pending.pop()
        deepest = max(deepest, level)
        pending.extend((child, level + 1) for child in node.get("children", ()) if isinstance(child, dict))
    return deepest


class _BoundedInterpreter(TreeInterpreter):  # type: ignore[misc]
    """jmespath's interpreter, counting the steps it takes and the values each step's result holds."""

    def __init__(self, expression: str, document: Any) -> None:
        super().__init__()
        self._expression = expression
        self._document = document
        # id of a list or dict -> (it, the values it holds once printed); holding it keeps the id from being reused
        self._sizes: dict[int, tuple[Any, int]] = {}
        self._steps = 0
        self._budget: int | None = None  # MAX_VALUES + a few per value of the document, counted when first needed

    def visit(self, node: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        result = super().visit(node, *args, **kwargs)
        self._steps += 1
        if node["type"] in _BUILDS and isinstance(result, (list, dict)):
            self._steps += len(result)
            self._check(self.measure(result))
        if self._steps > _STEPS_PER_VALUE * MAX_VALUES:
            self._check(self._steps // _STEPS_PER_VALUE)
        return result

    def _check(self, count: int) -> None:
        if count <= MAX_VALUES:
            return
        if self._budget is None:
            self._budget = MAX_VALUES + _BUDGET_PER_VALUE * self.measure(self._document)
        if count > self._budget:
            raise ConfigError(f"--query {_shown(self._expression)} builds more than {self._budget:,} values on this "
                              "document", "select less: a query can multiply what it reads", code="usage")

    def measure(self, value: Any) -> int:
        """The values `value` holds once printed (`[@,@]` repeated holds 2**n, though it shares its parts).

        Each list or dict is measured once, after its parts (without recursion), and remembered: a step's new
        result then costs the length of its own list, however its parts are shared.
        """
        if not isinstance(value, (list, dict)):
            return _scalar_size(value)
        known = self._sizes.get(id(value))
        if known is not None:
            return known[1]
        pending = [value]
        while pending:  # depth first: a list or dict is summed once its parts are known
            item = pending[-1]
            total, unknown = 1, []
            for part in item.values() if isinstance(item, dict) else item:
                if not isinstance(part, (list, dict)):
                    total += _scalar_size(part)
                elif (entry := self._sizes.get(id(part))) is not None:
                    total += entry[1]
                else:
                    unknown.append(part)
            if unknown:
                pending.extend(unknown)
                continue
            pending.pop()
            self._sizes[id(item)] = (item, total)
        return self._sizes[id(value)][1]


# The steps that make a new list or dict (the others hand on a part of the document or of an earlier result).
_BUILDS = frozenset(("multi_select_list", "multi_select_dict", "flatten", "function_expression", "projection",
                     "value_projection", "filter_projection"))


def _scalar_size(value: Any) -> int:
    return 1 + len(value) // _CHARS_A_VALUE if value.__class__ is str else 1
