# SPDX-License-Identifier: Apache-2.0
"""Tests for the query printers: parse(format(q)) == q, and the text of nextLinks."""

from __future__ import annotations

import dataclasses
import keyword
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import parse_qsl

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.query.ast import (
    BinOp,
    BoolOp,
    Call,
    Compare,
    Constant,
    Expand,
    Expr,
    In,
    Lambda,
    Negate,
    Not,
    OrderBy,
    Path,
    Query,
    ResultFormat,
)
from hub.query.links import (
    format_expand,
    format_expand_query,
    format_expr,
    format_orderby,
    format_query,
    format_select,
    next_page,
)
from hub.query.parse import (
    BINARY,
    DIRECTIONS,
    WORD_CONSTANTS,
    parse_expand,
    parse_filter,
    parse_orderby,
    parse_query,
    parse_select,
)

DEFAULT_TOP, MAX_TOP = 100, 1000
FAST = settings(
    max_examples=300,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)


def _parse_link(text: str) -> Query:
    """What the server reads from a link's query string (form-decoded, as aiohttp does)."""
    return parse_query(dict(parse_qsl(text, keep_blank_values=True)), DEFAULT_TOP, MAX_TOP)


# ---- examples ----------------------------------------------------------------------------------

POLY = "POLYGON ((9.9 53.5, 10.1 53.5, 10.1 53.6, 9.9 53.5))"

# filter text -> canonical printed text
PRINTED: list[tuple[str, str]] = [
    ("a eq 1 or b eq 2 and not c eq 3", "a eq 1 or b eq 2 and not c eq 3"),
    ("(a or b) and c", "(a or b) and c"),
    ("a or (b or c)", "a or (b or c)"),
    ("(a or b) or c", "a or b or c"),
    ("not (a or b)", "not (a or b)"),
    ("(not a) eq b", "(not a) eq b"),
    ("a eq not b", "a eq (not b)"),
    ("not not a", "not not a"),
    ("a sub (b sub c)", "a sub (b sub c)"),
    ("(a add b) mul c", "(a add b) mul c"),
    ("a add b mul c", "a add b mul c"),
    ("-(1)", "-(1)"),
    ("- a", "-a"),
    ("-(a add b)", "-(a add b)"),
    ("-1", "-1"),
    ("x in (1,'a')", "x in (1, 'a')"),
    ("(a eq b) in (true)", "(a eq b) in (true)"),
    ("a eq (b in (1))", "a eq b in (1)"),
    ("'it''s'", "'it''s'"),
    ("1.5E3", "1500.0"),
    ("1e20", "1e+20"),
    ("TRUE", "true"),
    ("NULL", "null"),
    ("2021-05-15T10:15:20.5+02:00", "2021-05-15T08:15:20.500000Z"),
    ("2021-05-15", "2021-05-15"),
    ("10:15", "10:15:00"),
    ("duration'P1DT2H30M'", "duration'P1DT2H30M'"),
    ("duration'-PT0.25S'", "duration'-PT0.25S'"),
    ("duration'P2W'", "duration'P14D'"),
    ("geometry'POINT(1 2)'", "geography'POINT(1 2)'"),
    ("GEO.Intersects(location,geography'POINT(1 2)')", "geo.intersects(location, geography'POINT(1 2)')"),
    ("now( )", "now()"),
    ("Datastreams/any(d:d/ObservedProperty/name eq 'NO2')",
     "Datastreams/any(d: d/ObservedProperty/name eq 'NO2')"),
    ("Datastreams/any()", "Datastreams/any()"),
    ("Things/all(t: t/Datastreams/any(d: d/name eq t/name))",
     "Things/all(t: t/Datastreams/any(d: d/name eq t/name))"),
    ("@iot.id eq 1", "@iot.id eq 1"),
    ("properties/0 eq 1", "properties/0 eq 1"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "printed"), PRINTED)
def test_format_expr(text: str, printed: str) -> None:
    expr = parse_filter(text)
    assert format_expr(expr) == printed
    assert parse_filter(printed) == expr


def test_format_lists() -> None:
    assert format_orderby(parse_orderby("phenomenonTime DESC, @iot.id asc")) == "phenomenonTime desc,@iot.id"
    assert format_select(parse_select(" @iot.id , properties/x ")) == "@iot.id,properties/x"
    given = "Datastreams($filter=name eq 'a;b';$expand=Observations($orderby=phenomenonTime desc;$top=1)),L"
    expand = parse_expand(given, DEFAULT_TOP, MAX_TOP)
    text = "Datastreams($filter=name eq 'a;b';$expand=Observations($top=1;$orderby=phenomenonTime desc)),L"
    assert format_expand(expand) == text
    assert format_expand_query(Query(top=1, top_given=True, count=True)) == "$top=1;$count=true"
    assert format_expand_query(Query()) == ""


QUERY_STRINGS: list[tuple[dict[str, str], str]] = [
    ({}, ""),
    ({"$top": "2", "$skip": "4", "$count": "true"}, "$top=2&$skip=4&$count=true"),
    ({"$filter": "name eq 'a b'"}, "$filter=name%20eq%20'a%20b'"),
    ({"$filter": "name eq 'a&b+c#d%e'"}, "$filter=name%20eq%20'a%26b%2Bc%23d%25e'"),
    ({"$filter": "t ge 2021-05-15T10:15:20+02:00"}, "$filter=t%20ge%202021-05-15T08:15:20Z"),
    ({"$select": "@iot.id,name", "$orderby": "@iot.id desc"}, "$orderby=@iot.id%20desc&$select=@iot.id,name"),
    ({"$expand": "Locations,Datastreams/Observations($orderby=phenomenonTime desc;$top=1)"},
     "$expand=Locations,Datastreams/Observations($top=1;$orderby=phenomenonTime%20desc)"),
    ({"$resultFormat": "csv", "$skiptoken": "2021-05-15T10:15:20Z~17"},
     "$resultFormat=CSV&$skiptoken=2021-05-15T10:15:20Z~17"),
    ({"$filter": f"st_within(Locations/location, geography'{POLY}')"},
     "$filter=st_within(Locations/location,%20geography'POLYGON%20((9.9%2053.5,%2010.1%2053.5,"
     "%2010.1%2053.6,%209.9%2053.5))')"),
]  # fmt: skip


@pytest.mark.parametrize(("params", "text"), QUERY_STRINGS)
def test_format_query(params: dict[str, str], text: str) -> None:
    query = parse_query(params, DEFAULT_TOP, MAX_TOP)
    assert format_query(query) == text
    assert _parse_link(text) == query


def test_next_page_keeps_every_option() -> None:
    params = {
        "$filter": "name eq 'x'",
        "$orderby": "phenomenonTime desc",
        "$select": "@iot.id",
        "$expand": "Locations($top=1)",
        "$count": "true",
        "$resultFormat": "dataArray",
        "$skiptoken": "t~1",
    }
    query = parse_query(params, DEFAULT_TOP, MAX_TOP)
    following = next_page(query)
    assert following.skip == DEFAULT_TOP
    assert following.top == DEFAULT_TOP
    assert following.top_given
    assert (following.filter, following.orderby, following.select, following.expand) == (
        query.filter,
        query.orderby,
        query.select,
        query.expand,
    )
    assert (following.count, following.result_format, following.skiptoken) == (True, "dataArray", "t~1")
    link = format_query(following)
    assert link.startswith(f"$top={DEFAULT_TOP}&$skip={DEFAULT_TOP}&")  # literal, for Masterportal
    assert _parse_link(link) == following


# ---- round trip over random ASTs -----------------------------------------------------------------

# Words the parser reads as something other than a member name where a value is expected.
_RESERVED = {*BINARY, *DIRECTIONS, *WORD_CONSTANTS, "not", "any", "all", "duration", "geography", "geometry"}
_first = st.from_regex(r"(@|[A-Za-z_])[A-Za-z0-9_.@-]{0,8}", fullmatch=True)
names = _first.filter(lambda s: s.lower() not in _RESERVED and not keyword.iskeyword(s))
segments = st.one_of(_first, st.from_regex(r"[0-9]{1,3}", fullmatch=True), st.sampled_from(["eq", "any"]))
paths = st.builds(lambda first, rest: Path((first, *rest)), names, st.lists(segments, max_size=3))
datetimes = st.datetimes(timezones=st.just(UTC)).map(lambda d: d.astimezone(UTC))
constants = st.one_of(
    st.builds(Constant, st.text(max_size=10), st.just("string")),
    st.builds(Constant, st.integers(-(10**20), 10**20), st.just("int")),
    st.builds(Constant, st.floats(allow_nan=False, allow_infinity=False), st.just("float")),
    st.builds(Constant, st.booleans(), st.just("bool")),
    st.just(Constant(None, "null")),
    st.builds(Constant, datetimes, st.just("datetime")),
    st.builds(Constant, st.dates(), st.just("date")),
    st.builds(Constant, st.times(), st.just("time")),
    st.builds(Constant, st.timedeltas(timedelta(days=-(10**6)), timedelta(days=10**6)), st.just("duration")),
    st.builds(Constant, st.text(max_size=20), st.just("geography")),
)


def _lambda(path: Path, op: str, predicate_leaf: Expr, segments_: tuple[str, ...]) -> Expr:
    predicate = Compare("eq", Path(segments_, "v"), predicate_leaf)
    return Lambda(path, "all" if op == "all" else "any", "v", predicate)


lambdas = st.one_of(
    st.builds(
        _lambda, paths, st.sampled_from(["any", "all"]), constants, st.lists(names, max_size=2).map(tuple)
    ),
    st.builds(lambda path: Lambda(path, "any", "", Constant(True, "bool")), paths),
)
leaves = st.one_of(constants, paths, lambdas)


def _extend(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    two = st.tuples(children, children)
    return st.one_of(
        st.builds(lambda op, ab: BoolOp(op, *ab), st.sampled_from(["and", "or"]), two),
        st.builds(
            lambda op, ab: Compare(op, *ab), st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"]), two
        ),
        st.builds(lambda op, ab: BinOp(op, *ab), st.sampled_from(["add", "sub", "mul", "div", "mod"]), two),
        st.builds(Not, children),
        st.builds(Negate, children),
        st.builds(Call, names.map(str.lower), st.lists(children, max_size=3).map(tuple)),
        st.builds(In, children, st.lists(children, min_size=1, max_size=3).map(tuple)),
    )


# At most 16 leaves: no `and`/`or` run is long enough to be rebalanced by the parser.
expressions = st.recursive(leaves, _extend, max_leaves=16)
small_expressions = st.recursive(leaves, _extend, max_leaves=5)  # inside random queries


@FAST
@given(expressions)
def test_expression_round_trip(expr: Expr) -> None:
    assert parse_filter(format_expr(expr)) == expr


def _queries(depth: int) -> st.SearchStrategy[Query]:
    expand: st.SearchStrategy[tuple[Expand, ...]] = st.just(())
    if depth:
        item = st.builds(Expand, st.lists(names, min_size=1, max_size=2).map(tuple), _queries(depth - 1))
        expand = st.lists(item, max_size=2).map(tuple)
    return st.builds(
        _query,
        st.one_of(st.none(), st.integers(0, MAX_TOP)),
        st.integers(0, 10**6),
        st.booleans(),
        st.one_of(st.none(), small_expressions),
        st.lists(st.builds(OrderBy, small_expressions, st.booleans()), max_size=2).map(tuple),
        st.one_of(st.none(), st.lists(st.builds(Path, st.lists(_first, min_size=1, max_size=2).map(tuple)),
                                      min_size=1, max_size=3).map(tuple)),
        expand,
    )  # fmt: skip


RESULT_FORMATS: list[ResultFormat | None] = [None, "dataArray", "CSV", "GeoJSON"]


def _query(
    top: int | None,
    skip: int,
    count: bool,
    filter_: Expr | None,
    orderby: tuple[OrderBy, ...],
    select: tuple[Path, ...] | None,
    expand: tuple[Expand, ...],
) -> Query:
    return Query(
        top=DEFAULT_TOP if top is None else top,
        top_given=top is not None,
        skip=skip,
        count=count,
        filter=filter_,
        orderby=orderby,
        select=select,
        expand=expand,
    )


@settings(FAST, max_examples=100)  # nested random queries are slow to generate, not to parse
@given(_queries(2), st.sampled_from(RESULT_FORMATS), st.one_of(st.none(), st.text()))
def test_query_round_trip(query: Query, result_format: ResultFormat | None, skiptoken: str | None) -> None:
    query = dataclasses.replace(query, result_format=result_format, skiptoken=skiptoken)
    assert _parse_link(format_query(query)) == query
    if query.expand:
        assert parse_expand(format_expand(query.expand), DEFAULT_TOP, MAX_TOP) == query.expand
    assert _parse_link(format_query(next_page(query))) == next_page(query)


# Texts real clients send (STA-NOTES): parse, print, parse again.
CLIENT_FILTERS = [
    f"st_intersects(Thing/Locations/location, geography'{POLY}')",
    "location/type eq 'Point' or location/geometry/type eq 'Point'",
    "phenomenonTime ge 2021-05-15T00:00:00.000Z and phenomenonTime le 2021-05-16T00:00:00.000Z",
    f"Datastreams/ObservedProperty/name eq 'NO2' and st_within(Locations/location, geography'{POLY}')",
    "startswith(name,'Wind')",
    "@iot.id eq 1 or " * 40 + "@iot.id eq 2",
    "not (a eq 1 or b eq 2) and Datastreams/any(d: d/properties/serviceName eq 'x')",
]


@FAST
@given(st.sampled_from(CLIENT_FILTERS), st.sampled_from(["", "phenomenonTime desc", "@iot.id,name asc"]))
def test_parsed_examples_round_trip(text: str, orderby: str) -> None:
    params = {
        "$filter": text,
        "$expand": "Locations,Datastreams/Observations($orderby=phenomenonTime desc;$top=1)",
    }
    if orderby:
        params["$orderby"] = orderby
    query = parse_query(params, DEFAULT_TOP, MAX_TOP)
    assert _parse_link(format_query(query)) == query


def test_constants_print_back() -> None:
    values: list[Constant] = [
        Constant(datetime(1, 1, 1, tzinfo=UTC), "datetime"),
        Constant(date(9999, 12, 31), "date"),
        Constant(time(0, 0, 0, 1), "time"),
        Constant(timedelta(0), "duration"),
        Constant(-0.0, "float"),
        Constant(5e-324, "float"),
        Constant(-(10**30), "int"),
    ]
    for value in values:
        assert parse_filter(format_expr(value)) == value
        assert parse_filter(format_expr(Negate(value))) == Negate(value)
