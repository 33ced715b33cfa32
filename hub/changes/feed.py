# SPDX-License-Identifier: Apache-2.0
"""The change feed: committed changes -> one snapshot load -> Notices -> every sink.

Writers (HTTP handlers, the MQTT ingest) call ``on_commit`` after each commit; it only enqueues.
``run`` drains the queue in batches, sends the ids to the other processes (hub/changes/relay.py),
loads the changed rows once, in one repeatable-read snapshot, and hands the Notices to each active
sink: MQTT notifications (this process's commits only: every process publishes its own) and the
viewer's ``/live`` (every process's commits, the others' heard over the relay).

Best-effort: the data is safe in the store. When the queue is full the oldest change is dropped,
counted, and the sinks are told of the gap (``/live`` clients then reload).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import asyncpg

from hub.changes.load import ANNOUNCED, load_notices
from hub.changes.notice import Notice
from hub.changes.relay import Relay
from hub.store.write import Change

log = logging.getLogger("twinhub.changes")

# A 10k-row CreateObservations filled a 10k queue alone (bench/deployed.py).
MAX_QUEUE = 100_000  # changes waiting to be loaded
MAX_BATCH = 500  # changes loaded in one snapshot
# Backpressure: past ROOM_HIGH changes waiting, writers that ask (room()) wait until ROOM_LOW are
# left, at most ROOM_WAIT seconds. Without it a 10,000-row CreateObservations every 0.2 s, or an
# ingest flat out, outran what the broker takes (~3 µs a packet, 12 per Observation): the queues
# overflowed and 130,000 notifications of 40,000 Observations were dropped (make bench --quick).
ROOM_HIGH = 20_000
ROOM_LOW = 5_000
ROOM_WAIT = 10.0
LISTEN_WAIT = 5.0  # seconds start-up waits for the relay to listen


class Sink(Protocol):
    """Where Notices go: MQTT notifications, /live, later webhooks."""

    # True: also the commits of other processes (heard over the relay); False: this process's only.
    every_process: bool

    def active(self) -> bool:
        """Whether anyone listens now (no load for a sink that would throw the Notices away)."""
        ...

    def deliver(self, notices: Sequence[Notice]) -> None:
        """Take the Notices of one batch; must not block."""
        ...

    def gap(self) -> None:
        """Notices were lost (queue overflow, a failed load, the relay away)."""
        ...

    async def drained(self) -> None:
        """Return when the sink can take more: at once, or (bounded) once its own backlog is low."""
        ...


Entry = tuple[Change, bool]  # (change, committed by this process)


class ChangeFeed:
    """One bounded queue of committed changes, drained by one task into every sink."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_queue: int = MAX_QUEUE,
        max_batch: int = MAX_BATCH,
        log_interval: float = 60.0,
    ) -> None:
        self._pool = pool
        self.sinks: list[Sink] = []
        self.relay: Relay | None = None
        # A deque and two events, not an asyncio.Queue: a 10,000-row CreateObservations puts
        # 10,000 changes at once, and the Queue's put/get/task_done per change cost more than
        # ~1 µs each. _unfinished counts the changes queued or being processed (flush waits on it).
        self._queue: deque[Entry] = deque()
        self._max_queue = max_queue
        self._max_batch = max_batch
        self._ready = asyncio.Event()  # set when the queue has changes
        self._idle = asyncio.Event()  # set when nothing is queued or being processed
        self._idle.set()
        self._roomy = asyncio.Event()  # set while writers need not wait (room())
        self._roomy.set()
        self._unfinished = 0
        self._log_interval = log_interval
        self._last_log = float("-inf")
        self._unreported = 0
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0  # changes dropped because the queue was full
        self.failed = 0  # changes of batches that failed to load

    # ---- producer side (the event loop of the writers) -----------------------------------------

    def on_commit(self, changes: Sequence[Change]) -> None:
        """Enqueue this process's committed changes; never blocks. Deletes are not announced."""
        if self.relay is not None or any(sink.active() for sink in self.sinks):
            self._put([(change, True) for change in changes if change.operation in ANNOUNCED])

    def on_remote(self, changes: Sequence[Change]) -> None:
        """Enqueue changes another process committed, when a sink of every process listens."""
        if any(sink.every_process and sink.active() for sink in self.sinks):
            self._put([(change, False) for change in changes if change.operation in ANNOUNCED])

    def gap(self) -> None:
        """Changes of other processes were lost (the relay was away): tell those sinks."""
        for sink in self.sinks:
            if sink.every_process:
                sink.gap()

    async def room(self) -> None:
        """Writers call this before a write (not inside an open transaction): while more than
        ROOM_HIGH changes wait to be announced, wait until ROOM_LOW are left, at most ROOM_WAIT
        seconds. Writes slow down to what the sinks can announce, instead of outrunning them until
        the queues drop notifications; a stuck sink delays a write by ROOM_WAIT at most."""
        if len(self._queue) <= ROOM_HIGH or self._task is None or self._task.done():
            return
        self._roomy.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._roomy.wait(), ROOM_WAIT)

    def _put(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        queue = self._queue
        queue.extend(entries)
        self._unfinished += len(entries)
        self._ready.set()
        self._idle.clear()
        lost = len(queue) - self._max_queue
        if lost > 0:  # the oldest go, as if each had made room for a newer one
            for _ in range(lost):
                queue.popleft()
            self._unfinished -= lost
            self.dropped += lost
            self._unreported += lost
            for sink in self.sinks:
                sink.gap()
            self._report_drops()

    def _report_drops(self) -> None:
        """Log dropped changes at most once per interval."""
        now = time.monotonic()
        if self._unreported and now - self._last_log >= self._log_interval:
            log.warning(
                "change feed queue full: dropped %d oldest change(s) (%d in total); "
                "the data is stored, only their notifications are lost",
                self._unreported,
                self.dropped,
            )
            self._unreported = 0
            self._last_log = now

    # ---- consumer side -------------------------------------------------------------------------

    def start(self) -> None:
        """Start draining the queue (close() stops it)."""
        self._task = asyncio.create_task(self.run(), name="change-feed")

    async def run(self) -> None:
        """Drain the queue in batches until cancelled."""
        queue = self._queue
        while True:
            while not queue:
                self._ready.clear()
                await self._ready.wait()
            batch = [queue.popleft() for _ in range(min(len(queue), self._max_batch))]
            try:
                await self.process(batch)
            except Exception:  # best-effort: a failed batch must not stop later notifications
                self.failed += len(batch)
                log.exception("announcing %d committed change(s) failed", len(batch))
                for sink in self.sinks:
                    sink.gap()
            finally:
                self._unfinished -= len(batch)
                if not self._unfinished:
                    self._idle.set()
                if len(queue) <= ROOM_LOW:
                    self._roomy.set()

    async def process(self, batch: Sequence[Entry]) -> None:
        """Relay, load (one snapshot) and deliver one batch."""
        local = [change for change, here in batch if here]
        remote = [change for change, here in batch if not here]
        if local and self.relay is not None:
            await self.relay.send(local)  # first, so the other processes load meanwhile
        listening = [sink for sink in self.sinks if sink.active()]
        everywhere = [sink for sink in listening if sink.every_process]
        groups = (local if listening else [], remote if everywhere else [])
        if not any(groups):
            return
        mine, theirs = await load_notices(self._pool, groups)
        for sink in listening:
            if mine:
                sink.deliver(mine)
            if theirs and sink.every_process:
                sink.deliver(theirs)
        for sink in listening:  # the next batch when each can take it: the backlog stays here
            await sink.drained()

    async def flush(self, seconds: float = 5.0) -> None:
        """Wait until what is queued now has been delivered (at most `seconds`)."""
        if self._task is None or self._task.done():
            return
        try:
            await asyncio.wait_for(self._idle.wait(), seconds)
        except TimeoutError:
            log.warning("change feed: %d change(s) still unannounced", self._unfinished)

    async def close(self, drain_seconds: float = 5.0) -> None:
        """Deliver what is queued (waiting at most `drain_seconds`), then stop."""
        await self.flush(drain_seconds)
        task, self._task = self._task, None
        self._roomy.set()  # no writer waits for a feed that stops
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def running_feed(pool: asyncpg.Pool, dsn: str | None) -> AsyncIterator[ChangeFeed]:
    """A started feed for the block's lifetime; with a `dsn`, relayed to and from other processes."""
    feed = ChangeFeed(pool)
    listener: asyncio.Task[None] | None = None
    if dsn is not None:
        feed.relay = Relay(pool, dsn, feed.on_remote, feed.gap)
        listener = asyncio.create_task(feed.relay.listen(), name="change-relay")
        # Start serving once listening, so a stream opened now hears the other processes (a
        # database that does not answer is the pool's problem: go on, the relay keeps trying).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(feed.relay.listening.wait(), LISTEN_WAIT)
    feed.start()
    try:
        yield feed
    finally:
        try:
            await feed.close()
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
