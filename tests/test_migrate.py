# SPDX-License-Identifier: Apache-2.0
"""Migrations: applied in order, once, recorded, one at a time across hubs."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from dbutil import empty_tables

from hub.store.migrate import (
    MIGRATIONS_DIR,
    MigrationError,
    apply_migrations,
    discover_migrations,
    migrate_dsn,
)

NewDatabase = Callable[[], Awaitable[str]]

TIMING = re.compile(r"^(applied \S+ in )\d+\.\d\d( s)$")


def _untimed(messages: list[str]) -> list[str]:
    """The messages with each migration's duration (a measurement, not an answer) replaced by T."""
    return [TIMING.sub(r"\1T\2", message) for message in messages]


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    """Two tiny migrations; the second depends on the first."""
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "0001_first.sql").write_text("CREATE TABLE widgets (id int PRIMARY KEY);\n")
    (directory / "0002_second.sql").write_text(
        "ALTER TABLE widgets ADD COLUMN name text;\nINSERT INTO widgets VALUES (1, 'one');\n"
    )
    (directory / "README.md").write_text("not a migration\n")
    return directory


async def test_applies_in_order_then_nothing(new_database: NewDatabase, migrations: Path) -> None:
    dsn = await new_database()
    messages: list[str] = []
    assert await migrate_dsn(dsn, messages.append, migrations) == ["0001_first.sql", "0002_second.sql"]
    assert _untimed(messages) == [
        "applying 0001_first.sql (1/2)",
        "applied 0001_first.sql in T s",
        "applying 0002_second.sql (2/2)",
        "applied 0002_second.sql in T s",
    ]
    assert await migrate_dsn(dsn, messages.append, migrations) == []
    assert len(messages) == 4
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT version, name, applied_at FROM twinhub_migrations ORDER BY version")
        assert [(row["version"], row["name"]) for row in rows] == [
            (1, "0001_first.sql"),
            (2, "0002_second.sql"),
        ]
        assert all(row["applied_at"] is not None for row in rows)
        assert await conn.fetchval("SELECT name FROM widgets WHERE id = 1") == "one"
    finally:
        await conn.close()


async def test_new_file_is_applied_later(new_database: NewDatabase, migrations: Path) -> None:
    dsn = await new_database()
    await migrate_dsn(dsn, None, migrations)
    (migrations / "0003_third.sql").write_text("CREATE TABLE gadgets (id int);\n")
    messages: list[str] = []
    assert await migrate_dsn(dsn, messages.append, migrations) == ["0003_third.sql"]
    assert _untimed(messages) == ["applying 0003_third.sql (1/1)", "applied 0003_third.sql in T s"]


async def test_concurrent_hubs_apply_once(new_database: NewDatabase, migrations: Path) -> None:
    dsn = await new_database()
    results = await asyncio.gather(*(migrate_dsn(dsn, None, migrations) for _ in range(3)))
    assert sorted(results) == [[], [], ["0001_first.sql", "0002_second.sql"]]


async def test_failed_migration_rolls_back_and_names_file(
    new_database: NewDatabase, migrations: Path
) -> None:
    dsn = await new_database()
    (migrations / "0003_broken.sql").write_text("CREATE TABLE gadgets (id int);\nSELEC 1;\n")
    with pytest.raises(MigrationError, match=r"^0003_broken\.sql failed: "):
        await migrate_dsn(dsn, None, migrations)
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT max(version) FROM twinhub_migrations") == 2
        assert await conn.fetchval("SELECT to_regclass('gadgets')") is None
        # The lock must be released even though the migration failed.
        held = "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
        held += " WHERE l.locktype = 'advisory' AND d.datname = current_database()"
        assert await conn.fetchval(held) == 0
    finally:
        await conn.close()


async def test_notices_are_logged(new_database: NewDatabase, tmp_path: Path) -> None:
    (tmp_path / "0001_notice.sql").write_text(
        "DO $$ BEGIN RAISE NOTICE 'skipped the optional part'; END $$;\n"
    )
    messages: list[str] = []
    await migrate_dsn(await new_database(), messages.append, tmp_path)
    assert _untimed(messages) == [
        "applying 0001_notice.sql (1/1)",
        "0001_notice.sql: skipped the optional part",
        "applied 0001_notice.sql in T s",
    ]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["1_short.sql"], "1_short.sql: migration files must be named NNNN_lowercase_name.sql"),
        (["0001_Upper.sql"], "0001_Upper.sql: migration files must be named"),
        (["0001_a.sql", "0001_b.sql"], "0001_b.sql: version 0001 is also used by 0001_a.sql"),
    ],
)
def test_bad_file_names(tmp_path: Path, names: list[str], message: str) -> None:
    for name in names:
        (tmp_path / name).write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match="^" + message.replace(".", r"\.")):
        discover_migrations(tmp_path)


def test_discovery_sorts_numerically(tmp_path: Path) -> None:
    for name in ("0010_ten.sql", "0002_two.sql", "0001_one.sql"):
        (tmp_path / name).write_text("SELECT 1;\n")
    assert [m.version for m in discover_migrations(tmp_path)] == [1, 2, 10]


def test_packaged_migrations_are_well_named() -> None:
    assert [m.version for m in discover_migrations(MIGRATIONS_DIR)] == list(
        range(1, len(discover_migrations(MIGRATIONS_DIR)) + 1)
    )


async def test_session_database_is_migrated(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        versions = [row[0] for row in await conn.fetch("SELECT version FROM twinhub_migrations ORDER BY 1")]
    finally:
        await conn.close()
    assert versions == [m.version for m in discover_migrations()]
    assert await apply_migrations_again(db_dsn) == []


async def apply_migrations_again(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return await apply_migrations(conn)
    finally:
        await conn.close()


async def test_empty_tables_keeps_the_record(new_database: NewDatabase, migrations: Path) -> None:
    dsn = await new_database()
    await migrate_dsn(dsn, None, migrations)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE counters (id int GENERATED ALWAYS AS IDENTITY, w int REFERENCES widgets)"
        )
        await conn.execute("INSERT INTO counters (w) VALUES (1), (1)")
        await empty_tables(dsn)
        assert await conn.fetchval("SELECT count(*) FROM widgets") == 0
        assert await conn.fetchval("INSERT INTO counters (w) VALUES (NULL) RETURNING id") == 1
        assert await conn.fetchval("SELECT count(*) FROM twinhub_migrations") == 2
    finally:
        await conn.close()


async def test_clean_db_is_empty(clean_db: str) -> None:
    conn = await asyncpg.connect(clean_db)
    try:
        assert await conn.fetchval("SELECT count(*) FROM twinhub_migrations") > 0
    finally:
        await conn.close()
