# SPDX-License-Identifier: Apache-2.0
"""Typed SQL fragments for $filter and $orderby (OGC 18-088 §9.3.3).

An expression compiles to a `Val`: SQL text plus a light static type, so that
a comparison can pick the right SQL for both sides (a JSON value compared to a
number compares numerically, to a string as text) and a mismatch becomes a
QueryError instead of a PostgreSQL error. Every literal is a `$n` bind with an
explicit cast; every identifier comes from schemas.model.

`Ctx` carries the compilation state: the binds, the entities paths start from
(the queried alias and lambda variables) and the navigation joins collected for
the condition being compiled.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, NoReturn

from hub.query.parse import QueryError
from schemas.model import EntityType, Join, NavigationProperty

if TYPE_CHECKING:
    from hub.query.compile import Binds  # compile.py imports this package at run time


@dataclass(frozen=True)
class Dialect:
    """What the database offers beyond plain PostgreSQL."""

    postgis: bool  # PostGIS present: geom columns and ST_ functions
    points: bool = False  # no PostGIS, but the built-in `pt` point columns (migration 0007)


class GeometryUnsupportedError(QueryError):
    """A spatial request this database cannot answer without PostGIS (HTTP 501, not the client's fault)."""


class Ty(enum.Enum):
    """The static type of a compiled expression; the value is the name used in messages."""

    TEXT = "text"
    NUMBER = "number"
    BOOL = "boolean"
    TIME = "datetime"  # an instant or an interval (start, end)
    DATE = "date"
    CLOCK = "time of day"
    DURATION = "duration"  # SQL: numeric seconds
    GEOMETRY = "geometry"
    JSON = "JSON value"
    NULL = "null"


# SQL types of numbers: kept apart so that `id eq 5` stays `e.id = $1::bigint` (index-friendly).
BIGINT = "bigint"
FLOAT = "double precision"
NUMERIC = "numeric"

# The SQL type of a typed NULL and of a value of each type.
SQL_TYPES = {
    Ty.TEXT: "text",
    Ty.NUMBER: NUMERIC,
    Ty.BOOL: "boolean",
    Ty.TIME: "timestamptz",
    Ty.DATE: "date",
    Ty.CLOCK: "time",
    Ty.DURATION: NUMERIC,
    Ty.GEOMETRY: "geometry",
    Ty.JSON: "jsonb",
}


@dataclass(frozen=True)
class Val:
    """A compiled expression: SQL text and its static type, with what some types need besides."""

    ty: Ty
    sql: str
    end: str = ""  # TIME: SQL of the end (the same text as `sql` for an instant)
    interval: bool = False  # TIME: may be a proper interval (start < end)
    num: str = NUMERIC  # NUMBER: its SQL type (BIGINT, FLOAT or NUMERIC)
    text: str = ""  # JSON: the value as text (`#>>`)
    number: str = ""  # JSON: a numeric column standing for the value (Observation result_number)
    geom: str = ""  # JSON: the geometry of a GeoJSON property (PostGIS, or a built-in shape)
    shape: str = ""  # GEOMETRY (JSON: its geom) without PostGIS: "point" or "polygon"; "" is PostGIS
    box: str = ""  # GEOMETRY "polygon" (sql: its ring as float8[]): its bounding `box`
    rectangle: bool = False  # GEOMETRY "polygon": an axis-aligned rectangle, the same as its box
    shift: int = 0  # TIME: bound on the days it was moved from stored values; -1 when unknown
    delta: str = ""  # DURATION: the bound interval placeholder of a duration literal


def instant(sql: str, shift: int = 0) -> Val:
    """A TIME value that is an instant."""
    return Val(Ty.TIME, sql, end=sql, shift=shift)


def number(sql: str, num: str = NUMERIC) -> Val:
    """A NUMBER value of SQL type `num`."""
    return Val(Ty.NUMBER, sql, num=num)


def boolean(sql: str) -> Val:
    """A BOOL value."""
    return Val(Ty.BOOL, sql)


NULL = Val(Ty.NULL, "NULL")


def typed_null(ty: Ty) -> Val:
    """NULL as a value of `ty`."""
    sql = f"NULL::{SQL_TYPES[ty]}"
    if ty is Ty.TIME:
        return instant(sql)
    return Val(ty, sql, num=NUMERIC, text=sql if ty is Ty.JSON else "")


@dataclass
class Ctx:
    """Compilation state of one condition (or one $orderby key) and its navigation joins."""

    binds: Binds
    dialect: Dialect
    option: str  # "$filter" or "$orderby", for messages
    prefix: str  # join aliases are prefix + "n1", "n2", ...
    roots: dict[str | None, tuple[str, EntityType]]  # None: the queried entity; else lambda variables
    counter: Iterator[int]
    froms: list[str] = field(default_factory=list)
    conds: list[str] = field(default_factory=list)
    many: bool = False  # a to-many navigation was joined
    joined: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def start(cls, entity_type: EntityType, alias: str, binds: Binds, dialect: Dialect, option: str) -> Ctx:
        """A context for an expression on `alias`, a row of `entity_type`."""
        return cls(binds, dialect, option, alias, {None: (alias, entity_type)}, itertools.count(1))

    def error(self, message: str) -> QueryError:
        """A QueryError naming the query option."""
        return QueryError(f"{self.option}: {message}", option=self.option)

    def fail(self, message: str) -> NoReturn:
        """Raise a QueryError naming the query option."""
        raise self.error(message)

    def needs_postgis(self, message: str) -> NoReturn:
        """Raise the 501 of a spatial request that only PostGIS can answer."""
        raise GeometryUnsupportedError(f"{self.option}: {message}", option=self.option)

    def bind(self, value: object, sql_type: str) -> str:
        """Bind `value` and return its placeholder with an explicit cast."""
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                self._check_text(text)
        return f"{self.binds.add(value)}::{sql_type}"

    def _check_text(self, text: str) -> None:
        """PostgreSQL text holds no NUL and only valid UTF-8; say so instead of failing the statement."""
        if "\x00" in text:
            self.fail(f"text may not contain NUL characters: {text[:40]!r}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            self.fail(f"text is not valid Unicode: {text[:40]!r}")

    def leaf(self) -> Ctx:
        """A fresh context for one condition: same binds and roots, no joins yet."""
        return Ctx(self.binds, self.dialect, self.option, self.prefix, self.roots, self.counter)

    def within(self, variable: str, alias: str, entity_type: EntityType) -> Ctx:
        """A fresh context in which `variable` names the row `alias` of `entity_type`."""
        return replace(self.leaf(), roots={**self.roots, variable: (alias, entity_type)})

    def alias(self) -> str:
        """A new table alias, unique within this compilation."""
        return f"{self.prefix}n{next(self.counter)}"

    def join(self, source: str, nav: NavigationProperty) -> str:
        """Join `nav` from the row `source` (once per condition) and return the target alias."""
        cache_key = (source, nav.name)
        if cache_key not in self.joined:
            froms, conds, target = hop(self, source, nav)
            self.froms.extend(froms)
            self.conds.extend(conds)
            self.many = self.many or nav.many
            self.joined[cache_key] = target
        return self.joined[cache_key]

    def exists(self, condition: str) -> str:
        """`condition`, inside EXISTS over the joins it needs (ANY semantics for to-many paths)."""
        if not self.froms:
            return condition
        where = " AND ".join([*self.conds, condition])
        return f"EXISTS (SELECT 1 FROM {', '.join(self.froms)} WHERE {where})"


def hop(ctx: Ctx, source: str, nav: NavigationProperty) -> tuple[list[str], list[str], str]:
    """FROM items and join conditions reaching `nav`'s target from the row `source`."""
    target = ctx.alias()
    table = f"{nav.target.table} {target}"
    if nav.join is Join.FORWARD:
        return [table], [f"{target}.id = {source}.{nav.column}"], target
    if nav.join is Join.REVERSE:
        return [table], [f"{target}.{nav.column} = {source}.id"], target
    assert nav.link is not None
    link, via = nav.link, ctx.alias()
    return (
        [f"{link.table} {via}", table],
        [f"{via}.{link.source_column} = {source}.id", f"{target}.id = {via}.{link.target_column}"],
        target,
    )
