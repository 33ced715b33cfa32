# SPDX-License-Identifier: Apache-2.0
"""Runs compiled reads: one round trip for the page, one for $count when asked."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from hub.errors import NotFoundError
from hub.query.ast import Query
from hub.query.compile import compile_exists, compile_read
from hub.query.path import ResourcePath


@dataclass(frozen=True)
class Page:
    """The rows of one page, whether more follow, and the total when $count=true."""

    rows: list[asyncpg.Record]
    has_more: bool
    count: int | None = None


async def _check_parent(conn: asyncpg.Connection, path: ResourcePath) -> None:
    """An empty result under a missing parent is a 404, not an empty collection."""
    segments = path.segments
    prefix = segments if not path.is_collection else segments[:-1]
    if not prefix:
        return
    sql = compile_exists(prefix)
    if await conn.fetchval(sql.text, *sql.args) is None:
        raise NotFoundError(f"{path} does not exist")


async def read_page(conn: asyncpg.Connection, path: ResourcePath, query: Query) -> Page:
    """The entities a path addresses, one page of them for a collection."""
    page_sql, count_sql = compile_read(path, query)
    rows = await conn.fetch(page_sql.text, *page_sql.args)
    if not rows:
        await _check_parent(conn, path)
    if not path.is_collection:
        if not rows:
            raise NotFoundError(f"{path} does not exist")
        return Page(rows[:1], has_more=False)
    has_more = len(rows) > query.top
    count = None
    if count_sql is not None:
        count = await conn.fetchval(count_sql.text, *count_sql.args)
    return Page(rows[: query.top], has_more, count)


async def path_exists(conn: asyncpg.Connection, path: ResourcePath) -> bool:
    """Whether every keyed entity along the path exists."""
    sql = compile_exists(path.segments)
    return await conn.fetchval(sql.text, *sql.args) is not None
