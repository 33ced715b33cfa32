# SPDX-License-Identifier: Apache-2.0
"""`$apply` text -> Apply: the subset of the OData Data Aggregation Extension v4.0 in docs/aggregates.md.

    [filter(<$filter expression>)/][compute(twinhub.bucket(phenomenonTime,'<width>'[,'<zone>']) as <alias>)/]
    aggregate(...) | groupby((<property>, ...),aggregate(...))

The tokens and the filter expression come from the $filter parser (hub/query/parse.py); names
are checked later, by hub/query/apply_plan.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hub.query.ast import Expr

# The $filter parser's reader: one tokenizer and expression grammar for both options.
from hub.query.parse import _Parser as Reader
from hub.query.parse import query_error

OPTION = "$apply"
COUNT = "$count"
BUCKET_FUNCTION = "twinhub.bucket"
# Standard methods (OData-Aggr §3.1.3) and the custom ones, namespace-qualified (§3.1.3.6).
METHODS = ("average", "min", "max", "sum", "countdistinct", "twinhub.first", "twinhub.last")
TRANSFORMATIONS = ("filter", "compute", "groupby", "aggregate")
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Aggregate:
    """`result with <method> as <alias>`, or `$count as <alias>` (method "$count")."""

    method: str
    alias: str


@dataclass(frozen=True)
class Bucket:
    """`compute(twinhub.bucket(phenomenonTime,'<width>','<zone>') as <alias>)`."""

    width: str
    zone: str
    alias: str


@dataclass(frozen=True)
class Apply:
    """The parsed transformations; `groupby` holds the grouping properties as written."""

    filter: Expr | None
    bucket: Bucket | None
    groupby: tuple[str, ...]
    aggregates: tuple[Aggregate, ...]


def parse_apply(text: str) -> Apply:
    """Read `$apply` text; every failure is a QueryError (400) naming the position and token."""
    reader = Reader(text, OPTION)
    filter_: Expr | None = None
    bucket: Bucket | None = None
    stage = 0  # transformations must come in TRANSFORMATIONS order, aggregate/groupby last
    while True:
        token = reader.peek()
        name = reader.keyword()
        if name not in TRANSFORMATIONS:
            detail = f"transformation {token.text!r} is not supported" if token.kind == "ident" else None
            raise (
                query_error(OPTION, detail, token.position, "supported: filter, compute, groupby, aggregate")
                if detail
                else reader.error(token, "expected filter(, compute(, groupby( or aggregate(")
            )
        index = TRANSFORMATIONS.index(name)
        if index < stage:
            raise query_error(
                OPTION, f"{name}(...) cannot follow the transformations before it", token.position
            )
        stage = index + 1
        reader.advance()
        reader.expect("(", f"expected '(' after {name}")
        if name == "filter":
            filter_ = reader.expression()
            reader.expect(")", "expected ')' closing filter(")
        elif name == "compute":
            bucket = _compute(reader)
        else:
            groupby = _groupby(reader) if name == "groupby" else ()
            aggregates = _aggregates(reader)
            if name == "groupby":
                reader.expect(")", "expected ')' closing groupby(")
            reader.finish("aggregate(...) or groupby(...) is the last transformation")
            apply = Apply(filter_, bucket, groupby, aggregates)
            _check_aliases(apply)
            return apply
        reader.expect("/", "expected '/' and the next transformation")


def _compute(reader: Reader) -> Bucket:
    token = reader.peek()
    if reader.keyword() != BUCKET_FUNCTION:
        raise query_error(
            OPTION,
            f"compute({token.text}...) is not supported",
            token.position,
            "only twinhub.bucket(...) as alias",
        )
    reader.advance()
    reader.expect("(", "expected '(' after twinhub.bucket")
    prop = reader.expect("ident", "expected phenomenonTime")
    if prop.text != "phenomenonTime":
        raise query_error(OPTION, f"twinhub.bucket buckets phenomenonTime, not {prop.text!r}", prop.position)
    reader.expect(",", "expected ',' and the bucket width, e.g. 'PT1H'")
    width = str(reader.expect("string", "expected the bucket width as a string, e.g. 'PT1H'").value)
    zone = "UTC"
    if reader.accept(","):
        zone = str(reader.expect("string", "expected a time zone as a string, e.g. 'Europe/Berlin'").value)
    reader.expect(")", "expected ')' closing twinhub.bucket(")
    alias = _as(reader)
    reader.expect(")", "expected ')' closing compute(")
    return Bucket(width, zone, alias)


def _as(reader: Reader) -> str:
    if reader.keyword() != "as":
        raise reader.error(reader.peek(), "expected 'as' and an alias")
    reader.advance()
    token = reader.expect("ident", "expected an alias")
    if not _ALIAS.match(token.text):
        raise query_error(OPTION, f"alias {token.text!r} is not a plain name", token.position)
    return token.text


def _groupby(reader: Reader) -> tuple[str, ...]:
    reader.expect("(", "expected '(' and the grouping properties")
    names = []
    while True:
        parts = [reader.expect("ident", "expected a grouping property").text]
        while reader.accept("/"):
            parts.append(reader.expect("ident", "expected a property after '/'").text)
        names.append("/".join(parts))
        if not reader.accept(","):
            break
    reader.expect(")", "expected ',' or ')' closing the grouping properties")
    if not reader.accept(","):
        raise reader.error(reader.peek(), "groupby needs aggregate(...) after its properties")
    if reader.keyword() != "aggregate":
        raise reader.error(reader.peek(), "expected aggregate(...)")
    reader.advance()
    reader.expect("(", "expected '(' after aggregate")
    return tuple(names)


def _aggregates(reader: Reader) -> tuple[Aggregate, ...]:
    items = []
    while True:
        token = reader.peek()
        if token.kind == "option" and token.text == COUNT:
            reader.advance()
            items.append(Aggregate(COUNT, _as(reader)))
        else:
            prop = reader.expect("ident", "expected 'result with <method> as <alias>' or '$count as <alias>'")
            if prop.text != "result":
                raise query_error(OPTION, f"only result can be aggregated, not {prop.text!r}", prop.position)
            if reader.keyword() != "with":
                raise reader.error(reader.peek(), "expected 'with' and an aggregation method")
            reader.advance()
            method = reader.expect("ident", "expected an aggregation method")
            if method.text not in METHODS:
                raise query_error(
                    OPTION,
                    f"aggregation method {method.text!r} is not supported",
                    method.position,
                    "supported: " + ", ".join(METHODS),
                )
            items.append(Aggregate(method.text, _as(reader)))
        if not reader.accept(","):
            break
    reader.expect(")", "expected ',' or ')' closing aggregate(")
    return tuple(items)


def _check_aliases(apply: Apply) -> None:
    names = [a.alias for a in apply.aggregates]
    if apply.bucket is not None:
        names += [apply.bucket.alias, apply.bucket.alias + "End"]
    names += ["Datastream"]
    for name in names:
        if names.count(name) > 1:
            raise query_error(OPTION, f"alias {name!r} is used twice (or collides with a row property)")
