"""`strict_json`: what deeplens-cli prints as JSON is strict JSON - a NaN or an infinity (a crop's `confidence`
metadata, a device's `fps`) becomes null, and the caller is told where."""

from __future__ import annotations

import datetime as dt
import json
import math

from hypothesis import given
from hypothesis import strategies as st

from deeplens_cli.cli.strict_json import encode


def strict_loads(text: str):
    """A parser that refuses what RFC 8259 does not allow (Python's json accepts NaN and Infinity by default)."""
    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_every_document_encodes_to_strict_json(document):
    strict_loads(encode(document).text)


@given(json_values)
def test_only_the_non_finite_numbers_change(document):
    encoded = encode(document)

    def finite(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: finite(item) for key, item in value.items()}
        if isinstance(value, list):
            return [finite(item) for item in value]
        return value

    assert strict_loads(encoded.text) == json.loads(json.dumps(finite(document)))


def test_nan_and_infinity_become_null_and_their_paths_are_named():
    encoded = encode({"crops": [{"confidence": 0.9}, {"confidence": float("nan")}], "fps": float("inf"),
                      "low": float("-inf")})

    assert strict_loads(encoded.text) == {"crops": [{"confidence": 0.9}, {"confidence": None}], "fps": None,
                                          "low": None}
    assert encoded.nulled == ("crops[1].confidence", "fps", "low")
    assert encoded.note() == ("3 number(s) that are not finite (NaN or Infinity, which JSON cannot carry) printed as "
                              "null: crops[1].confidence, fps, low")


def test_a_clean_document_has_no_note_and_keeps_dates_as_text():
    encoded = encode({"at": dt.datetime(2026, 12, 8, tzinfo=dt.timezone.utc), "n": 1}, indent=2)

    assert encoded.note() is None
    assert json.loads(encoded.text) == {"at": "2026-12-08 00:00:00+00:00", "n": 1}


def test_a_note_names_a_few_paths_and_counts_them_all():
    encoded = encode([float("nan")] * 5)
    assert encoded.note().startswith("5 number(s)") and encoded.note().endswith("[0], [1], [2], ...")
