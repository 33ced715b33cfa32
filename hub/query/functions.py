# SPDX-License-Identifier: Apache-2.0
"""The built-in query functions of $filter and $orderby (OGC 18-088 §9.3.3.5.2).

One table, name -> Function (parameter types and an SQL builder). Conventions:
string positions are 0-based (STA-NOTES 9); date parts, date() and time() are
taken in UTC, which is how times are stored; intervals give their start to the
date functions; fractionalseconds is the decimal fraction of a second;
mindatetime()/maxdatetime() bind OData's Edm.DateTimeOffset bounds
0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z, which asyncpg sends as
-infinity/infinity (so they lie before/after every stored time, and their
year() is -Infinity/Infinity); geo.distance and
geo.length are planar in SRID 4326 (STA-NOTES 11), and without PostGIS the viewers' shapes run
on built-in types (builtin_geo.py); the temporal functions
(before, after, meets, during, overlaps, starts, finishes) follow FROST-Server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hub.query import builtin_geo
from hub.query.ast import Constant, Expr
from hub.query.operators import TEMPORAL, coerce
from hub.query.sqlexpr import BIGINT, FLOAT, NUMERIC, Ctx, Ty, Val, boolean, instant, number

Build = Callable[[Ctx, list[Val]], Val]
Compile = Callable[[Expr, Ctx, Ty | None], Val]
LiteralArgument = Callable[[str, Expr, Ctx], Val]

MIN_DATETIME = datetime(1, 1, 1, tzinfo=UTC)
MAX_DATETIME = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
_PATTERN = re.compile(r"[TF*012]{9}")


@dataclass(frozen=True)
class Function:
    """A query function: accepted types of each parameter (the first also types a literal), its SQL."""

    params: tuple[tuple[Ty, ...], ...]
    build: Build
    optional: int = 0  # how many trailing parameters may be left out
    geo: bool = False  # needs PostGIS
    literals: Mapping[int, LiteralArgument] = field(default_factory=dict)  # parameters that must be literals


def _sql(ty: Ty, template: str, num: str = NUMERIC) -> Build:
    """A builder filling `template` with the arguments' SQL."""

    def build(ctx: Ctx, args: list[Val]) -> Val:
        return Val(ty, template.format(*(a.sql for a in args)), num=num)

    return build


def _utc(value: Val) -> str:
    """A time as UTC wall-clock time; dates and times of day as they are."""
    return f"({value.sql} AT TIME ZONE 'UTC')" if value.ty is Ty.TIME else value.sql


def _part(name: str) -> Build:
    """year(), month(), ...: numeric, because asyncpg stores datetime.min/max as -infinity/infinity,
    whose parts are -Infinity/Infinity (and no bigint)."""

    def build(ctx: Ctx, args: list[Val]) -> Val:
        return number(f"floor(extract({name} from {_utc(args[0])}))")

    return build


def _fraction(ctx: Ctx, args: list[Val]) -> Val:
    seconds = f"extract(second from {_utc(args[0])})"
    return number(f"({seconds} - floor({seconds}))")


def _convert(ty: Ty, sql_type: str) -> Build:
    def build(ctx: Ctx, args: list[Val]) -> Val:
        return Val(ty, f"({_utc(args[0])})::{sql_type}")

    return build


def _int4(value: Val, low: int) -> str:
    """A number clamped into PostgreSQL's integer range (substr takes integers); NULL stays NULL."""
    x = f"floor(({value.sql})::numeric)"
    return f"(CASE WHEN {value.sql} IS NOT NULL THEN LEAST(GREATEST({x}, {low}), 2147483646)::integer END)"


def _substring(ctx: Ctx, args: list[Val]) -> Val:
    start = f"{_int4(args[1], 0)} + 1"  # 0-based, as OData
    if len(args) == 2:
        return Val(Ty.TEXT, f"substr({args[0].sql}, {start})")
    return Val(Ty.TEXT, f"substr({args[0].sql}, {start}, {_int4(args[2], 0)})")


def _moment(value: datetime) -> Build:
    def build(ctx: Ctx, args: list[Val]) -> Val:
        return instant(ctx.bind(value, "timestamptz"))

    return build


def _temporal(name: str) -> Build:
    rule = TEMPORAL[name]

    def build(ctx: Ctx, args: list[Val]) -> Val:
        a, b = args
        if name == "during" and not b.interval:
            ctx.fail("the second argument of during must be an interval (or an interval property)")
        return boolean(rule(a.sql, a.end, b.sql, b.end))

    return build


def _pattern(name: str, arg: Expr, ctx: Ctx) -> Val:
    """The DE-9IM pattern of st_relate, checked here so that GEOS never rejects it."""
    text = str(arg.value).upper() if isinstance(arg, Constant) and arg.kind == "string" else ""
    if not _PATTERN.fullmatch(text):
        ctx.fail(f"the third argument of {name} must be a DE-9IM pattern such as 'T*F**F***'")
    return Val(Ty.TEXT, ctx.bind(text, "text"))


TEXT, NUM, TIME, GEO = (Ty.TEXT,), (Ty.NUMBER,), (Ty.TIME,), (Ty.GEOMETRY,)
_DAY, _CLOCK = (Ty.TIME, Ty.DATE), (Ty.TIME, Ty.CLOCK)
_BOOL = Ty.BOOL
_UTC_OFFSET = "(CASE WHEN {0} IS NOT NULL THEN 0 END)"  # times are stored and served in UTC


def _relation(sql_name: str) -> Function:
    return Function((GEO, GEO), _sql(_BOOL, f"{sql_name}({{0}}, {{1}})"), geo=True)


FUNCTIONS: dict[str, Function] = {
    # strings
    "substringof": Function((TEXT, TEXT), _sql(_BOOL, "(strpos({1}, {0}) > 0)")),
    "contains": Function((TEXT, TEXT), _sql(_BOOL, "(strpos({0}, {1}) > 0)")),
    "startswith": Function((TEXT, TEXT), _sql(_BOOL, "starts_with({0}, {1})")),
    "endswith": Function((TEXT, TEXT), _sql(_BOOL, "(right({0}, char_length({1})) = {1})")),
    "length": Function((TEXT,), _sql(Ty.NUMBER, "char_length({0})", BIGINT)),
    "indexof": Function((TEXT, TEXT), _sql(Ty.NUMBER, "(strpos({0}, {1}) - 1)", BIGINT)),
    "substring": Function((TEXT, NUM, NUM), _substring, optional=1),
    "tolower": Function((TEXT,), _sql(Ty.TEXT, "lower({0})")),
    "toupper": Function((TEXT,), _sql(Ty.TEXT, "upper({0})")),
    "trim": Function((TEXT,), _sql(Ty.TEXT, "btrim({0})")),
    "concat": Function((TEXT, TEXT), _sql(Ty.TEXT, "({0} || {1})")),
    # dates and times
    "year": Function((_DAY,), _part("year")),
    "month": Function((_DAY,), _part("month")),
    "day": Function((_DAY,), _part("day")),
    "hour": Function((_CLOCK,), _part("hour")),
    "minute": Function((_CLOCK,), _part("minute")),
    "second": Function((_CLOCK,), _part("second")),
    "fractionalseconds": Function((_CLOCK,), _fraction),
    "date": Function((TIME,), _convert(Ty.DATE, "date")),
    "time": Function((TIME,), _convert(Ty.CLOCK, "time")),
    "totaloffsetminutes": Function((TIME,), _sql(Ty.NUMBER, _UTC_OFFSET, BIGINT)),
    "now": Function((), lambda ctx, args: instant("now()")),
    "mindatetime": Function((), _moment(MIN_DATETIME)),
    "maxdatetime": Function((), _moment(MAX_DATETIME)),
    # math
    "round": Function((NUM,), _sql(Ty.NUMBER, "round(({0})::numeric)")),
    "floor": Function((NUM,), _sql(Ty.NUMBER, "floor(({0})::numeric)")),
    "ceiling": Function((NUM,), _sql(Ty.NUMBER, "ceil(({0})::numeric)")),
    # geometry
    "geo.distance": Function((GEO, GEO), _sql(Ty.NUMBER, "ST_Distance({0}, {1})", FLOAT), geo=True),
    "geo.length": Function((GEO,), _sql(Ty.NUMBER, "ST_Length({0})", FLOAT), geo=True),
    "geo.intersects": _relation("ST_Intersects"),
    **{f"st_{name}": _relation(f"ST_{name.title()}") for name in (
        "equals", "disjoint", "touches", "within", "overlaps", "crosses", "intersects", "contains")},
    "st_relate": Function((GEO, GEO, TEXT), _sql(_BOOL, "ST_Relate({0}, {1}, {2})"), geo=True,
                          literals={2: _pattern}),
    # temporal relations of times and intervals
    **{name: Function((TIME, TIME), _temporal(name)) for name in TEMPORAL},
}  # fmt: skip


def _arity(name: str, function: Function, given: int, ctx: Ctx) -> None:
    most = len(function.params)
    least = most - function.optional
    if least <= given <= most:
        return
    counts = f"{least} or {most}" if least != most else str(most) if most else "no"
    ctx.fail(f"{name} takes {counts} argument{'s' if most != 1 else ''}, not {given}")


def _argument(name: str, function: Function, i: int, arg: Expr, ctx: Ctx, compile_arg: Compile) -> Val:
    if i in function.literals:
        return function.literals[i](name, arg, ctx)
    accepted = function.params[i]
    value = compile_arg(arg, ctx, accepted[0])
    if value.ty in accepted:
        return value
    return coerce(value, accepted[0], ctx, f"argument {i + 1} of {name}")


def call(name: str, args: tuple[Expr, ...], ctx: Ctx, compile_arg: Compile) -> Val:
    """Compile the call `name(args)`; `compile_arg` compiles one argument with a literal hint."""
    function = FUNCTIONS.get(name)
    if function is None:
        ctx.fail(f"unknown function {name!r}")
    _arity(name, function, len(args), ctx)
    if function.geo and not ctx.dialect.postgis and not ctx.dialect.points:
        ctx.needs_postgis(f"{name} needs PostGIS, which this database does not have")
    values = [_argument(name, function, i, arg, ctx, compile_arg) for i, arg in enumerate(args)]
    if function.geo and not ctx.dialect.postgis:
        return builtin_geo.call(name, values, ctx)  # the viewers' shapes on built-in types
    return function.build(ctx, values)
