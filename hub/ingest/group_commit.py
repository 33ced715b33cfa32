# SPDX-License-Identifier: Apache-2.0
"""Group commit: concurrent single-Observation creates share one transaction.

One commit per row tops out near 3k rows/s on these machines, and every
commit also locks its Datastream's row to update the extents, so concurrent
POSTs to one Datastream would queue behind each other's fsync (LIMITS.md).
Requests hand their validated Observation to a GroupCommit; its writer task
takes whatever is queued, writes the whole batch with one set-based statement
that commits once, and wakes each request with its id and row. Under no load a
batch is one Observation and nothing waits for a window; under load the queue
fills while a batch is written. One writer: a second one halved the batches,
and with them cost more CPU per Observation in the hub (~15 %) and in
PostgreSQL (~30 %) for no more throughput (16 concurrent POSTs).

A batch of Observations on Datastreams is one round trip in the common case:
one statement derives the missing FeatureOfInterest links from the Datastreams'
Things' Locations, checks the given links, and inserts all rows or none; it
commits on its own (one statement is atomic; no BEGIN/COMMIT). When it inserts
none (a link is missing, or a feature is yet to be made) or the database refuses
a row, the batch takes the checked way: the ingest pipeline's per-batch resolver
(one query per kind of link) finds the links, makes a feature not made yet, and
names what is missing per Observation; the insert follows. A batch the database
still refuses is written row by row, as for any refused row. MultiDatastream
Observations always take the checked way (their result arrays are checked
against the number of ObservedProperties).

While the change relay runs, the statement also sends the new ids to the other
hub processes (IdNotice; PostgreSQL delivers them when it commits), instead of
the relay's own statement later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from hub.errors import BadLinkError, BadRequestError, StaError
from hub.ingest.dispatch import INVALID, IngestError, PendingObservation
from hub.ingest.resolve import Links, observation_row
from hub.store.observations import (
    IdNotice,
    ObservationRow,
    StoredObservation,
    insert_deriving,
    insert_stored,
)

log = logging.getLogger("twinhub.store")

WRITERS = 1  # writer tasks, each with at most one connection at a time
MAX_GUESSES = 10_000  # Datastreams whose derived feature the writer remembers as a guess


@dataclass
class _Pending:
    observation: PendingObservation
    received_at: float
    done: asyncio.Future[StoredObservation]


class GroupCommit:
    """Batches concurrent Observation inserts into shared transactions."""

    def __init__(self, pool: asyncpg.Pool, max_batch: int = 500, writers: int = WRITERS) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._writers = writers
        # Set while the change relay runs: the insert statement also tells the other hub processes.
        self.notice: IdNotice | None = None
        # Datastream -> the feature its last Observation without one got: rows are built with it
        # (a dataclass replace costs more than the rest of a row), the insert says the truth.
        self._features: dict[int, int] = {}
        # Awaited before each batch: the change feed's room() (hub/app.py), backpressure from the
        # notifications to the writes.
        self.room: Callable[[], Awaitable[None]] | None = None

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

    async def insert(self, observation: PendingObservation, received_at: float) -> StoredObservation:
        """Insert one Observation; returns it as stored (id, row) once it has committed."""
        pending = _Pending(observation, received_at, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(pending)
        return await pending.done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if self.room is not None:  # while the change feed is far behind, requests wait here
                await self.room()
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            async with self._pool.acquire() as conn:
                if (done := await _at_once(conn, batch, self.notice, self._features)) is not None:
                    for pending, observation in zip(batch, done, strict=True):
                        _settle(pending, observation)
                    return
                links = await Links.load(conn, [p.observation for p in batch])
                accepted: list[tuple[_Pending, ObservationRow]] = []
                for pending in batch:
                    try:
                        accepted.append((pending, links.row(pending.observation, pending.received_at)))
                    except IngestError as error:
                        _settle(pending, error=_as_sta_error(error))
                stored = await insert_stored(conn, [row for _, row in accepted]) if accepted else []
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
        for (pending, _), observation in zip(accepted, stored, strict=True):
            _settle(pending, observation)


async def _at_once(
    conn: asyncpg.Connection, batch: list[_Pending], notice: IdNotice | None, features: dict[int, int]
) -> list[StoredObservation] | None:
    """The batch in one statement, links and notification and all; None when it needs the checked
    way (which leaves the notification to the change feed's relay). `features` are the guesses of
    the derived features, updated from what the insert answers."""
    rows, derive = [], []
    for pending in batch:
        p = pending.observation
        if p.datastream_id is None:
            return None
        given = p.feature_of_interest_id
        derive.append(given is None)
        feature = features.get(p.datastream_id, 0) if given is None else given
        rows.append(observation_row(p, pending.received_at, feature))
    try:
        stored = await insert_deriving(conn, rows, derive, notice)
    except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError):
        return None  # the checked way says which Observation, and why
    except asyncpg.ProgramLimitExceededError:
        return None  # the notification queue is full: the relay counts and logs its own failure
    if not stored:
        return None  # a link is missing
    if len(features) > MAX_GUESSES:
        features.clear()
    for observation, derived in zip(stored, derive, strict=True):
        if derived and observation.row.datastream_id is not None:
            features[observation.row.datastream_id] = observation.row.feature_of_interest_id
    return stored


def _as_sta_error(error: IngestError) -> StaError:
    """The HTTP family of an ingest rejection: an invalid value is a 400, a missing link too (STA-NOTES 3)."""
    return BadRequestError(error.reason) if error.cause == INVALID else BadLinkError(error.reason)


def _settle(
    pending: _Pending, created: StoredObservation | None = None, error: BaseException | None = None
) -> None:
    if pending.done.done():  # the request was cancelled; its row may still have been written
        return
    if error is not None:
        pending.done.set_exception(error)
    else:
        assert created is not None
        pending.done.set_result(created)
