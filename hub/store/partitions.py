# SPDX-License-Identifier: Apache-2.0
"""Time partitions of the Observations table (migration 0004, docs/storage.md).

Rows that no partition covers land in observations_default, so no insert path needs to know
about partitions. This module creates partitions ahead of time, and for ranges the default
partition holds rows of, moving those rows into the new partition.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

WIDTHS = ("day", "week", "month", "year")
DEFAULT_PARTITION = "observations_default"


@dataclass(frozen=True)
class Partition:
    """One partition; the default partition has no bounds."""

    name: str
    lower: datetime | None
    upper: datetime | None


async def list_partitions(conn: asyncpg.Connection) -> list[Partition]:
    """The partitions in time order, the default one last."""
    records = await conn.fetch("SELECT name, lower_bound, upper_bound FROM twinhub_observation_partitions()")
    return [Partition(r["name"], r["lower_bound"], r["upper_bound"]) for r in records]


async def ensure_range(conn: asyncpg.Connection, start: datetime, end: datetime, width: str) -> int:
    """Create the partitions of `width` touching [start, end] that do not exist; returns how many."""
    async with conn.transaction():
        created: int = await conn.fetchval(
            "SELECT twinhub_ensure_observation_partitions($1, $2, $3)", start, end, width
        )
    return created


def bucket(moment: datetime, width: str) -> datetime:
    """The start (UTC) of the `width` partition holding `moment`."""
    t = moment.astimezone(UTC)
    if width == "day":
        return t.replace(hour=0, minute=0, second=0, microsecond=0)
    if width == "week":  # ISO weeks start on Monday, as PostgreSQL's date_trunc('week')
        day = t.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - timedelta(days=day.weekday())
    if width == "month":
        return t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return t.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)


async def ensure_buckets(conn: asyncpg.Connection, starts: Iterable[datetime], width: str) -> int:
    """Create the partitions whose `width` periods start at `starts` (bucket() values)."""
    created = 0
    for start in sorted(set(starts)):
        # Beyond PostgreSQL's time range (DataError) the rows stay in the default partition.
        with contextlib.suppress(asyncpg.DataError):
            created += await ensure_range(conn, start, start, width)
    return created


async def ensure_ahead(conn: asyncpg.Connection, width: str, ahead: int) -> int:
    """Partitions from the current period through `ahead` periods after it."""
    # Calendar arithmetic in PostgreSQL, as the partitioning migration does (now() + '3 months'), so
    # that a hub's first run finds the partitions the migration made instead of adding another one.
    now, until = await conn.fetchrow("SELECT now(), now() + $1::int * ('1 ' || $2)::interval", ahead, width)
    return await ensure_range(conn, now, until, width)


async def split_default(conn: asyncpg.Connection, width: str) -> int:
    """Give the periods that rows in the default partition fall into partitions of their own."""
    records = await conn.fetch(
        "SELECT DISTINCT date_trunc($1, phenomenon_time_start AT TIME ZONE 'UTC') AS t "
        f"FROM {DEFAULT_PARTITION}",
        width,
    )
    return await ensure_buckets(conn, (r["t"].replace(tzinfo=UTC) for r in records), width)


def bucket_end(start: datetime, width: str) -> datetime:
    """The end of the `width` period starting at `start` (a bucket() value)."""
    if width == "day":
        return start + timedelta(days=1)
    if width == "week":
        return start + timedelta(days=7)
    if width == "month":
        return (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
    return start.replace(year=start.year + 1)


def overlaps(partitions: Iterable[Partition], start: datetime, end: datetime) -> bool:
    """Whether any time partition covers part of [start, end)."""
    return any(
        p.lower is not None and p.upper is not None and p.lower < end and p.upper > start for p in partitions
    )
