# SPDX-License-Identifier: Apache-2.0
"""The asyncpg pool and its codecs: jsonb through orjson."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from hub.query.filter import Dialect


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# What a transaction that inserts many rows runs first. The pool plans every statement afresh
# (force_custom_plan, below), and that setting reaches the foreign-key triggers' internal queries
# too: each inserted Observation's key checks were planned anew, about 12 µs of database CPU per
# row. An insert's statements have no time window a generic plan could misjudge, so such a
# transaction lets PostgreSQL cache plans as it does by default; SET LOCAL ends with the
# transaction, and the pooled connection goes back to custom plans for the reads.
CACHED_PLANS = "SET LOCAL plan_cache_mode = auto"


async def init_connection(conn: asyncpg.Connection) -> None:
    """The codecs every connection of the hub gets."""
    # orjson keeps JSON types exactly (number, string, bool, null, object, array).
    for typename in ("jsonb", "json"):
        await conn.set_type_codec(typename, encoder=_dumps, decoder=orjson.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Skip the default reset query on release (see create_pool)."""


async def create_pool(
    dsn: str,
    min_size: int = 2,
    max_size: int = 16,
    statement_timeout_ms: int = 0,
    connect_timeout: float = 60.0,
    plan_cache_mode: str = "force_custom_plan",
) -> asyncpg.Pool:
    """Open the pool every request and the ingest share (or, with min_size 0, a standby's).

    `plan_cache_mode` "auto" or "force_generic_plan" suits a pool of a few fixed statements whose
    plans do not depend on their parameters' values (the group commit's insert)."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=connect_timeout,
        # A runaway $filter is cancelled by PostgreSQL itself, not left holding a connection.
        server_settings={
            "statement_timeout": str(statement_timeout_ms),
            # asyncpg prepares every statement; after five runs PostgreSQL may switch to a generic
            # plan that cannot see the time window's size and sorts the whole window instead of
            # walking the index (66 ms against 3.4 ms on a 30-day Grafana range, bench/results).
            # Planning each execution costs ~0.2 ms.
            "plan_cache_mode": plan_cache_mode,
        },
        init=init_connection,
        # The default reset query costs a round trip per release (LIMITS.md);
        # requests never leave session state behind, so skip it.
        reset=_keep_session,
    )
    return pool


async def detect_dialect(pool: asyncpg.Pool) -> Dialect:
    """What the database offers: geom columns where PostGIS was available (migration 0002), else
    the built-in pt columns (migration 0007)."""
    sql = """SELECT bool_or(column_name = 'geom'), bool_or(column_name = 'pt')
             FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'locations'"""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL statement_timeout = 0")  # start-up must not depend on the setting
        postgis, points = await conn.fetchrow(sql)
        return Dialect(postgis=bool(postgis), points=bool(points))
