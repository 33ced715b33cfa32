# SPDX-License-Identifier: Apache-2.0
"""Query -> query-string text, for @iot.nextLink (complete in itself, STA-NOTES 1)."""

from __future__ import annotations

from hub.query.ast import Query


def format_query(query: Query) -> str:
    """Print the options of `query` back as a query string (no leading '?')."""
    parts = [f"$top={query.top}"]
    if query.skip:
        parts.append(f"$skip={query.skip}")
    if query.count:
        parts.append("$count=true")
    return "&".join(parts)


def next_page(query: Query) -> Query:
    """The Query of the page after `query`."""
    return Query(top=query.top, skip=query.skip + query.top, count=query.count, top_given=True)
