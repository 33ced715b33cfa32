# SPDX-License-Identifier: Apache-2.0
"""Retention: Observations older than their dataset's retention go, whole partitions at a time.

A dataset is the set of Datastreams whose `properties.<dataset_property>` (serviceName by
default, as Hamburg addresses datasets) has one value; each dataset may have its own retention,
the others get the global one. Partitions are by time only, shared by all datasets, so:
- a partition is dropped (DROP TABLE, no row-by-row delete) when its whole time range is past
  the retention of every Datastream that has rows in it;
- when a partition is past the retention of some Datastreams but still holds rows of others
  (a dataset kept longer), the expired Datastreams' rows in it are deleted instead;
- rows in the default partition are deleted by the same rule, row by row.
A Datastream's rows therefore live at least its retention and at most one partition width longer.
After each partition the touched Datastreams' extents, latest Observation and counts are
recomputed in the same transaction, so no latest value ever points at a dropped row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from hub.store import rollups
from hub.store.observations import refresh_extents
from hub.store.partitions import DEFAULT_PARTITION, Partition, list_partitions


@dataclass(frozen=True)
class RetentionPolicy:
    """Days to keep per dataset; None keeps forever. 0 in dataset_days also means forever."""

    default_days: int | None = None
    dataset_days: Mapping[str, int] = field(default_factory=dict)
    dataset_property: str = "serviceName"
    rollup_days: int | None = None  # rollups' own retention (docs/aggregates.md); None: forever

    def days_for(self, dataset: str | None) -> int | None:
        """The retention of a Datastream in `dataset` (None: keep forever)."""
        days = self.dataset_days.get(dataset, self.default_days) if dataset is not None else self.default_days
        return days or None

    @property
    def active(self) -> bool:
        """Whether anything can expire at all."""
        return bool(self.default_days) or any(self.dataset_days.values()) or bool(self.rollup_days)


@dataclass
class RetentionReport:
    """What a retention run removed."""

    dropped: list[str] = field(default_factory=list)
    deleted_rows: int = 0
    refreshed_streams: int = 0
    rollup_rows: int = 0


async def apply_retention(
    conn: asyncpg.Connection, policy: RetentionPolicy, now: datetime | None = None
) -> RetentionReport:
    """Drop or thin out expired partitions; see the module docstring for the rules."""
    report = RetentionReport()
    if not policy.active:
        return report
    now = now or await conn.fetchval("SELECT now()")
    assert now is not None
    cutoffs = await _cutoffs(conn, policy, now)  # (table, column) -> {stream id: cutoff}
    for partition in await list_partitions(conn):
        if partition.upper is None:
            await _thin_default(conn, cutoffs, report)
        else:
            await _expire_partition(conn, partition, cutoffs, report)
    report.rollup_rows = await rollups.expire(conn, policy.rollup_days, now)
    return report


async def _cutoffs(
    conn: asyncpg.Connection, policy: RetentionPolicy, now: datetime
) -> dict[tuple[str, str], dict[int, datetime | None]]:
    """Per stream kind: each stream's cutoff (rows before it are expired), None when kept forever."""
    result: dict[tuple[str, str], dict[int, datetime | None]] = {}
    for table, column in (("datastreams", "datastream_id"), ("multi_datastreams", "multi_datastream_id")):
        records = await conn.fetch(
            f"SELECT id, properties ->> $1 AS dataset FROM {table}", policy.dataset_property
        )
        streams: dict[int, datetime | None] = {}
        for r in records:
            days = policy.days_for(r["dataset"])
            streams[r["id"]] = None if days is None else now - timedelta(days=days)
        result[(table, column)] = streams
    return result


async def _expire_partition(
    conn: asyncpg.Connection,
    partition: Partition,
    cutoffs: Mapping[tuple[str, str], Mapping[int, datetime | None]],
    report: RetentionReport,
) -> None:
    assert partition.upper is not None
    expired = {
        key: [i for i, cut in streams.items() if cut is not None and partition.upper <= cut]
        for key, streams in cutoffs.items()
    }
    if not any(expired.values()):
        return
    kept = {
        key: [i for i, cut in streams.items() if cut is None or partition.upper > cut]
        for key, streams in cutoffs.items()
    }
    name = partition.name
    async with conn.transaction():
        holds_kept = False
        for (_, column), ids in kept.items():
            if ids and await conn.fetchval(
                f'SELECT EXISTS (SELECT 1 FROM "{name}" WHERE {column} = ANY($1::bigint[]))', ids
            ):
                holds_kept = True
        if holds_kept:
            for (_, column), ids in expired.items():
                if ids:
                    status = await conn.execute(
                        f'DELETE FROM "{name}" WHERE {column} = ANY($1::bigint[])', ids
                    )
                    report.deleted_rows += int(status.split()[-1])
        else:
            await conn.execute(f'DROP TABLE "{name}"')
            report.dropped.append(name)
        await _refresh_started_before(conn, expired, partition.upper, report)


async def _thin_default(
    conn: asyncpg.Connection,
    cutoffs: Mapping[tuple[str, str], Mapping[int, datetime | None]],
    report: RetentionReport,
) -> None:
    async with conn.transaction():
        touched: dict[tuple[str, str], list[int]] = {}
        for key, streams in cutoffs.items():
            table, column = key
            limited = [(i, cut) for i, cut in streams.items() if cut is not None]
            if not limited:
                continue
            records = await conn.fetch(
                f"""WITH gone AS (
                        DELETE FROM {DEFAULT_PARTITION} o
                        USING unnest($1::bigint[], $2::timestamptz[]) AS u(id, cutoff)
                        WHERE o.{column} = u.id AND o.phenomenon_time_start < u.cutoff
                        RETURNING o.{column} AS stream)
                    SELECT stream, count(*) AS n FROM gone GROUP BY stream""",
                [i for i, _ in limited],
                [cut for _, cut in limited],
            )
            report.deleted_rows += sum(r["n"] for r in records)
            touched[key] = [r["stream"] for r in records]
        for (table, _), ids in touched.items():
            await refresh_extents(conn, table, ids)
            report.refreshed_streams += len(ids)


async def _refresh_started_before(
    conn: asyncpg.Connection,
    expired: Mapping[tuple[str, str], list[int]],
    upper: datetime,
    report: RetentionReport,
) -> None:
    """Refresh the expired streams that had rows before `upper` (their extents start earlier)."""
    for (table, _), ids in expired.items():
        if not ids:
            continue
        touched = [
            r["id"]
            for r in await conn.fetch(
                f"SELECT id FROM {table} WHERE id = ANY($1::bigint[]) AND phenomenon_time_start < $2",
                ids,
                upper,
            )
        ]
        await refresh_extents(conn, table, touched)
        report.refreshed_streams += len(touched)
