# SPDX-License-Identifier: Apache-2.0
"""$filter and $orderby expressions -> parameterised SQL (OGC 18-088 §9.3.3.4, §9.3.3.5).

    compile_filter(expr, entity_type, alias, binds, dialect) -> SQL condition on `alias`
    compile_order(order, entity_type, alias, binds, dialect)  -> "<expr> ASC NULLS FIRST"

Every literal is a `$n` bind (Binds.add) with an explicit cast, every
identifier comes from schemas.model; unknown names, wrong arities and type
mismatches raise QueryError (a 400) before any SQL runs.

Navigation paths. Each comparison or function call (a "condition") that names
a navigation path is compiled inside `EXISTS (SELECT 1 FROM <joins> WHERE
<join conditions> AND <condition>)` with fresh join aliases (`<alias>n1`,
`<alias>n2`, ...) per condition; within one condition a navigation is joined
once. To-many paths have ANY semantics (`Datastreams/name eq 'x'` holds when
one Datastream matches) and two conditions on the same collection may be met
by different members; `Datastreams/any(d: ...)` ties conditions to one member,
and `all(...)` is NOT EXISTS (... AND (predicate) IS NOT TRUE), true for an
empty collection. A to-one path whose target is missing makes its condition
false, even `eq null`. `Datastream/id` uses the link column without a join.

$orderby. OData's NULL placement (OData 4.0 Part 2 §5.1.1.1 orders null
before every value ascending and after every value descending): ASC NULLS
FIRST, DESC NULLS LAST, the opposite of PostgreSQL's default. A key that can
never be NULL (ids, Observation.phenomenonTime, the mandatory properties held
in NOT NULL columns) gets no NULLS clause, so that a default btree index such
as observations (datastream_id, phenomenon_time_start) still serves it.
Intervals sort by their start. A to-one path is a scalar
subquery; a to-many path (VC Map orders Datastreams by
`Observations/phenomenonTime`) sorts by the least value of the members for
ascending and the greatest for descending (min/max, NULLs ignored), computed
as an ORDER BY ... LIMIT 1 subquery so that indexes serve it and every type
(booleans, JSON) works.

Types (see operators.py for comparisons, time intervals and arithmetic): a
JSON value takes the type of what it is compared with (text via `#>>`, which
is also the text of a number; a number or boolean only where the JSON value is
one; a datetime literal as ISO 8601 text); a number compared with text
compares as text, as FROST does (`name gt 5`); a string literal next to a
time is an ISO 8601 instant or `start/end` interval, next to a number a number
when it reads as one (`id eq '5'`); other mismatches (`name gt
2020-01-01T00:00:00Z`) are QueryErrors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from hub.query.ast import (
    BinOp,
    BoolOp,
    Call,
    Compare,
    Constant,
    Expr,
    In,
    Lambda,
    Negate,
    Not,
    OrderBy,
    Path,
)
from hub.query.functions import call
from hub.query.operands import literal, navigate, path_value
from hub.query.operators import arithmetic, article, coerce, compare, negate
from hub.query.parse import QueryError
from hub.query.sqlexpr import Ctx, Dialect, Ty, Val, boolean
from schemas.model import EntityType, Kind

if TYPE_CHECKING:
    from hub.query.compile import Binds  # compile.py imports this module at run time

__all__ = ["Dialect", "QueryError", "compile_filter", "compile_order"]


def compile_filter(expr: Expr, entity_type: EntityType, alias: str, binds: Binds, dialect: Dialect) -> str:
    """An SQL condition on the row `alias` of `entity_type` that holds where `expr` is true."""
    return condition(expr, Ctx.start(entity_type, alias, binds, dialect, "$filter"))


def compile_order(order: OrderBy, entity_type: EntityType, alias: str, binds: Binds, dialect: Dialect) -> str:
    """An ORDER BY item for one $orderby key: `<expr> ASC NULLS FIRST` or `<expr> DESC NULLS LAST`."""
    ctx = Ctx.start(entity_type, alias, binds, dialect, "$orderby")
    key = _sort_key(value(order.expr, ctx), ctx)
    if ctx.froms:
        key = _subquery(key, ctx, order.descending)
    elif never_null(entity_type, order.expr):
        return f"{key} {'DESC' if order.descending else 'ASC'}"
    return f"{key} {'DESC NULLS LAST' if order.descending else 'ASC NULLS FIRST'}"


# Properties that are never NULL although not mandatory on create: the server fills them in.
_FILLED_BY_SERVER = frozenset({("Observation", "phenomenonTime")})
_ID_NAMES = frozenset({"id", "@iot.id"})


def never_null(entity_type: EntityType, expr: Expr) -> bool:
    """Whether an $orderby key is a column that cannot hold NULL (so it needs no NULLS clause)."""
    if not isinstance(expr, Path) or expr.variable is not None or len(expr.segments) != 1:
        return False
    name = expr.segments[0]
    if name in _ID_NAMES or (entity_type.name, name) in _FILLED_BY_SERVER:
        return True
    prop = entity_type.property_by_name.get(name)
    # Mandatory properties live in NOT NULL columns, except a JSON result, which may be null.
    return prop is not None and prop.required and prop.kind is not Kind.JSON


def _sort_key(compiled: Val, ctx: Ctx) -> str:
    if compiled.ty is Ty.GEOMETRY:
        ctx.fail("cannot order by a geometry")
    return compiled.sql  # a time sorts by its start


def _subquery(key: str, ctx: Ctx, descending: bool) -> str:
    """The key through its navigation joins: the one value of a to-one path, min/max of a to-many."""
    source = f"FROM {', '.join(ctx.froms)} WHERE {' AND '.join(ctx.conds)}"
    if not ctx.many:
        return f"(SELECT {key} {source} LIMIT 1)"
    # NULLs left out (as min/max do) and the default NULL placement kept, so a btree index
    # such as observations (datastream_id, phenomenon_time_start) answers with one probe.
    return (
        f"(SELECT {key} {source} AND {key} IS NOT NULL ORDER BY {key}{' DESC' if descending else ''} LIMIT 1)"
    )


# ---- conditions ----------------------------------------------------------------------------------


def condition(expr: Expr, ctx: Ctx) -> str:
    """SQL for a boolean expression; each leaf condition gets its own navigation joins."""
    if isinstance(expr, BoolOp):
        joiner = " AND " if expr.op == "and" else " OR "
        return f"({condition(expr.left, ctx)}{joiner}{condition(expr.right, ctx)})"
    if isinstance(expr, Not):
        return f"(NOT {condition(expr.operand, ctx)})"
    if isinstance(expr, Lambda):
        return _lambda(expr, ctx)
    leaf = ctx.leaf()
    return leaf.exists(_truth(value(expr, leaf), leaf))


def _truth(compiled: Val, ctx: Ctx) -> str:
    if compiled.ty is Ty.NULL:
        return "FALSE"
    if compiled.ty not in (Ty.BOOL, Ty.JSON):
        ctx.fail(f"the expression is {article(compiled.ty)}, not a condition")
    return coerce(compiled, Ty.BOOL, ctx, "a condition").sql


def _lambda(expr: Lambda, ctx: Ctx) -> str:
    """`path/any(v: predicate)` as EXISTS over the collection; all() as NOT EXISTS of a counterexample."""
    outer = ctx.leaf()
    alias, entity_type = navigate(expr.path, outer)
    predicate = condition(expr.predicate, outer.within(expr.variable, alias, entity_type))
    if expr.op == "any":
        return outer.exists(predicate)
    return f"(NOT {outer.exists(f'({predicate}) IS NOT TRUE')})"


# ---- values --------------------------------------------------------------------------------------


def value(expr: Expr, ctx: Ctx, hint: Ty | None = None) -> Val:
    """Compile any expression; `hint` types a literal by what it meets (see operands.literal)."""
    if isinstance(expr, Constant):
        return literal(expr, ctx, hint)
    if isinstance(expr, Negate) and isinstance(expr.operand, Constant):
        folded = _fold_negation(expr.operand)
        if folded is not None:
            return literal(folded, ctx, hint)
    compile_node = _NODES.get(type(expr))
    if compile_node is None:
        ctx.fail(f"unsupported expression {type(expr).__name__}")
    return compile_node(expr, ctx)


def _fold_negation(operand: Constant) -> Constant | None:
    """`-5`, `-duration'P1D'` as one literal (keeps bigint literals bigint, durations literal)."""
    if operand.kind in ("int", "float", "duration"):
        try:
            return replace(operand, value=-operand.value)  # type: ignore[operator]
        except OverflowError:  # -timedelta.min
            return None
    return None


def _typed_later(expr: Expr) -> int:
    """How much a side's meaning depends on the other: strings most, other literals some."""
    if isinstance(expr, Constant):
        return 2 if expr.kind == "string" else 1
    return 0


def _operands(left: Expr, right: Expr, ctx: Ctx, first: Ty | None = None) -> tuple[Val, Val]:
    """Both sides; a literal is compiled after, and typed by, the other side (`first` types a
    literal compiled first: in arithmetic a string can only be a time)."""
    if _typed_later(left) > _typed_later(right):
        b = value(right, ctx, first)
        return value(left, ctx, b.ty), b
    a = value(left, ctx, first)
    return a, value(right, ctx, a.ty)


def _compare(expr: Expr, ctx: Ctx) -> Val:
    assert isinstance(expr, Compare)
    return boolean(compare(expr.op, *_operands(expr.left, expr.right, ctx), ctx))


def _in(expr: Expr, ctx: Ctx) -> Val:
    assert isinstance(expr, In)
    operand = value(expr.operand, ctx)
    tests = [compare("eq", operand, value(v, ctx, operand.ty), ctx) for v in expr.values]
    return boolean(f"({' OR '.join(tests)})" if tests else f"({operand.sql} IS NULL AND FALSE)")


def _binop(expr: Expr, ctx: Ctx) -> Val:
    assert isinstance(expr, BinOp)
    return arithmetic(expr.op, *_operands(expr.left, expr.right, ctx, Ty.TIME), ctx)


def _negate(expr: Expr, ctx: Ctx) -> Val:
    assert isinstance(expr, Negate)
    return negate(value(expr.operand, ctx), ctx)


def _call(expr: Expr, ctx: Ctx) -> Val:
    assert isinstance(expr, Call)
    return call(expr.name, expr.args, ctx, value)


def _path(expr: Expr, ctx: Ctx) -> Val:
    assert isinstance(expr, Path)
    return path_value(expr, ctx)


def _boolean(expr: Expr, ctx: Ctx) -> Val:
    return boolean(condition(expr, ctx))


_NODES: dict[type, Callable[[Expr, Ctx], Val]] = {
    Path: _path,
    Compare: _compare,
    In: _in,
    BinOp: _binop,
    Negate: _negate,
    Call: _call,
    BoolOp: _boolean,
    Not: _boolean,
    Lambda: _boolean,
}
