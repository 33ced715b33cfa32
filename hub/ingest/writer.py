# SPDX-License-Identifier: Apache-2.0
"""The ingest pipeline on the event loop: dispatch -> batch -> one transaction -> commit -> ack -> notify.

Messages arrive in lists from the MQTT client (`submit`). Each is dispatched at once: bad
ones are dead-lettered and acknowledged, good ones join the open batch. A batch closes when it
holds `batch_size` rows or `batch_ms` after its first row, whichever comes first; one owned task
writes it, and only after the commit are its messages acknowledged and its Changes announced.
While the database is away the same batch is retried with backoff; messages keep collecting
until the broker's in-flight window (receive maximum = buffer size) stops delivering more.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from hub.ingest.dispatch import HANDLER_FAILED, Dispatcher, Echo, IngestError, Message
from hub.ingest.provision import Provisioner
from hub.ingest.resolve import Item, Outcome, write_batch
from hub.store.write import Change
from schemas.model import OBSERVATION

log = logging.getLogger("hub.ingest")

# Errors that mean the database is away (or refusing connections for now): retry, never reject.
DB_DOWN = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)
RETRY_FIRST, RETRY_MAX = 0.1, 5.0
LOG_EVERY = 10.0  # seconds between log lines of one kind; the rest are counted
STALL_SECONDS = 30.0  # messages waiting and no batch finished for this long: ingest is stalled


@dataclass
class IngestStats:
    """Counters for /ready and /metrics; written by the event loop only."""

    received: int = 0  # messages handed over by the MQTT client
    committed: int = 0  # Observations committed
    acknowledged: int = 0  # messages acknowledged after their commit (or their rejection)
    batches: int = 0
    echoes: int = 0  # notifications seen on create topics and ignored
    dead_lettered: Counter[str] = field(default_factory=Counter)  # by cause
    # adapter messages by (adapter, outcome): "readings", "consumed", "no_readings", "invalid"
    adapters: Counter[tuple[str, str]] = field(default_factory=Counter)
    db_retries: int = 0
    last_progress: float = 0.0  # time.monotonic() of the last finished batch
    connected: Callable[[], bool] = lambda: False  # whether the broker connection is up
    buffer_depth: Callable[[], int] = lambda: 0  # received and not yet finished
    notifications_dropped: Callable[[], int] = lambda: 0  # best-effort notifications given up
    # Told (rows committed, seconds of the successful write) after each batch; /metrics listens here.
    on_batch: Callable[[int, float], None] = lambda rows, seconds: None

    def stalled(self, now: float) -> bool:
        """Messages are waiting and no batch finished for STALL_SECONDS (e.g. the database is down)."""
        idle = now - self.last_progress if self.last_progress else None
        return self.buffer_depth() > 0 and (idle is None or idle > STALL_SECONDS)

    def snapshot(self) -> dict[str, Any]:
        """The counters as a JSON-ready dict."""
        return {
            "received": self.received,
            "committed": self.committed,
            "acknowledged": self.acknowledged,
            "batches": self.batches,
            "echoes": self.echoes,
            "dead_lettered": dict(self.dead_lettered),
            "adapters": {f"{name}/{outcome}": n for (name, outcome), n in sorted(self.adapters.items())},
            "db_retries": self.db_retries,
            "connected": self.connected(),
            "buffer_depth": self.buffer_depth(),
        }


@dataclass(frozen=True)
class Outlets:
    """Where the writer's results go; the MQTT client and the app provide these."""

    done: Callable[[Message], None]  # acknowledge (if still possible) and release the buffer slot
    dead_letter: Callable[[Message, IngestError], None]
    committed: Callable[[Sequence[Change]], None]
    is_current: Callable[[Message], bool]  # False once the connection it came on is gone


class RateLimitedLog:
    """At most one line per key every LOG_EVERY seconds, telling how many were held back."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._held: Counter[str] = Counter()

    def warning(self, key: str, text: str, *args: object, fields: dict[str, object] | None = None) -> None:
        """Log `text % args` (with `fields` for JSON logs) unless a line with this key was logged recently."""
        now = time.monotonic()
        if now - self._last.get(key, -LOG_EVERY) < LOG_EVERY:
            self._held[key] += 1
            return
        held = self._held.pop(key, 0)
        self._last[key] = now
        log.warning(text + (f" (and {held} more like it)" if held else ""), *args, extra=fields)


class BatchWriter:
    """Batches dispatched messages and writes them with ack-after-commit; see the module docstring."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        dispatcher: Dispatcher,
        outlets: Outlets,
        stats: IngestStats,
        batch_size: int = 10000,
        batch_ms: int = 50,
        provisioner: Provisioner | None = None,
    ) -> None:
        self.pool, self.dispatcher, self.outlets, self.stats = pool, dispatcher, outlets, stats
        self.provisioner = provisioner
        self.batch_size = batch_size
        self.batch_age = batch_ms / 1000
        self._open: list[Item] = []
        self._rows = 0
        self._opened_at = 0.0
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._log = RateLimitedLog()
        # Awaited before each batch: the change feed's room() (hub/mqtt/service.py) holds the
        # writes back while notifications lag far behind; messages meanwhile wait unacknowledged.
        self.room: Callable[[], Awaitable[None]] | None = None

    def start(self) -> None:
        """Start the owned writer task."""
        self._task = asyncio.create_task(self._run(), name="twinhub-ingest-writer")

    async def stop(self, grace: float = 10.0) -> None:
        """Write what is open, then end; after `grace` seconds give up (unacked messages are redelivered)."""
        self._stopping = True
        self._wake.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        except TimeoutError:
            log.warning("ingest: stopping without writing %d open messages", len(self._open))
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    # ---- from the MQTT client, on the event loop --------------------------------------------

    def submit(self, messages: Sequence[Message]) -> None:
        """Dispatch received messages: rejects go to the dead-letter topic, the rest into the batch."""
        for message in messages:
            self.stats.received += 1
            if message.echo:  # a hub's notification (MQTT 5 user property): never parsed
                self.stats.echoes += 1
                self._done(message)
                continue
            try:
                pending = self.dispatcher.dispatch(message.topic, message.payload, _utc(message.received_at))
            except Echo:
                self.stats.echoes += 1
                self._done(message)
                continue
            except IngestError as error:
                self._reject(message, error)
                continue
            except Exception as error:  # a handler bug must not stop the pipeline
                log.exception("ingest: handler for %s failed", message.topic)
                self._reject(message, IngestError(HANDLER_FAILED, f"{type(error).__name__}: {error}"))
                continue
            if not pending:
                self._done(message)
                continue
            if not self._open:
                self._opened_at = time.monotonic()  # the age clock starts at a batch's first row
                self._wake.set()
            self._open.append((message, pending))
            self._rows += len(pending)
            if self._rows >= self.batch_size:
                self._wake.set()

    # ---- the writer task ----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._open:
                await self._until_closed()
                if self.room is not None and not self._stopping:
                    await self.room()
                batch = self._take()
                if batch:
                    await self._write(batch)
            if self._open:
                self._wake.set()  # the next batch started while this one was written
            elif self._stopping:
                return

    async def _until_closed(self) -> None:
        """Wait until the open batch is full or old enough (or the writer is stopping)."""
        while self._rows < self.batch_size and not self._stopping:
            remaining = self._opened_at + self.batch_age - time.monotonic()
            if remaining <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), remaining)

    def _take(self) -> list[Item]:
        """Cut up to batch_size rows off the open batch; drop messages of a lost connection."""
        rows = count = 0
        while count < len(self._open) and rows < self.batch_size:
            rows += len(self._open[count][1])
            count += 1
        batch, self._open = self._open[:count], self._open[count:]
        self._rows -= rows
        self._opened_at = time.monotonic() if self._open else 0.0
        return self._current(batch)

    def _current(self, batch: list[Item]) -> list[Item]:
        """Messages whose connection is gone will be redelivered: release them without writing."""
        kept = [item for item in batch if self.outlets.is_current(item[0])]
        if len(kept) != len(batch):
            for message, _ in batch:
                if not self.outlets.is_current(message):
                    self.outlets.done(message)
        return kept

    async def _write(self, batch: list[Item]) -> None:
        """Write a batch, retrying while the database is away; then ack, dead-letter and notify."""
        delay = RETRY_FIRST
        while batch:
            started = time.monotonic()
            try:
                async with self.pool.acquire() as conn:
                    outcome = await write_batch(conn, batch, self.provisioner)
            except DB_DOWN as error:
                self.stats.db_retries += 1
                self._log.warning("db", "ingest: database unavailable (%s); retrying", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                batch = self._current(batch)
                continue
            except Exception:  # not the rows (those are isolated) and not the database: keep the data
                log.exception("ingest: writing a batch failed; retrying")
                await asyncio.sleep(RETRY_MAX)
                batch = self._current(batch)
                continue
            self._finish(outcome, started)
            return

    def _finish(self, outcome: Outcome, started: float) -> None:
        self.stats.last_progress = time.monotonic()
        changes: list[Change] = []
        for message, stored in outcome.stored:
            # With their rows: the change feed announces them without reading them back.
            changes.extend(Change(OBSERVATION, obs.id, "create", obs) for obs in stored)
            self._done(message)
        self.stats.committed += len(changes)
        self.stats.batches += 1
        self.stats.on_batch(len(changes), self.stats.last_progress - started)
        changes[:0] = outcome.created  # entities deep-inserted over MQTT, before their Observations
        for message, error in outcome.rejected:
            self._reject(message, error)
        try:
            self.outlets.committed(changes)
        except Exception:  # a listener's bug must not stop ingest
            log.exception("ingest: a change listener failed")

    def _done(self, message: Message) -> None:
        self.stats.acknowledged += 1
        self.outlets.done(message)

    def _reject(self, message: Message, error: IngestError) -> None:
        self.stats.dead_lettered[error.cause] += 1
        self._log.warning(
            error.cause,
            "ingest: rejected a message on %s: %s",
            message.topic,
            error,
            fields={"topic": message.topic, "cause": error.cause},
        )
        try:
            self.outlets.dead_letter(message, error)
        except Exception:
            log.exception("ingest: publishing a dead letter failed")
        self._done(message)


@functools.lru_cache(maxsize=1)  # the messages of one socket read share their receive time
def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
