"""query.py: --query is JMESPath with bounds - its nesting, and what it builds on the document - so a query can
never overflow the stack or fill the memory; every overstep is one exit-2 line."""

from __future__ import annotations

import pytest

from deeplens_cli.cli import query
from deeplens_cli.cli.query import MAX_DEPTH, apply_query, compile_query
from deeplens_cli.errors import ConfigError

FLEET = {"devices": [{"name": f"cam-{n}", "status": {"health": "HEALTHY"}, "tags": ["a", "b"]} for n in range(20000)]}


def test_everyday_queries_answer_as_jmespath_does_on_a_large_fleet():
    assert apply_query("devices[].name", FLEET)[:2] == ["cam-0", "cam-1"]
    assert len(apply_query("devices[?status.health=='HEALTHY'].{n: name, t: tags}", FLEET)) == 20000
    assert apply_query("length(devices[].tags[])", FLEET) == 40000
    assert apply_query("@", FLEET) is FLEET


@pytest.mark.parametrize("expression", [
    "(" * 3000 + "a" + ")" * 3000,  # RecursionError in jmespath's parser (the old tree: exit 1, "report it")
    "!" * 3000 + "a",
    "[" * (MAX_DEPTH + 1) + "a" + "]" * (MAX_DEPTH + 1),  # parses, but deeper than the bound
])
def test_an_expression_nested_too_deep_is_refused_when_compiled(expression):
    with pytest.raises(ConfigError) as caught:
        compile_query(expression)
    assert caught.value.exit_code == 2 and f"nests more than {MAX_DEPTH} levels deep" in caught.value.message
    assert len(caught.value.message) < 120  # the expression is shortened in the line


def test_a_nesting_within_the_bound_is_evaluated():
    depth = MAX_DEPTH // 2
    assert apply_query("[" * depth + "a" + "]" * depth, {"a": 1}) is not None


@pytest.mark.parametrize("stage", [
    "[@,@][]",  # flatten doubles a real list: 2**40 values in memory (the old tree: hours, then MemoryError)
    "[@,@]",  # nested pairs share their parts: tiny in memory, 2**40 values once printed
    "join('', [to_string(@), to_string(@)])",  # a string that doubles
    "{a: @, b: @}",
])
def test_a_query_that_multiplies_the_document_is_refused_as_it_runs(stage):
    with pytest.raises(ConfigError) as caught:
        apply_query("|".join([stage] * 40), {"name": "cam-1"})
    assert caught.value.exit_code == 2 and "values on this document" in caught.value.message


def test_what_a_query_may_build_grows_with_the_document(monkeypatch):
    monkeypatch.setattr(query, "MAX_VALUES", 1000)  # the same rule, at a size a test builds quickly
    big = {"items": list(range(2000))}
    assert len(apply_query("[items, items][]", big)) == 4000  # four times the bound: a large fleet's document
    with pytest.raises(ConfigError, match="builds more than 9,00"):  # 1000 + 4 per value of the document
        apply_query("[items, items, items, items, items][]", big)  # 10,000
    small = list(range(10))
    assert len(apply_query("|".join(["[@,@][]"] * 6), small)) == 10 * 2 ** 6
    with pytest.raises(ConfigError, match="builds more than 1,044 values"):
        apply_query("|".join(["[@,@][]"] * 7), small)  # 1280 values from a document of 11
