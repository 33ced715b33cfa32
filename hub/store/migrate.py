# SPDX-License-Identifier: Apache-2.0
"""Applies migrations/NNNN_name.sql in order, each once, recorded in twinhub_migrations."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MIGRATIONS_TABLE = "twinhub_migrations"

# One fixed key for pg_advisory_lock: "twinhub" in ASCII, so hubs sharing a
# database (replicas starting together) apply migrations one at a time.
LOCK_KEY = int.from_bytes(b"twinhub", "big")

_FILE_NAME = re.compile(r"(?P<version>\d{4})_[a-z0-9_]+\.sql")

_CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

Log = Callable[[str], None]


class MigrationError(RuntimeError):
    """A migration file is misnamed, duplicated or failed to apply; the message names it."""


@dataclass(frozen=True)
class Migration:
    """One SQL file: its version number, file name and text."""

    version: int
    name: str
    path: Path

    def sql(self) -> str:
        """Read the file's SQL text."""
        return self.path.read_text(encoding="utf-8")


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """List the .sql files of `directory` in version order, rejecting bad names and duplicates."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.fullmatch(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files must be named NNNN_lowercase_name.sql")
        version = int(match["version"])
        if version in found:
            raise MigrationError(f"{path.name}: version {version:04d} is also used by {found[version].name}")
        found[version] = Migration(version, path.name, path)
    return [found[version] for version in sorted(found)]


async def apply_migrations(
    conn: asyncpg.Connection, log: Log | None = None, directory: Path = MIGRATIONS_DIR
) -> list[str]:
    """Apply the pending migrations, each in its own transaction; return the names applied now."""
    migrations = discover_migrations(directory)
    say = log or (lambda _message: None)
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        # Created under the lock: two concurrent CREATE TABLE IF NOT EXISTS can still collide.
        await conn.execute(_CREATE_TABLE)
        applied = {row["version"] for row in await conn.fetch(f"SELECT version FROM {MIGRATIONS_TABLE}")}
        pending = [m for m in migrations if m.version not in applied]
        for number, migration in enumerate(pending, start=1):
            say(f"applying {migration.name} ({number}/{len(pending)})")
            started = time.monotonic()
            await _apply_one(conn, migration, say)
            say(f"applied {migration.name} in {time.monotonic() - started:.2f} s")
    finally:
        # A lost connection released the lock already; unlocking would only hide the real error.
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    return [migration.name for migration in pending]


async def _apply_one(conn: asyncpg.Connection, migration: Migration, say: Log) -> None:
    """Run one file and record it in the same transaction, so it is applied fully or not at all."""

    def relay(_conn: object, message: asyncpg.PostgresLogMessage) -> None:
        # RAISE NOTICE is how a migration explains what it skipped (e.g. no PostGIS).
        say(f"{migration.name}: {message.message}")

    conn.add_log_listener(relay)
    try:
        async with conn.transaction():
            await conn.execute(migration.sql())
            await conn.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"{migration.name} failed: {exc}") from exc
    finally:
        # Listeners run via call_soon; yield once so this file's notices print before the next file starts.
        await asyncio.sleep(0)
        conn.remove_log_listener(relay)


async def migrate_dsn(dsn: str, log: Log | None = None, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Connect to `dsn`, apply the pending migrations and disconnect."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await apply_migrations(conn, log, directory)
    finally:
        await conn.close()
