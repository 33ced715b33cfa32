# SPDX-License-Identifier: Apache-2.0
"""Comparison and arithmetic on typed SQL values (OGC 18-088 §9.3.3.5.1).

Comparison of times follows the OGC conformance tests for STA (ets-sta
DateTimeTests, which FROST-Server passes): an interval is half-open
[start, end), an instant is start = end, and with a = (as, ae), b = (bs, be):

    eq  as = bs and ae = be              ne  not eq
    lt  ae <= bs and as < bs             gt  b lt a
    le  as <= bs and ae <= be            ge  b le a

So `phenomenonTime gt T` on an interval means start > T, `lt T` means end <= T,
an interval equals only the same interval, and an instant equals itself. The
temporal functions use the same model (see TEMPORAL).

Numbers stay bigint or double precision where they are plain columns or
literals; arithmetic runs in numeric, which cannot overflow for anything a URL
can carry, and division or modulo by zero gives NULL. Durations are numeric
seconds; moving a time by a duration literal that cannot leave PostgreSQL's
timestamp range is plain `t + interval`, anything else is range-checked first,
so no valid expression makes PostgreSQL raise.
"""

from __future__ import annotations

from collections.abc import Callable

from hub.query.sqlexpr import FLOAT, NUMERIC, SQL_TYPES, Ctx, Ty, Val, boolean, number, typed_null

OPS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_ARITHMETIC = {"add": "+", "sub": "-", "mul": "*"}

# Stored and literal times lie in years 1..9999 (Python datetimes); moving them by less than
# ~3800 years stays inside PostgreSQL's timestamptz range (4713 BC .. 294276 AD).
SAFE_SHIFT_DAYS = 1_400_000
# Epoch seconds safely inside that range, for moves that are checked at run time.
_EPOCH_RANGE = "BETWEEN -200000000000 AND 9000000000000"

TimeRule = Callable[[str, str, str, str], str]  # (a start, a end, b start, b end) -> SQL condition

TIME_RULES: dict[str, TimeRule] = {
    "eq": lambda as_, ae, bs, be: f"({as_} = {bs} AND {ae} = {be})",
    "ne": lambda as_, ae, bs, be: f"({as_} <> {bs} OR {ae} <> {be})",
    "lt": lambda as_, ae, bs, be: f"({ae} <= {bs} AND {as_} < {bs})",
    "gt": lambda as_, ae, bs, be: f"({be} <= {as_} AND {bs} < {as_})",
    "le": lambda as_, ae, bs, be: f"({as_} <= {bs} AND {ae} <= {be})",
    "ge": lambda as_, ae, bs, be: f"({as_} >= {bs} AND {ae} >= {be})",
}

# The temporal functions of FROST-Server / the OGC tests, on the same half-open model.
TEMPORAL: dict[str, TimeRule] = {
    "before": TIME_RULES["lt"],
    "after": TIME_RULES["gt"],
    "meets": lambda as_, ae, bs, be: f"({ae} = {bs} OR {as_} = {be})",
    "during": lambda as_, ae, bs, be: f"({bs} <= {as_} AND {ae} <= {be} AND {as_} < {be})",
    "overlaps": lambda as_, ae, bs, be: f"({as_} = {bs} OR ({as_} < {be} AND {bs} < {ae}))",
    "starts": lambda as_, ae, bs, be: f"({as_} = {bs})",
    "finishes": lambda as_, ae, bs, be: f"({ae} = {be})",
}


def article(ty: Ty) -> str:
    """`a number`, `an interval`: the type name for messages."""
    name = ty.value
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def _json_as(value: Val, ty: Ty) -> Val | None:
    """A JSON value as `ty`: text of any scalar; numbers and booleans only where the JSON is one."""
    j = value.sql
    if ty is Ty.TEXT:
        return Val(Ty.TEXT, value.text)
    if ty is Ty.NUMBER:
        if value.number:
            return number(value.number, FLOAT)
        return number(f"(CASE WHEN jsonb_typeof({j}) = 'number' THEN ({j})::numeric END)")
    if ty is Ty.BOOL:
        return boolean(f"(CASE WHEN jsonb_typeof({j}) = 'boolean' THEN ({j})::boolean END)")
    if ty is Ty.GEOMETRY and value.geom:
        return Val(Ty.GEOMETRY, value.geom, shape=value.shape)
    return None


def coerce(value: Val, ty: Ty, ctx: Ctx, what: str) -> Val:
    """`value` as a value of `ty` (JSON and NULL convert), or a QueryError naming `what`."""
    if value.ty is ty:
        return value
    if value.ty is Ty.NULL:
        return typed_null(ty)
    converted = _json_as(value, ty) if value.ty is Ty.JSON else None
    if converted is None:
        ctx.fail(f"{what} needs {article(ty)}, not {article(value.ty)}")
    return converted


def _numeric(value: Val) -> str:
    return f"({value.sql})::numeric"


def unify_numbers(a: Val, b: Val) -> tuple[Val, Val]:
    """Two numbers PostgreSQL can compare without a cast that might overflow."""
    if a.num == b.num or {a.num, b.num} <= {"bigint", FLOAT}:
        return a, b
    return number(_numeric(a)), number(_numeric(b))


def _as_text(value: Val) -> Val:
    return Val(Ty.TEXT, f"({value.sql})::text") if value.ty is Ty.NUMBER else value


def _unify(op: str, a: Val, b: Val, ctx: Ctx) -> tuple[Val, Val]:
    """Both sides of a comparison as one type; a JSON side takes the other side's type."""
    if a.ty is Ty.JSON and b.ty is not Ty.JSON:
        a = _json_as(a, b.ty) or a
    elif b.ty is Ty.JSON and a.ty is not Ty.JSON:
        b = _json_as(b, a.ty) or b
    if a.ty is b.ty:
        return unify_numbers(a, b) if a.ty is Ty.NUMBER else (a, b)
    if {a.ty, b.ty} == {Ty.TEXT, Ty.NUMBER}:  # as FROST: `name eq 5` compares text
        return _as_text(a), _as_text(b)
    raise ctx.error(f"cannot compare {article(a.ty)} with {article(b.ty)} ({op})")


def _is_null(value: Val) -> str:
    if value.ty is Ty.JSON:  # absent, SQL NULL or JSON null
        return f"(COALESCE(jsonb_typeof({value.sql}), 'null') = 'null')"
    return f"({value.sql} IS NULL)"


def _null_compare(op: str, value: Val) -> str:
    """A comparison with the null literal (OData: null eq null, ge and le hold only for null)."""
    if value.ty is Ty.NULL:
        return "FALSE" if op in ("ne", "gt", "lt") else "TRUE"
    if op in ("gt", "lt"):
        return f"({_is_null(value)} AND FALSE)"  # still references the value's binds
    return f"(NOT {_is_null(value)})" if op == "ne" else _is_null(value)


def compare(op: str, a: Val, b: Val, ctx: Ctx) -> str:
    """SQL for `a op b` with op in eq ne gt ge lt le."""
    if a.ty is Ty.NULL or b.ty is Ty.NULL:
        return _null_compare(op, b if a.ty is Ty.NULL else a)
    a, b = _unify(op, a, b, ctx)
    if a.ty is Ty.TIME and (a.interval or b.interval):
        return TIME_RULES[op](a.sql, a.end, b.sql, b.end)
    if a.ty is Ty.GEOMETRY:
        ctx.fail(f"cannot compare geometries with {op}; use st_equals")
    return f"({a.sql} {OPS[op]} {b.sql})"


# ---- arithmetic ----------------------------------------------------------------------------------


def _number_op(op: str, a: Val, b: Val) -> str:
    x, y = _numeric(a), _numeric(b)
    if op == "div":
        return f"({x} / NULLIF({y}, 0))"
    if op == "mod":
        return f"({x} % NULLIF({y}, 0))"
    return f"({x} {_ARITHMETIC[op]} {y})"


def _moved(sql: str, seconds: str) -> str:
    """`sql` (a timestamptz) moved by `seconds`, NULL where that leaves the timestamp range."""
    total = f"(extract(epoch from {sql}) + {seconds})"
    return f"(CASE WHEN {total} {_EPOCH_RANGE} THEN to_timestamp({total}::double precision) END)"


def shift(moment: Val, duration: Val, sign: str) -> Val:
    """A time (both ends of an interval) moved forward (`+`) or back (`-`) by a duration."""
    days = moment.shift + duration.shift
    if duration.delta and moment.shift >= 0 and duration.shift >= 0 and days < SAFE_SHIFT_DAYS:
        start = f"({moment.sql} {sign} {duration.delta})"
        end = f"({moment.end} {sign} {duration.delta})" if moment.interval else start
        return Val(Ty.TIME, start, end=end, interval=moment.interval, shift=days)
    seconds = duration.sql if sign == "+" else f"(-{duration.sql})"
    start = _moved(moment.sql, seconds)
    end = _moved(moment.end, seconds) if moment.interval else start
    return Val(Ty.TIME, start, end=end, interval=moment.interval, shift=-1)


def _difference(a: Val, b: Val) -> Val:
    """`a sub b` for two times: seconds between instants (NULL when either is a proper interval)."""
    seconds = f"(extract(epoch from {a.sql}) - extract(epoch from {b.sql}))"
    if a.interval or b.interval:
        seconds = f"(CASE WHEN {a.sql} = {a.end} AND {b.sql} = {b.end} THEN {seconds} END)"
    return Val(Ty.DURATION, seconds)


def _time_arithmetic(op: str, a: Val, b: Val) -> Val | None:
    kinds = (a.ty, b.ty)
    if kinds == (Ty.TIME, Ty.DURATION) and op in ("add", "sub"):
        return shift(a, b, "+" if op == "add" else "-")
    if kinds == (Ty.DURATION, Ty.TIME) and op == "add":
        return shift(b, a, "+")
    if kinds == (Ty.TIME, Ty.TIME) and op == "sub":
        return _difference(a, b)
    return None


def _duration_arithmetic(op: str, a: Val, b: Val) -> Val | None:
    kinds = (a.ty, b.ty)
    scaled = (op == "mul" and Ty.NUMBER in kinds) or (op == "div" and kinds[1] is Ty.NUMBER)
    if (kinds == (Ty.DURATION, Ty.DURATION) and op in ("add", "sub", "div")) or scaled:
        result = Ty.NUMBER if kinds == (Ty.DURATION, Ty.DURATION) and op == "div" else Ty.DURATION
        return Val(result, _number_op(op, a, b), num=NUMERIC)
    return None


def _null_result(other: Val) -> Val:
    """NULL, typed like `other` (a time stays a time), still referencing other's binds."""
    ty = other.ty if other.ty in (Ty.TIME, Ty.DURATION) else Ty.NUMBER
    sql = f"(CASE WHEN {other.sql} IS NULL THEN NULL::{SQL_TYPES[ty]} END)"
    return Val(ty, sql, end=sql, num=NUMERIC)


def arithmetic(op: str, a: Val, b: Val, ctx: Ctx) -> Val:
    """`a op b` with op in add sub mul div mod, on numbers, times and durations."""
    a = _json_as(a, Ty.NUMBER) or a if a.ty is Ty.JSON else a
    b = _json_as(b, Ty.NUMBER) or b if b.ty is Ty.JSON else b
    if Ty.NULL in (a.ty, b.ty):
        return _null_result(b if a.ty is Ty.NULL else a)
    if a.ty is Ty.NUMBER and b.ty is Ty.NUMBER:
        return number(_number_op(op, a, b))
    if Ty.DURATION in (a.ty, b.ty) or (a.ty, b.ty) == (Ty.TIME, Ty.TIME):
        result = _time_arithmetic(op, a, b) or _duration_arithmetic(op, a, b)
        if result is not None:
            return result
    raise ctx.error(f"cannot {op} {article(a.ty)} and {article(b.ty)}")


def negate(value: Val, ctx: Ctx) -> Val:
    """Unary minus of a number or a duration."""
    if value.ty is Ty.JSON:
        value = coerce(value, Ty.NUMBER, ctx, "unary minus")
    if value.ty is Ty.NULL:
        return typed_null(Ty.NUMBER)
    if value.ty not in (Ty.NUMBER, Ty.DURATION):
        ctx.fail(f"unary minus needs a number or a duration, not {article(value.ty)}")
    return Val(value.ty, f"(-{_numeric(value)})", num=NUMERIC)
