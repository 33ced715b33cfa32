# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the viewer tests: a headless Chromium (see chromium.py) and a hub of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from chromium import chromium, ensure_viewer_built
from dbutil import create_database, drop_database
from hub_process import serving


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium under Selenium; the test module marks itself with requires_chromium."""
    with chromium() as driver:
        yield driver


@pytest_asyncio.fixture
async def fresh_dsn(pg_dsn: str) -> AsyncIterator[str]:
    """An empty database of its own: the hub migrates it on start."""
    dsn = await create_database(pg_dsn)
    try:
        yield dsn
    finally:
        await drop_database(pg_dsn, dsn)


@pytest.fixture
def hub(fresh_dsn: str, tmp_path: Path) -> Iterator[str]:
    """A running `twinhub serve` (viewer built) on the fresh database; yields its base URL."""
    ensure_viewer_built()
    with serving(fresh_dsn, tmp_path) as base:
        yield base
