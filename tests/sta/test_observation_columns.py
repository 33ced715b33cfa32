# SPDX-License-Identifier: Apache-2.0
"""insert_observation_columns (CreateObservations) stores what insert_observations stores: the same
rows, Datastream extents, latest Observation and rollups, for the same Observations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from helpers import create, datastream, multi_datastream, populate

from hub.store.observation_columns import ObservationColumns, insert_observation_columns
from hub.store.observations import ObservationRow, insert_observations

T0 = datetime(2026, 3, 1, 22, 30, tzinfo=UTC)
RESET = """UPDATE {table} SET observation_count = 0, last_observation_id = NULL, last_phenomenon_time = NULL,
    last_result = NULL, phenomenon_time_start = NULL, phenomenon_time_end = NULL, result_time_start = NULL,
    result_time_end = NULL"""
RESULTS: list[Any] = [1.5, 2, None, "text", -7, 3.25, True, 2**63, 0, 4.5, 1e-3, {"a": 1}]


def _rows(datastream_id: int | None, multi_datastream_id: int | None) -> list[ObservationRow]:
    """Rows over three hours and two days, instants and intervals, late ones, every column filled."""
    rows = []
    for i, result in enumerate(RESULTS * 3):
        start = T0 + timedelta(minutes=17 * i) - timedelta(hours=5 * (i % 4 == 3))
        end = start + timedelta(minutes=5) if i % 3 == 0 else start
        rows.append(
            ObservationRow(
                phenomenon_time_start=start,
                phenomenon_time_end=end,
                result=[result, i] if multi_datastream_id else result,
                feature_of_interest_id=1,
                datastream_id=datastream_id,
                multi_datastream_id=multi_datastream_id,
                result_time=start + timedelta(seconds=i) if i % 2 else None,
                result_quality={"flag": i} if i % 5 == 0 else None,
                valid_time_start=start if i % 4 == 0 else None,
                valid_time_end=end + timedelta(hours=1) if i % 4 == 0 else None,
                parameters={"i": i} if i % 2 == 0 else None,
            )
        )
    return rows


def _columns(rows: list[ObservationRow], stream: int | None, multi: int | None) -> ObservationColumns:
    """The rows as columns: one id for all rows' stream and feature, no end for instants."""
    ends = [None if r.phenomenon_time_end == r.phenomenon_time_start else r.phenomenon_time_end for r in rows]
    return ObservationColumns(
        phenomenon_time_start=[r.phenomenon_time_start for r in rows],
        phenomenon_time_end=ends,
        result=[r.result for r in rows],
        feature_of_interest_id=1,
        datastream_id=stream,
        multi_datastream_id=[multi] * len(rows) if multi else None,  # a list works, too
        result_time=[r.result_time for r in rows],
        result_quality=[r.result_quality for r in rows],
        valid_time_start=[r.valid_time_start for r in rows],
        valid_time_end=[r.valid_time_end for r in rows],
        parameters=[r.parameters for r in rows],
    )


async def _stored(
    conn: asyncpg.Connection, column: str, stream: int, ids: list[int]
) -> list[tuple[Any, ...]]:
    """The stream's rows in input order, ids as positions in the batch."""
    records = await conn.fetch(
        f"SELECT * FROM observations WHERE {column} = $1 AND id = ANY($2::bigint[]) ORDER BY id", stream, ids
    )
    skip = {"id", "datastream_id", "multi_datastream_id"}
    return [tuple(v for k, v in r.items() if k not in skip) for r in records]


async def _extent(conn: asyncpg.Connection, table: str, stream: int, ids: list[int]) -> tuple[Any, ...]:
    record = await conn.fetchrow(f"SELECT * FROM {table} WHERE id = $1", stream)
    assert record is not None
    names = ("phenomenon_time_start", "phenomenon_time_end", "result_time_start", "result_time_end",
             "last_phenomenon_time", "last_result", "observation_count")  # fmt: skip
    return (*(record[n] for n in names), ids.index(record["last_observation_id"]))


async def _rollups(conn: asyncpg.Connection, stream: int, ids: list[int]) -> list[tuple[Any, ...]]:
    found = []
    for table in ("observation_rollups_hour", "observation_rollups_day"):
        records = await conn.fetch(f"SELECT * FROM {table} WHERE datastream_id = $1 ORDER BY bucket", stream)
        for r in records:
            values = {k: v for k, v in r.items() if k != "datastream_id"}
            for end in ("first_id", "last_id"):  # None: no numeric result in the bucket
                values[end] = None if r[end] is None else ids.index(r[end])
            found.append((table, *values.values()))
    return found


async def two_of_each(client: Any) -> None:
    """Datastreams and MultiDatastreams 1 and 2 (populate's, and a second of each)."""
    await populate(client)
    assert await create(client, "Datastreams", datastream("Second")) == 2
    assert await create(client, "MultiDatastreams", multi_datastream("Second")) == 2


async def no_observations(conn: asyncpg.Connection) -> None:
    """Delete every Observation and rollup (the streams' extents stay: RESET them)."""
    for table in ("observations", "observation_rollups_hour", "observation_rollups_day"):
        await conn.execute(f"DELETE FROM {table}")


async def test_columns_store_what_rows_store(client: Any, clean_db: str) -> None:
    await two_of_each(client)  # without Observations from here
    conn = await asyncpg.connect(clean_db)
    try:
        await no_observations(conn)
        for table, column, old, new in (("datastreams", "datastream_id", 1, 2),
                                        ("multi_datastreams", "multi_datastream_id", 1, 2)):  # fmt: skip
            await conn.execute(RESET.format(table=table))
            multi = column == "multi_datastream_id"
            streams = [(None, old), (None, new)] if multi else [(old, None), (new, None)]
            by_rows = await insert_observations(conn, _rows(*streams[0]))
            by_columns = await insert_observation_columns(conn, _columns(_rows(*streams[1]), *streams[1]))
            assert len(by_columns) == len(RESULTS) * 3
            assert by_columns == sorted(by_columns)  # input order
            assert await _stored(conn, column, old, by_rows) == await _stored(conn, column, new, by_columns)
            assert await _extent(conn, table, old, by_rows) == await _extent(conn, table, new, by_columns)
            if not multi:
                rollups = await _rollups(conn, new, by_columns)
                assert len(rollups) > 4
                assert await _rollups(conn, old, by_rows) == rollups
    finally:
        await conn.close()


async def test_a_create_caches_plans_only_within_its_transaction(client: Any, clean_db: str) -> None:
    """The insert lets PostgreSQL keep the plans of its rows' foreign-key checks (SET LOCAL); the
    connection goes back to planning every statement afresh, as the pool sets it for reads."""
    await populate(client)
    conn = await asyncpg.connect(clean_db, server_settings={"plan_cache_mode": "force_custom_plan"})
    try:
        rows = _rows(1, None)
        async with conn.transaction():
            ids = await insert_observation_columns(conn, _columns(rows, 1, None))
            during = await conn.fetchval("SELECT current_setting('plan_cache_mode')")
        after = await conn.fetchval("SELECT current_setting('plan_cache_mode')")
    finally:
        await conn.close()
    assert (during, after) == ("auto", "force_custom_plan")
    assert len(ids) == len(rows)
