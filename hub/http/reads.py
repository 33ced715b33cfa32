# SPDX-License-Identifier: Apache-2.0
"""Which server answers a read: a usable hot standby (database_read_urls), else the primary.

With standbys, a read runs in one REPEATABLE READ READ ONLY transaction on one server, so
everything it reads, the ETag change clock included, comes from one snapshot of one server. A
standby that fails during the read (stopped, crashed, a recovery conflict) is skipped and the read
runs again on the primary: the client never sees the failure. `TwinHub-Consistency: primary`
asks for the primary (read your own writes); `TwinHub-Database` in the response says which server
answered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
from aiohttp import web

from hub.config import Settings
from hub.http.context import STATE
from hub.http.observe import METRICS
from hub.store.replicas import SERVER_FAILURES, ReplicaSet, open_replicas

CONSISTENCY = "TwinHub-Consistency"  # request: "primary" reads what was just written
DATABASE = "TwinHub-Database"  # response: "primary", or the standby's name (replica1, ...)
PRIMARY = "primary"

READS = web.AppKey("reads", ReplicaSet)
SERVED_BY = web.RequestKey("served_by", str)

Read = Callable[[asyncpg.Connection], Awaitable[web.Response]]


def replica_context(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context opening the standbys' pools and their lag checks (after the primary's)."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        state = app[STATE]
        async with open_replicas(
            state.pool,
            settings.database_read_urls,
            settings.max_replica_lag,
            settings.replica_check_interval,
            settings.db_pool_max,
            settings.statement_timeout_ms,
        ) as replicas:
            app[READS] = replicas
            if METRICS in app:
                app[METRICS].watch_replicas(replicas)
            yield

    return context


async def _in_snapshot(pool: asyncpg.Pool, read: Read) -> web.Response:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        return await read(conn)


async def _on_one_connection(pool: asyncpg.Pool, read: Read) -> web.Response:
    async with pool.acquire() as conn:
        return await read(conn)


async def read_snapshot(request: web.Request, read: Read) -> web.Response:
    """Run `read` in one snapshot on a standby when one is usable and wanted, else on the primary."""
    replicas = request.app.get(READS)
    if replicas is None:
        # One server: the clock is read before the data on the same connection, which already
        # keeps a 304 from being stale (docs/http-caching.md); a transaction would add two round
        # trips (BEGIN, COMMIT: +0.65 ms per read measured on a busy 2-core machine).
        return await _on_one_connection(request.app[STATE].pool, read)
    wants_primary = request.headers.get(CONSISTENCY, "").strip().lower() == PRIMARY
    replica = None if wants_primary else replicas.choose()
    if replica is not None:
        request[SERVED_BY] = replica.name  # errors too: a 404 from a standby may be its lag
        try:
            response = await _in_snapshot(replica.pool, read)
        except SERVER_FAILURES as error:
            replicas.failed(replica, error)
        else:
            replica.reads += 1
            return response
    request[SERVED_BY] = PRIMARY
    response = await _in_snapshot(request.app[STATE].pool, read)
    replicas.primary_reads += 1
    return response


async def name_the_server(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: say in TwinHub-Database which server answered a read."""
    served_by = request.get(SERVED_BY)
    if served_by is not None:
        response.headers[DATABASE] = served_by


__all__ = ["CONSISTENCY", "DATABASE", "READS", "name_the_server", "read_snapshot", "replica_context"]
