# SPDX-License-Identifier: Apache-2.0
"""Fuzzing the query parser: any text gives a result or a QueryError with a position, quickly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.query.ast import Expand, OrderBy, Path, Query
from hub.query.parse import QueryError, parse_expand, parse_filter, parse_orderby, parse_query, parse_select

DEFAULT_TOP, MAX_TOP = 100, 1000
FUZZ = settings(
    max_examples=300,
    deadline=timedelta(seconds=1),
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)

# Pieces of the grammar, glued at random into near-valid and broken texts.
TOKENS = [
    "name", "@iot.id", "id", "Datastreams", "Observations", "properties/x", "location/geometry/type",
    "d", "d/name", "eq", "ne", "gt", "ge", "lt", "le", "and", "or", "not", "AND", "Not", "in",
    "add", "sub", "mul", "div", "mod", "asc", "desc", "DESC", "true", "false", "null",
    "any", "all", "any(d:", "/any(", "/all(d: ", "(", ")", "((", "))", ",", "/", ":", ";", "=", "-", "--",
    "$", "$top", "$filter=", "$expand=", "$orderby=", "$select=", "$skip=", "$count=", "$top=1", ";$top=",
    "$count=true", "'", "''", "'a'", "'it''s'", "'a;b)'",
    "0", "1", "-1", "1.5", "1e3", "1e999", "007", "9" * 30,
    "2021-05-15T10:15:20Z", "2021-05-15T10:15:20.123+02:00", "2021-05-15", "2021-13-45", "10:15:20", "99:99",
    "duration'P1D'", "duration'P1M'", "duration'", "duration'PT'", "geography'POINT(1 2)'", "geometry'",
    "geo.intersects(", "st_within(", "now()", "substringof(",
    "Locations($top=1)", "Datastreams/Observations(",
    " ", "\n", "\t", "#", "&", "+", "*", "\"", "\\", "%", "é", "\x00", "\u2028",
]  # fmt: skip
soups = st.lists(st.sampled_from(TOKENS), max_size=40).flatmap(
    lambda parts: st.sampled_from([" ".join(parts), "".join(parts)])
)
texts = st.one_of(st.text(max_size=200), soups, st.text(alphabet="()'$;=,/ a", max_size=200))
nested = st.tuples(st.sampled_from(["(", "not ", "-", "f(", "A/any(a:", "A($expand=", "A($filter=("]),
                   st.integers(0, 400))  # fmt: skip


def _check(parse: Callable[[str], object], text: str, expected: type | tuple[type, ...]) -> None:
    error: QueryError | None = None
    try:
        result = parse(text)
    except QueryError as caught:
        error = caught
    if error is None:
        assert isinstance(result, expected)
        return
    assert error.position is not None
    assert 0 <= error.position <= len(text)
    assert f"at position {error.position}" in str(error)


def _expand(text: str) -> tuple[Expand, ...]:
    return parse_expand(text, DEFAULT_TOP, MAX_TOP)


def _all_items(kind: type) -> Callable[[object], bool]:
    return lambda value: isinstance(value, tuple) and all(isinstance(v, kind) for v in value)


@FUZZ
@given(texts)
def test_filter_fuzz(text: str) -> None:
    _check(parse_filter, text, object)


@FUZZ
@given(texts)
def test_orderby_fuzz(text: str) -> None:
    _check(lambda t: _all_items(OrderBy)(parse_orderby(t)) or None, text, bool)


@FUZZ
@given(texts)
def test_select_fuzz(text: str) -> None:
    _check(lambda t: _all_items(Path)(parse_select(t)) or None, text, bool)


@FUZZ
@given(texts)
def test_expand_fuzz(text: str) -> None:
    _check(lambda t: _all_items(Expand)(_expand(t)) or None, text, bool)


@FUZZ
@given(nested)
def test_deep_nesting_fuzz(piece: tuple[str, int]) -> None:
    opening, depth = piece
    text = opening * depth + "a eq 1" + ")" * depth
    _check(parse_filter, text, object)
    _check(_expand, opening * depth + "B" + ")" * depth, tuple)


OPTION_NAMES = st.sampled_from(
    ["$filter", "$orderby", "$select", "$expand", "$top", "$skip", "$count", "$resultFormat", "$skiptoken",
     "$id", "$format", " $top ", "$TOP", "$foo", "$", "top", "filter", ""]
)  # fmt: skip


@FUZZ
@given(st.dictionaries(OPTION_NAMES, texts, max_size=4))
def test_query_fuzz(params: dict[str, str]) -> None:
    message = ""
    try:
        query = parse_query(params, DEFAULT_TOP, MAX_TOP)
    except QueryError as caught:
        message = str(caught)
    if message:
        assert message.startswith("$")
        return
    assert isinstance(query, Query)
    assert 0 <= query.top <= MAX_TOP
