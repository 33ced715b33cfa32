# SPDX-License-Identifier: Apache-2.0
"""A hot standby of the test server, and hubs reading from it (skipped, with the reason, where none
can be made; TWINHUB_TEST_REPLICATION=required, as .ci/run sets, makes that a failure)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from standby import CHECK_INTERVAL, MAX_LAG, Standby, StandbyUnavailable, make_standby, remove_standby

from hub.config import Settings

REQUIRED_VAR = "TWINHUB_TEST_REPLICATION"


@pytest_asyncio.fixture(scope="module")
async def standby(pg_dsn: str) -> AsyncIterator[Standby]:
    """A running hot standby of the test server."""
    required = os.environ.get(REQUIRED_VAR) == "required"
    if not os.environ.get("TWINHUB_TEST_DSN"):
        reason = "a standby needs TWINHUB_TEST_DSN: a PostgreSQL server on this machine to base-backup"
        pytest.fail(reason) if required else pytest.skip(reason)
    try:
        made = await make_standby(pg_dsn)
    except StandbyUnavailable as exc:
        pytest.fail(str(exc)) if required else pytest.skip(str(exc))
    try:
        yield made
    finally:
        await remove_standby(made)


@pytest.fixture
def replica_settings(db_dsn: str, standby: Standby, tmp_path: Path) -> Settings:
    """Settings of a hub on the session database that reads from the standby."""
    return Settings(
        database_url=db_dsn,
        database_read_urls=(standby.dsn(db_dsn),),
        max_replica_lag=MAX_LAG,
        replica_check_interval=CHECK_INTERVAL,
        data_dir=tmp_path / "data",
        migrate_on_start=False,
        auth_anonymous_write=True,
    )


@pytest_asyncio.fixture
async def replica_client(clean_db: str, replica_settings: Settings) -> AsyncIterator[Any]:
    """An aiohttp test client of a hub with the standby as its read replica."""
    from aiohttp.test_utils import TestClient, TestServer

    from hub.app import build_app

    async with TestClient(TestServer(build_app(replica_settings))) as test_client:
        yield test_client
