# SPDX-License-Identifier: Apache-2.0
"""Hourly and daily rollups of Datastream Observations, kept in step with the raw rows set-based.

- Inserts merge a batch's per-bucket pieces into both tables inside the statement that inserts the
  batch (insert_ctes, used by hub/store/observations.py); late rows just merge.
- Updates and deletes recompute the touched (Datastream, hour) keys from the raw rows and their
  days from the hours (recompute), one statement per table for all keys; callers collect the keys
  before the rows change (hour_keys) and after.
- Retention of raw rows leaves rollups alone; expire() drops rollups past their own retention.
See docs/aggregates.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg

from hub.query.apply_pieces import PIECE_COLUMNS, REPLACE_SET, UPSERT_SET, merged, raw_merged

HOUR_TABLE = "observation_rollups_hour"
DAY_TABLE = "observation_rollups_day"
# (table, bucket width): the widths are UTC-aligned (date_bin from a UTC midnight).
ROLLUPS = ((HOUR_TABLE, "1 hour"), (DAY_TABLE, "1 day"))
ORIGIN = "'2000-01-01 00:00:00+00'::timestamptz"
_COLUMNS = ", ".join(("datastream_id", "bucket", *PIECE_COLUMNS))

Key = tuple[int, datetime]  # (Datastream id, UTC hour)


_HOUR = f"date_bin('1 hour', b.phenomenon_time_start, {ORIGIN})"


def insert_ctes(source: str) -> str:
    """CTEs merging the rows just inserted by CTE `source` into both rollups (one statement).

    `source` must return id, phenomenon_time_start, result_number and datastream_id. The batch is
    aggregated once into hour pieces; the day pieces merge those. Rows are upserted in key order,
    so concurrent batches lock rollup rows in one order (no deadlocks)."""
    return f""",
    rollup_batch AS (
        SELECT b.datastream_id, {_HOUR} AS bucket, {raw_merged("b")}
        FROM {source} b WHERE b.datastream_id IS NOT NULL GROUP BY 1, 2
    ),
    rollup_hour AS (
        INSERT INTO {HOUR_TABLE} AS r ({_COLUMNS}) SELECT * FROM rollup_batch ORDER BY 1, 2
        ON CONFLICT (datastream_id, bucket) DO UPDATE SET {UPSERT_SET}
    ),
    rollup_day AS (
        INSERT INTO {DAY_TABLE} AS r ({_COLUMNS})
        SELECT p.datastream_id, date_bin('1 day', p.bucket, {ORIGIN}), {merged("p")}
        FROM rollup_batch p GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (datastream_id, bucket) DO UPDATE SET {UPSERT_SET}
    )"""


async def hour_keys(conn: asyncpg.Connection, column: str, value: int) -> list[Key]:
    """(Datastream, UTC hour) keys of the Observations whose `column` (id, FeatureOfInterest) is `value`."""
    assert column in ("id", "feature_of_interest_id")
    sql = (
        f"SELECT DISTINCT datastream_id, date_bin('1 hour', phenomenon_time_start, {ORIGIN}) "
        f"FROM observations WHERE {column} = $1 AND datastream_id IS NOT NULL"
    )
    return [(r[0], r[1]) for r in await conn.fetch(sql, value)]


def hour_of(moment: datetime) -> datetime:
    """The UTC hour holding `moment`."""
    moment = moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def _replace_buckets(table: str, bucket: str) -> str:
    """The end of a recompute: the buckets `k` (key `bucket`) of `table` become the rows of `fresh`;
    a bucket with no row left in `fresh` is deleted."""
    return f"""gone AS (
    DELETE FROM {table} r USING k
    WHERE r.datastream_id = k.ds AND r.bucket = {bucket}
      AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.datastream_id = k.ds AND f.bucket = {bucket})
)
INSERT INTO {table} AS r ({_COLUMNS})
SELECT * FROM fresh ORDER BY 1, 2
ON CONFLICT (datastream_id, bucket) DO UPDATE SET {REPLACE_SET}"""


_RECOMPUTE_HOURS = f"""
WITH k AS (SELECT DISTINCT ds, h FROM unnest($1::bigint[], $2::timestamptz[]) AS u(ds, h)),
fresh AS (
    SELECT k.ds AS datastream_id, k.h AS bucket, p.*
    FROM k CROSS JOIN LATERAL (
        SELECT {raw_merged("o")} FROM observations o
        WHERE o.datastream_id = k.ds AND o.phenomenon_time_start >= k.h
          AND o.phenomenon_time_start < k.h + interval '1 hour'
    ) p
    WHERE p.n > 0
),
{_replace_buckets(HOUR_TABLE, "k.h")}"""

_RECOMPUTE_DAYS = f"""
WITH k AS (
    SELECT DISTINCT ds, date_bin('1 day', h, {ORIGIN}) AS d
    FROM unnest($1::bigint[], $2::timestamptz[]) AS u(ds, h)
),
fresh AS (
    SELECT k.ds AS datastream_id, k.d AS bucket, {merged("p")}
    FROM k JOIN {HOUR_TABLE} p
      ON p.datastream_id = k.ds AND p.bucket >= k.d AND p.bucket < k.d + interval '1 day'
    GROUP BY k.ds, k.d
),
{_replace_buckets(DAY_TABLE, "k.d")}"""


async def recompute(conn: asyncpg.Connection, keys: Iterable[Key]) -> None:
    """Recompute the given (Datastream, UTC hour) buckets from the raw rows, and their days."""
    unique = sorted({(ds, hour_of(h)) for ds, h in keys})
    if not unique:
        return
    streams, hours = [k[0] for k in unique], [k[1] for k in unique]
    # Hours first: the days are merged from the hours this statement leaves.
    await conn.execute(_RECOMPUTE_HOURS, streams, hours)
    await conn.execute(_RECOMPUTE_DAYS, streams, hours)


def keys_of(rows: Sequence[tuple[int | None, datetime]]) -> set[Key]:
    """(Datastream, UTC hour) keys of (Datastream id, phenomenonTime start) pairs, for bulk loads."""
    return {(ds, hour_of(start)) for ds, start in rows if ds is not None}


async def expire(conn: asyncpg.Connection, days: int | None, now: datetime) -> int:
    """Delete rollup rows whose bucket ended more than `days` ago (None: keep forever); returns how many."""
    if not days:
        return 0
    cutoff = now - timedelta(days=days)
    removed = 0
    for table, width in ROLLUPS:
        status = await conn.execute(f"DELETE FROM {table} WHERE bucket + interval '{width}' <= $1", cutoff)
        removed += int(status.split()[-1])
    return removed


# Entity type name -> the observation column whose value selects the Observations that change
# when that entity is updated (only an Observation itself) or deleted (also a FeatureOfInterest's).
_CHANGING = {"Observation": "id"}
_DELETING = {"Observation": "id", "FeatureOfInterest": "feature_of_interest_id"}


async def changing_keys(conn: asyncpg.Connection, entity_name: str, entity_id: int) -> list[Key]:
    """Keys of the Observations an update of this entity changes (before and again after it)."""
    column = _CHANGING.get(entity_name)
    return await hour_keys(conn, column, entity_id) if column else []


async def deleting_keys(conn: asyncpg.Connection, entity_name: str, entity_id: int) -> list[Key]:
    """Keys of the Observations a delete of this entity removes (before it runs)."""
    column = _DELETING.get(entity_name)
    return await hour_keys(conn, column, entity_id) if column else []
