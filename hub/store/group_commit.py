# SPDX-License-Identifier: Apache-2.0
"""Group commit: concurrent single-Observation creates share one transaction.

One commit per row tops out near 3k rows/s on these machines, and every
commit also locks its Datastream's row to update the extents, so concurrent
POSTs to one Datastream would queue behind each other's fsync (LIMITS.md).
Requests hand their validated row to a GroupCommit; a couple of writer tasks
take whatever is queued, insert it with the set-based batch statement, commit
once, and wake each request with its id. Under no load a batch is one row
and nothing waits for a window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import asyncpg

from hub.errors import StaError
from hub.store.observations import ObservationRow, insert_observations

log = logging.getLogger("twinhub.store")


@dataclass
class _Pending:
    row: ObservationRow
    done: asyncio.Future[int]


class GroupCommit:
    """Batches concurrent Observation inserts into shared transactions."""

    def __init__(self, pool: asyncpg.Pool, max_batch: int = 500, writers: int = 2) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._writers = writers

    def start(self) -> None:
        """Start the writer tasks (owned here, cancelled by close)."""
        self._tasks = [
            asyncio.create_task(self._run(), name=f"group-commit-{i}") for i in range(self._writers)
        ]

    async def close(self) -> None:
        """Stop the writers after the queued rows are written."""
        await self._queue.join()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def insert(self, row: ObservationRow) -> int:
        """Insert one Observation; returns its id once its transaction has committed."""
        pending = _Pending(row, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(pending)
        return await pending.done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                ids = await insert_observations(conn, [p.row for p in batch])
        except (StaError, asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as error:
            if len(batch) == 1:
                _settle(batch[0], error=error)
                return
            # One bad row must not fail the others: write them one by one to find it.
            for pending in batch:
                await self._write([pending])
            return
        except Exception as error:
            log.exception("group commit of %d Observations failed", len(batch))
            for pending in batch:
                _settle(pending, error=error)
            return
        for pending, entity_id in zip(batch, ids, strict=True):
            _settle(pending, entity_id)


def _settle(pending: _Pending, entity_id: int | None = None, error: BaseException | None = None) -> None:
    if pending.done.done():  # the request was cancelled; its row may still have been written
        return
    if error is not None:
        pending.done.set_exception(error)
    else:
        assert entity_id is not None
        pending.done.set_result(entity_id)
