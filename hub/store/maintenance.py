# SPDX-License-Identifier: Apache-2.0
"""Maintenance that runs outside requests: removing duplicate Observations after redelivery,
and the data lifecycle (partitions ahead of time, retention)."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from hub.store import rollups
from hub.store.observations import STREAMS, refresh_extents
from hub.store.partitions import ensure_ahead, split_default
from hub.store.retention import RetentionPolicy, RetentionReport, apply_retention

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
RETURNING o.datastream_id, o.multi_datastream_id, o.phenomenon_time_start"""


async def remove_duplicate_observations(conn: asyncpg.Connection, datastream_id: int | None = None) -> int:
    """Delete duplicate Observations (of one Datastream, or all); returns how many went."""
    async with conn.transaction():
        removed = await conn.fetch(_DEDUPE_SQL, datastream_id)
        for table, column in STREAMS:
            touched = sorted({r[column] for r in removed if r[column] is not None})
            await refresh_extents(conn, table, touched)
        await rollups.recompute(conn, rollups.keys_of([(r[0], r[2]) for r in removed]))
    return len(removed)


# "twinhub:maintain": one hub at a time runs the lifecycle maintenance of a database.
MAINTAIN_LOCK_KEY = int.from_bytes(b"th:maint", "big")


@dataclass
class MaintenanceReport:
    """What one maintenance run did; skipped when another hub was running it."""

    created: int = 0
    retention: RetentionReport = field(default_factory=RetentionReport)
    skipped: bool = False

    def __str__(self) -> str:
        if self.skipped:
            return "maintenance skipped: another hub is running it"
        return (
            f"created {self.created} partition(s), dropped {len(self.retention.dropped)} "
            f"({', '.join(self.retention.dropped) or 'none'}), deleted {self.retention.deleted_rows} "
            f"expired Observation(s), refreshed {self.retention.refreshed_streams} stream(s)"
        )


async def run_maintenance(
    conn: asyncpg.Connection, width: str, ahead: int, policy: RetentionPolicy, split: bool = False
) -> MaintenanceReport:
    """Create the coming partitions, apply retention and, with `split`, give the periods of rows in
    the default partition partitions of their own.

    Splitting moves rows between partitions, and a query planned just before such a move can miss
    the moved rows (its plan lists the partitions of before, its snapshot the rows of after), so
    only the explicit `twinhub maintain` splits; the periodic run in serve creates partitions
    ahead of time, when there is nothing to move."""
    report = MaintenanceReport()
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", MAINTAIN_LOCK_KEY):
        report.skipped = True
        return report
    try:
        report.created = await ensure_ahead(conn, width, ahead)
        if split:
            report.created += await split_default(conn, width)
        report.retention = await apply_retention(conn, policy)
    finally:
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", MAINTAIN_LOCK_KEY)
    return report
