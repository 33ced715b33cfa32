# SPDX-License-Identifier: Apache-2.0
"""Fixtures for MQTT ingest: a private broker per test and a database pool with the hub's codecs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio
from mqtt_helpers import make_pool


@pytest_asyncio.fixture
async def pool(clean_db: str) -> AsyncIterator[asyncpg.Pool]:
    created = await make_pool(clean_db)
    try:
        yield created
    finally:
        await created.close()
