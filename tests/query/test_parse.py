# SPDX-License-Identifier: Apache-2.0
"""Tests for the query-option parser (OGC 18-088 §9.3, OData 4.0 URL conventions)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from multidict import MultiDict

from hub.errors import BadRequestError
from hub.query.ast import (
    BinOp,
    BoolOp,
    Call,
    Compare,
    Constant,
    ConstantKind,
    Expand,
    Expr,
    In,
    Lambda,
    Negate,
    Not,
    OrderBy,
    Path,
    Query,
)
from hub.query.parse import (
    MAX_NESTING,
    QueryError,
    parse_expand,
    parse_filter,
    parse_orderby,
    parse_query,
    parse_select,
)

DEFAULT_TOP, MAX_TOP = 100, 1000

# ---- builders: short names keep the tables readable ------------------------------------------------


def p(text: str, variable: str | None = None) -> Path:
    """`p("a/b")` -> Path(("a", "b")); `p("", "d")` -> the bare lambda variable `d`."""
    return Path(tuple(text.split("/")) if text else (), variable)


_KINDS: list[tuple[type, ConstantKind]] = [
    (bool, "bool"), (int, "int"), (float, "float"), (str, "string"), (type(None), "null"),
    (datetime, "datetime"), (date, "date"), (time, "time"), (timedelta, "duration"),
]  # fmt: skip


def c(value: object) -> Constant:
    """A constant, its kind from the Python type."""
    return Constant(value, next(k for t, k in _KINDS if isinstance(value, t)))


def geo(wkt: str) -> Constant:
    return Constant(wkt, "geography")


def eq(a: Expr, b: Expr) -> Compare:
    return Compare("eq", a, b)


def cmp(op: Any, a: Expr, b: Expr) -> Compare:
    return Compare(op, a, b)


def and_(a: Expr, b: Expr) -> BoolOp:
    return BoolOp("and", a, b)


def or_(a: Expr, b: Expr) -> BoolOp:
    return BoolOp("or", a, b)


def op(name: Any, a: Expr, b: Expr) -> BinOp:
    return BinOp(name, a, b)


def call(name: str, *args: Expr) -> Call:
    return Call(name, args)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


a, b, x = p("a"), p("b"), p("x")
NAME = p("name")
PT = p("phenomenonTime")
POLY = "POLYGON((9.9 53.5, 10.1 53.5, 10.1 53.6, 9.9 53.5))"

# ---- $filter: text -> expression -------------------------------------------------------------------

PRECEDENCE: list[tuple[str, Expr]] = [
    ("a eq 1 or b eq 2 and not x eq 3", or_(eq(a, c(1)), and_(eq(b, c(2)), Not(eq(x, c(3)))))),
    ("a or b or x", or_(or_(a, b), x)),
    ("a and b and x", and_(and_(a, b), x)),
    ("a and b or x and a", or_(and_(a, b), and_(x, a))),
    ("a or b and x", or_(a, and_(b, x))),
    ("(a or b) and x", and_(or_(a, b), x)),
    ("not a eq 1 and b", and_(Not(eq(a, c(1))), b)),
    ("not a and b", and_(Not(a), b)),
    ("not (a or b)", Not(or_(a, b))),
    ("not(a)", Not(a)),
    ("not not a", Not(Not(a))),
    ("a eq not b", eq(a, Not(b))),
    ("a add b mul x eq 7", eq(op("add", a, op("mul", b, x)), c(7))),
    ("(a add b) mul x", op("mul", op("add", a, b), x)),
    ("a sub b sub x", op("sub", op("sub", a, b), x)),
    ("a sub (b sub x)", op("sub", a, op("sub", b, x))),
    ("a div b mod x", op("mod", op("div", a, b), x)),
    ("a mul b add x div a", op("add", op("mul", a, b), op("div", x, a))),
    ("a lt b eq true", eq(cmp("lt", a, b), c(True))),
    ("a eq b eq x", eq(eq(a, b), x)),
    ("a ne 1 and b ge 2 or x le 3", or_(and_(cmp("ne", a, c(1)), cmp("ge", b, c(2))), cmp("le", x, c(3)))),
    ("a gt 1", cmp("gt", a, c(1))),
    ("-a mul b", op("mul", Negate(a), b)),
    ("- -a", Negate(Negate(a))),
    ("-(1)", Negate(c(1))),
    ("- 1", Negate(c(1))),
    ("-1", c(-1)),
    ("a eq -1", eq(a, c(-1))),
    ("a sub -1.5", op("sub", a, c(-1.5))),
    ("a add b in (1, 2)", In(op("add", a, b), (c(1), c(2)))),
    ("a in (1) eq true", eq(In(a, (c(1),)), c(True))),
    ("a in (1, 2) and b", and_(In(a, (c(1), c(2))), b)),
    ("((((a))))", a),
    ("a EQ 1 AND NOT b Ne 2 Or x GT 3", or_(and_(eq(a, c(1)), Not(cmp("ne", b, c(2)))), cmp("gt", x, c(3)))),
]

LITERALS: list[tuple[str, Constant]] = [
    ("'abc'", c("abc")),
    ("'it''s'", c("it's")),
    ("''", c("")),
    ("''''", c("'")),
    ("'a;b,c)(/'", c("a;b,c)(/")),
    ("'Straße'", c("Straße")),
    ("42", c(42)),
    ("0", c(0)),
    ("007", c(7)),
    ("-7", c(-7)),
    ("12345678901234567890", c(12345678901234567890)),
    ("1.5", c(1.5)),
    ("-0.25", c(-0.25)),
    ("1e3", c(1000.0)),
    ("2.5E-3", c(0.0025)),
    ("1e+2", c(100.0)),
    ("true", c(True)),
    ("false", c(False)),
    ("TRUE", c(True)),
    ("null", c(None)),
    ("Null", c(None)),
    ("2021-05-15T10:15:20Z", c(utc(2021, 5, 15, 10, 15, 20))),
    ("2021-05-15T10:15:20.123Z", c(utc(2021, 5, 15, 10, 15, 20, 123000))),
    ("2021-05-15T10:15:20.1234567Z", c(utc(2021, 5, 15, 10, 15, 20, 123456))),
    ("2021-05-15T10:15:20+02:00", c(utc(2021, 5, 15, 8, 15, 20))),
    ("2021-05-15T10:15:20-05:30", c(utc(2021, 5, 15, 15, 45, 20))),
    ("2021-05-15T10:15:20+0200", c(utc(2021, 5, 15, 8, 15, 20))),
    ("2021-05-15T10:15:20 02:00", c(utc(2021, 5, 15, 8, 15, 20))),  # '+' decoded to a space
    ("2021-05-15T10:15:20+00:00", c(utc(2021, 5, 15, 10, 15, 20))),
    ("2021-05-15T10:15Z", c(utc(2021, 5, 15, 10, 15))),
    ("2021-05-15t10:15:20z", c(utc(2021, 5, 15, 10, 15, 20))),
    ("2021-05-15", c(date(2021, 5, 15))),
    ("10:15:20", c(time(10, 15, 20))),
    ("10:15", c(time(10, 15))),
    ("10:15:20.5", c(time(10, 15, 20, 500000))),
    ("duration'P1DT2H'", c(timedelta(days=1, hours=2))),
    ("duration'PT0.5S'", c(timedelta(seconds=0.5))),
    ("duration'-P1D'", c(timedelta(days=-1))),
    ("duration'P2W'", c(timedelta(weeks=2))),
    ("duration'PT1M'", c(timedelta(minutes=1))),
    ("duration'P0Y0M1D'", c(timedelta(days=1))),
    ("duration'p1dt1h1m1s'", c(timedelta(days=1, hours=1, minutes=1, seconds=1))),
    ("DURATION'P1D'", c(timedelta(days=1))),
    ("geography'POINT(1 2)'", geo("POINT(1 2)")),
    ("geometry'POINT(1 2)'", geo("POINT(1 2)")),
    ("Geography'SRID=4326;POINT (1 2)'", geo("SRID=4326;POINT (1 2)")),
    (f"geography'{POLY}'", geo(POLY)),
]

FUNCTIONS: list[tuple[str, Expr]] = [
    ("now()", call("now")),
    ("now ( )", call("now")),
    ("substringof('a', name)", call("substringof", c("a"), NAME)),
    ("startswith(name,'Wind')", call("startswith", NAME, c("Wind"))),
    ("endswith(name, 'x') eq false", eq(call("endswith", NAME, c("x")), c(False))),
    ("length(name) gt 3", cmp("gt", call("length", NAME), c(3))),
    ("indexof('Wind Speed','Speed') eq 5", eq(call("indexof", c("Wind Speed"), c("Speed")), c(5))),
    ("substring(name,1)", call("substring", NAME, c(1))),
    ("substring(name, 1, 2)", call("substring", NAME, c(1), c(2))),
    ("concat(concat(a, ' '), b)", call("concat", call("concat", a, c(" ")), b)),
    ("tolower(name) eq 'x'", eq(call("tolower", NAME), c("x"))),
    ("round(result) eq 1", eq(call("round", p("result")), c(1))),
    ("year(phenomenonTime) eq 2021", eq(call("year", PT), c(2021))),
    ("date(phenomenonTime) eq 2021-05-15", eq(call("date", PT), c(date(2021, 5, 15)))),
    ("time(phenomenonTime) eq 10:15:20", eq(call("time", PT), c(time(10, 15, 20)))),
    ("fractionalseconds(phenomenonTime) gt 0.5", cmp("gt", call("fractionalseconds", PT), c(0.5))),
    (
        "phenomenonTime gt now() sub duration'P1D'",
        cmp("gt", PT, op("sub", call("now"), c(timedelta(days=1)))),
    ),
    (
        "geo.intersects(location, geography'POINT(1 2)')",
        call("geo.intersects", p("location"), geo("POINT(1 2)")),
    ),
    (
        "Geo.Distance(location, geography'POINT(1 2)') lt 5",
        cmp("lt", call("geo.distance", p("location"), geo("POINT(1 2)")), c(5)),
    ),
    ("geo.length(observedArea) gt 1", cmp("gt", call("geo.length", p("observedArea")), c(1))),
    ("ST_WITHIN(location, geometry'POINT(1 2)')", call("st_within", p("location"), geo("POINT(1 2)"))),
    (
        "st_relate(location, geography'POINT(1 2)', 'T********')",
        call("st_relate", p("location"), geo("POINT(1 2)"), c("T********")),
    ),
    ("not startswith(name, 'x')", Not(call("startswith", NAME, c("x")))),
    ("-round(result)", Negate(call("round", p("result")))),
]

LAMBDAS: list[tuple[str, Expr]] = [
    (
        "Datastreams/any(d: d/ObservedProperty/name eq 'NO2')",
        Lambda(p("Datastreams"), "any", "d", eq(p("ObservedProperty/name", "d"), c("NO2"))),
    ),
    (
        "Datastreams/all(d:d/name ne 'x')",
        Lambda(p("Datastreams"), "all", "d", cmp("ne", p("name", "d"), c("x"))),
    ),
    ("Datastreams/ANY(d: d/name eq 'x')", Lambda(p("Datastreams"), "any", "d", eq(p("name", "d"), c("x")))),
    (
        "Thing/Datastreams/any(ds: ds/@iot.id eq 1)",
        Lambda(p("Thing/Datastreams"), "any", "ds", eq(p("@iot.id", "ds"), c(1))),
    ),
    ("Datastreams/any()", Lambda(p("Datastreams"), "any", "", c(True))),
    (
        "Things/any(t: t/Datastreams/any(d: d/name eq t/name))",
        Lambda(
            p("Things"),
            "any",
            "t",
            Lambda(p("Datastreams", "t"), "any", "d", eq(p("name", "d"), p("name", "t"))),
        ),
    ),
    ("Datastreams/any(d: d eq 1)", Lambda(p("Datastreams"), "any", "d", eq(p("", "d"), c(1)))),
    ("Datastreams/any(d: name eq 'x')", Lambda(p("Datastreams"), "any", "d", eq(NAME, c("x")))),
    (
        "not Datastreams/any(d: d/name eq 'x') and a",
        and_(Not(Lambda(p("Datastreams"), "any", "d", eq(p("name", "d"), c("x")))), a),
    ),
    ("Datastreams/any eq 1", eq(p("Datastreams/any"), c(1))),  # `any` without '(' is a name
]

PATHS: list[tuple[str, Expr]] = [
    ("Datastreams/properties/serviceName eq 'x'", eq(p("Datastreams/properties/serviceName"), c("x"))),
    ("location/geometry/type eq 'Point'", eq(p("location/geometry/type"), c("Point"))),
    ("@iot.id eq 5", eq(p("@iot.id"), c(5))),
    ("id eq 5", eq(p("id"), c(5))),
    ("result gt 3.5", cmp("gt", p("result"), c(3.5))),
    ("parameters/qualityFlag eq 'ok'", eq(p("parameters/qualityFlag"), c("ok"))),
    ("Things/name eq 'x'", eq(p("Things/name"), c("x"))),
    ("properties/0 eq 1", eq(p("properties/0"), c(1))),
    ("properties/Straße eq 1", eq(p("properties/Straße"), c(1))),
    ("properties/my-key eq 1", eq(p("properties/my-key"), c(1))),
    ("properties/_x_1 eq 1", eq(p("properties/_x_1"), c(1))),
    ("properties/eq eq 1", eq(p("properties/eq"), c(1))),  # keywords are names after '/'
    ("properties/true eq 1", eq(p("properties/true"), c(1))),
    ("Thing/Locations/location", p("Thing/Locations/location")),
    ("x in ('a', 'b')", In(x, (c("a"), c("b")))),
    ("@iot.id in (1,2,3)", In(p("@iot.id"), (c(1), c(2), c(3)))),
]

WHITESPACE: list[tuple[str, Expr]] = [
    ("\n  name\teq\r\n 'x'  ", eq(NAME, c("x"))),
    ("name  eq  'x'", eq(NAME, c("x"))),
    ("\tnot\n(a)\n", Not(a)),
    (
        "geo.intersects(\n  location,\n  geography'POINT(1 2)'\n)",
        call("geo.intersects", p("location"), geo("POINT(1 2)")),
    ),
    (
        "Datastreams / any ( d : d / name eq 'x' )",
        Lambda(p("Datastreams"), "any", "d", eq(p("name", "d"), c("x"))),
    ),
    ("x in(1,2)", In(x, (c(1), c(2)))),
    ("(a)eq(1)", eq(a, c(1))),
    ("'a'eq'b'", eq(c("a"), c("b"))),
]

# The filters real clients send (STA-NOTES, "What viewers send").
CLIENTS: list[tuple[str, Expr]] = [
    # Masterportal
    (f"st_intersects(Locations/location, geography'{POLY}')",
     call("st_intersects", p("Locations/location"), geo(POLY))),
    (f"st_intersects(Thing/Locations/location, geography'{POLY}')",
     call("st_intersects", p("Thing/Locations/location"), geo(POLY))),
    ("@iot.id eq 12 or @iot.id eq 13", or_(eq(p("@iot.id"), c(12)), eq(p("@iot.id"), c(13)))),
    # QGIS
    ("location/type eq 'Point' or location/geometry/type eq 'Point'",
     or_(eq(p("location/type"), c("Point")), eq(p("location/geometry/type"), c("Point")))),
    ("feature/type eq 'Polygon' or feature/geometry/type eq 'Polygon'",
     or_(eq(p("feature/type"), c("Polygon")), eq(p("feature/geometry/type"), c("Polygon")))),
    ("observedArea/type eq 'Polygon'", eq(p("observedArea/type"), c("Polygon"))),
    (f"geo.intersects(location, geography'{POLY}')", call("geo.intersects", p("location"), geo(POLY))),
    # Grafana
    ("phenomenonTime ge 2021-05-15T00:00:00.000Z and phenomenonTime le 2021-05-16T00:00:00.000Z",
     and_(cmp("ge", PT, c(utc(2021, 5, 15))), cmp("le", PT, c(utc(2021, 5, 16))))),
    ("startswith(name,'Wind')", call("startswith", NAME, c("Wind"))),
    # VC Map
    (f"Datastreams/ObservedProperty/name eq 'NO2' and st_within(Locations/location, geography'{POLY}')",
     and_(eq(p("Datastreams/ObservedProperty/name"), c("NO2")),
          call("st_within", p("Locations/location"), geo(POLY)))),
    ("Datastreams/ObservedProperty/name eq 'NO2'\n    and st_within(Locations/location,\n"
     "      geography'POLYGON ((1 2, 3 4, 5 6, 1 2))')",
     and_(eq(p("Datastreams/ObservedProperty/name"), c("NO2")),
          call("st_within", p("Locations/location"), geo("POLYGON ((1 2, 3 4, 5 6, 1 2))")))),
    # Hamburg
    ("Datastreams/properties/serviceName eq 'HH_STA_traffic_lights' and properties/layerName eq 'x'",
     and_(eq(p("Datastreams/properties/serviceName"), c("HH_STA_traffic_lights")),
          eq(p("properties/layerName"), c("x")))),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"), PRECEDENCE + LITERALS + FUNCTIONS + LAMBDAS + PATHS + WHITESPACE + CLIENTS
)
def test_filter(text: str, expected: Expr) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(("text", "expected"), LITERALS)
def test_literal_in_comparison(text: str, expected: Constant) -> None:
    assert parse_filter(f"x eq {text}") == eq(x, expected)


def test_datetime_is_aware_utc() -> None:
    value = parse_filter("2021-05-15T10:15:20+02:00")
    assert isinstance(value, Constant)
    assert isinstance(value.value, datetime)
    assert value.value.tzinfo is UTC


def _height(node: object) -> int:
    """The height of an expression tree (a constant or path is 1)."""
    if not dataclasses.is_dataclass(node) or isinstance(node, Constant | Path):
        return 1 if node is not None else 0
    children: list[object] = []
    for item in dataclasses.fields(node):
        value = getattr(node, item.name)
        children += value if isinstance(value, tuple) else [value]
    return 1 + max((_height(child) for child in children), default=0)


def test_long_or_chain_is_balanced() -> None:
    """Hundreds of `id eq N or ...` (id lists) stay shallow for the compiler."""
    text = " or ".join(f"@iot.id eq {i}" for i in range(2000))
    expr = parse_filter(text)
    assert _height(expr) <= 15
    leaves: list[Expr] = []
    stack: list[Expr] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, BoolOp):
            stack += [node.right, node.left]
        else:
            leaves.append(node)
    assert leaves == [eq(p("@iot.id"), c(i)) for i in range(2000)]


def test_short_chains_stay_left_associative() -> None:
    text = " and ".join(f"a eq {i}" for i in range(16))
    expr = parse_filter(text)
    for i in reversed(range(1, 16)):
        assert isinstance(expr, BoolOp)
        assert expr.right == eq(a, c(i))
        expr = expr.left
    assert expr == eq(a, c(0))


# ---- $orderby, $select -------------------------------------------------------------------------

ORDERBY: list[tuple[str, tuple[OrderBy, ...]]] = [
    ("name", (OrderBy(NAME),)),
    ("name asc", (OrderBy(NAME),)),
    ("phenomenonTime desc", (OrderBy(PT, True),)),
    ("phenomenonTime DESC", (OrderBy(PT, True),)),
    ("phenomenonTime Asc, @iot.id Desc", (OrderBy(PT), OrderBy(p("@iot.id"), True))),
    ("@iot.id", (OrderBy(p("@iot.id")),)),
    ("id desc,name", (OrderBy(p("id"), True), OrderBy(NAME))),
    ("Datastream/Thing/name", (OrderBy(p("Datastream/Thing/name")),)),
    ("Observations/phenomenonTime", (OrderBy(p("Observations/phenomenonTime")),)),  # VC Map
    ("length(name) desc", (OrderBy(call("length", NAME), True),)),
    (
        "geo.distance(location, geography'POINT(1 2)')",
        (OrderBy(call("geo.distance", p("location"), geo("POINT(1 2)"))),),
    ),
    ("result add 1 desc", (OrderBy(op("add", p("result"), c(1)), True),)),
    ("\n  phenomenonTime\n  desc\n", (OrderBy(PT, True),)),
    ("properties/asc desc", (OrderBy(p("properties/asc"), True),)),
]


@pytest.mark.parametrize(("text", "expected"), ORDERBY)
def test_orderby(text: str, expected: tuple[OrderBy, ...]) -> None:
    assert parse_orderby(text) == expected


SELECT: list[tuple[str, tuple[Path, ...]]] = [
    ("name", (NAME,)),
    ("@iot.id", (p("@iot.id"),)),
    ("@iot.id,name", (p("@iot.id"), NAME)),
    ("id, name, description", (p("id"), NAME, p("description"))),
    ("phenomenonTime,result", (PT, p("result"))),  # Grafana
    ("properties/x", (p("properties/x"),)),
    ("properties/list/0", (p("properties/list/0"),)),
    ("Datastreams", (p("Datastreams"),)),
    ("Datastreams/@iot.id", (p("Datastreams/@iot.id"),)),
    ("\n name ,\n\tid ", (NAME, p("id"))),
    ("eq", (p("eq"),)),  # in $select every word is a name
]


@pytest.mark.parametrize(("text", "expected"), SELECT)
def test_select(text: str, expected: tuple[Path, ...]) -> None:
    assert parse_select(text) == expected


# ---- $expand ---------------------------------------------------------------------------------------

DQ = Query(top=DEFAULT_TOP)  # an expand level without options


def q(**fields: Any) -> Query:
    fields.setdefault("top", DEFAULT_TOP)
    return Query(**fields)


EXPAND: list[tuple[str, tuple[Expand, ...]]] = [
    ("Locations", (Expand(("Locations",), DQ),)),
    ("Locations,Datastreams", (Expand(("Locations",), DQ), Expand(("Datastreams",), DQ))),
    ("Datastreams/Observations", (Expand(("Datastreams", "Observations"), DQ),)),
    ("Datastreams/Observations($top=1)",
     (Expand(("Datastreams", "Observations"), q(top=1, top_given=True)),)),
    # Masterportal
    ("Locations,Datastreams/Observations($orderby=phenomenonTime desc;$top=1)",
     (Expand(("Locations",), DQ),
      Expand(("Datastreams", "Observations"), q(top=1, top_given=True, orderby=(OrderBy(PT, True),))))),
    # the brief's example: quotes and parentheses inside, nested $expand
    ("Datastreams($filter=name eq 'a;b';$expand=Observations($orderby=phenomenonTime desc;$top=1)),Locations",
     (Expand(("Datastreams",), q(
         filter=eq(NAME, c("a;b")),
         expand=(Expand(("Observations",), q(top=1, top_given=True, orderby=(OrderBy(PT, True),))),))),
      Expand(("Locations",), DQ))),
    # VC Map
    ("Locations($top=1)", (Expand(("Locations",), q(top=1, top_given=True)),)),
    ("Datastreams($top=2)/Observations($top=1)",
     (Expand(("Datastreams",), q(top=2, top_given=True,
                                 expand=(Expand(("Observations",), q(top=1, top_given=True)),))),)),
    ("Things($expand=Locations)/Datastreams",
     (Expand(("Things",), q(expand=(Expand(("Locations",), DQ), Expand(("Datastreams",), DQ)))),)),
    ("Datastreams()", (Expand(("Datastreams",), DQ),)),
    ("Datastreams($top=1;)", (Expand(("Datastreams",), q(top=1, top_given=True)),)),
    ("Datastreams(;$top=1)", (Expand(("Datastreams",), q(top=1, top_given=True)),)),
    ("Datastreams($top=5000)", (Expand(("Datastreams",), q(top=MAX_TOP, top_given=True)),)),
    ("Datastreams($TOP=3)", (Expand(("Datastreams",), q(top=3, top_given=True)),)),
    ("Datastreams($select=@iot.id,name;$orderby=@iot.id desc;$count=true;$skip=2)",
     (Expand(("Datastreams",), q(select=(p("@iot.id"), NAME), orderby=(OrderBy(p("@iot.id"), True),),
                                 count=True, skip=2)),)),
    ("Datastreams($filter=(a eq 1) and (b eq ')'))",
     (Expand(("Datastreams",), q(filter=and_(eq(a, c(1)), eq(b, c(")"))))),)),
    ("Datastreams($filter=Observations/any(o: o/result gt 3))",
     (Expand(("Datastreams",), q(filter=Lambda(p("Observations"), "any", "o",
                                               cmp("gt", p("result", "o"), c(3))))),)),
    ("Thing/Locations", (Expand(("Thing", "Locations"), DQ),)),
    # QGIS: per-level $top/$orderby/$filter
    ("Datastreams($top=10;$orderby=@iot.id;$filter=name ne 'x';"
     "$expand=Observations($top=1;$orderby=phenomenonTime desc))",
     (Expand(("Datastreams",), q(
         top=10, top_given=True, orderby=(OrderBy(p("@iot.id")),), filter=cmp("ne", NAME, c("x")),
         expand=(Expand(("Observations",), q(top=1, top_given=True, orderby=(OrderBy(PT, True),))),))),)),
    ("\n  Datastreams(\n    $top=1\n  ),\n  Locations\n",
     (Expand(("Datastreams",), q(top=1, top_given=True)), Expand(("Locations",), DQ))),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), EXPAND)
def test_expand(text: str, expected: tuple[Expand, ...]) -> None:
    assert parse_expand(text, DEFAULT_TOP, MAX_TOP) == expected


# ---- parse_query -------------------------------------------------------------------------------


QUERIES: list[tuple[dict[str, str], Query]] = [
    ({}, Query(top=DEFAULT_TOP)),
    ({"$top": "5"}, Query(top=5, top_given=True)),
    ({"$top": "0"}, Query(top=0, top_given=True)),
    ({"$top": "5000"}, Query(top=MAX_TOP, top_given=True)),
    ({"$top": "99999999999999999999999"}, Query(top=MAX_TOP, top_given=True)),
    ({" $top ": " 5\n"}, Query(top=5, top_given=True)),
    ({"$skip": "7"}, Query(top=DEFAULT_TOP, skip=7)),
    ({"$count": "true"}, Query(top=DEFAULT_TOP, count=True)),
    ({"$count": "FALSE"}, Query(top=DEFAULT_TOP)),
    ({"$resultFormat": "dataArray"}, Query(top=DEFAULT_TOP, result_format="dataArray")),
    ({"$resultFormat": "DATAARRAY"}, Query(top=DEFAULT_TOP, result_format="dataArray")),
    ({"$resultFormat": "csv"}, Query(top=DEFAULT_TOP, result_format="CSV")),
    ({"$resultFormat": "geojson"}, Query(top=DEFAULT_TOP, result_format="GeoJSON")),
    ({"$skiptoken": " 2021-05-15T10:15:20Z~17 "},
     Query(top=DEFAULT_TOP, skiptoken=" 2021-05-15T10:15:20Z~17 ")),
    ({"$id": "x", "$format": "json", "foo": "bar", "filter": "((("}, Query(top=DEFAULT_TOP)),
    ({"$Filter": "a eq 1"}, Query(top=DEFAULT_TOP, filter=eq(a, c(1)))),
    ({"$filter": "a eq 1", "$orderby": "name desc", "$select": "@iot.id,name", "$expand": "Locations"},
     Query(top=DEFAULT_TOP, filter=eq(a, c(1)), orderby=(OrderBy(NAME, True),), select=(p("@iot.id"), NAME),
           expand=(Expand(("Locations",), DQ),))),
    # Masterportal, on Things
    ({"$filter": f"st_intersects(Locations/location, geography'{POLY}')",
      "$expand": "Locations,Datastreams/Observations($orderby=phenomenonTime desc;$top=1)"},
     Query(top=DEFAULT_TOP, filter=call("st_intersects", p("Locations/location"), geo(POLY)),
           expand=(Expand(("Locations",), DQ),
                   Expand(("Datastreams", "Observations"),
                          q(top=1, top_given=True, orderby=(OrderBy(PT, True),)))))),
    # Masterportal live updates
    ({"$orderby": "phenomenonTime desc", "$top": "1"},
     Query(top=1, top_given=True, orderby=(OrderBy(PT, True),))),
    # QGIS probing geometry types
    ({"$top": "0", "$count": "true",
      "$filter": "location/type eq 'Point' or location/geometry/type eq 'Point'"},
     Query(top=0, top_given=True, count=True,
           filter=or_(eq(p("location/type"), c("Point")), eq(p("location/geometry/type"), c("Point"))))),
    # Grafana
    ({"$filter": "phenomenonTime ge 2021-05-15T00:00:00Z and phenomenonTime le 2021-05-16T00:00:00Z",
      "$orderby": "phenomenonTime asc", "$select": "phenomenonTime,result", "$top": "1000"},
     Query(top=1000, top_given=True, orderby=(OrderBy(PT),), select=(PT, p("result")),
           filter=and_(cmp("ge", PT, c(utc(2021, 5, 15))), cmp("le", PT, c(utc(2021, 5, 16)))))),
    ({"$filter": "startswith(name,'Wi')", "$count": "true"},
     Query(top=DEFAULT_TOP, count=True, filter=call("startswith", NAME, c("Wi")))),
    # VC Map: newlines and indentation between options
    ({"\n  $top": "1000\n  ",
      "\n  $filter": "Datastreams/ObservedProperty/name eq 'NO2' and\n"
                     "    st_within(Locations/location, geography'POLYGON ((1 2, 3 4, 5 6, 1 2))')\n  ",
      "\n  $expand": "Locations($top=1)\n"},
     Query(top=1000, top_given=True,
           filter=and_(eq(p("Datastreams/ObservedProperty/name"), c("NO2")),
                       call("st_within", p("Locations/location"), geo("POLYGON ((1 2, 3 4, 5 6, 1 2))"))),
           expand=(Expand(("Locations",), q(top=1, top_given=True)),))),
    ({"$orderby": "Observations/phenomenonTime"},
     Query(top=DEFAULT_TOP, orderby=(OrderBy(p("Observations/phenomenonTime")),))),
]  # fmt: skip


@pytest.mark.parametrize(("params", "expected"), QUERIES)
def test_query(params: dict[str, str], expected: Query) -> None:
    assert parse_query(params, DEFAULT_TOP, MAX_TOP) == expected


def test_query_reads_a_multidict() -> None:
    params = MultiDict([("$top", "2"), ("x", "1"), ("x", "2")])
    assert parse_query(params, DEFAULT_TOP, MAX_TOP) == Query(top=2, top_given=True)


def test_default_top_is_clamped() -> None:
    assert parse_query({}, 500, 50) == Query(top=50)
    assert parse_expand("A", 500, 50) == (Expand(("A",), Query(top=50)),)


# ---- malformed input ---------------------------------------------------------------------------

# (option, text, fragments the message must contain)
_NEST = MAX_NESTING + 1
MALFORMED: list[tuple[str, str, tuple[str, ...]]] = [
    ("$filter", "eq 1", ("$filter: unexpected 'eq' at position 0 (expected a value)",)),
    ("$filter", "name eq eq 1", ("$filter: unexpected 'eq' at position 8 (expected a value)",)),
    ("$filter", "name eq", ("unexpected end of input at position 7", "expected a value")),
    ("$filter", "", ("unexpected end of input at position 0",)),
    ("$filter", "   ", ("unexpected end of input at position 3",)),
    ("$filter", "name eq 'abc", ("unterminated string at position 8",)),
    ("$filter", "name eq 'it''s", ("unterminated string at position 8",)),
    ("$filter", "name eq 1 2", ("unexpected '2' at position 10", "expected an operator or the end")),
    ("$filter", "(a eq 1", ("unexpected end of input at position 7", "expected an operator or ')'")),
    ("$filter", "a eq 1)", ("unexpected ')' at position 6",)),
    ("$filter", "a # b", ("unexpected character '#' at position 2",)),
    ("$filter", "a eq 1 & b", ("unexpected character '&' at position 7",)),
    ("$filter", 'a eq "x"', ("unexpected character '\"' at position 5",)),
    ("$filter", "a eq 2021-13-01", ("invalid date '2021-13-01' at position 5",)),
    ("$filter", "a eq 2021-02-30T00:00:00Z", ("invalid datetime '2021-02-30T00:00:00Z' at position 5",)),
    ("$filter", "a eq 2021-02-03T00:00:00+25:00", ("invalid datetime", "at position 5")),
    ("$filter", "a eq 25:00:00", ("invalid time '25:00:00' at position 5",)),
    # OData ABNF: a DateTimeOffset literal carries Z or an offset; a local time is not read as UTC.
    (
        "$filter",
        "a ge 2026-12-07T13:00:00",
        ("'2026-12-07T13:00:00' has no offset", "2026-12-07T13:00:00Z", "position 5"),
    ),
    ("$filter", "a ge 2026-12-07T13:00", ("'2026-12-07T13:00' has no offset", "at position 5")),
    ("$filter", "a eq duration'P1M'", ("years or months", "at position 5")),
    ("$filter", "a eq duration'P1Y2D'", ("years or months", "at position 5")),
    ("$filter", "a eq duration'P'", ("invalid duration 'P' at position 5",)),
    ("$filter", "a eq duration'1D'", ("invalid duration '1D' at position 5",)),
    ("$filter", "a eq duration'PT'", ("invalid duration 'PT' at position 5",)),
    ("$filter", "a eq duration'P99999999999D'", ("invalid duration", "at position 5")),
    ("$filter", "a eq duration'x", ("unterminated string at position 13",)),
    ("$filter", "a eq 1e999", ("out of range", "at position 5")),
    ("$filter", "a eq " + "9" * 5000, ("invalid number '" + "9" * 40 + "...' at position 5",)),
    ("$filter", "a eq foo'x'", ("unexpected \"'x'\" at position 8",)),
    ("$filter", "Datastreams/any(d d/x eq 1)", ("unexpected 'd' at position 18", "expected ':'")),
    ("$filter", "Datastreams/any(: x)", ("unexpected ':' at position 16", "lambda variable")),
    ("$filter", "Datastreams/all()", ("unexpected ')' at position 16", "lambda variable")),
    (
        "$filter",
        "Datastreams/any(d: d/x eq 1",
        ("end of input at position 27", "expected an operator or ')'"),
    ),
    ("$filter", "x in ()", ("unexpected ')' at position 6", "expected a value")),
    ("$filter", "x in 1", ("unexpected '1' at position 5", "expected '('")),
    ("$filter", "x in (1 2)", ("unexpected '2' at position 8", "expected ',' or ')'")),
    ("$filter", "f(1,)", ("unexpected ')' at position 4", "expected a value")),
    ("$filter", "f(1 2)", ("unexpected '2' at position 4", "expected ',' or ')'")),
    ("$filter", "f(", ("end of input at position 2",)),
    ("$filter", "a/", ("end of input at position 2", "expected a property name")),
    ("$filter", "a//b", ("unexpected '/' at position 2", "expected a property name")),
    ("$filter", "a/'x'", ("unexpected \"'x'\" at position 2", "expected a property name")),
    ("$filter", "a/1.5", ("unexpected '1.5' at position 2",)),
    ("$filter", "a/f(1)", ("unexpected '(' at position 3",)),
    ("$filter", "not", ("end of input at position 3", "expected a value")),
    ("$filter", "-", ("end of input at position 1", "expected a value")),
    ("$filter", "a eq -", ("end of input at position 6",)),
    ("$filter", "$it/name eq 1", ("unexpected '$it' at position 0", "expected a value")),
    ("$filter", "a eq b;", ("unexpected ';' at position 6",)),
    ("$filter", "a = 1", ("unexpected '=' at position 2",)),
    ("$filter", "a eq 1 and", ("end of input at position 10",)),
    ("$filter", "a eq 1 or or b", ("unexpected 'or' at position 10", "expected a value")),
    ("$filter", "asc eq 1", ("unexpected 'asc' at position 0",)),
    ("$filter", "a eq 1 desc", ("unexpected 'desc' at position 7",)),
    ("$filter", "a eq 'x' " + "b" * 100, ("unexpected '" + "b" * 40 + "...' at position 9",)),
    ("$filter", "geo.intersects(location, geography'POINT(1 2)", ("unterminated string at position 34",)),
    ("$filter", "(" * _NEST + "a" + ")" * _NEST, (f"nested deeper than {MAX_NESTING} levels",)),
    ("$filter", "(" * 100_000, (f"nested deeper than {MAX_NESTING} levels",)),
    ("$filter", "not " * _NEST + "a", (f"nested deeper than {MAX_NESTING} levels",)),
    ("$filter", "-" * _NEST + "a", (f"nested deeper than {MAX_NESTING} levels",)),
    ("$filter", "f(" * _NEST + "a" + ")" * _NEST, (f"nested deeper than {MAX_NESTING} levels",)),
    ("$filter", "a add " * _NEST + "a", (f"nested deeper than {MAX_NESTING} levels", "at position")),
    ("$filter", "a eq " * _NEST + "a", (f"nested deeper than {MAX_NESTING} levels",)),
    ("$filter", "A/any(a:" * _NEST + "a" + ")" * _NEST, (f"nested deeper than {MAX_NESTING} levels",)),
    ("$orderby", "name asc desc", ("unexpected 'desc' at position 9", "expected asc, desc, ',' or the end")),
    ("$orderby", "name,", ("end of input at position 5", "expected a value")),
    ("$orderby", ",name", ("unexpected ',' at position 0",)),
    ("$orderby", "name up", ("unexpected 'up' at position 5",)),
    ("$orderby", "", ("end of input at position 0",)),
    ("$select", "name,", ("end of input at position 5", "expected a property name")),
    ("$select", "1", ("unexpected '1' at position 0", "expected a property name")),
    ("$select", "name/", ("end of input at position 5",)),
    ("$select", "name eq 1", ("unexpected 'eq' at position 5", "expected '/', ',' or the end")),
    ("$select", "f(x)", ("unexpected '(' at position 1",)),
    ("$select", "'name'", ("unexpected \"'name'\" at position 0",)),
    ("$expand", "Datastreams(", ("end of input at position 12", "query option")),
    (
        "$expand",
        "Datastreams($top=)",
        ("unexpected ')' at position 17", "expected a non-negative integer for $top"),
    ),
    ("$expand", "Datastreams($top=-1)", ("unexpected '-1' at position 17", "non-negative")),
    ("$expand", "Datastreams($top=1.5)", ("unexpected '1.5' at position 17",)),
    ("$expand", "Datastreams($foo=1)", ("unknown query option '$foo' at position 12",)),
    ("$expand", "Datastreams($skiptoken=1)", ("$skiptoken is not allowed inside $expand at position 12",)),
    ("$expand", "Datastreams($resultFormat=CSV)", ("$resultFormat is not allowed inside $expand",)),
    ("$expand", "Datastreams($top=1;$top=2)", ("$top given more than once at position 19",)),
    ("$expand", "Datastreams($top 1)", ("unexpected '1' at position 17", "expected '=' after $top")),
    ("$expand", "Datastreams(top=1)", ("unexpected 'top' at position 12", "query option")),
    ("$expand", "Datastreams($filter=a eq)", ("unexpected ')' at position 24", "expected a value")),
    ("$expand", "Datastreams($top=1 $skip=1)", ("unexpected '$skip' at position 19", "expected ';' or ')'")),
    ("$expand", "Datastreams($count=yes)", ("unexpected 'yes' at position 19", "true or false")),
    ("$expand", "Datastreams/'x'", ("unexpected \"'x'\" at position 12", "navigation property")),
    ("$expand", ",A", ("unexpected ',' at position 0",)),
    ("$expand", "A,", ("end of input at position 2",)),
    ("$expand", "A($top=1))", ("unexpected ')' at position 9",)),
    ("$expand", "A B", ("unexpected 'B' at position 2",)),
    ("$expand", "A($expand=" * _NEST + "B" + ")" * _NEST, (f"nested deeper than {MAX_NESTING} levels",)),
    ("$expand", "A()/" * 1000 + "B", (f"nested deeper than {MAX_NESTING} levels",)),
    ("$expand", "A($filter=" + "(" * 60 + ")", (f"nested deeper than {MAX_NESTING} levels",)),
]


@pytest.mark.parametrize(("option", "text", "fragments"), MALFORMED)
def test_malformed(option: str, text: str, fragments: tuple[str, ...]) -> None:
    parsers: dict[str, Callable[[str], object]] = {
        "$filter": parse_filter,
        "$orderby": parse_orderby,
        "$select": parse_select,
        "$expand": lambda t: parse_expand(t, DEFAULT_TOP, MAX_TOP),
    }
    with pytest.raises(QueryError) as caught:
        parsers[option](text)
    message = str(caught.value)
    assert message.startswith(f"{option}: ")
    for fragment in fragments:
        assert fragment in message
    assert caught.value.option == option
    assert caught.value.position is not None
    assert f"at position {caught.value.position}" in message


MALFORMED_QUERIES: list[tuple[Any, tuple[str, ...]]] = [
    ({"$top": "abc"}, ("$top: unexpected 'abc' at position 0", "non-negative integer")),
    ({"$top": "-1"}, ("$top: unexpected '-1' at position 0",)),
    ({"$top": "1.5"}, ("$top: unexpected '1.5' at position 0",)),
    ({"$top": ""}, ("$top: unexpected end of input at position 0",)),
    ({"$top": "1 2"}, ("$top: unexpected '2' at position 2", "expected the end of $top")),
    ({"$skip": "x"}, ("$skip: unexpected 'x' at position 0",)),
    ({"$skip": str(2**63)}, ("$skip: $skip 9223372036854775808 is too large at position 0",)),
    ({"$count": "yes"}, ("$count: unexpected 'yes' at position 0", "true or false")),
    ({"$count": "1"}, ("$count: unexpected '1' at position 0",)),
    (
        {"$resultFormat": "xml"},
        ("$resultFormat: unexpected 'xml' at position 0", "dataArray, CSV or GeoJSON"),
    ),
    ({"$filter": "a eq"}, ("$filter: unexpected end of input at position 4",)),
    ({"$foo": "1"}, ("unknown query option '$foo'",)),
    ({"$search": "x"}, ("unknown query option '$search'",)),
    ({"$": "x"}, ("unknown query option '$'",)),
    (MultiDict([("$top", "1"), ("$top", "2")]), ("$top: given more than once",)),
    (MultiDict([("$filter", "a eq 1"), ("$FILTER", "b eq 1")]), ("$filter: given more than once",)),
    (MultiDict([("$skiptoken", "a"), (" $skiptoken", "b")]), ("$skiptoken: given more than once",)),
]


@pytest.mark.parametrize(("params", "fragments"), MALFORMED_QUERIES)
def test_malformed_query(params: Any, fragments: tuple[str, ...]) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(params, DEFAULT_TOP, MAX_TOP)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_query_error_is_a_bad_request() -> None:
    assert issubclass(QueryError, BadRequestError)
    error = QueryError("$select: Things has no property 'x'")  # the planner's form
    assert str(error) == "$select: Things has no property 'x'"
    assert error.option is None
    assert error.position is None
