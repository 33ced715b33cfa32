# SPDX-License-Identifier: Apache-2.0
"""Fixtures for MQTT ingest: a private broker per test and a database pool with the hub's codecs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from mqtt_helpers import Broker, make_pool


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    started = Broker(tmp_path / "broker")
    started.start()
    try:
        yield started
    finally:
        started.stop()


@pytest_asyncio.fixture
async def pool(clean_db: str) -> AsyncIterator[asyncpg.Pool]:
    created = await make_pool(clean_db)
    try:
        yield created
    finally:
        await created.close()
