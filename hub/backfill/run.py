# SPDX-License-Identifier: Apache-2.0
"""Runs an import: files -> validated chunks -> COPY, all in one transaction, extents refreshed once.

Nothing is imported when any row is bad, unless skip_bad is set: then bad rows are reported and
left out. Rows of a period (partition width) that no partition covers yet are COPYed into a
loading table without indexes or foreign keys, which becomes that period's partition at the end
(indexes built and keys checked once, set-based: the fast path of a backfill). Rows of periods
that have a partition go through the partitioned table; a partition missing for part of such a
period is created first, in the import's transaction (other hubs creating partitions meanwhile
wait for the import to finish).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

import asyncpg

from hub.backfill.formats import BadRow, FormatError, Row, detect_format, read_rows
from hub.backfill.progress import Progress
from hub.store import rollups
from hub.store.bulk import (
    CopyRecord,
    attach_loading_table,
    copy_into,
    create_loading_table,
    stream_features,
)
from hub.store.observations import refresh_extents
from hub.store.partitions import Partition, bucket, bucket_end, ensure_buckets, list_partitions, overlaps

CHUNK_ROWS = 50_000
# Without skip_bad the import fails anyway; stop reading after this many bad rows.
MAX_BAD_WITHOUT_SKIP = 100


@dataclass(frozen=True)
class FileBadRow:
    """A bad row and the file it is in."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class ImportResult:
    """What an import did: rows imported (0 when it failed), bad rows, Datastreams refreshed."""

    imported: int = 0
    bad: list[FileBadRow] = field(default_factory=list)
    streams: int = 0
    partitions_created: int = 0
    failed: bool = False


@dataclass
class _Run:
    conn: asyncpg.Connection
    width: str
    skip_bad: bool
    partitions: list[Partition]
    result: ImportResult = field(default_factory=ImportResult)
    features: dict[int, int | str] = field(default_factory=dict)
    ensured: set[datetime] = field(default_factory=set)  # periods with partitions already there
    loading: dict[datetime, str] = field(default_factory=dict)  # periods filled into loading tables
    touched: set[int] = field(default_factory=set)
    rollup_keys: set[rollups.Key] = field(default_factory=set)  # (Datastream, UTC hour) loaded

    async def flush(self, path: Path, chunk: list[Row]) -> None:
        """Check the chunk's Datastreams and COPY its good rows, period by period."""
        new = {row.datastream_id for row in chunk} - self.features.keys()
        if new:
            self.features.update(await stream_features(self.conn, sorted(new)))
        records: list[CopyRecord] = []
        for row in chunk:
            feature = self.features[row.datastream_id]
            if isinstance(feature, str):
                self.result.bad.append(FileBadRow(path, row.line, f"datastream: {feature}"))
                continue
            records.append(
                (row.start, row.end, row.result_time, row.result, row.parameters, row.datastream_id, feature)
            )
        if self.result.bad and not self.skip_bad:
            self.result.failed = True
        if self.result.failed or not records:
            return
        for period, rows in _by_period(records, self.width).items():
            await self._copy(period, rows)
        self.result.imported += len(records)
        self.touched.update(r[5] for r in records)
        self.rollup_keys.update(rollups.keys_of([(r[5], r[0]) for r in records]))

    async def _copy(self, period: datetime, records: Sequence[CopyRecord]) -> None:
        """A period no partition covers fills a loading table; others go through the partitioned table."""
        if period in self.loading:
            await copy_into(self.conn, self.loading[period], records)
            return
        if period not in self.ensured:
            if not _finite(period) or overlaps(self.partitions, period, bucket_end(period, self.width)):
                # On the import's own connection: a second one would wait for the locks this
                # transaction holds once it has written into the default partition.
                self.result.partitions_created += await ensure_buckets(self.conn, [period], self.width)
                self.ensured.add(period)
            else:
                name = f"observations_loading_{self.conn.get_server_pid()}_{len(self.loading)}"
                await create_loading_table(self.conn, name, period, bucket_end(period, self.width))
                self.loading[period] = name
                await copy_into(self.conn, name, records)
                return
        await copy_into(self.conn, "observations", records)

    async def attach(self) -> None:
        """Turn the loading tables into partitions (indexes built, keys checked, set-based)."""
        for period, name in sorted(self.loading.items()):
            if await attach_loading_table(self.conn, name, period, bucket_end(period, self.width)):
                self.result.partitions_created += 1


def _finite(period: datetime) -> bool:
    """Whether the period's bounds are ordinary times: the driver turns the first instant of year 1
    into -infinity, and the end of year 9999 has no datetime."""
    return 1 < period.year < 9999


def _by_period(records: list[CopyRecord], width: str) -> dict[datetime, list[CopyRecord]]:
    """Records grouped by the partition period they fall into (usually all in one)."""
    first, last = bucket(min(r[0] for r in records), width), bucket(max(r[0] for r in records), width)
    if first == last:
        return {first: records}
    groups: dict[datetime, list[CopyRecord]] = {}
    for record in records:
        groups.setdefault(bucket(record[0], width), []).append(record)
    return groups


async def import_files(
    dsn: str,
    paths: Sequence[Path],
    *,
    fmt: str | None = None,
    skip_bad: bool = False,
    width: str = "month",
    chunk_rows: int = CHUNK_ROWS,
    progress_out: TextIO | None = None,
) -> ImportResult:
    """Import Observations from files; see the module docstring for the rules."""
    formats = [detect_format(path, fmt) for path in paths]
    total = sum(path.stat().st_size for path in paths)
    progress = Progress("import", total, progress_out if progress_out is not None else sys.stderr)
    conn = await asyncpg.connect(dsn)
    run = _Run(conn, width, skip_bad, await list_partitions(conn))
    try:
        transaction = conn.transaction()
        await transaction.start()
        # The partitions' indexes are built at the end in one go: let the sorts stay in memory.
        await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        try:
            done_before = 0
            for path, path_format in zip(paths, formats, strict=True):
                await _import_file(run, path, path_format, chunk_rows, progress, done_before)
                done_before += path.stat().st_size
                if run.result.failed and len(run.result.bad) >= MAX_BAD_WITHOUT_SKIP:
                    break
            if run.result.failed:
                await transaction.rollback()
                run.result.imported = 0
                return run.result
            await run.attach()
            await refresh_extents(conn, "datastreams", sorted(run.touched))
            await rollups.recompute(conn, run.rollup_keys)
            run.result.streams = len(run.touched)
        except BaseException:
            await transaction.rollback()
            raise
        await transaction.commit()
        progress.finish()
        return run.result
    finally:
        await conn.close()


async def _import_file(
    run: _Run, path: Path, fmt: str, chunk_rows: int, progress: Progress, done_before: int
) -> None:
    """Read and check the next chunk in a thread while the previous one is being COPYed, so that
    PostgreSQL's work on one chunk overlaps Python's parsing of the next."""
    size = path.stat().st_size  # noqa: ASYNC240 (one stat per file)
    try:
        with path.open(encoding="utf-8", newline="") as stream:
            items = read_rows(stream, fmt)
            pending: asyncio.Task[None] | None = None
            try:
                while True:
                    chunk, bad, more = await asyncio.to_thread(_next_chunk, items, chunk_rows)
                    if pending is not None:
                        await pending
                        pending = None
                    run.result.bad.extend(FileBadRow(path, b.line, b.reason) for b in bad)
                    if bad and not run.skip_bad:
                        run.result.failed = True
                        if len(run.result.bad) >= MAX_BAD_WITHOUT_SKIP:
                            return
                    if chunk:
                        pending = asyncio.create_task(run.flush(path, chunk))
                    progress.update(run.result.imported, done_before + stream.buffer.tell())  # type: ignore[attr-defined]
                    if not more:
                        break
            finally:
                if pending is not None:
                    await pending
    except FormatError as error:
        raise FormatError(f"{path}: {error}") from None
    except UnicodeDecodeError as error:
        raise FormatError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    progress.update(run.result.imported, done_before + size)


def _next_chunk(items: Iterator[Row | BadRow], size: int) -> tuple[list[Row], list[BadRow], bool]:
    """Up to `size` good rows, the bad rows met on the way, and whether more may follow."""
    chunk: list[Row] = []
    bad: list[BadRow] = []
    for item in items:
        if isinstance(item, BadRow):
            bad.append(item)
            if len(bad) >= MAX_BAD_WITHOUT_SKIP:
                return chunk, bad, True
        else:
            chunk.append(item)
            if len(chunk) >= size:
                return chunk, bad, True
    return chunk, bad, False
