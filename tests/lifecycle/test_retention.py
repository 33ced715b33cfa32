# SPDX-License-Identifier: Apache-2.0
"""Retention drops whole expired partitions per dataset and leaves no stale latest values behind."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta

import asyncpg
from lifecycle_helpers import utc

from hub.store.observations import ObservationRow, insert_observations
from hub.store.partitions import DEFAULT_PARTITION, ensure_range, list_partitions
from hub.store.retention import RetentionPolicy, apply_retention

NOW = utc("2030-06-15T12:00:00Z")


def row(time: str, stream: int, result: float = 1.0) -> ObservationRow:
    t = utc(time)
    return ObservationRow(t, t, result, feature_of_interest_id=1, datastream_id=stream)


async def stream_state(conn: asyncpg.Connection, stream: int) -> tuple[object, ...]:
    record = await conn.fetchrow(
        "SELECT observation_count, phenomenon_time_start, last_observation_id, last_result::float8 "
        "FROM datastreams WHERE id = $1",
        stream,
    )
    assert record is not None
    return tuple(record)


async def names(conn: asyncpg.Connection) -> list[str]:
    return [p.name for p in await list_partitions(conn)]


def of_2030(dropped: list[str]) -> list[str]:
    """The test's partitions among those dropped (the migration's empty ones around today go too)."""
    return [name for name in dropped if name.startswith("observations_2030")]


async def test_expired_partitions_are_dropped_and_latest_values_refreshed(conn: asyncpg.Connection) -> None:
    await ensure_range(conn, utc("2030-01-01T00:00:00Z"), utc("2030-06-01T00:00:00Z"), "month")
    # Stream 1 has rows in January only (all expire); stream 2 in January and June.
    ids = await insert_observations(
        conn,
        [
            row("2030-01-10T00:00:00Z", 1, 1.0),
            row("2030-01-20T00:00:00Z", 1, 2.0),
            row("2030-01-15T00:00:00Z", 2, 3.0),
            row("2030-06-14T00:00:00Z", 2, 4.0),
        ],
    )
    assert (await stream_state(conn, 1))[2] == ids[1]
    report = await apply_retention(conn, RetentionPolicy(default_days=60), now=NOW)
    # Cut-off 2030-04-16: January to March are past it as a whole, April is not.
    assert of_2030(report.dropped) == [
        "observations_20300101",
        "observations_20300201",
        "observations_20300301",
    ]
    assert report.deleted_rows == 0
    assert "observations_20300401" in await names(conn)
    assert await conn.fetchval("SELECT array_agg(id ORDER BY id) FROM observations") == [ids[3]]
    # Stream 1 lost every row: nothing may still point at them.
    assert await stream_state(conn, 1) == (0, None, None, None)
    count, start, last_id, last_result = await stream_state(conn, 2)
    assert (count, start, last_id, last_result) == (1, utc("2030-06-14T00:00:00Z"), ids[3], 4.0)
    # Nothing more to do the second time.
    again = await apply_retention(conn, RetentionPolicy(default_days=60), now=NOW)
    assert again.dropped == []
    assert again.deleted_rows == 0


async def test_a_dataset_kept_longer_keeps_the_shared_partition(conn: asyncpg.Connection) -> None:
    await ensure_range(conn, utc("2030-01-01T00:00:00Z"), utc("2030-06-01T00:00:00Z"), "month")
    ids = await insert_observations(
        conn,
        [
            row("2030-01-10T00:00:00Z", 1, 1.0),  # dataset "short": expired
            row("2030-06-10T00:00:00Z", 1, 2.0),
            row("2030-01-12T00:00:00Z", 2, 3.0),  # dataset "long": kept forever
            row("2030-02-12T00:00:00Z", 1, 5.0),  # February holds only expired rows
        ],
    )
    policy = RetentionPolicy(default_days=30, dataset_days={"long": 0})
    report = await apply_retention(conn, policy, now=NOW)
    assert of_2030(report.dropped) == [
        "observations_20300201",
        "observations_20300301",
        "observations_20300401",
    ]
    assert report.deleted_rows == 1  # stream 1's row in the January partition that stream 2 keeps
    assert "observations_20300101" in await names(conn)
    assert await conn.fetchval("SELECT array_agg(id ORDER BY id) FROM observations") == [ids[1], ids[2]]
    assert await stream_state(conn, 1) == (1, utc("2030-06-10T00:00:00Z"), ids[1], 2.0)
    assert await stream_state(conn, 2) == (1, utc("2030-01-12T00:00:00Z"), ids[2], 3.0)


async def test_a_dataset_with_a_shorter_retention_than_the_default(conn: asyncpg.Connection) -> None:
    await ensure_range(conn, utc("2030-01-01T00:00:00Z"), utc("2030-06-01T00:00:00Z"), "month")
    ids = await insert_observations(conn, [row("2030-04-10T00:00:00Z", 1), row("2030-04-11T00:00:00Z", 2)])
    policy = RetentionPolicy(default_days=365, dataset_days={"short": 30})
    report = await apply_retention(conn, policy, now=NOW)
    # April holds a row of stream 2 (a year's retention): kept, stream 1's row deleted from it.
    # The empty months before it are past stream 1's retention and hold nothing of stream 2: dropped.
    assert of_2030(report.dropped) == [
        "observations_20300101",
        "observations_20300201",
        "observations_20300301",
    ]
    assert report.deleted_rows == 1
    assert await conn.fetchval("SELECT array_agg(id) FROM observations") == [ids[1]]


async def test_expired_rows_in_the_default_partition_are_deleted(conn: asyncpg.Connection) -> None:
    ids = await insert_observations(
        conn, [row("1901-01-01T00:00:00Z", 1, 1.0), row("2400-01-01T00:00:00Z", 1, 2.0)]
    )
    report = await apply_retention(conn, RetentionPolicy(default_days=10), now=NOW)
    assert report.deleted_rows == 1
    assert await conn.fetchval(f"SELECT array_agg(id) FROM {DEFAULT_PARTITION}") == [ids[1]]
    assert await stream_state(conn, 1) == (1, utc("2400-01-01T00:00:00Z"), ids[1], 2.0)


async def test_no_retention_configured_removes_nothing(conn: asyncpg.Connection) -> None:
    await insert_observations(conn, [row("1901-01-01T00:00:00Z", 1)])
    report = await apply_retention(conn, RetentionPolicy(), now=NOW)
    assert (report.dropped, report.deleted_rows) == ([], 0)
    assert await conn.fetchval("SELECT count(*) FROM observations") == 1


async def test_twinhub_maintain_applies_the_configured_retention(
    conn: asyncpg.Connection, lifecycle_db: str
) -> None:
    now = await conn.fetchval("SELECT now()")
    old = now - timedelta(days=400)
    await ensure_range(conn, old, old, "month")
    await ensure_range(conn, now, now, "month")
    await insert_observations(
        conn,
        [
            ObservationRow(old, old, 1.0, feature_of_interest_id=1, datastream_id=1),
            ObservationRow(now, now, 2.0, feature_of_interest_id=1, datastream_id=1),
            ObservationRow(old, old, 3.0, feature_of_interest_id=1, datastream_id=2),
            ObservationRow(now - timedelta(days=1), now, 4.0, feature_of_interest_id=1, datastream_id=2),
        ],
    )
    # The far-past row sits in the default partition until maintain gives it a partition.
    await insert_observations(conn, [row("1850-01-01T00:00:00Z", 2, 5.0)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINHUB_")}
    env |= {
        "TWINHUB_DATABASE_URL": lifecycle_db,
        "TWINHUB_RETENTION_DAYS": "100",
        "TWINHUB_MIGRATE_ON_START": "false",
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hub.cli", "maintain"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "observations_18500101" in done.stdout  # split out of the default partition, then dropped
    assert "refreshed" in done.stdout
    assert sorted(await conn.fetchval("SELECT array_agg(result_number) FROM observations")) == [2.0, 4.0]
    assert (await stream_state(conn, 1))[0] == 1
    assert (await stream_state(conn, 2))[0] == 1
