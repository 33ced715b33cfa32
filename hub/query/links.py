# SPDX-License-Identifier: Apache-2.0
"""Query -> query-string text, for @iot.nextLink (complete in itself, STA-NOTES 1).

The printers are the inverse of hub.query.parse: for every Query the parser
produces, parsing the printed text gives the same Query back. Parentheses are
printed only where the precedence table of the parser needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import cast
from urllib.parse import quote

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
from hub.query.parse import BINARY, NOT, PRIMARY, UNARY

# Characters left readable in option values; everything else (space, &, +, #, %...) is encoded.
SAFE = "$()'/,;=:@"


# ---- literals ------------------------------------------------------------------------------------


def _quoted(text: str, prefix: str = "") -> str:
    return prefix + "'" + text.replace("'", "''") + "'"


def _datetime(value: object) -> str:
    text = cast(datetime, value).astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def _duration(value: object) -> str:
    """timedelta -> `duration'[-]PnDTnHnMn.nS'` with only the non-zero parts."""
    micros = cast(timedelta, value) // timedelta(microseconds=1)
    sign, micros = ("-", -micros) if micros < 0 else ("", micros)
    seconds, micro = divmod(micros, 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    fraction = f".{micro:06d}".rstrip("0") if micro else ""
    clock = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M")) if n)
    clock += f"{seconds}{fraction}S" if seconds or fraction else ""
    text = (f"{days}D" if days else "") + (f"T{clock}" if clock else "")
    return _quoted(f"{sign}P{text or 'T0S'}", "duration")


CONSTANT_FORMATS: dict[ConstantKind, Callable[[object], str]] = {
    "string": lambda v: _quoted(str(v)),
    "int": str,
    "float": repr,  # always with '.' or 'e', so it reads back as a float
    "bool": lambda v: "true" if v else "false",
    "null": lambda v: "null",
    "datetime": _datetime,
    "date": lambda v: cast(date, v).isoformat(),
    "time": lambda v: cast(time, v).isoformat(),
    "duration": _duration,
    "geography": lambda v: _quoted(str(v), "geography"),
}


# ---- expressions ---------------------------------------------------------------------------------


def precedence(expr: Expr) -> int:
    """How tightly the printed `expr` binds (the parser's precedence table)."""
    if isinstance(expr, BoolOp | Compare | BinOp):
        return BINARY[expr.op]
    if isinstance(expr, In):
        return BINARY["in"]
    if isinstance(expr, Not):
        return NOT
    if isinstance(expr, Negate):
        return UNARY
    return PRIMARY


def _operand(expr: Expr, lowest: int) -> str:
    """`expr` printed, in parentheses when it binds less tightly than `lowest`."""
    text = format_expr(expr)
    return f"({text})" if precedence(expr) < lowest else text


def format_path(path: Path) -> str:
    return "/".join((path.variable, *path.segments) if path.variable is not None else path.segments)


def _lambda(expr: Lambda) -> str:
    body = f"{expr.variable}: {format_expr(expr.predicate)}" if expr.variable else ""
    return f"{format_path(expr.path)}/{expr.op}({body})"


def _negate(expr: Negate) -> str:
    # `-1` would read back as the literal -1, and `-2021-05-15` not at all: parenthesise literals.
    bare = isinstance(expr.operand, Path | Call | Lambda)
    return "-" + (format_expr(expr.operand) if bare else f"({format_expr(expr.operand)})")


def format_expr(expr: Expr) -> str:
    """An expression as $filter/$orderby text."""
    match expr:
        case Constant():
            return CONSTANT_FORMATS[expr.kind](expr.value)
        case Path():
            return format_path(expr)
        case BoolOp() | Compare() | BinOp():
            strength = BINARY[expr.op]  # left-associative: the right side needs more
            return f"{_operand(expr.left, strength)} {expr.op} {_operand(expr.right, strength + 1)}"
        case Not():
            return f"not {_operand(expr.operand, NOT)}"
        case Negate():
            return _negate(expr)
        case Call():
            return f"{expr.name}({', '.join(format_expr(a) for a in expr.args)})"
        case In():
            values = ", ".join(format_expr(v) for v in expr.values)
            return f"{_operand(expr.operand, BINARY['in'])} in ({values})"
        case Lambda():
            return _lambda(expr)


def format_orderby(orderby: tuple[OrderBy, ...]) -> str:
    return ",".join(format_expr(o.expr) + (" desc" if o.descending else "") for o in orderby)


def format_select(select: tuple[Path, ...]) -> str:
    return ",".join(format_path(p) for p in select)


def format_expand(expand: tuple[Expand, ...]) -> str:
    """`Datastreams($top=1;$expand=Observations),Locations`."""
    items = []
    for item in expand:
        options = format_expand_query(item.query)
        items.append("/".join(item.path) + (f"({options})" if options else ""))
    return ",".join(items)


# ---- options -------------------------------------------------------------------------------------

# Option name -> its value text, or None when the option is absent. $top and $skip come first.
_OPTIONS: tuple[tuple[str, Callable[[Query], str | None]], ...] = (
    ("$top", lambda q: str(q.top) if q.top_given else None),
    ("$skip", lambda q: str(q.skip) if q.skip else None),
    ("$count", lambda q: "true" if q.count else None),
    ("$filter", lambda q: format_expr(q.filter) if q.filter is not None else None),
    ("$orderby", lambda q: format_orderby(q.orderby) if q.orderby else None),
    ("$select", lambda q: format_select(q.select) if q.select is not None else None),
    ("$expand", lambda q: format_expand(q.expand) if q.expand else None),
    ("$resultFormat", lambda q: q.result_format),
    ("$skiptoken", lambda q: q.skiptoken),
)


def _options(query: Query) -> list[tuple[str, str]]:
    values = ((name, value(query)) for name, value in _OPTIONS)
    return [(name, text) for name, text in values if text is not None]


def format_query(query: Query) -> str:
    """Print the options of `query` back as a query string (no leading '?').

    $top appears when the client gave it (next_page always sets it: Masterportal
    stops on a literal `$top=X&$skip=Y`); $select, $expand, ... when present.
    """
    return "&".join(f"{name}={quote(text, safe=SAFE)}" for name, text in _options(query))


def format_expand_query(query: Query) -> str:
    """The options of one $expand level, `;`-separated and not URL-encoded:
    `$filter=name eq 'a';$top=1`. ($resultFormat and $skiptoken do not belong there
    and are printed only if set.)"""
    return ";".join(f"{name}={text}" for name, text in _options(query))


def next_page(query: Query) -> Query:
    """The Query of the page after `query`: every option kept, the window moved on."""
    return replace(query, skip=query.skip + query.top, top_given=True)
