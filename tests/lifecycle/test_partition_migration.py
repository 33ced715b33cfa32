# SPDX-License-Identifier: Apache-2.0
"""Migration 0004 turns an existing unpartitioned observations table with data into partitions."""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from lifecycle_helpers import setup_streams

from hub.store.migrate import MIGRATIONS_DIR, apply_migrations, discover_migrations

NewDatabase = Callable[[], Awaitable[str]]
ROWS = """
SELECT id, phenomenon_time_start, phenomenon_time_end, result_time, result, result_number, parameters,
       datastream_id, feature_of_interest_id
FROM observations ORDER BY id"""


async def test_existing_rows_move_into_partitions_with_their_ids(
    new_database: NewDatabase, tmp_path: Path
) -> None:
    # The schema as deployments had it before partitioning: the migrations before 0006.
    before = tmp_path / "before"
    before.mkdir()
    for migration in discover_migrations():
        if migration.version < 6:
            shutil.copy(migration.path, before / migration.name)
    dsn = await new_database()
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn, directory=before)
        assert await conn.fetchval("SELECT relkind FROM pg_class WHERE relname = 'observations'") == b"r"
        await setup_streams(conn)
        await conn.execute(
            """INSERT INTO observations (phenomenon_time_start, phenomenon_time_end, result_time, result,
                                         parameters, datastream_id, feature_of_interest_id)
               SELECT t, t + interval '1 minute', t, to_jsonb(n * 0.5), jsonb_build_object('n', n),
                      1 + n % 2, 1
               FROM generate_series(1, 3000) AS n,
                    LATERAL (SELECT timestamptz '2025-11-20' + n * interval '1 hour') AS x(t)"""
        )
        await conn.execute(
            "INSERT INTO observations (phenomenon_time_start, phenomenon_time_end, result, datastream_id, "
            "feature_of_interest_id) VALUES ('1899-12-31T23:00:00Z', '1899-12-31T23:00:00Z', '\"old\"', 1, 1)"
        )
        await conn.execute("DELETE FROM observations WHERE id % 7 = 0")  # gaps in the ids
        old_rows = [tuple(r) for r in await conn.fetch(ROWS)]
        last_id = await conn.fetchval("SELECT max(id) FROM observations")

        messages: list[str] = []
        applied = await apply_migrations(conn, messages.append, MIGRATIONS_DIR)
        assert applied[0] == "0006_observation_partitions.sql"

        assert await conn.fetchval("SELECT relkind FROM pg_class WHERE relname = 'observations'") == b"p"
        assert [tuple(r) for r in await conn.fetch(ROWS)] == old_rows
        assert any("moved 2573 of 2573 Observations" in m for m in messages), messages
        # Every month with rows got its partition; nothing stayed in the default partition.
        assert await conn.fetchval("SELECT count(*) FROM observations_default") == 0
        assert await conn.fetchval("SELECT count(*) FROM observations_18991201") == 1
        per_month = await conn.fetch(
            "SELECT tableoid::regclass::text AS p, count(*) AS n FROM observations GROUP BY 1 ORDER BY 1"
        )
        assert [r["p"] for r in per_month] == [
            "observations_18991201",
            "observations_20251101",
            "observations_20251201",
            "observations_20260101",
            "observations_20260201",
            "observations_20260301",
        ]
        assert sum(r["n"] for r in per_month) == len(old_rows)
        assert await conn.fetchval("SELECT to_regclass('observations_unpartitioned')") is None
        # The identity continues after the highest id ever handed out.
        new_id = await conn.fetchval(
            "INSERT INTO observations (phenomenon_time_start, phenomenon_time_end, result, datastream_id, "
            "feature_of_interest_id) VALUES (now(), now(), '1', 1, 1) RETURNING id"
        )
        assert new_id == last_id + 1
    finally:
        await conn.close()
