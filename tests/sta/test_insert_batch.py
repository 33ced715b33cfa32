# SPDX-License-Identifier: Apache-2.0
"""insert_batch (MQTT ingest) stores what insert_stored stores: the same rows, Datastream and
MultiDatastream extents, latest Observations and rollups, and answers the same ids and latest flags."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import asyncpg
from test_observation_columns import RESET, _extent, _rollups, _rows, _stored, no_observations, two_of_each

from hub.store.observation_columns import insert_batch
from hub.store.observations import ObservationRow, insert_stored


def _plain(rows: list[ObservationRow]) -> list[ObservationRow]:
    """The common ingest rows: instants, no optional column, the result alone."""
    return [
        ObservationRow(
            r.phenomenon_time_start,
            r.phenomenon_time_start,
            r.result,
            r.feature_of_interest_id,
            r.datastream_id,
            r.multi_datastream_id,
        )
        for r in rows
    ]


def _moved(rows: list[ObservationRow], datastream_id: int, multi_datastream_id: int) -> list[ObservationRow]:
    """The same rows on the other pair of streams."""
    return [
        replace(
            r,
            datastream_id=datastream_id if r.datastream_id else None,
            multi_datastream_id=multi_datastream_id if r.multi_datastream_id else None,
        )
        for r in rows
    ]


async def test_a_batch_stores_what_rows_store(client: Any, clean_db: str) -> None:
    await two_of_each(client)  # without Observations from here
    conn = await asyncpg.connect(clean_db)
    try:
        for variant in ("every column", "plain"):
            await no_observations(conn)
            for table in ("datastreams", "multi_datastreams"):
                await conn.execute(RESET.format(table=table))
            # Both kinds of stream in one batch, interleaved, as a batch of messages brings them.
            mixed = [row for pair in zip(_rows(1, None), _rows(None, 1), strict=True) for row in pair]
            if variant == "plain":
                mixed = _plain(mixed)
            async with conn.transaction():
                by_rows = await insert_stored(conn, mixed)
            async with conn.transaction():
                by_batch = await insert_batch(conn, _moved(mixed, 2, 2))
            assert [s.latest for s in by_batch] == [s.latest for s in by_rows]
            assert sum(s.latest for s in by_batch) == 2  # one latest per stream
            ids = [s.id for s in by_batch]
            assert ids == sorted(ids)  # input order
            assert len(ids) == len(mixed)
            old = [s.id for s in by_rows]
            for table, column in (
                ("datastreams", "datastream_id"),
                ("multi_datastreams", "multi_datastream_id"),
            ):
                assert await _stored(conn, column, 1, old) == await _stored(conn, column, 2, ids)
                assert await _extent(conn, table, 1, old) == await _extent(conn, table, 2, ids)
            rollups = await _rollups(conn, 2, ids)
            assert len(rollups) > 4
            assert await _rollups(conn, 1, old) == rollups
        assert await insert_batch(conn, []) == []
    finally:
        await conn.close()
