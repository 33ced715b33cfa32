# SPDX-License-Identifier: Apache-2.0
"""Set-based bulk loading of Observations: one COPY per chunk, extents refreshed once at the end.

Rows reach the table with the COPY protocol, into the partitioned table (routing puts each row
into its time partition) or into a loading table that becomes a new partition; the Datastream
extents, latest Observation and counts are recomputed once for the touched streams by
refresh_extents, never per row or per chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from hub.errors import BadLinkError
from hub.store.observations import features_for_streams

COPY_COLUMNS = (
    "phenomenon_time_start",
    "phenomenon_time_end",
    "result_time",
    "result",
    "parameters",
    "datastream_id",
    "feature_of_interest_id",
)

# One COPY-ready record: the values of COPY_COLUMNS in that order.
CopyRecord = tuple[datetime, datetime, datetime | None, str, str | None, int, int]


async def stream_features(conn: asyncpg.Connection, stream_ids: Sequence[int]) -> dict[int, int | str]:
    """Per Datastream id: the FeatureOfInterest its Observations get, or why it cannot take any."""
    wanted = sorted(set(stream_ids))
    found: dict[int, int | str] = {}
    existing = {
        r["id"] for r in await conn.fetch("SELECT id FROM datastreams WHERE id = ANY($1::bigint[])", wanted)
    }
    for stream_id in wanted:
        if stream_id not in existing:
            found[stream_id] = f"Datastream {stream_id} does not exist"
    try:
        async with conn.transaction():
            found.update(await features_for_streams(conn, "datastreams", sorted(existing)))
        return found
    except BadLinkError:
        pass  # some Thing has no Location: find which, one by one
    for stream_id in sorted(existing):
        try:
            async with conn.transaction():
                found.update(await features_for_streams(conn, "datastreams", [stream_id]))
        except BadLinkError as error:
            found[stream_id] = str(error)
    return found


async def create_loading_table(conn: asyncpg.Connection, name: str, start: datetime, end: datetime) -> None:
    """A table shaped like observations but without indexes and foreign keys, ids from its sequence.

    Filled by COPY and attached as a partition afterwards (attach_loading_table), it takes rows
    several times faster than the partitioned table: indexes are built once and keys checked once.
    """
    await conn.execute(
        f'CREATE TABLE "{name}" '
        "(LIKE observations INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS)"
    )
    await conn.execute(
        f'ALTER TABLE "{name}" ALTER COLUMN id '
        "SET DEFAULT nextval(pg_get_serial_sequence('observations', 'id'))"
    )
    # A CHECK that implies the partition's bounds spares ATTACH a scan of the whole table.
    await conn.execute(
        f'ALTER TABLE "{name}" ADD CONSTRAINT loading_range '
        f"CHECK (phenomenon_time_start >= '{start.isoformat()}' "
        f"AND phenomenon_time_start < '{end.isoformat()}')"
    )


async def copy_into(conn: asyncpg.Connection, table: str, records: Sequence[CopyRecord]) -> None:
    """COPY a chunk of records into `table`."""
    await conn.copy_records_to_table(table, records=records, columns=COPY_COLUMNS)


async def attach_loading_table(conn: asyncpg.Connection, name: str, start: datetime, end: datetime) -> bool:
    """Make a loading table the partition for [start, end); if a partition appeared there meanwhile,
    move its rows through the partitioned table instead. Returns whether it was attached."""
    attached: bool = await conn.fetchval(
        "SELECT twinhub_attach_observation_table($1, $2, $3)", name, start, end
    )
    if attached:
        partition = await conn.fetchval("SELECT twinhub_observation_partition_name($1)", start)
        await conn.execute(f'ALTER TABLE "{partition}" DROP CONSTRAINT loading_range')
    else:
        columns = await conn.fetchval("SELECT twinhub_observation_columns()")
        await conn.execute(f'INSERT INTO observations ({columns}) SELECT {columns} FROM "{name}"')
        await conn.execute(f'DROP TABLE "{name}"')
    return attached
