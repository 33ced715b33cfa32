# SPDX-License-Identifier: Apache-2.0
"""Limits on what one GET may ask for: $filter size and $expand depth (400 naming the limit).

The parser already refuses nesting beyond 50 levels; these settings keep a single request from
costing more than a city wants to pay for, long before that.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping

from hub.config import Settings
from hub.query.ast import Expand, Expr, Query
from hub.query.parse import QueryError


def check_filter_text(params: Mapping[str, str], settings: Settings) -> None:
    """Before parsing: the `$filter` text is not longer than max_filter_length."""
    for name, text in params.items():
        if name.strip().lower() == "$filter" and len(text) > settings.max_filter_length:
            raise QueryError(
                f"$filter: {len(text)} characters exceed this server's limit of "
                f"{settings.max_filter_length} (max_filter_length)",
                option="$filter",
            )


def check_query(query: Query, settings: Settings) -> None:
    """After parsing: $expand depth and the number of $filter terms are within the settings."""
    depth = expand_depth(query.expand)
    if depth > settings.max_expand_depth:
        raise QueryError(
            f"$expand: {depth} levels exceed this server's limit of {settings.max_expand_depth} "
            "(max_expand_depth)",
            option="$expand",
        )
    terms = filter_terms(query)
    if terms > settings.max_filter_nodes:
        raise QueryError(
            f"$filter: {terms} terms exceed this server's limit of {settings.max_filter_nodes} "
            "(max_filter_nodes)",
            option="$filter",
        )


def expand_depth(expands: tuple[Expand, ...]) -> int:
    """Navigation steps of the deepest $expand chain: `Datastreams/Observations` is 2, and so is
    `Datastreams($expand=Observations)`."""
    return max((len(item.path) + expand_depth(item.query.expand) for item in expands), default=0)


def filter_terms(query: Query) -> int:
    """Expression nodes in the $filter of the request and of every $expand level."""
    own = sum(1 for _ in _nodes(query.filter)) if query.filter is not None else 0
    return own + sum(filter_terms(item.query) for item in query.expand)


def _nodes(expr: Expr) -> Iterator[object]:
    """Every node of an expression tree (an explicit stack: the tree may be deep)."""
    stack: list[object] = [expr]
    while stack:
        node = stack.pop()
        yield node
        if not dataclasses.is_dataclass(node):
            continue
        for field in dataclasses.fields(node):
            value = getattr(node, field.name)
            children = value if isinstance(value, tuple) else (value,)
            stack.extend(child for child in children if dataclasses.is_dataclass(child))
