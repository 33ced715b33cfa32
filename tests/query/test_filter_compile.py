# SPDX-License-Identifier: Apache-2.0
"""$filter/$orderby compilation (hub/query/filter.py), run against a real database.

Expressions are built as AST nodes (independent of the parser), compiled for an
entity type and executed: `SELECT e.id FROM <table> e WHERE <compiled>`. The
time cases reuse the observation times and expected results of the OGC
conformance tests for time comparisons (ets-sta DateTimeTests), which
FROST-Server passes: observation k of that suite is row k + 1 here.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from dbutil import empty_tables
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.query.ast import (
    BinOp,
    BoolOp,
    Call,
    Compare,
    Constant,
    ConstantKind,
    Expr,
    In,
    Lambda,
    Negate,
    Not,
    OrderBy,
    Path,
)
from hub.query.compile import Binds
from hub.query.filter import Dialect, QueryError, compile_filter, compile_order
from hub.query.sqlexpr import GeometryUnsupportedError
from schemas.model import ENTITY_TYPES

POSTGIS = Dialect(postgis=True)
PLAIN = Dialect(postgis=False)
BUILTIN = Dialect(postgis=False, points=True)  # no PostGIS: the pt columns of migration 0007

# ---- AST builders ----------------------------------------------------------------------------------


def p(text: str, variable: str | None = None) -> Path:
    """`p("Datastreams/name")`; `p("name", "d")` is `d/name` inside a lambda."""
    return Path(tuple(text.split("/")), variable)


_KINDS: list[tuple[type, ConstantKind]] = [
    (bool, "bool"),
    (int, "int"),
    (float, "float"),
    (str, "string"),
    (datetime, "datetime"),
    (date, "date"),
    (time, "time"),
    (timedelta, "duration"),
]


def lit(value: object) -> Constant:
    """A Constant of the kind matching the Python value (None is null)."""
    if value is None:
        return Constant(None, "null")
    kind = next(kind for cls, kind in _KINDS if isinstance(value, cls))
    return Constant(value, kind)


def geo(wkt: str) -> Constant:
    return Constant(wkt, "geography")


def ex(value: object) -> Expr:
    return (
        value
        if isinstance(value, Path | Constant | Compare | BoolOp | Not | BinOp | Negate | Call | In | Lambda)
        else lit(value)
    )


def cmp(op: Any, left: object, right: object) -> Compare:
    return Compare(op, ex(left), ex(right))


def eq(left: object, right: object) -> Compare:
    return cmp("eq", left, right)


def fn(name: str, *args: object) -> Call:
    return Call(name, tuple(ex(a) for a in args))


def arith(op: Any, left: object, right: object) -> BinOp:
    return BinOp(op, ex(left), ex(right))


def both(left: Expr, right: Expr) -> BoolOp:
    return BoolOp("and", left, right)


def either(left: Expr, right: Expr) -> BoolOp:
    return BoolOp("or", left, right)


def any_(path: str, variable: str, predicate: Expr) -> Lambda:
    return Lambda(p(path), "any", variable, predicate)


def all_(path: str, variable: str, predicate: Expr) -> Lambda:
    return Lambda(p(path), "all", variable, predicate)


# ---- the data set ------------------------------------------------------------------------------


def t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


T2015, T2017 = t("2015-01-01T06:00:00Z"), t("2017-01-01T09:00:00Z")
T600, T659, T700, T701 = (t(f"2016-01-01T{h}:00Z") for h in ("06:00", "06:59", "07:00", "07:01"))
T759, T800, T801, T900 = (t(f"2016-01-01T{h}:00Z") for h in ("07:59", "08:00", "08:01", "09:00"))
HOUR = timedelta(hours=1)
# (phenomenonTime, resultTime, validTime) of observations 0..24 of the OGC DateTimeTests.
FROST_TIMES: list[tuple[tuple[datetime, datetime], datetime | None, tuple[datetime, datetime] | None]] = [
    *(((x, x), x, None) for x in (T600, T659, T700, T701, T759, T800, T801, T900)),
    *(
        ((a, b), None, (a, b))
        for a, b in (
            (T600, T659),
            (T600, T700),
            (T600, T701),
            (T700, T800),
            (T701, T759),
            (T759, T900),
            (T800, T900),
            (T801, T900),
            (T659, T801),
            (T700, T759),
            (T700, T801),
            (T659, T800),
            (T701, T800),
        )
    ),
    ((T2015, T2015), T2015, None),
    ((T2017, T2017), T2017, None),
    ((T2015, T2015 + HOUR), None, (T2015, T2015 + HOUR)),
    ((T2017, T2017 + HOUR), None, (T2017, T2017 + HOUR)),
]
I700_800 = f"{T700.isoformat()}/{T800.isoformat()}"
I600_700 = f"{T600.isoformat()}/{T700.isoformat()}"
I800_900 = f"{T800.isoformat()}/{T900.isoformat()}"


def frost(*indexes: int) -> list[int]:
    """Row ids of observations given by their index in the OGC suite."""
    return [i + 1 for i in indexes]


def point(x: float, y: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [x, y]}


SQUARE = {"type": "Polygon", "coordinates": [[[7, 50], [9, 50], [9, 52], [7, 52], [7, 50]]]}
POLY = "POLYGON((7 50, 9 50, 9 52, 7 52, 7 50))"

THINGS = [
    (
        1,
        "Wind Speed Station",
        "north",
        {"serviceName": "air", "n": 5, "flag": True, "tags": ["a", "b"], "nested": {"k": "v"}},
    ),
    (
        2,
        "Temperature",
        "  padded  ",
        {"serviceName": "water", "n": "5", "flag": False, "when": "2021-05-15T10:00:00Z"},
    ),
    (3, "wind", "x", None),
    (4, "Thing %_4", "y", {"n": 7.5, "nothing": None}),
]
LOCATIONS = [
    (1, "L1", {"type": "Feature", "geometry": point(8, 51), "properties": {}}),
    (2, "L2", point(10, 53)),
    (3, "L3", SQUARE),
    (4, "L4", {"type": "LineString", "coordinates": [[0, 0], [3, 4]]}),
]
THING_LOCATIONS = [(1, 1), (2, 2), (3, 1), (3, 3)]
# id, name, thing, observed property, unit, properties, observed area, phenomenonTime extent
DATASTREAMS = [
    (
        1,
        "DS NO2",
        1,
        1,
        {"name": "degree Celsius", "symbol": "°C"},
        {"serviceName": "air-no2"},
        SQUARE,
        (T2015, T2017 + HOUR),
    ),
    (2, "DS O3", 1, 2, {"name": "parts per million", "symbol": "ppm"}, {"serviceName": "air-o3"}, None, None),
    (
        3,
        "DS water",
        2,
        2,
        {"name": "metre", "symbol": "m"},
        None,
        None,
        (t("2020-01-01T12:30:45.25Z"), t("2020-06-02T00:00:00Z")),
    ),
]
# id, datastream, feature, phenomenonTime, resultTime, result, parameters (after the 25 of the OGC suite)
EXTRA_OBSERVATIONS = [
    (26, 2, 1, t("2020-06-01T00:00:00Z"), None, "abc", {"qualityFlag": "good"}),
    (27, 2, 1, t("2020-06-01T00:00:00Z"), None, True, {"qualityFlag": "bad"}),
    (28, 2, 1, t("2020-06-01T00:00:00Z"), None, {"x": 5, "s": "five"}, None),
    (29, 3, 1, t("2020-06-02T00:00:00Z"), None, "5", None),
    (30, 3, 1, t("2020-06-02T00:00:00Z"), None, None, None),  # a JSON null result
    (31, 3, 2, t("2020-01-01T12:30:45.25Z"), t("2020-01-01T12:30:45.25Z"), 12.5, None),
]
ALL_OBSERVATIONS = list(range(1, 32))


def _json(value: object) -> str:
    return json.dumps(value)


async def load_dataset(conn: asyncpg.Connection) -> None:
    """Insert the fixture rows with plain SQL."""
    await conn.executemany(
        "INSERT INTO things (id, name, description, properties) VALUES ($1, $2, $3, $4::jsonb)",
        [(i, n, d, None if props is None else _json(props)) for i, n, d, props in THINGS],
    )
    await conn.executemany(
        "INSERT INTO locations (id, name, description, encoding_type, location)"
        " VALUES ($1, $2, '', 'application/geo+json', $3::jsonb)",
        [(i, n, _json(loc)) for i, n, loc in LOCATIONS],
    )
    await conn.executemany("INSERT INTO thing_locations VALUES ($1, $2)", THING_LOCATIONS)
    await conn.execute(
        "INSERT INTO sensors (id, name, description, encoding_type, metadata)"
        " VALUES (1, 'S1', '', 'text/html', '\"http://example.org/s1\"');"
        " INSERT INTO observed_properties (id, name, definition, description)"
        " VALUES (1, 'NO2', 'no2', ''), (2, 'O3', 'o3', '');"
        " INSERT INTO features_of_interest (id, name, description, encoding_type, feature) VALUES"
        " (1, 'F1', '', 'application/geo+json', '{\"type\": \"Point\", \"coordinates\": [8, 51]}'),"
        " (2, 'F2', '', 'application/geo+json', '{\"type\": \"Point\", \"coordinates\": [10, 53]}')"
    )
    await _load_observations(conn)


async def _load_observations(conn: asyncpg.Connection) -> None:
    streams = [
        (i, n, th, op, _json(unit), props and _json(props), area and _json(area), *(extent or (None, None)))
        for i, n, th, op, unit, props, area, extent in DATASTREAMS
    ]
    await conn.executemany(
        "INSERT INTO datastreams (id, name, description, thing_id, observed_property_id, sensor_id,"
        " unit_of_measurement, observation_type, properties, observed_area,"
        " phenomenon_time_start, phenomenon_time_end)"
        " VALUES ($1, $2, '', $3, $4, 1, $5::jsonb, 'om', $6::jsonb, $7::jsonb, $8, $9)",
        streams,
    )
    rows: list[tuple[object, ...]] = [
        (k + 1, 1, 1, pt[0], pt[1], rt, _json(k), vt and vt[0], vt and vt[1], None)
        for k, (pt, rt, vt) in enumerate(FROST_TIMES)
    ]
    rows += [
        (i, ds, foi, pt, pt, rt, _json(r), None, None, par and _json(par))
        for i, ds, foi, pt, rt, r, par in EXTRA_OBSERVATIONS
    ]
    await conn.executemany(
        "INSERT INTO observations (id, datastream_id, feature_of_interest_id, phenomenon_time_start,"
        " phenomenon_time_end, result_time, result, valid_time_start, valid_time_end, parameters)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10::jsonb)",
        rows,
    )


@pytest_asyncio.fixture(scope="module")
async def dataset(db_dsn: str) -> AsyncIterator[str]:
    """The session database emptied (as clean_db does) and loaded once: every test here only reads."""
    await empty_tables(db_dsn)
    conn = await asyncpg.connect(db_dsn)
    try:
        await load_dataset(conn)
    finally:
        await conn.close()
    yield db_dsn
    await empty_tables(db_dsn)


@pytest_asyncio.fixture(scope="module")
async def db(dataset: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dataset)
    try:
        yield conn
    finally:
        await conn.close()


async def has_geom(conn: asyncpg.Connection) -> bool:
    return (await dialect_of(conn)).postgis


async def dialect_of(conn: asyncpg.Connection) -> Dialect:
    """What the database's migrations made: PostGIS geom columns, else the built-in pt columns."""
    columns = await conn.fetch(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = 'locations'"
    )
    names = {row["column_name"] for row in columns}
    return Dialect(postgis="geom" in names, points="pt" in names)


async def select_ids(
    conn: asyncpg.Connection, type_name: str, expr: Expr, dialect: Dialect = POSTGIS, where: str = "TRUE"
) -> list[int]:
    entity_type = ENTITY_TYPES[type_name]
    binds = Binds()
    condition = compile_filter(expr, entity_type, "e", binds, dialect)
    sql = f"SELECT e.id FROM {entity_type.table} e WHERE {where} AND {condition} ORDER BY e.id"
    return [row["id"] for row in await conn.fetch(sql, *binds.values)]


# ---- Things: paths, operators, JSON, strings, navigation, lambdas ------------------------------------

Case = tuple[str, Expr, list[int]]
THING_CASES: list[Case] = [
    # own properties and the entity-set prefix
    ("eq", eq(p("name"), "wind"), [3]),
    ("set prefix", eq(p("Things/name"), "wind"), [3]),
    ("ne", cmp("ne", p("name"), "wind"), [1, 2, 4]),
    ("lt text", cmp("lt", p("name"), "U"), [2, 4]),
    ("ge text", cmp("ge", p("name"), "U"), [1, 3]),
    ("le text", cmp("le", p("name"), "Temperature"), [2]),
    ("gt text", cmp("gt", p("name"), "Temperature"), [1, 3, 4]),
    ("text vs number compares text", cmp("gt", p("name"), 5), [1, 2, 3, 4]),
    ("id", eq(p("id"), 2), [2]),
    ("@iot.id", eq(p("@iot.id"), 2), [2]),
    ("id as a numeric string", eq(p("id"), "3"), [3]),
    ("literal on the left", eq(2, p("id")), [2]),
    ("in", In(p("id"), (lit(1), lit(3))), [1, 3]),
    ("in text", In(p("name"), (lit("wind"), lit("Temperature"), lit("nope"))), [2, 3]),
    ("eq null", eq(p("name"), None), []),
    ("object eq null", eq(p("properties"), None), [3]),
    ("object ne null", cmp("ne", p("properties"), None), [1, 2, 4]),
    ("null on the left", eq(None, p("properties")), [3]),
    ("gt null", cmp("gt", p("id"), None), []),
    ("le null", cmp("le", p("properties"), None), [3]),
    ("null eq null", eq(None, None), [1, 2, 3, 4]),
    ("not", Not(eq(p("name"), "wind")), [1, 2, 4]),
    ("or", either(eq(p("name"), "wind"), eq(p("id"), 1)), [1, 3]),
    ("and", both(eq(p("name"), "wind"), eq(p("id"), 1)), []),
    ("bool literal", lit(True), [1, 2, 3, 4]),
    ("null literal", lit(None), []),
    # JSON sub-paths typed by the other side
    ("json text", eq(p("properties/serviceName"), "air"), [1]),
    ("json number only where a number", eq(p("properties/n"), 5), [1]),
    ("json text of numbers and strings", eq(p("properties/n"), "5"), [1, 2]),
    ("json gt", cmp("gt", p("properties/n"), 6), [4]),
    ("json float literal", eq(p("properties/n"), 7.5), [4]),
    ("json arithmetic", eq(arith("add", p("properties/n"), 1), 6), [1]),
    ("json bool", eq(p("properties/flag"), True), [1]),
    ("json bool false", eq(p("properties/flag"), False), [2]),
    ("json bool as condition", p("properties/flag"), [1]),
    ("json null or absent", eq(p("properties/nothing"), None), [1, 2, 3, 4]),
    ("json array index", eq(p("properties/tags/0"), "a"), [1]),
    ("json nested", eq(p("properties/nested/k"), "v"), [1]),
    ("json vs datetime as ISO text", cmp("gt", p("properties/when"), t("2021-01-01T00:00:00Z")), [2]),
    ("json in", In(p("properties/serviceName"), (lit("air"), lit("water"))), [1, 2]),
    # string functions (positions 0-based)
    ("substringof", fn("substringof", "ind", p("name")), [1, 3]),
    ("contains", fn("contains", p("name"), "ind"), [1, 3]),
    ("contains without wildcards", fn("contains", p("name"), "%_"), [4]),
    ("startswith", fn("startswith", p("name"), "W"), [1]),
    ("startswith case", fn("startswith", p("name"), "w"), [3]),
    ("endswith", fn("endswith", p("name"), "ture"), [2]),
    ("endswith empty", fn("endswith", p("name"), ""), [1, 2, 3, 4]),
    ("length", eq(fn("length", p("name")), 4), [3]),
    ("indexof", eq(fn("indexof", p("name"), "Speed"), 5), [1]),
    ("indexof missing", eq(fn("indexof", p("name"), "zzz"), -1), [1, 2, 3, 4]),
    ("substring from", eq(fn("substring", p("name"), 1), "ind"), [3]),
    ("substring from, length", eq(fn("substring", p("name"), 0, 4), "Wind"), [1]),
    ("substring middle", eq(fn("substring", p("name"), 1, 2), "em"), [2]),
    ("substring negative start", eq(fn("substring", p("name"), -5, 2), "wi"), [3]),
    ("substring huge start", eq(fn("substring", p("name"), 99999999999), ""), [1, 2, 3, 4]),
    ("substring negative length", eq(fn("substring", p("name"), 1, -1), ""), [1, 2, 3, 4]),
    ("substring null", eq(fn("substring", p("name"), None), None), [1, 2, 3, 4]),
    ("tolower", eq(fn("tolower", p("name")), "wind"), [3]),
    ("toupper", eq(fn("toupper", p("name")), "WIND"), [3]),
    ("trim", eq(fn("trim", p("description")), "padded"), [2]),
    ("concat", eq(fn("concat", p("name"), "!"), "wind!"), [3]),
    ("concat json", eq(fn("concat", p("properties/serviceName"), "-x"), "air-x"), [1]),
    ("length of json", eq(fn("length", p("properties/serviceName")), 5), [2]),
    # navigation: to-many with ANY semantics
    ("to-many json", eq(p("Datastreams/properties/serviceName"), "air-o3"), [1]),
    ("to-many then to-one", eq(p("Datastreams/ObservedProperty/name"), "O3"), [1, 2]),
    ("to-many then to-one NO2", eq(p("Datastreams/ObservedProperty/name"), "NO2"), [1]),
    ("to-many unit", eq(p("Datastreams/unitOfMeasurement/symbol"), "ppm"), [1]),
    ("link table", eq(p("Locations/name"), "L3"), [3]),
    ("link table via id", eq(p("Locations/id"), 1), [1, 3]),
    ("not over to-many", Not(eq(p("Datastreams/name"), "DS water")), [1, 3, 4]),
    ("to-many in function", fn("startswith", p("Datastreams/name"), "DS w"), [2]),
    ("to-many both sides", eq(p("Datastreams/name"), p("Datastreams/name")), [1, 2]),
    ("two hops to many", eq(p("Datastreams/Observations/result"), "abc"), [1]),
    ("historical locations empty", eq(p("HistoricalLocations/id"), 1), []),
    # lambdas
    ("any", any_("Datastreams", "d", eq(p("ObservedProperty/name", "d"), "NO2")), [1]),
    (
        "any ties to one member",
        any_(
            "Datastreams", "d", both(eq(p("ObservedProperty/name", "d"), "O3"), eq(p("name", "d"), "DS NO2"))
        ),
        [],
    ),
    (
        "any both on one member",
        any_(
            "Datastreams", "d", both(eq(p("ObservedProperty/name", "d"), "O3"), eq(p("name", "d"), "DS O3"))
        ),
        [1],
    ),
    (
        "any with outer path",
        any_("Datastreams", "d", cmp("lt", fn("length", p("name", "d")), fn("length", p("name")))),
        [1, 2],
    ),
    ("any empty predicate", Lambda(p("Datastreams"), "any", "", lit(True)), [1, 2]),
    ("any with prefix", any_("Things/Locations", "l", eq(p("name", "l"), "L2")), [2]),
    ("all", all_("Datastreams", "d", eq(p("ObservedProperty/name", "d"), "O3")), [2, 3, 4]),
    (
        "all with nulls",
        all_("Datastreams", "d", cmp("ne", p("properties/serviceName", "d"), None)),
        [1, 3, 4],
    ),
    (
        "all unknown is not true",
        all_("Datastreams", "d", eq(p("properties/serviceName", "d"), "air-o3")),
        [3, 4],
    ),
    (
        "nested any",
        any_("Datastreams", "d", Lambda(p("Observations", "d"), "any", "o", eq(p("result", "o"), "abc"))),
        [1],
    ),
    ("lambda in value position", eq(any_("Datastreams", "d", eq(p("name", "d"), "DS water")), True), [2]),
]


@pytest.mark.parametrize(("expr", "expected"), [pytest.param(e, x, id=i) for i, e, x in THING_CASES])
async def test_things(db: asyncpg.Connection, expr: Expr, expected: list[int]) -> None:
    assert await select_ids(db, "Thing", expr) == expected


# ---- Observations: results, arithmetic, navigation, date functions ------------------------------------

OBSERVATION_CASES: list[Case] = [
    ("result number", eq(p("result"), 5), [6]),
    ("result text of strings and numbers", eq(p("result"), "5"), [6, 29]),
    ("result string", eq(p("result"), "abc"), [26]),
    ("result bool", eq(p("result"), True), [27]),
    ("result JSON null", eq(p("result"), None), [30]),
    ("result sub-path number", eq(p("result/x"), 5), [28]),
    ("result sub-path text", eq(p("result/s"), "five"), [28]),
    ("result gt", cmp("gt", p("result"), 20), frost(21, 22, 23, 24)),
    ("result ge float", cmp("ge", p("result"), 12.5), [14, *range(15, 26), 31]),
    ("add", eq(arith("add", p("result"), 1), 13.5), [31]),
    ("sub", eq(arith("sub", p("result"), 1), 2), [4]),
    ("mul", eq(arith("mul", p("result"), 2), 10), [6]),
    ("div", eq(arith("div", p("result"), 2), 2.5), [6]),
    ("mod", eq(arith("mod", p("result"), 2), 1), [k + 1 for k in range(1, 25, 2)]),
    ("div by zero", eq(arith("div", p("result"), 0), 1), []),
    ("mod by zero", eq(arith("mod", p("result"), 0), 1), []),
    ("integer overflow", cmp("gt", arith("mul", p("id"), 9223372036854775807), 0), ALL_OBSERVATIONS),
    ("huge integer literal", cmp("lt", p("id"), 10**30), ALL_OBSERVATIONS),
    ("unary minus", eq(Negate(p("result")), -3), [4]),
    ("unary minus literal", eq(p("result"), Negate(lit(-3))), [4]),
    ("round", eq(fn("round", p("result")), 13), [14, 31]),
    ("floor", eq(fn("floor", p("result")), 12), [13, 31]),
    ("ceiling", eq(fn("ceiling", p("result")), 13), [14, 31]),
    ("in mixed", In(p("result"), (lit(1), lit(2), lit("abc"))), [2, 3, 26]),
    ("parameters", eq(p("parameters/qualityFlag"), "good"), [26]),
    # navigation to one
    ("to-one chain", eq(p("Datastream/Thing/name"), "Temperature"), [29, 30, 31]),
    ("to-one id", eq(p("Datastream/id"), 3), [29, 30, 31]),
    ("to-one @iot.id", eq(p("Datastream/@iot.id"), 2), [26, 27, 28]),
    ("to-one then to-one", eq(p("Datastream/ObservedProperty/name"), "O3"), [26, 27, 28, 29, 30, 31]),
    ("feature", eq(p("FeatureOfInterest/name"), "F2"), [31]),
    (
        "unit concat",
        eq(
            fn(
                "concat",
                fn("concat", p("Datastream/unitOfMeasurement/symbol"), ", "),
                p("Datastream/unitOfMeasurement/name"),
            ),
            "m, metre",
        ),
        [29, 30, 31],
    ),
    # date and time functions (UTC)
    ("year", eq(fn("year", p("resultTime")), 2015), frost(21)),
    ("year of interval", eq(fn("year", p("validTime")), 2015), frost(23)),
    ("year of time or interval", eq(fn("year", p("phenomenonTime")), 2015), frost(21, 23)),
    ("month", eq(fn("month", p("resultTime")), 1), [*frost(0, 1, 2, 3, 4, 5, 6, 7, 21, 22), 31]),
    ("day", eq(fn("day", p("resultTime")), 1), [*frost(0, 1, 2, 3, 4, 5, 6, 7, 21, 22), 31]),
    ("hour", eq(fn("hour", p("resultTime")), 12), [31]),
    ("minute", eq(fn("minute", p("resultTime")), 30), [31]),
    ("second", eq(fn("second", p("resultTime")), 45), [31]),
    ("fractionalseconds", eq(fn("fractionalseconds", p("resultTime")), 0.25), [31]),
    ("date", eq(fn("date", p("resultTime")), date(2020, 1, 1)), [31]),
    ("date vs string", eq(fn("date", p("resultTime")), "2020-01-01"), [31]),
    ("time", eq(fn("time", p("resultTime")), time(12, 30, 45, 250000)), [31]),
    ("year of date", eq(fn("year", fn("date", p("resultTime"))), 2020), [31]),
    ("hour of time", eq(fn("hour", fn("time", p("resultTime"))), 12), [31]),
    (
        "totaloffsetminutes",
        eq(fn("totaloffsetminutes", p("resultTime")), 0),
        [*frost(0, 1, 2, 3, 4, 5, 6, 7, 21, 22), 31],
    ),
    (
        "mindatetime",
        cmp("gt", p("resultTime"), fn("mindatetime")),
        [*frost(0, 1, 2, 3, 4, 5, 6, 7, 21, 22), 31],
    ),
    ("maxdatetime", cmp("lt", p("phenomenonTime"), fn("maxdatetime")), ALL_OBSERVATIONS),
    ("now", cmp("lt", p("phenomenonTime"), fn("now")), ALL_OBSERVATIONS),
    ("now minus a day", cmp("gt", p("phenomenonTime"), arith("sub", fn("now"), timedelta(days=1))), []),
    ("date vs datetime", cmp("ge", p("phenomenonTime"), date(2020, 6, 1)), [26, 27, 28, 29, 30]),
    ("start sub-path", eq(p("validTime/start"), T600), frost(8, 9, 10)),
    ("end sub-path", eq(p("validTime/end"), T800), frost(11, 19, 20)),
    (
        "huge duration",
        cmp("gt", arith("add", p("resultTime"), timedelta(days=100_000_000)), T700),
        [*frost(0, 1, 2, 3, 4, 5, 6, 7, 21, 22), 31],
    ),
    (
        "times overflow to null",
        cmp(
            "gt",
            arith(
                "add", arith("add", p("resultTime"), timedelta(days=100_000_000)), timedelta(days=100_000_000)
            ),
            T700,
        ),
        [],
    ),
    (
        "duration arithmetic",
        eq(arith("sub", p("phenomenonTime"), T800), arith("mul", arith("div", timedelta(hours=3), 3), 1)),
        frost(7),
    ),
    (
        "negative duration",
        cmp("gt", arith("add", p("resultTime"), Negate(lit(HOUR))), T800),
        [*frost(22), 31],
    ),
    ("duration sum", eq(arith("sub", p("resultTime"), arith("add", HOUR, HOUR)), T700), frost(7)),
]


@pytest.mark.parametrize(("expr", "expected"), [pytest.param(e, x, id=i) for i, e, x in OBSERVATION_CASES])
async def test_observations(db: asyncpg.Connection, expr: Expr, expected: list[int]) -> None:
    assert await select_ids(db, "Observation", expr) == expected


# ---- time comparisons and temporal functions (the OGC DateTimeTests, Datastream 1) -----------------

TIME_CASES: list[Case] = [
    ("instant lt", cmp("lt", p("resultTime"), T700), frost(0, 1, 21)),
    ("interval lt instant", cmp("lt", p("validTime"), T700), frost(8, 9, 23)),
    ("time lt instant", cmp("lt", p("phenomenonTime"), T700), frost(0, 1, 8, 9, 21, 23)),
    ("instant lt interval", cmp("lt", p("resultTime"), I700_800), frost(0, 1, 21)),
    ("interval lt interval", cmp("lt", p("validTime"), I700_800), frost(8, 9, 23)),
    ("literal lt time", cmp("lt", T800, p("phenomenonTime")), frost(6, 7, 15, 22, 24)),
    ("interval literal lt time", cmp("lt", I700_800, p("phenomenonTime")), frost(5, 6, 7, 14, 15, 22, 24)),
    ("gt instant", cmp("gt", p("phenomenonTime"), T800), frost(6, 7, 15, 22, 24)),
    ("interval gt instant", cmp("gt", p("validTime"), T800), frost(15, 24)),
    ("gt interval", cmp("gt", p("phenomenonTime"), I700_800), frost(5, 6, 7, 14, 15, 22, 24)),
    ("literal gt time", cmp("gt", T700, p("phenomenonTime")), frost(0, 1, 8, 9, 21, 23)),
    ("le instant", cmp("le", p("phenomenonTime"), T700), frost(0, 1, 2, 8, 9, 21, 23)),
    ("le interval", cmp("le", p("phenomenonTime"), I700_800), frost(0, 1, 2, 8, 9, 10, 11, 17, 19, 21, 23)),
    ("interval le", cmp("le", I700_800, p("validTime")), frost(11, 13, 14, 15, 18, 20, 24)),
    ("ge instant", cmp("ge", p("phenomenonTime"), T800), frost(5, 6, 7, 14, 15, 22, 24)),
    ("ge interval", cmp("ge", p("phenomenonTime"), I700_800), frost(5, 6, 7, 11, 13, 14, 15, 18, 20, 22, 24)),
    (
        "literal ge interval",
        cmp("ge", I700_800, p("phenomenonTime")),
        frost(0, 1, 2, 8, 9, 10, 11, 17, 19, 21, 23),
    ),
    ("eq instant", eq(p("phenomenonTime"), T800), frost(5)),
    ("interval eq instant", eq(p("validTime"), T800), []),
    ("eq interval", eq(p("phenomenonTime"), I700_800), frost(11)),
    ("instant eq interval", eq(p("resultTime"), I700_800), []),
    ("ne", cmp("ne", p("resultTime"), T800), frost(0, 1, 2, 3, 4, 6, 7, 21, 22)),
    ("ne interval", cmp("ne", p("phenomenonTime"), I700_800), [k + 1 for k in range(25) if k != 11]),
    ("before", fn("before", p("phenomenonTime"), T700), frost(0, 1, 8, 9, 21, 23)),
    ("before interval", fn("before", p("validTime"), I700_800), frost(8, 9, 23)),
    ("before, literal first", fn("before", I700_800, p("phenomenonTime")), frost(5, 6, 7, 14, 15, 22, 24)),
    ("after", fn("after", p("phenomenonTime"), T800), frost(6, 7, 15, 22, 24)),
    ("after interval", fn("after", p("phenomenonTime"), I700_800), frost(5, 6, 7, 14, 15, 22, 24)),
    ("after, literal first", fn("after", T700, p("validTime")), frost(8, 9, 23)),
    ("meets instant", fn("meets", p("phenomenonTime"), T700), frost(2, 9, 11, 17, 18)),
    ("meets interval", fn("meets", p("phenomenonTime"), I700_800), frost(2, 5, 9, 14)),
    ("meets, literal first", fn("meets", I700_800, p("resultTime")), frost(2, 5)),
    ("during", fn("during", p("phenomenonTime"), I700_800), frost(2, 3, 4, 11, 12, 17, 20)),
    ("during, instant in time", fn("during", T700, p("phenomenonTime")), frost(10, 11, 16, 17, 18, 19)),
    ("during, interval in time", fn("during", I700_800, p("validTime")), frost(11, 16, 18, 19)),
    ("overlaps instant", fn("overlaps", p("phenomenonTime"), T700), frost(2, 10, 11, 16, 17, 18, 19)),
    (
        "overlaps interval",
        fn("overlaps", p("phenomenonTime"), I700_800),
        frost(2, 3, 4, 10, 11, 12, 13, 16, 17, 18, 19, 20),
    ),
    ("overlaps, literal first", fn("overlaps", I700_800, p("resultTime")), frost(2, 3, 4)),
    ("starts", fn("starts", p("phenomenonTime"), T700), frost(2, 11, 17, 18)),
    ("starts interval", fn("starts", p("validTime"), I700_800), frost(11, 17, 18)),
    ("finishes", fn("finishes", p("phenomenonTime"), T800), frost(5, 11, 19, 20)),
    ("finishes, literal first", fn("finishes", I700_800, p("validTime")), frost(11, 19, 20)),
    ("interval string as datetime", fn("during", p("resultTime"), lit(I700_800)), frost(2, 3, 4)),
    ("add duration", cmp("gt", arith("add", p("phenomenonTime"), HOUR), T900), frost(6, 7, 15, 22, 24)),
    ("duration first", cmp("gt", arith("add", HOUR, p("validTime")), T900), frost(15, 24)),
    (
        "gt time sub duration",
        cmp("gt", p("phenomenonTime"), arith("sub", T900, HOUR)),
        frost(6, 7, 15, 22, 24),
    ),
    ("sub duration gt", cmp("gt", arith("sub", p("validTime"), HOUR), T700), frost(15, 24)),
    (
        "lt interval add duration",
        cmp("lt", p("phenomenonTime"), arith("add", I600_700, HOUR)),
        frost(0, 1, 8, 9, 21, 23),
    ),
    (
        "gt interval sub duration",
        cmp("gt", p("phenomenonTime"), arith("sub", I800_900, HOUR)),
        frost(5, 6, 7, 14, 15, 22, 24),
    ),
    ("time sub time", eq(arith("sub", p("phenomenonTime"), T800), HOUR), frost(7)),
    (
        "alternative overlaps",
        both(Not(cmp("lt", p("validTime"), T700)), Not(cmp("ge", p("validTime"), T800))),
        frost(10, 11, 12, 13, 16, 17, 18, 19, 20),
    ),
]


@pytest.mark.parametrize(("expr", "expected"), [pytest.param(e, x, id=i) for i, e, x in TIME_CASES])
async def test_time_rules(db: asyncpg.Connection, expr: Expr, expected: list[int]) -> None:
    assert await select_ids(db, "Observation", expr, where="e.datastream_id = 1") == expected


# ---- geospatial functions (need the geom columns of PostGIS) --------------------------------------

GEO_CASES: list[tuple[str, str, Expr, list[int]]] = [
    ("st_intersects", "Location", fn("st_intersects", p("location"), geo(POLY)), [1, 3]),
    ("geo.intersects", "Location", fn("geo.intersects", p("location"), geo(POLY)), [1, 3]),
    ("st_within", "Location", fn("st_within", p("location"), geo(POLY)), [1, 3]),
    ("st_contains", "Location", fn("st_contains", p("location"), geo("POINT(8 51)")), [1, 3]),
    ("st_equals", "Location", fn("st_equals", p("location"), geo("POINT(10 53)")), [2]),
    ("st_disjoint", "Location", fn("st_disjoint", p("location"), geo(POLY)), [2, 4]),
    ("st_touches", "Location", fn("st_touches", p("location"), geo("POINT(7 50)")), [3]),
    (
        "st_overlaps",
        "Location",
        fn("st_overlaps", p("location"), geo("POLYGON((8 51, 10 51, 10 53, 8 53, 8 51))")),
        [3],
    ),
    ("st_crosses", "Location", fn("st_crosses", p("location"), geo("LINESTRING(6 51, 10 51)")), [3]),
    ("st_relate", "Location", fn("st_relate", p("location"), geo(POLY), "T********"), [1, 3]),
    ("st_relate lower case", "Location", fn("st_relate", p("location"), geo(POLY), "t********"), [1, 3]),
    ("geo.distance", "Location", cmp("lt", fn("geo.distance", p("location"), geo("POINT(8 51)")), 1), [1, 3]),
    ("geo.length", "Location", eq(fn("geo.length", p("location")), 5), [4]),
    (
        "geometry collection",
        "Location",
        fn("st_intersects", p("location"), geo("GEOMETRYCOLLECTION(POINT(10 53), LINESTRING(0 0, 1 1))")),
        [2, 4],
    ),
    ("JSON of a GeoJSON property", "Location", eq(p("location/type"), "Point"), [2]),
    (
        "QGIS probe",
        "Location",
        either(eq(p("location/type"), "Point"), eq(p("location/geometry/type"), "Point")),
        [1, 2],
    ),
    ("Things over Locations", "Thing", fn("st_within", p("Locations/location"), geo(POLY)), [1, 3]),
    (
        "Things over Locations point",
        "Thing",
        fn("st_intersects", p("Locations/location"), geo("POINT(10 53)")),
        [2],
    ),
    (
        "VC Map",
        "Thing",
        both(
            eq(p("Datastreams/ObservedProperty/name"), "NO2"),
            fn("st_within", p("Locations/location"), geo(POLY)),
        ),
        [1],
    ),
    ("features", "FeatureOfInterest", fn("st_equals", p("feature"), geo("POINT(10 53)")), [2]),
    ("observedArea", "Datastream", fn("st_intersects", p("observedArea"), geo(POLY)), [1]),
    (
        "Masterportal from Datastreams",
        "Datastream",
        fn("st_intersects", p("Thing/Locations/location"), geo("POINT(10 53)")),
        [3],
    ),
    (
        "Observations over features",
        "Observation",
        fn("st_within", p("FeatureOfInterest/feature"), geo("POLYGON((9 52, 11 52, 11 54, 9 54, 9 52))")),
        [31],
    ),
]


@pytest.mark.parametrize(
    ("type_name", "expr", "expected"), [pytest.param(*c[1:], id=c[0]) for c in GEO_CASES]
)
async def test_geo(db: asyncpg.Connection, type_name: str, expr: Expr, expected: list[int]) -> None:
    if not await has_geom(db):
        pytest.skip("needs PostGIS: the database has no geom columns (migration 0002 found no PostGIS)")
    assert await select_ids(db, type_name, expr) == expected


# The viewers' shapes (STA-NOTES "What viewers send"), on whatever geometry the database has: PostGIS,
# or without it PostgreSQL's built-in types. Location filters look at the point Locations 1 and 2
# only, since the built-in fallback tests points (L3 is a polygon, L4 a line); the answers must agree.
TRIANGLE = "POLYGON((6 50, 12 50, 6 56, 6 50))"  # x + y <= 62: L1 (8 51) inside, L2 (10 53) not
EDGE = "POLYGON((8 50, 9 50, 9 52, 8 52, 8 50))"  # L1 (8 51) lies on its left edge
# Hypotenuses x + y = 59 -/+ 2e-7: L1 (8 51) 1.4e-7 degrees (1.5 cm) outside / inside. PostgreSQL's
# own polygon operators would call both inside (they compare cross products with a 1e-6 tolerance).
JUST_OUTSIDE = "POLYGON((7 50, 8.9999998 50, 7 51.9999998, 7 50))"
TRAPEZOID = "POLYGON((7 51, 9 51, 8.5 52, 7.5 52, 7 51))"  # L1 (8 51) on its horizontal bottom edge
JUST_INSIDE = "POLYGON((7 50, 9.0000002 50, 7 52.0000002, 7 50))"
POINTS_ONLY = "e.id IN (1, 2)"
VIEWER_GEO_CASES: list[tuple[str, str, Expr, list[int], str]] = [
    ("st_intersects", "Location", fn("st_intersects", p("location"), geo(POLY)), [1], POINTS_ONLY),
    ("geo.intersects (QGIS)", "Location", fn("geo.intersects", p("location"), geo(POLY)), [1], POINTS_ONLY),
    ("st_within", "Location", fn("st_within", p("location"), geo(POLY)), [1], POINTS_ONLY),
    ("st_contains", "Location", fn("st_contains", geo(POLY), p("location")), [1], POINTS_ONLY),
    ("polygon first", "Location", fn("st_intersects", geo(POLY), p("location")), [1], POINTS_ONLY),
    ("st_disjoint", "Location", fn("st_disjoint", p("location"), geo(POLY)), [2], POINTS_ONLY),
    ("triangle", "Location", fn("st_intersects", p("location"), geo(TRIANGLE)), [1], POINTS_ONLY),
    ("triangle within", "Location", fn("st_within", p("location"), geo(TRIANGLE)), [1], POINTS_ONLY),
    ("on the edge intersects", "Location", fn("st_intersects", p("location"), geo(EDGE)), [1], POINTS_ONLY),
    ("on the edge is not within", "Location", fn("st_within", p("location"), geo(EDGE)), [], POINTS_ONLY),
    ("on the edge not contained", "Location", fn("st_contains", geo(EDGE), p("location")), [], POINTS_ONLY),
    ("on the edge touches", "Location", fn("st_touches", p("location"), geo(EDGE)), [1], POINTS_ONLY),
    (
        "on a horizontal edge",
        "Location",
        fn("st_intersects", p("location"), geo(TRAPEZOID)),
        [1],
        POINTS_ONLY,
    ),
    (
        "not within from that edge",
        "Location",
        fn("st_within", p("location"), geo(TRAPEZOID)),
        [],
        POINTS_ONLY,
    ),
    ("1.5 cm outside", "Location", fn("st_intersects", p("location"), geo(JUST_OUTSIDE)), [], POINTS_ONLY),
    ("1.5 cm inside", "Location", fn("st_within", p("location"), geo(JUST_INSIDE)), [1], POINTS_ONLY),
    ("1.5 cm off the ring", "Location", fn("st_touches", p("location"), geo(JUST_INSIDE)), [], POINTS_ONLY),
    ("point equals", "Location", fn("st_equals", p("location"), geo("POINT(10 53)")), [2], POINTS_ONLY),
    (
        "point intersects",
        "Location",
        fn("st_intersects", p("location"), geo("POINT(8 51)")),
        [1],
        POINTS_ONLY,
    ),
    (
        "distance between points",
        "Location",
        cmp("lt", fn("geo.distance", p("location"), geo("POINT(8 52)")), 1.01),
        [1],
        POINTS_ONLY,
    ),
    (
        "distance is planar (3-4-5)",
        "Location",
        eq(fn("geo.distance", p("location"), geo("POINT(11 55)")), 5),
        [1],
        POINTS_ONLY,
    ),
    (
        "Things over Locations (Masterportal)",
        "Thing",
        fn("st_within", p("Locations/location"), geo(POLY)),
        [1, 3],
        "TRUE",
    ),
    (
        "VC Map",
        "Thing",
        both(
            eq(p("Datastreams/ObservedProperty/name"), "NO2"),
            fn("st_within", p("Locations/location"), geo(POLY)),
        ),
        [1],
        "TRUE",
    ),
    (
        "Masterportal from Datastreams",
        "Datastream",
        fn("st_intersects", p("Thing/Locations/location"), geo("POINT(10 53)")),
        [3],
        "TRUE",
    ),
    ("features", "FeatureOfInterest", fn("st_equals", p("feature"), geo("POINT(10 53)")), [2], "TRUE"),
    (
        "Observations over features",
        "Observation",
        fn("st_within", p("FeatureOfInterest/feature"), geo("POLYGON((9 52, 11 52, 11 54, 9 54, 9 52))")),
        [31],
        "TRUE",
    ),
]


@pytest.mark.geo
@pytest.mark.parametrize(
    ("type_name", "expr", "expected", "where"), [pytest.param(*c[1:], id=c[0]) for c in VIEWER_GEO_CASES]
)
async def test_viewer_geo_shapes(
    db: asyncpg.Connection, type_name: str, expr: Expr, expected: list[int], where: str
) -> None:
    dialect = await dialect_of(db)
    if not dialect.postgis and not dialect.points:
        pytest.fail("the database has neither PostGIS geom columns nor the pt columns of migration 0007")
    assert await select_ids(db, type_name, expr, dialect, where) == expected


# What the built-in fallback cannot answer: a 501 (GeometryUnsupportedError) that names PostGIS.
NEEDS_POSTGIS_CASES: list[tuple[str, str, Expr]] = [
    ("geo.length", "Location", eq(fn("geo.length", p("location")), 5)),
    ("st_overlaps", "Location", fn("st_overlaps", p("location"), geo(POLY))),
    ("st_crosses", "Location", fn("st_crosses", p("location"), geo("LINESTRING(6 51, 10 51)"))),
    ("st_relate", "Location", fn("st_relate", p("location"), geo(POLY), "T********")),
    ("a line literal", "Location", fn("st_intersects", p("location"), geo("LINESTRING(0 0, 1 1)"))),
    (
        "a polygon with a hole",
        "Location",
        fn("st_within", p("location"), geo("POLYGON((0 0, 9 0, 9 9, 0 0), (1 1, 2 1, 2 2, 1 1))")),
    ),
    (
        "a multipolygon",
        "Location",
        fn("st_within", p("location"), geo("MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)))")),
    ),
    (
        "three dimensions",
        "Location",
        fn("st_within", p("location"), geo("POLYGON Z((0 0 0, 1 0 0, 1 1 0, 0 0 0))")),
    ),
    ("polygon within a point", "Location", fn("st_within", geo(POLY), p("location"))),
    ("polygons", "Location", fn("st_intersects", geo(POLY), geo(POLY))),
    ("distance to a polygon", "Location", cmp("lt", fn("geo.distance", p("location"), geo(POLY)), 1)),
]


@pytest.mark.parametrize(("type_name", "expr"), [pytest.param(*c[1:], id=c[0]) for c in NEEDS_POSTGIS_CASES])
def test_the_builtin_fallback_names_postgis_for_other_shapes(type_name: str, expr: Expr) -> None:
    with pytest.raises(GeometryUnsupportedError, match="PostGIS") as caught:
        compile_filter(expr, ENTITY_TYPES[type_name], "e", Binds(), BUILTIN)
    assert str(caught.value).startswith("$filter: ")


def test_without_any_geometry_columns_spatial_filters_are_501() -> None:
    with pytest.raises(GeometryUnsupportedError, match="needs PostGIS"):
        compile_filter(
            fn("st_within", p("location"), geo(POLY)), ENTITY_TYPES["Location"], "e", Binds(), PLAIN
        )


# ---- $orderby -------------------------------------------------------------------------------------

ORDER_CASES: list[tuple[str, str, OrderBy, Expr | None, list[int]]] = [
    ("function desc", "Thing", OrderBy(fn("length", p("name")), True), None, [1, 2, 4, 3]),
    ("JSON order, NULLs first", "Thing", OrderBy(p("properties/n")), None, [3, 2, 1, 4]),
    ("JSON text asc, NULLs first", "Thing", OrderBy(p("properties/serviceName")), None, [3, 4, 1, 2]),
    ("desc puts NULLs last", "Thing", OrderBy(p("properties/serviceName"), True), None, [2, 1, 3, 4]),
    ("to-many desc is max, NULLs last", "Thing", OrderBy(p("Datastreams/name"), True), None, [2, 1, 3, 4]),
    ("link to-many asc is min, none first", "Thing", OrderBy(p("Locations/name")), None, [4, 1, 3, 2]),
    ("to-many time asc (VC Map)", "Datastream", OrderBy(p("Observations/phenomenonTime")), None, [1, 3, 2]),
    ("to-many time desc", "Datastream", OrderBy(p("Observations/phenomenonTime"), True), None, [3, 2, 1]),
    (
        "to-one",
        "Observation",
        OrderBy(p("Datastream/name"), True),
        In(p("id"), (lit(1), lit(26), lit(29))),
        [29, 26, 1],
    ),
    ("result JSON desc", "Observation", OrderBy(p("result"), True), eq(p("Datastream/id"), 3), [31, 29, 30]),
    ("time asc", "Observation", OrderBy(p("phenomenonTime")), eq(p("Datastream/id"), 3), [31, 29, 30]),
    (
        "interval by start",
        "Observation",
        OrderBy(p("validTime"), True),
        In(p("id"), (lit(9), lit(12), lit(17))),
        [12, 17, 9],
    ),
    (
        "arithmetic",
        "Observation",
        OrderBy(Negate(p("result"))),
        In(p("id"), (lit(2), lit(3), lit(31))),
        [31, 3, 2],
    ),
    ("id", "Observation", OrderBy(p("@iot.id"), True), In(p("id"), (lit(2), lit(3))), [3, 2]),
]


@pytest.mark.parametrize(
    ("type_name", "order", "where", "expected"), [pytest.param(*c[1:], id=c[0]) for c in ORDER_CASES]
)
async def test_orderby(
    db: asyncpg.Connection, type_name: str, order: OrderBy, where: Expr | None, expected: list[int]
) -> None:
    entity_type = ENTITY_TYPES[type_name]
    binds = Binds()
    condition = "TRUE" if where is None else compile_filter(where, entity_type, "e", binds, POSTGIS)
    key = compile_order(order, entity_type, "e", binds, POSTGIS)
    sql = f"SELECT e.id FROM {entity_type.table} e WHERE {condition} ORDER BY {key}, e.id"
    assert [row["id"] for row in await db.fetch(sql, *binds.values)] == expected


def test_null_ordering_follows_odata() -> None:
    """OData 4.0 Part 2 §5.1.1.1: null sorts before every value ascending, after every value
    descending; keys that are never NULL get no clause, so their btree indexes still serve them."""
    thing, observation = ENTITY_TYPES["Thing"], ENTITY_TYPES["Observation"]
    order = partial(compile_order, binds=Binds(), dialect=PLAIN, alias="e")
    assert order(OrderBy(p("properties/n")), thing).endswith(" ASC NULLS FIRST")
    assert order(OrderBy(p("properties/n"), True), thing).endswith(" DESC NULLS LAST")
    assert order(OrderBy(p("resultTime")), observation) == "e.result_time ASC NULLS FIRST"
    assert order(OrderBy(p("resultTime"), True), observation) == "e.result_time DESC NULLS LAST"
    assert order(OrderBy(p("name")), thing) == "e.name ASC"
    assert order(OrderBy(p("phenomenonTime"), True), observation) == "e.phenomenon_time_start DESC"
    assert order(OrderBy(p("@iot.id")), observation) == "e.id ASC"


# ---- what the SQL looks like ----------------------------------------------------------------------


def test_values_are_bound_with_casts() -> None:
    binds = Binds()
    sql = compile_filter(
        eq(p("properties/serviceName"), "x'; DROP TABLE things; --"), ENTITY_TYPES["Thing"], "e", binds, PLAIN
    )
    assert sql == "((e.properties #>> $1::text[]) = $2::text)"
    assert binds.values == [["serviceName"], "x'; DROP TABLE things; --"]


def test_id_stays_bigint_for_the_index() -> None:
    binds = Binds()
    assert compile_filter(eq(p("id"), 5), ENTITY_TYPES["Thing"], "e", binds, PLAIN) == "(e.id = $1::bigint)"


def test_to_one_id_uses_the_link_column() -> None:
    sql = compile_filter(eq(p("Datastream/id"), 5), ENTITY_TYPES["Observation"], "e", Binds(), PLAIN)
    assert sql == "(e.datastream_id = $1::bigint)"


def test_navigation_compiles_to_exists_with_fresh_aliases() -> None:
    expr = both(eq(p("Datastreams/name"), "a"), eq(p("Datastreams/name"), "b"))
    sql = compile_filter(expr, ENTITY_TYPES["Thing"], "e", Binds(), PLAIN)
    assert sql == (
        "(EXISTS (SELECT 1 FROM datastreams en1 WHERE en1.thing_id = e.id AND (en1.name = $1::text))"
        " AND EXISTS (SELECT 1 FROM datastreams en2 WHERE en2.thing_id = e.id AND (en2.name = $2::text)))"
    )


def test_simple_time_range_keeps_the_start_column_indexable() -> None:
    expr = both(cmp("ge", p("phenomenonTime"), T700), cmp("le", p("phenomenonTime"), T800))
    sql = compile_filter(expr, ENTITY_TYPES["Observation"], "e", Binds(), PLAIN)
    assert "e.phenomenon_time_start >= $1::timestamptz" in sql
    assert "e.phenomenon_time_start <= $2::timestamptz" in sql


def test_now_minus_a_day_is_plain_interval_arithmetic() -> None:
    binds = Binds()
    expr = cmp("gt", p("resultTime"), arith("sub", fn("now"), timedelta(days=1)))
    sql = compile_filter(expr, ENTITY_TYPES["Observation"], "e", binds, PLAIN)
    assert sql == "(e.result_time > (now() - $1::interval))"
    assert binds.values == [timedelta(days=1)]


# ---- errors ---------------------------------------------------------------------------------------

ERROR_CASES: list[tuple[str, str, Expr, str, Dialect]] = [
    (
        "unknown property",
        "Thing",
        eq(p("nmae"), "x"),
        "$filter: Things has no property or navigation 'nmae'",
        PLAIN,
    ),
    (
        "unknown after navigation",
        "Thing",
        eq(p("Datastreams/nmae"), "x"),
        "$filter: Datastreams has no property or navigation 'nmae'",
        PLAIN,
    ),
    (
        "unknown in lambda",
        "Thing",
        any_("Datastreams", "d", eq(p("nmae", "d"), 1)),
        "Datastreams has no property or navigation 'nmae'",
        PLAIN,
    ),
    ("unknown lambda variable", "Thing", eq(p("name", "x"), 1), "unknown lambda variable 'x'", PLAIN),
    (
        "bare lambda variable",
        "Thing",
        any_("Datastreams", "d", eq(Path((), "d"), 1)),
        "'d' names no property",
        PLAIN,
    ),
    (
        "navigation without property",
        "Thing",
        eq(p("Datastreams"), None),
        "ends on the navigation property",
        PLAIN,
    ),
    ("sub-property of text", "Thing", eq(p("name/x"), 1), "name of Things has no sub-properties", PLAIN),
    ("sub-property of id", "Thing", eq(p("id/x"), 1), "the id of Things has no sub-properties", PLAIN),
    (
        "sub-property of interval",
        "Observation",
        eq(p("validTime/middle"), 1),
        "validTime has only the sub-properties start and end",
        PLAIN,
    ),
    (
        "lambda over a property",
        "Thing",
        any_("name", "d", lit(True)),
        "'name' is a property, not a navigation",
        PLAIN,
    ),
    ("lambda over to-one", "Datastream", any_("Thing", "d", lit(True)), "'Thing' is not a collection", PLAIN),
    ("unknown function", "Thing", fn("foo", p("name")), "$filter: unknown function 'foo'", PLAIN),
    (
        "too many arguments",
        "Thing",
        eq(fn("length", p("name"), 1), 1),
        "length takes 1 argument, not 2",
        PLAIN,
    ),
    (
        "too few arguments",
        "Thing",
        eq(fn("substring", p("name")), "x"),
        "substring takes 2 or 3 arguments, not 1",
        PLAIN,
    ),
    (
        "no arguments expected",
        "Thing",
        cmp("gt", fn("now", 1), fn("now")),
        "now takes no arguments, not 1",
        PLAIN,
    ),
    (
        "argument type",
        "Thing",
        eq(fn("length", p("id")), 1),
        "argument 1 of length needs a text, not a number",
        PLAIN,
    ),
    (
        "date function on text",
        "Thing",
        eq(fn("year", p("name")), 1),
        "argument 1 of year needs a datetime",
        PLAIN,
    ),
    (
        "temporal on text",
        "Thing",
        fn("before", p("name"), T700),
        "argument 1 of before needs a datetime",
        PLAIN,
    ),
    (
        "geo on text",
        "Thing",
        fn("st_within", p("name"), geo(POLY)),
        "argument 1 of st_within needs a geometry",
        POSTGIS,
    ),
    (
        "geo on JSON without geometry",
        "Thing",
        fn("st_within", p("properties"), geo(POLY)),
        "argument 1 of st_within needs a geometry, not a JSON value",
        POSTGIS,
    ),
    (
        "geo.intersects without PostGIS",
        "Location",
        fn("geo.intersects", p("location"), geo(POLY)),
        "$filter: geo.intersects needs PostGIS, which this database does not have",
        PLAIN,
    ),
    (
        "st_within without PostGIS",
        "Thing",
        fn("st_within", p("Locations/location"), geo(POLY)),
        "st_within needs PostGIS, which this database does not have",
        PLAIN,
    ),
    (
        "geography literal without PostGIS",
        "Thing",
        eq(p("name"), geo("POINT(1 2)")),
        "geography literals need PostGIS",
        PLAIN,
    ),
    (
        "bad WKT",
        "Location",
        fn("st_within", p("location"), geo("POLYGON((0 0, 1 1, 1 0))")),
        "is not well-known text: needs at least 4 positions",
        POSTGIS,
    ),
    (
        "open ring",
        "Location",
        fn("st_within", p("location"), geo("POLYGON((0 0, 1 1, 1 0, 2 2))")),
        "a polygon ring must end where it starts",
        POSTGIS,
    ),
    (
        "bad relate pattern",
        "Location",
        fn("st_relate", p("location"), geo(POLY), "T*"),
        "the third argument of st_relate must be a DE-9IM pattern",
        POSTGIS,
    ),
    (
        "relate pattern not a literal",
        "Location",
        fn("st_relate", p("location"), geo(POLY), p("name")),
        "the third argument of st_relate must be a DE-9IM pattern",
        POSTGIS,
    ),
    (
        "compare geometries",
        "Location",
        eq(p("location"), geo("POINT(1 2)")),
        "cannot compare geometries with eq; use st_equals",
        POSTGIS,
    ),
    (
        "text vs datetime",
        "Thing",
        cmp("gt", p("name"), T700),
        "cannot compare a text with a datetime (gt)",
        PLAIN,
    ),
    (
        "JSON vs datetime column",
        "Observation",
        cmp("gt", p("parameters/x"), p("resultTime")),
        "cannot compare a JSON value with a datetime (gt)",
        PLAIN,
    ),
    (
        "bad time string",
        "Observation",
        eq(p("resultTime"), "garbage"),
        "'garbage' is not an ISO 8601 instant or interval",
        PLAIN,
    ),
    (
        "arithmetic on text",
        "Thing",
        eq(arith("add", p("name"), 1), 2),
        "cannot add a text and a number",
        PLAIN,
    ),
    (
        "time plus time",
        "Observation",
        eq(arith("add", p("resultTime"), p("resultTime")), 2),
        "cannot add a datetime and a datetime",
        PLAIN,
    ),
    (
        "minus text",
        "Thing",
        eq(Negate(p("name")), 1),
        "unary minus needs a number or a duration, not a text",
        PLAIN,
    ),
    ("not a condition", "Thing", p("name"), "the expression is a text, not a condition", PLAIN),
    ("not a condition, number", "Thing", Not(fn("length", p("name"))), "the expression is a number", PLAIN),
    (
        "during an instant",
        "Observation",
        fn("during", p("resultTime"), T700),
        "the second argument of during must be an interval",
        PLAIN,
    ),
    (
        "during an instant property",
        "Observation",
        fn("during", T700, p("resultTime")),
        "the second argument of during must be an interval",
        PLAIN,
    ),
    (
        "during an instant string",
        "Observation",
        fn("during", p("validTime"), T700.isoformat()),
        "the second argument of during must be an interval",
        PLAIN,
    ),
    ("NUL in a string", "Thing", eq(p("name"), "a\x00b"), "text may not contain NUL characters", PLAIN),
    (
        "NUL in a JSON key",
        "Thing",
        eq(p("properties/a\x00"), 1),
        "text may not contain NUL characters",
        PLAIN,
    ),
    ("lone surrogate", "Thing", eq(p("name"), "\ud800"), "text is not valid Unicode", PLAIN),
]


@pytest.mark.parametrize(
    ("type_name", "expr", "message", "dialect"), [pytest.param(*c[1:], id=c[0]) for c in ERROR_CASES]
)
def test_errors(type_name: str, expr: Expr, message: str, dialect: Dialect) -> None:
    with pytest.raises(QueryError) as caught:
        compile_filter(expr, ENTITY_TYPES[type_name], "e", Binds(), dialect)
    assert message in str(caught.value)


def test_order_errors() -> None:
    with pytest.raises(QueryError, match=r"\$orderby: cannot order by a geometry"):
        compile_order(OrderBy(geo("POINT(1 2)")), ENTITY_TYPES["Thing"], "e", Binds(), POSTGIS)
    with pytest.raises(QueryError, match=r"\$orderby: Things has no property or navigation 'nmae'"):
        compile_order(OrderBy(p("nmae")), ENTITY_TYPES["Thing"], "e", Binds(), PLAIN)


def test_query_error_is_a_bad_request() -> None:
    from hub.errors import BadRequestError

    assert issubclass(QueryError, BadRequestError)


# ---- random well-formed expressions must compile and run -------------------------------------------


@dataclass(frozen=True)
class Schema:
    """Paths of one entity type, by the type they compile to."""

    name: str
    text: tuple[Path, ...]
    number: tuple[Path, ...]
    time: tuple[Path, ...]
    interval: tuple[Path, ...]  # times that may be intervals (the second argument of during)
    json: tuple[Path, ...]
    collections: tuple[tuple[str, Schema], ...] = ()  # navigation for any()/all(), with the member schema


def _paths(*texts: str) -> tuple[Path, ...]:
    return tuple(p(text) for text in texts)


DATASTREAM_SCHEMA = Schema(
    "Datastream",
    _paths("name", "description", "observationType", "Thing/name", "ObservedProperty/name"),
    _paths("id", "Sensor/id", "Observations/id"),
    _paths("phenomenonTime", "resultTime/end", "Observations/resultTime"),
    _paths("phenomenonTime", "resultTime"),
    _paths("properties/serviceName", "unitOfMeasurement/symbol", "observedArea/type", "Observations/result"),
)
SCHEMAS = (
    DATASTREAM_SCHEMA,
    Schema(
        "Thing",
        _paths(
            "name", "description", "Datastreams/name", "Locations/name", "Datastreams/ObservedProperty/name"
        ),
        _paths("id", "@iot.id", "Datastreams/id", "Locations/@iot.id"),
        _paths(
            "HistoricalLocations/time", "Datastreams/phenomenonTime", "Datastreams/Observations/resultTime"
        ),
        _paths("Datastreams/phenomenonTime"),
        _paths(
            "properties/serviceName",
            "properties/n",
            "properties",
            "properties/tags/0",
            "Locations/location/type",
        ),
        (("Datastreams", DATASTREAM_SCHEMA),),
    ),
    Schema(
        "Observation",
        _paths("Datastream/name", "FeatureOfInterest/name", "Datastream/Thing/description"),
        _paths("id", "Datastream/id", "FeatureOfInterest/id", "Datastream/Thing/id"),
        _paths("phenomenonTime", "resultTime", "validTime", "validTime/start", "Datastream/resultTime"),
        _paths("phenomenonTime", "validTime", "Datastream/phenomenonTime"),
        _paths(
            "result", "result/x", "parameters/qualityFlag", "resultQuality", "Datastream/unitOfMeasurement"
        ),
    ),
)

_TEXTS = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6)
_NUMBERS = st.one_of(st.integers(-(2**70), 2**70), st.floats(), st.sampled_from([0, 1, -1, 2**63 - 1]))
_MOMENTS = st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.just(UTC))
_SPANS = st.timedeltas(timedelta(days=-999_999_999), timedelta(days=999_999_999))
_COMPARE = st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"])
_COORDINATES = st.floats(-200, 200, allow_nan=False)
# proper intervals, as strings (how the parser hands over `start/end`)
_INTERVALS = (
    st.tuples(_MOMENTS, _MOMENTS)
    .filter(lambda ab: ab[0] != ab[1])
    .map(lambda ab: lit(f"{min(ab).isoformat()}/{max(ab).isoformat()}"))
)


def _wkt(xs: list[float]) -> str:
    x1, y1, x2, y2 = xs
    return f"POLYGON(({x1} {y1}, {x2} {y1}, {x2} {y2}, {x1} {y2}, {x1} {y1}))"


_GEOMETRIES = st.one_of(
    st.lists(_COORDINATES, min_size=2, max_size=2).map(lambda xy: f"POINT({xy[0]} {xy[1]})"),
    st.lists(_COORDINATES, min_size=4, max_size=4).map(_wkt),
).map(geo)


@functools.cache
def texts(schema: Schema, depth: int, scope: str | None = None) -> st.SearchStrategy[Expr]:
    leaves = st.one_of(
        st.sampled_from(schema.text + schema.json).map(lambda x: _scoped(x, scope)), _TEXTS.map(lit)
    )
    if depth == 0:
        return leaves
    sub, num = texts(schema, depth - 1, scope), numbers(schema, depth - 1, scope)
    return st.one_of(
        leaves,
        st.builds(fn, st.sampled_from(["tolower", "toupper", "trim"]), sub),
        st.builds(lambda a, b: fn("concat", a, b), sub, sub),
        st.builds(lambda a, b: fn("substring", a, b), sub, num),
        st.builds(lambda a, b, c: fn("substring", a, b, c), sub, num, num),
    )


@functools.cache
def numbers(schema: Schema, depth: int, scope: str | None = None) -> st.SearchStrategy[Expr]:
    leaves = st.one_of(
        st.sampled_from(schema.number + schema.json).map(lambda x: _scoped(x, scope)), _NUMBERS.map(lit)
    )
    if depth == 0:
        return leaves
    sub, text, moment = (
        numbers(schema, depth - 1, scope),
        texts(schema, depth - 1, scope),
        times(schema, depth - 1, scope),
    )
    return st.one_of(
        leaves,
        st.builds(arith, st.sampled_from(["add", "sub", "mul", "div", "mod"]), sub, sub),
        sub.map(Negate),
        st.builds(fn, st.sampled_from(["round", "floor", "ceiling"]), sub),
        text.map(lambda a: fn("length", a)),
        st.builds(lambda a, b: fn("indexof", a, b), text, text),
        st.builds(
            fn,
            st.sampled_from(
                [
                    "year",
                    "month",
                    "day",
                    "hour",
                    "minute",
                    "second",
                    "fractionalseconds",
                    "totaloffsetminutes",
                ]
            ),
            moment,
        ),
    )


@functools.cache
def durations(schema: Schema, depth: int, scope: str | None = None) -> st.SearchStrategy[Expr]:
    leaves = _SPANS.map(lit)
    if depth == 0:
        return leaves
    sub, moment = durations(schema, depth - 1, scope), times(schema, depth - 1, scope)
    return st.one_of(
        leaves,
        st.builds(lambda a, b: arith("sub", a, b), moment, moment),
        st.builds(arith, st.sampled_from(["add", "sub"]), sub, sub),
        st.builds(arith, st.sampled_from(["mul", "div"]), sub, numbers(schema, depth - 1, scope)),
        sub.map(Negate),
    )


@functools.cache
def times(schema: Schema, depth: int, scope: str | None = None) -> st.SearchStrategy[Expr]:
    leaves = st.one_of(
        st.sampled_from(schema.time).map(lambda x: _scoped(x, scope)),
        _MOMENTS.map(lit),
        st.sampled_from(["now", "mindatetime", "maxdatetime"]).map(fn),
        _INTERVALS,
    )
    if depth == 0:
        return leaves
    moved = times(schema, depth - 1, scope), durations(schema, depth - 1, scope)
    return st.one_of(leaves, st.builds(arith, st.sampled_from(["add", "sub"]), *moved))


def _scoped(path: Path, scope: str | None) -> Path:
    return Path(path.segments, scope) if scope else path


def _comparisons(schema: Schema, depth: int, scope: str | None) -> st.SearchStrategy[Expr]:
    text, num = texts(schema, depth, scope), numbers(schema, depth, scope)
    moment, span = times(schema, depth, scope), durations(schema, depth, scope)
    json = st.sampled_from(schema.json).map(lambda x: _scoped(x, scope))
    json_literal = st.one_of(_TEXTS, _NUMBERS, st.booleans(), st.none(), _MOMENTS).map(lit)
    interval = st.one_of(st.sampled_from(schema.interval).map(lambda x: _scoped(x, scope)), _INTERVALS)
    relations = ["before", "after", "meets", "overlaps", "starts", "finishes"]
    return st.one_of(
        *(st.builds(cmp, _COMPARE, kind, kind) for kind in (text, num, moment, span)),
        st.builds(cmp, _COMPARE, json, st.one_of(json, json_literal)),
        st.builds(cmp, _COMPARE, json_literal, json),
        st.builds(cmp, _COMPARE, st.one_of(text, num, moment, span, json), st.just(lit(None))),
        st.builds(lambda a, b: cmp("gt", a, b), num, text),
        st.builds(lambda a, values: In(a, tuple(values)), num, st.lists(num, max_size=3)),
        st.builds(lambda a, values: In(a, tuple(values)), st.one_of(text, json), st.lists(text, max_size=3)),
        st.builds(fn, st.sampled_from(["substringof", "contains", "startswith", "endswith"]), text, text),
        st.builds(fn, st.sampled_from(relations), moment, moment),
        st.builds(lambda a, b: fn("during", a, b), moment, interval),
    )


@functools.cache
def conditions(schema: Schema, depth: int, scope: str | None = None) -> st.SearchStrategy[Expr]:
    leaves = st.one_of(_comparisons(schema, max(depth - 1, 0), scope), st.booleans().map(lit))
    if schema.name == "Thing":
        located = st.builds(
            fn,
            st.sampled_from(
                [
                    "st_intersects",
                    "st_within",
                    "st_disjoint",
                    "st_touches",
                    "st_overlaps",
                    "st_crosses",
                    "st_contains",
                    "st_equals",
                    "geo.intersects",
                ]
            ),
            st.just(p("Locations/location")),
            _GEOMETRIES,
        )
        leaves = st.one_of(leaves, located)
    if depth == 0:
        return leaves
    sub = conditions(schema, depth - 1, scope)
    lambdas = [
        st.builds(
            lambda op, pred, nav=nav: Lambda(p(nav), op, "v", pred),
            st.sampled_from(["any", "all"]),
            conditions(member, depth - 1, "v"),
        )
        for nav, member in schema.collections
    ]
    return st.one_of(leaves, sub.map(Not), st.builds(both, sub, sub), st.builds(either, sub, sub), *lambdas)


def _sort_keys(schema: Schema) -> st.SearchStrategy[Expr]:
    return st.one_of(
        texts(schema, 1), numbers(schema, 1), times(schema, 1), durations(schema, 1), conditions(schema, 0)
    )


@pytest.mark.parametrize("schema", SCHEMAS, ids=[s.name for s in SCHEMAS])
def test_random_expressions_run(dataset: str, schema: Schema) -> None:
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(asyncpg.connect(dataset))
    dialect = loop.run_until_complete(dialect_of(conn))
    entity_type = ENTITY_TYPES[schema.name]

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(expr=conditions(schema, 3), key=_sort_keys(schema), descending=st.booleans())
    def run(expr: Expr, key: Expr, descending: bool) -> None:
        binds = Binds()
        try:
            where = compile_filter(expr, entity_type, "e", binds, dialect)
            order = compile_order(OrderBy(key, descending), entity_type, "e", binds, dialect)
        except GeometryUnsupportedError:
            assert not dialect.postgis  # the built-in fallback's documented 501 for other shapes
            return
        sql = f"SELECT e.id FROM {entity_type.table} e WHERE {where} ORDER BY {order}, e.id"
        loop.run_until_complete(conn.fetch(sql, *binds.values))

    try:
        run()
    finally:
        loop.run_until_complete(conn.close())
        loop.close()
