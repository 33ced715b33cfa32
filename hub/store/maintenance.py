# SPDX-License-Identifier: Apache-2.0
"""Maintenance that runs outside requests: removing duplicate Observations after redelivery."""

from __future__ import annotations

import asyncpg

from hub.store.observations import STREAMS, refresh_extents

# Two Observations are duplicates when everything a client posted is equal: same stream, times,
# result, parameters and feature. The oldest (lowest id) stays. A QoS 1 redelivery after a crash
# between commit and PUBACK produces exactly such pairs (docs/mqtt.md).
_DEDUPE_SQL = """
WITH ranked AS (
    SELECT id, row_number() OVER (
        PARTITION BY datastream_id, multi_datastream_id, phenomenon_time_start, phenomenon_time_end,
                     result_time, result, valid_time_start, valid_time_end, parameters, feature_of_interest_id
        ORDER BY id) AS n
    FROM observations
    WHERE $1::bigint IS NULL OR datastream_id = $1
)
DELETE FROM observations o USING ranked r
WHERE o.id = r.id AND r.n > 1
RETURNING o.datastream_id, o.multi_datastream_id"""


async def remove_duplicate_observations(conn: asyncpg.Connection, datastream_id: int | None = None) -> int:
    """Delete duplicate Observations (of one Datastream, or all); returns how many went."""
    async with conn.transaction():
        removed = await conn.fetch(_DEDUPE_SQL, datastream_id)
        for table, column in STREAMS:
            touched = sorted({r[column] for r in removed if r[column] is not None})
            await refresh_extents(conn, table, touched)
    return len(removed)
