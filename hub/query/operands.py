# SPDX-License-Identifier: Apache-2.0
"""The leaves of $filter/$orderby expressions: member paths and literals (OGC 18-088 §9.3.3).

A member path resolves against schemas.model: own properties, `id`/`@iot.id`,
JSON sub-paths into object-valued properties (keys bound as one text[]),
`start`/`end` of interval properties, and navigation hops, which the context
turns into joins (see Ctx.join). A literal is typed by the other side of its
comparison where that matters (`hint`): a string next to a time is an ISO 8601
instant or interval, next to a number a number when it reads as one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from hub.query import builtin_geo
from hub.query.ast import Constant, Path
from hub.query.sqlexpr import BIGINT, FLOAT, NULL, Ctx, Ty, Val, boolean, instant, number
from hub.query.wkt import wkt_problem
from schemas.entities import ValidationError, parse_time
from schemas.model import TWO_COLUMN_KINDS, EntityType, Join, Kind, NavigationProperty, Property

ID_NAMES = frozenset({"id", "@iot.id"})
JSON_KINDS = frozenset({Kind.OBJECT, Kind.JSON, Kind.GEOJSON, Kind.UNIT, Kind.ARRAY})

# GeoJSON properties with a geometry to run ST_ functions on ({a}: the row alias). Locations and
# FeaturesOfInterest keep a generated geom column; a Datastream's observedArea is converted on the fly.
_GEOMETRY = {
    ("Location", "location"): "{a}.geom",
    ("FeatureOfInterest", "feature"): "{a}.geom",
    ("Datastream", "observedArea"): "twinhub_geometry({a}.observed_area)",
    ("MultiDatastream", "observedArea"): "twinhub_geometry({a}.observed_area)",
}
# Without PostGIS: the built-in point of a GeoJSON Point (migration 0007; NULL for other geometries).
_POINTS = {
    ("Location", "location"): "{a}.pt",
    ("FeatureOfInterest", "feature"): "{a}.pt",
    ("Datastream", "observedArea"): "twinhub_point({a}.observed_area)",
    ("MultiDatastream", "observedArea"): "twinhub_point({a}.observed_area)",
}

_NUMBER_TEXT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_INT_TEXT = re.compile(r"[-+]?\d+")
_BIGINT_RANGE = range(-(2**63), 2**63)


def show(path: Path) -> str:
    """A path as written: `Datastreams/name`, `d/name`."""
    return "/".join(([path.variable] if path.variable else []) + list(path.segments))


def _is_member(entity_type: EntityType, name: str) -> bool:
    return name in ID_NAMES or name in entity_type.property_by_name or name in entity_type.navigation_by_name


def _start(path: Path, ctx: Ctx) -> tuple[str, EntityType, tuple[str, ...]]:
    """The row a path starts from and the segments that remain."""
    segments, variable = path.segments, path.variable
    if variable is None and len(segments) > 1 and segments[0] in ctx.roots:
        variable, segments = segments[0], segments[1:]  # `d/name` with the variable as a segment
    if variable is not None:
        if variable not in ctx.roots:
            ctx.fail(f"unknown lambda variable {variable!r} in {show(path)!r}")
        alias, entity_type = ctx.roots[variable]
        if segments and segments[0] == variable and not _is_member(entity_type, variable):
            segments = segments[1:]
        return alias, entity_type, segments
    alias, entity_type = ctx.roots[None]
    if len(segments) > 1 and segments[0] == entity_type.set_name and not _is_member(entity_type, segments[0]):
        segments = segments[1:]  # `Things/name` on Things
    return alias, entity_type, segments


def _step(entity_type: EntityType, name: str, ctx: Ctx) -> Property | NavigationProperty:
    member = entity_type.property_by_name.get(name) or entity_type.navigation_by_name.get(name)
    if member is None:
        ctx.fail(f"{entity_type.set_name} has no property or navigation {name!r}")
    return member


def path_value(path: Path, ctx: Ctx) -> Val:
    """Compile a member path; navigation hops become joins in `ctx`."""
    alias, entity_type, segments = _start(path, ctx)
    if not segments:
        ctx.fail(f"{show(path)!r} names no property")
    for i, name in enumerate(segments):
        rest = segments[i + 1 :]
        if name in ID_NAMES:
            if rest:
                ctx.fail(f"the id of {entity_type.set_name} has no sub-properties (in {show(path)!r})")
            return number(f"{alias}.id", BIGINT)
        member = _step(entity_type, name, ctx)
        if isinstance(member, Property):
            return _property(member, alias, entity_type, rest, ctx)
        if not rest:
            ctx.fail(f"{show(path)!r} ends on the navigation property {name!r}; name one of its properties")
        if member.join is Join.FORWARD and len(rest) == 1 and rest[0] in ID_NAMES:
            return number(f"{alias}.{member.column}", BIGINT)  # Datastream/id: the link column itself
        alias, entity_type = ctx.join(alias, member), member.target
    raise AssertionError("unreachable: the last segment returns")


def navigate(path: Path, ctx: Ctx) -> tuple[str, EntityType]:
    """Join along a path of navigation properties ending on a collection (for any()/all())."""
    alias, entity_type, segments = _start(path, ctx)
    if not segments:
        ctx.fail("any() and all() need a collection path such as Datastreams/any(d: ...)")
    for name in segments:
        member = _step(entity_type, name, ctx)
        if isinstance(member, Property):
            ctx.fail(f"{name!r} is a property, not a navigation (in {show(path)!r})")
        alias, entity_type = ctx.join(alias, member), member.target
        last = member
    if not last.many:
        ctx.fail(f"{show(path)!r} is not a collection; any() and all() need one")
    return alias, entity_type


def _property(prop: Property, alias: str, entity_type: EntityType, rest: tuple[str, ...], ctx: Ctx) -> Val:
    column = f"{alias}.{prop.column}"
    if prop.kind in TWO_COLUMN_KINDS:
        start, end = (f"{alias}.{c}" for c in prop.columns)
        if not rest:
            return Val(Ty.TIME, start, end=end, interval=True)
        if rest in (("start",), ("end",)):
            return instant(start if rest[0] == "start" else end)
        ctx.fail(f"{prop.name} has only the sub-properties start and end, not {'/'.join(rest)!r}")
    if prop.kind in JSON_KINDS:
        return _json(prop, alias, entity_type, rest, ctx)
    if rest:
        ctx.fail(f"{prop.name} of {entity_type.set_name} has no sub-properties, not {'/'.join(rest)!r}")
    return instant(column) if prop.kind is Kind.INSTANT else Val(Ty.TEXT, column)


def _json(prop: Property, alias: str, entity_type: EntityType, rest: tuple[str, ...], ctx: Ctx) -> Val:
    column = f"{alias}.{prop.column}"
    if rest:
        keys = ctx.bind(list(rest), "text[]")
        return Val(Ty.JSON, f"({column} #> {keys})", text=f"({column} #>> {keys})")
    key = (entity_type.name, prop.name)
    geom, shape = _GEOMETRY.get(key, ""), ""
    if not ctx.dialect.postgis and ctx.dialect.points and key in _POINTS:
        geom, shape = _POINTS[key], builtin_geo.POINT
    numeric = f"{alias}.result_number" if key == ("Observation", "result") else ""
    return Val(
        Ty.JSON, column, text=f"({column} #>> '{{}}')", number=numeric, geom=geom.format(a=alias), shape=shape
    )


# ---- literals ------------------------------------------------------------------------------------


def _int(value: int, ctx: Ctx) -> Val:
    if value in _BIGINT_RANGE:
        return number(ctx.bind(value, BIGINT), BIGINT)
    return number(ctx.bind(Decimal(value), "numeric"))


def _string(value: object, ctx: Ctx, hint: Ty | None) -> Val:
    text = str(value)
    if hint in (Ty.TIME, Ty.DURATION):  # next to a time, or moved by a duration
        return time_text(text, ctx)
    if hint is Ty.NUMBER and _NUMBER_TEXT.fullmatch(text.strip()):
        if _INT_TEXT.fullmatch(text.strip()):
            return _int(int(text), ctx)
        return number(ctx.bind(Decimal(text.strip()), "numeric"))
    if hint in (Ty.DATE, Ty.CLOCK):
        try:
            parsed: date | time = date.fromisoformat(text) if hint is Ty.DATE else time.fromisoformat(text)
        except ValueError:
            pass
        else:
            return Val(hint, ctx.bind(parsed, "date" if hint is Ty.DATE else "time"))
    return Val(Ty.TEXT, ctx.bind(text, "text"))


# A date-time not followed by Z or an offset (durations and the other end of an interval may follow).
_LOCAL_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?![\d.,:Zz+-])")


def time_text(text: str, ctx: Ctx) -> Val:
    """An ISO 8601 instant or `start/end` interval given as a string."""
    try:
        start, end = parse_time(text, "literal")
    except ValidationError:
        ctx.fail(f"{text!r} is not an ISO 8601 instant or interval")
    local = _LOCAL_INSTANT.search(text)
    if local is not None:  # the same rule as for unquoted date-times (hub/query/lexer.py)
        ctx.fail(
            f"date-time {local.group()!r} in {text!r} has no offset: add Z for UTC or an offset, e.g. +01:00"
        )
    return time_value(start, end, ctx)


def time_value(start: datetime, end: datetime, ctx: Ctx) -> Val:
    """A bound instant (start == end) or interval; an interval is one bind, so that rules using
    only one of its ends still reference it (an unreferenced parameter fails the statement)."""
    if start == end:
        return instant(ctx.bind(start, "timestamptz"))
    bounds = ctx.bind([start, end], "timestamptz[]")
    return Val(Ty.TIME, f"({bounds})[1]", end=f"({bounds})[2]", interval=True)


def _utc(value: object) -> datetime:
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _datetime(value: object, ctx: Ctx, hint: Ty | None) -> Val:
    moment = _utc(value)
    if hint is Ty.JSON:  # compared with a JSON value: as ISO 8601 text in UTC
        return Val(Ty.TEXT, ctx.bind(moment.isoformat().replace("+00:00", "Z"), "text"))
    return instant(ctx.bind(moment, "timestamptz"))


def _date(value: object, ctx: Ctx, hint: Ty | None) -> Val:
    assert isinstance(value, date)
    if hint is Ty.TIME:  # a date next to a datetime: its midnight in UTC
        return instant(ctx.bind(datetime.combine(value, time(), UTC), "timestamptz"))
    return Val(Ty.DATE, ctx.bind(value, "date"))


def _clock(value: object, ctx: Ctx, hint: Ty | None) -> Val:
    assert isinstance(value, time)
    return Val(Ty.CLOCK, ctx.bind(value.replace(tzinfo=None), "time"))


def duration_value(value: timedelta, ctx: Ctx) -> Val:
    """A duration literal: numeric seconds for arithmetic, the interval bind for shifting times."""
    interval = ctx.bind(value, "interval")
    return Val(Ty.DURATION, f"extract(epoch from {interval})", delta=interval, shift=abs(value.days) + 1)


def _duration(value: object, ctx: Ctx, hint: Ty | None) -> Val:
    assert isinstance(value, timedelta)
    return duration_value(value, ctx)


def _geography(value: object, ctx: Ctx, hint: Ty | None) -> Val:
    text = str(value)
    if not ctx.dialect.postgis and not ctx.dialect.points:
        ctx.needs_postgis("geography literals need PostGIS, which this database does not have")
    problem = wkt_problem(text)
    if problem is not None:
        ctx.fail(f"geography'{text[:60]}' is not well-known text: {problem}")
    if not ctx.dialect.postgis:
        return builtin_geo.literal(text, ctx)
    return Val(Ty.GEOMETRY, f"ST_GeomFromText({ctx.bind(text, 'text')}, 4326)")


def _number_literal(value: object, ctx: Ctx, hint: Ty | None) -> Val:
    if isinstance(value, int) and not isinstance(value, bool):
        return _int(value, ctx)
    assert isinstance(value, float | Decimal)
    return number(ctx.bind(float(value), FLOAT), FLOAT)


_LITERALS: dict[str, Callable[[object, Ctx, Ty | None], Val]] = {
    "string": _string,
    "int": _number_literal,
    "float": _number_literal,
    "bool": lambda value, ctx, hint: boolean(ctx.bind(bool(value), "boolean")),
    "null": lambda value, ctx, hint: NULL,
    "datetime": _datetime,
    "date": _date,
    "time": _clock,
    "duration": _duration,
    "geography": _geography,
}


def literal(constant: Constant, ctx: Ctx, hint: Ty | None = None) -> Val:
    """Bind a literal, typed by `hint` (the type of the other side) where that changes its meaning."""
    compile_literal = _LITERALS.get(constant.kind)
    if compile_literal is None:
        ctx.fail(f"unsupported literal kind {constant.kind!r}")
    return compile_literal(constant.value, ctx, hint)
