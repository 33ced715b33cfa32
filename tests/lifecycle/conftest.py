# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the lifecycle tests: a migrated database of their own (they create and drop partitions)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest_asyncio
from lifecycle_helpers import setup_streams

from hub.store.migrate import apply_migrations


@pytest_asyncio.fixture
async def lifecycle_db(new_database: Callable[[], Awaitable[str]]) -> AsyncIterator[str]:
    """DSN of a fresh migrated database with the two Datastreams of lifecycle_helpers."""
    dsn = await new_database()
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
        await setup_streams(conn)
    finally:
        await conn.close()
    yield dsn


@pytest_asyncio.fixture
async def conn(lifecycle_db: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the lifecycle database."""
    connection = await asyncpg.connect(lifecycle_db)
    try:
        yield connection
    finally:
        await connection.close()
