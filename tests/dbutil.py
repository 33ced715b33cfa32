# SPDX-License-Identifier: Apache-2.0
"""Database helpers the fixtures and tests share (a module, not conftest, so it imports unambiguously)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from hub.store.migrate import MIGRATIONS_TABLE, apply_migrations


def with_database(dsn: str, database: str) -> str:
    """Return `dsn` pointing at another database on the same server."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


async def create_database(maintenance_dsn: str, prefix: str = "twinhub_test") -> str:
    """Create an empty database with a random name and return its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(maintenance_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')  # name is ours: [a-z0-9_] only
    finally:
        await conn.close()
    return with_database(maintenance_dsn, name)


async def migrate(dsn: str) -> None:
    """Apply every migration to the database of `dsn`."""
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def migrated_database(maintenance_dsn: str, prefix: str = "twinhub_test") -> AsyncIterator[str]:
    """The DSN of a database of its own with every migration applied, dropped afterwards."""
    dsn = await create_database(maintenance_dsn, prefix)
    try:
        await migrate(dsn)
        yield dsn
    finally:
        await drop_database(maintenance_dsn, dsn)


async def drop_database(maintenance_dsn: str, dsn: str) -> None:
    """Drop the database of `dsn`, disconnecting whoever still uses it.

    DROP DATABASE forces a checkpoint; on a loaded machine the connection doing it has been seen
    to close under it (client side, nothing in the server log), so a lost connection is retried."""
    name = urlsplit(dsn).path.lstrip("/")
    for attempt in range(3):
        conn = await asyncpg.connect(maintenance_dsn)
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            return
        except asyncpg.ConnectionDoesNotExistError:
            if attempt == 2:
                raise
        finally:
            await conn.close()


# Tables of the public schema, minus the migration record, the change clock (it only moves
# forward, see docs/http-caching.md) and tables owned by
# extensions (PostGIS keeps spatial_ref_sys in public; emptying it breaks ST_ functions).
_USER_TABLES = f"""
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
  AND c.relname NOT IN ('{MIGRATIONS_TABLE}', 'twinhub_clock')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
"""


async def empty_tables(dsn: str) -> None:
    """Empty every user table of the public schema and restart its identities."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = [row[0] for row in await conn.fetch(_USER_TABLES)]
        if tables:
            await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
