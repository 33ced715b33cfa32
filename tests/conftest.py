# SPDX-License-Identifier: Apache-2.0
"""The one fixture module: PostgreSQL server, migrated test database, settings (and later HTTP, broker)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from dbutil import create_database, drop_database, empty_tables, migrate, migrated_database

from hub.config import Settings
from hub.store.embedded import EmbeddedPostgres, EmbeddedPostgresError

# --- PostgreSQL server ------------------------------------------------------
#
# Chosen once per session: TWINHUB_TEST_DSN (dev and CI machines), else the
# embedded server from the wheel, else testcontainers where Docker answers.

TEST_DSN_VAR = "TWINHUB_TEST_DSN"


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """DSN of a PostgreSQL server's maintenance database, superuser rights expected."""
    if os.environ.get(TEST_DSN_VAR):
        yield os.environ[TEST_DSN_VAR]
        return
    # Not below pytest's base temp: run as root, the wheel starts PostgreSQL as a user of its own and
    # opens the data directory's parents to it, and every pytest session starting meanwhile (another
    # run on the machine) closes its base temp again (0700), so initdb fails there.
    parent = Path(tempfile.mkdtemp(prefix="twinhub-test-postgres-"))
    try:
        with _start_server(parent / "data") as dsn:
            yield dsn
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@contextlib.contextmanager
def _start_server(data_dir: Path) -> Iterator[str]:
    """Start the embedded server, falling back to a container; fail with every reason otherwise."""
    reasons = [f"{TEST_DSN_VAR} is not set"]
    try:
        embedded = EmbeddedPostgres(data_dir, database="postgres")
        dsn = embedded.start()
    except EmbeddedPostgresError as exc:
        reasons.append(str(exc))
    else:
        try:
            yield dsn
        finally:
            embedded.stop()
        return
    container = _postgres_container(reasons)
    if container is None:
        pytest.fail("no PostgreSQL for the tests: " + "; ".join(reasons), pytrace=False)
    with container:
        yield container.get_connection_url(driver=None)


def _postgres_container(reasons: list[str]) -> Any:
    """A testcontainers PostgreSQL (PostGIS image), or None with the reason appended."""
    try:
        import docker
        from testcontainers.postgres import PostgresContainer
    except ImportError:
        reasons.append("testcontainers is not installed (pip install -e '.[containers]')")
        return None
    try:
        docker.from_env().ping()
    except Exception as exc:  # docker raises several unrelated types when no engine answers
        reasons.append(f"no Docker engine answers ({exc})")
        return None
    return PostgresContainer("postgis/postgis:15-3.4")


# --- PostGIS ----------------------------------------------------------------
#
# Tests marked `postgis` need it; where the server has none they skip, saying so in the summary
# (pytest -rs). The viewers' shapes (marked `geo`) run either way: without PostGIS on the built-in
# geometric types (hub/query/builtin_geo.py).

POSTGIS_MISSING = (
    "needs PostGIS, which the test server lacks (the embedded server never has it): "
    f"set {TEST_DSN_VAR} to a server with the postgis extension available"
)


@pytest.fixture(scope="session")
def postgis_available(pg_dsn: str) -> bool:
    """Whether the test server offers the postgis extension (migration 0002 then creates it)."""
    import asyncio

    async def probe() -> bool:
        conn = await asyncpg.connect(pg_dsn)
        try:
            return bool(await conn.fetchval("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'"))
        finally:
            await conn.close()

    loop = asyncio.new_event_loop()  # not the session's loop, which only runs async fixtures
    try:
        return loop.run_until_complete(probe())
    finally:
        loop.close()


@pytest.fixture(autouse=True)
def _skip_without_postgis(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgis") and not request.getfixturevalue("postgis_available"):
        pytest.skip(POSTGIS_MISSING)


# --- databases --------------------------------------------------------------


@pytest_asyncio.fixture(scope="session")
async def db_dsn(pg_dsn: str) -> AsyncIterator[str]:
    """DSN of a fresh database with every migration applied, shared by the session."""
    async with migrated_database(pg_dsn) as dsn:
        yield dsn


@pytest_asyncio.fixture
async def new_database(pg_dsn: str) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Factory of empty (unmigrated) databases, each dropped after the test."""
    created: list[str] = []

    async def make() -> str:
        created.append(await create_database(pg_dsn))
        return created[-1]

    yield make
    for dsn in created:
        await drop_database(pg_dsn, dsn)


@pytest_asyncio.fixture
async def clean_db(db_dsn: str) -> str:
    """The session database with every table emptied and identities reset before the test."""
    await empty_tables(db_dsn)
    return db_dsn


# --- settings ---------------------------------------------------------------


@pytest.fixture
def settings(db_dsn: str, tmp_path: Path) -> Settings:
    """Settings for an in-process hub on the session database (already migrated).

    Writes need no credentials here (explicitly: the default wants them); tests/auth checks them."""
    return Settings(
        database_url=db_dsn, data_dir=tmp_path / "data", migrate_on_start=False, auth_anonymous_write=True
    )


# --- a private broker -------------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Any]:
    """A private mosquitto for one test (tests/mqtt/mqtt_helpers.Broker), stopped after it."""
    helpers = str(Path(__file__).parent / "mqtt")
    if helpers not in sys.path:  # tests outside tests/mqtt (sta, ingest_adapters) use it too
        sys.path.insert(0, helpers)
    from mqtt_helpers import Broker

    started = Broker(tmp_path / "broker")
    started.start()
    try:
        yield started
    finally:
        started.stop()


# --- HTTP -------------------------------------------------------------------


@pytest_asyncio.fixture
async def client(clean_db: str, settings: Settings) -> AsyncIterator[Any]:
    """An aiohttp test client of a hub on the emptied session database."""
    from aiohttp.test_utils import TestClient, TestServer

    from hub.app import build_app

    async with TestClient(TestServer(build_app(settings))) as test_client:
        yield test_client


# --- a hub on a real socket -------------------------------------------------
#
# For clients that are not asyncio (schemathesis uses requests): the hub runs in a thread
# with its own event loop on a fresh, migrated database, and listens on a free port.


@pytest.fixture(scope="module")
def live_hub(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL (http://127.0.0.1:<port>) of a hub serving a database of its own."""
    import asyncio
    import threading

    from aiohttp import web

    from hub.app import build_app

    started = threading.Event()
    found: dict[str, Any] = {}

    async def serve() -> None:
        dsn = await create_database(pg_dsn)
        found["dsn"] = dsn
        try:
            await migrate(dsn)
            settings = Settings(
                database_url=dsn,
                data_dir=tmp_path_factory.mktemp("live") / "data",
                migrate_on_start=False,
                auth_anonymous_write=True,  # the schemathesis run writes without credentials
            )
            runner = web.AppRunner(build_app(settings))
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            found["url"] = f"http://127.0.0.1:{port}"
            found["stop"] = asyncio.Event()
            started.set()
            await found["stop"].wait()
            await runner.cleanup()
        finally:
            started.set()
            await drop_database(pg_dsn, dsn)

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    started.wait(60)
    if "url" not in found:
        pytest.fail("the live hub did not start", pytrace=False)
    try:
        yield found["url"]
    finally:
        loop.call_soon_threadsafe(found["stop"].set)
        thread.join(30)
        loop.close()
