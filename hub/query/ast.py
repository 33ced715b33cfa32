# SPDX-License-Identifier: Apache-2.0
"""Frozen value objects for the query options of a request (OGC 18-088 §9.3).

Expression nodes are named after Python's `ast` module. The parser builds them
from text without knowing the data model; names are checked against
schemas.model when an expression is compiled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# ---- expressions ($filter, $orderby) --------------------------------------------------------------

ConstantKind = Literal[
    "string", "int", "float", "bool", "null", "datetime", "date", "time", "duration", "geography"
]


@dataclass(frozen=True)
class Constant:
    """A literal. `value` by kind: str, int, float, bool, None, datetime (aware, UTC),
    date, time, timedelta (duration'P1D'), str (the WKT text of geography'POINT(1 2)')."""

    value: object
    kind: ConstantKind


@dataclass(frozen=True)
class Path:
    """A member path such as `name`, `Datastreams/properties/serviceName`, `@iot.id`,
    `location/geometry/type`, or inside a lambda `d/ObservedProperty/name` (variable "d")."""

    segments: tuple[str, ...]
    variable: str | None = None  # the lambda variable the path starts from, if any


@dataclass(frozen=True)
class Compare:
    """`left op right` with op in eq ne gt ge lt le."""

    op: Literal["eq", "ne", "gt", "ge", "lt", "le"]
    left: Expr
    right: Expr


@dataclass(frozen=True)
class BoolOp:
    """`left and right`, `left or right`."""

    op: Literal["and", "or"]
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not:
    """`not operand`."""

    operand: Expr


@dataclass(frozen=True)
class BinOp:
    """Arithmetic `left op right` with op in add sub mul div mod."""

    op: Literal["add", "sub", "mul", "div", "mod"]
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Negate:
    """Unary minus: `-operand`."""

    operand: Expr


@dataclass(frozen=True)
class Call:
    """A function call; `name` in lower case as written (`substringof`, `geo.intersects`, `st_within`)."""

    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class In:
    """`operand in (v1, v2, ...)`."""

    operand: Expr
    values: tuple[Expr, ...]


@dataclass(frozen=True)
class Lambda:
    """`Datastreams/any(d: d/ObservedProperty/name eq 'NO2')`; op is "any" or "all"."""

    path: Path
    op: Literal["any", "all"]
    variable: str
    predicate: Expr


Expr = Constant | Path | Compare | BoolOp | Not | BinOp | Negate | Call | In | Lambda


# ---- query options -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderBy:
    """One `$orderby` key."""

    expr: Expr
    descending: bool = False


@dataclass(frozen=True)
class Expand:
    """One `$expand` item: a navigation path (`Datastreams`, or `Datastreams/Observations`
    which nests one expand in another) with its own options."""

    path: tuple[str, ...]
    query: Query


ResultFormat = Literal["dataArray", "CSV", "GeoJSON"]


@dataclass(frozen=True)
class Query:
    """The system query options of one request or one expand level.

    `top` is the page size actually served (the client's $top, or the
    default, clamped to the configured maximum); `top_given` remembers whether
    the client asked for it, so that links can repeat it. `select` is None
    when the client gave no $select (all properties and navigation links).
    """

    top: int = 100
    skip: int = 0
    count: bool = False
    top_given: bool = False
    filter: Expr | None = None
    orderby: tuple[OrderBy, ...] = ()
    select: tuple[Path, ...] | None = None
    expand: tuple[Expand, ...] = field(default=())
    result_format: ResultFormat | None = None
    skiptoken: str | None = None  # keyset continuation printed into nextLinks next to $skip
