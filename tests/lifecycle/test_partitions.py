# SPDX-License-Identifier: Apache-2.0
"""Observations are range-partitioned by phenomenon time; no insert fails for want of a partition."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from lifecycle_helpers import partition_of, utc

from hub.store.observations import ObservationRow, insert_observations
from hub.store.partitions import (
    DEFAULT_PARTITION,
    bucket,
    bucket_end,
    ensure_ahead,
    ensure_range,
    list_partitions,
    split_default,
)


def row(time: str, result: float = 1.0, stream: int = 1) -> ObservationRow:
    t = utc(time)
    return ObservationRow(t, t, result, feature_of_interest_id=1, datastream_id=stream)


async def test_observations_is_partitioned_with_a_default_partition(conn: asyncpg.Connection) -> None:
    assert await conn.fetchval("SELECT relkind FROM pg_class WHERE relname = 'observations'") == b"p"
    partitions = await list_partitions(conn)
    assert partitions[-1].name == DEFAULT_PARTITION
    assert partitions[-1].lower is None
    # The migration made the months around now: the current one and 3 ahead at least.
    now = datetime.now(UTC)
    current = bucket(now, "month")
    assert any(p.lower == current and p.upper == bucket_end(current, "month") for p in partitions)


async def test_rows_land_in_their_month_and_outliers_in_the_default(conn: asyncpg.Connection) -> None:
    await ensure_range(conn, utc("2024-02-01T00:00:00Z"), utc("2024-03-31T00:00:00Z"), "month")
    times = [
        "2024-02-29T23:59:59.999999Z",  # last instant of February
        "2024-03-01T00:00:00Z",  # first instant of March
        "2024-03-01T00:30:00+01:00",  # still February in UTC
        "1850-06-01T12:00:00Z",  # far past: no partition
        "2400-01-01T00:00:00Z",  # far future: no partition
    ]
    ids = await insert_observations(conn, [row(t) for t in times])
    where = [await partition_of(conn, i) for i in ids]
    assert where == [
        "observations_20240201",
        "observations_20240301",
        "observations_20240201",
        DEFAULT_PARTITION,
        DEFAULT_PARTITION,
    ]


async def test_split_default_moves_outliers_into_partitions_of_their_own(conn: asyncpg.Connection) -> None:
    ids = await insert_observations(
        conn, [row("1850-06-01T12:00:00Z", 7.5), row("2400-01-01T00:00:00Z", 8.5)]
    )
    created = await split_default(conn, "month")
    assert created == 2
    assert [await partition_of(conn, i) for i in ids] == ["observations_18500601", "observations_24000101"]
    assert await conn.fetchval(f"SELECT count(*) FROM {DEFAULT_PARTITION}") == 0
    # Same ids, same values (result_number is generated again in the new partition).
    rows = await conn.fetch("SELECT id, result_number FROM observations ORDER BY id")
    assert [(r["id"], r["result_number"]) for r in rows] == [(ids[0], 7.5), (ids[1], 8.5)]
    assert await split_default(conn, "month") == 0


async def test_ensure_is_idempotent_and_clips_to_gaps(conn: asyncpg.Connection) -> None:
    assert await ensure_range(conn, utc("2030-01-01T00:00:00Z"), utc("2030-03-15T00:00:00Z"), "month") == 3
    assert await ensure_range(conn, utc("2030-01-01T00:00:00Z"), utc("2030-03-15T00:00:00Z"), "month") == 0
    # Days inside existing months: nothing to do. A week straddling the end of March 2030
    # (Monday 2030-03-25 .. 2030-04-01) overlaps March, so only its April part is new, and so on.
    assert await ensure_range(conn, utc("2030-02-10T00:00:00Z"), utc("2030-02-12T00:00:00Z"), "day") == 0
    assert await ensure_range(conn, utc("2030-03-28T00:00:00Z"), utc("2030-04-02T00:00:00Z"), "week") == 1
    bounds = {(p.lower, p.upper) for p in await list_partitions(conn) if p.lower is not None}
    assert (utc("2030-04-01T00:00:00Z"), utc("2030-04-08T00:00:00Z")) in bounds
    assert (utc("2030-03-01T00:00:00Z"), utc("2030-04-01T00:00:00Z")) in bounds


async def test_creating_a_partition_moves_its_rows_out_of_the_default(conn: asyncpg.Connection) -> None:
    (first,) = await insert_observations(conn, [row("2035-05-05T05:05:05Z", 3.0)])
    assert await partition_of(conn, first) == DEFAULT_PARTITION
    assert await ensure_range(conn, utc("2035-05-01T00:00:00Z"), utc("2035-05-01T00:00:00Z"), "month") == 1
    assert await partition_of(conn, first) == "observations_20350501"
    (second,) = await insert_observations(conn, [row("2035-05-06T00:00:00Z", 4.0)])
    assert second == first + 1
    assert await partition_of(conn, second) == "observations_20350501"


async def test_replicas_creating_the_same_partitions_at_once_create_each_once(lifecycle_db: str) -> None:
    connections = [await asyncpg.connect(lifecycle_db) for _ in range(3)]
    try:
        start, end = utc("2040-01-01T00:00:00Z"), utc("2040-06-30T00:00:00Z")
        created = await asyncio.gather(*(ensure_range(c, start, end, "month") for c in connections))
        assert sum(created) == 6
        names = [
            p.name for p in await list_partitions(connections[0]) if p.name.startswith("observations_2040")
        ]
        assert len(names) == 6
    finally:
        for c in connections:
            await c.close()


async def test_ensure_ahead_covers_the_coming_periods(conn: asyncpg.Connection) -> None:
    await ensure_ahead(conn, "week", 4)
    now = datetime.now(UTC)
    partitions = await list_partitions(conn)
    for weeks in range(5):
        moment = now + timedelta(weeks=weeks)
        assert any(
            p.lower is not None and p.upper is not None and p.lower <= moment < p.upper for p in partitions
        )


async def test_lookup_by_id_alone_uses_an_index_in_every_partition(conn: asyncpg.Connection) -> None:
    await ensure_range(conn, utc("2024-01-01T00:00:00Z"), utc("2024-12-31T00:00:00Z"), "month")
    await conn.execute(
        "INSERT INTO observations (phenomenon_time_start, phenomenon_time_end, result, datastream_id, "
        "feature_of_interest_id) SELECT t, t, to_jsonb(n), 1, 1 FROM generate_series(1, 20000) AS n, "
        "LATERAL (SELECT timestamptz '2024-01-01' + n * interval '25 minutes') AS x(t)"
    )
    await conn.execute("ANALYZE observations")
    plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN SELECT * FROM observations WHERE id = 12345"))
    # The partitions holding rows probe their primary key index (id first); empty ones cost nothing.
    assert "Seq Scan on observations_2024" not in plan
    assert all(f"observations_2024{month:02d}01_pkey" in plan for month in range(1, 13))
    assert await conn.fetchval("SELECT result FROM observations WHERE id = 12345") == "12345"


@pytest.mark.parametrize(
    ("moment", "width", "start"),
    [
        ("2026-11-30T23:30:00-02:00", "month", "2026-12-01T00:00:00Z"),
        ("2026-11-30T12:00:00Z", "week", "2026-11-30T00:00:00Z"),
        ("2026-12-06T12:00:00Z", "week", "2026-11-30T00:00:00Z"),
        ("2026-06-15T12:00:00Z", "year", "2026-01-01T00:00:00Z"),
        ("2026-06-15T12:00:00Z", "day", "2026-06-15T00:00:00Z"),
    ],
)
def test_bucket_is_the_utc_period_start(moment: str, width: str, start: str) -> None:
    assert bucket(utc(moment), width) == utc(start)
    assert bucket_end(utc(start), width) > utc(start)
