# SPDX-License-Identifier: Apache-2.0
"""Changes between hub processes through PostgreSQL LISTEN/NOTIFY: no extra service.

After a batch of its own commits, each process sends the ids (never rows) on one channel:
``SELECT pg_notify('twinhub_changes', '{"o": "<origin>", "c": [["Observation", "create", 815], ...]}')``.
Every process listens on its own connection and hands the ids of the others' commits to its feed,
which reads the rows in its own snapshot. PostgreSQL delivers a notification only after the
sending transaction commits and in commit order; a payload must stay under 8000 bytes, so a large
batch goes out in several notifications. Delivery is at most once: a listener that was
disconnected misses what was sent meanwhile and says so (``gap``). docs/changes.md has the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import orjson

from hub.store.observations import IdNotice
from hub.store.write import Change
from schemas.model import ENTITY_TYPES, EntityType

log = logging.getLogger("twinhub.changes.relay")

CHANNEL = "twinhub_changes"
LISTENER_NAME = "twinhub changes listener"  # its application_name, for pg_stat_activity
PAYLOAD_LIMIT = 7900  # bytes; PostgreSQL refuses a NOTIFY payload of 8000 bytes or more
RETRY_FIRST, RETRY_MAX = 0.5, 10.0  # seconds between attempts to listen again
ALIVE_CHECK = 30.0  # seconds between probes of the listening connection


def _head(origin: str) -> str:
    return f'{{"o":{orjson.dumps(origin).decode()},"c":['


def encode(changes: Sequence[Change], origin: str) -> list[str]:
    """The NOTIFY payloads of `changes`: ids only, each payload under PAYLOAD_LIMIT bytes."""
    head = _head(origin)
    payloads: list[str] = []
    entries: list[str] = []
    size = len(head) + 2
    for change in changes:
        entry = orjson.dumps([change.entity_type.name, change.operation, change.entity_id]).decode()
        if entries and size + len(entry) + 1 > PAYLOAD_LIMIT:
            payloads.append(head + ",".join(entries) + "]}")
            entries, size = [], len(head) + 2
        entries.append(entry)
        size += len(entry) + 1
    if entries:
        payloads.append(head + ",".join(entries) + "]}")
    return payloads


def decode(payload: str) -> tuple[str, list[Change]]:
    """(origin, changes) of one payload; ValueError naming what is wrong."""
    document: Any = orjson.loads(payload)
    if not isinstance(document, dict) or not isinstance(document.get("o"), str):
        raise ValueError("no origin 'o'")
    changes = []
    for entry in document.get("c", []):
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[2], int)):
            raise ValueError(f"entry {entry!r} is not [type, operation, id]")
        entity_type = ENTITY_TYPES.get(entry[0])
        if entity_type is None:
            raise ValueError(f"unknown entity type {entry[0]!r}")
        changes.append(Change(entity_type, entry[2], str(entry[1])))
    return document["o"], changes


class Relay:
    """Sends this process's changes on the channel and hears the other processes' ones."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        heard: Callable[[Sequence[Change]], None],
        gap: Callable[[], None],
        *,
        log_interval: float = 60.0,
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self._heard = heard
        self._gap = gap
        self.origin = uuid.uuid4().hex[:16]  # tells this process's own notifications apart
        self.listening = asyncio.Event()
        self.sent = 0  # notifications sent
        self.received = 0  # changes heard from other processes
        self.failed = 0  # notifications that could not be sent or understood
        self._log_interval = log_interval
        self._last_log = float("-inf")

    def id_notice(self, entity_type: EntityType, operation: str) -> IdNotice:
        """The NOTIFY an insert statement sends itself with the ids it makes (the payloads `encode`
        writes): one round trip fewer, and sent exactly when they commit. send() skips those."""
        before = orjson.dumps([entity_type.name, operation]).decode()[:-1] + ","
        longest = len(before) + len(str(-(2**63))) + len("],")
        head = _head(self.origin)
        return IdNotice(CHANNEL, head, before, "]", "]}", (PAYLOAD_LIMIT - len(head) - 2) // longest)

    async def send(self, changes: Sequence[Change]) -> None:
        """NOTIFY the ids of committed `changes`; failures are counted and logged, never raised.
        Changes whose insert sent their notification already (StoredObservation.notified) are left
        out."""
        if any(change.stored is not None and change.stored.notified for change in changes):
            changes = [c for c in changes if c.stored is None or not c.stored.notified]
        for payload in encode(changes, self.origin):
            try:
                await self._pool.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as error:
                # e.g. the notification queue is full (a listener stuck in a long transaction)
                self.failed += 1
                self._warn("could not notify other processes of %d change(s): %s", len(changes), error)
            else:
                self.sent += 1

    async def listen(self) -> None:
        """Listen until cancelled; after a lost connection listen again and report the gap."""
        delay = RETRY_FIRST
        while True:
            try:
                connection = await asyncpg.connect(
                    self._dsn, server_settings={"application_name": LISTENER_NAME}
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
                self._warn("cannot listen for other processes' changes: %s", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            try:
                closed = asyncio.Event()
                connection.add_termination_listener(lambda _connection, event=closed: event.set())
                await connection.add_listener(CHANNEL, self._on_notification)
                self.listening.set()
                delay = RETRY_FIRST
                while not connection.is_closed():
                    # A silent network loss shows only when we ask: a probe now and then.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(closed.wait(), ALIVE_CHECK)
                    if not closed.is_set():
                        await connection.execute("SELECT 1", timeout=ALIVE_CHECK)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                self._warn("listening for other processes' changes failed: %s", error)
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    await asyncio.shield(connection.close(timeout=2))
            self._gap()  # whatever was sent while nobody listened is lost

    def _on_notification(self, connection: object, pid: int, channel: str, payload: str) -> None:
        try:
            origin, changes = decode(payload)
        except ValueError as error:
            self.failed += 1
            self._warn("ignored a notification on %s: %s", CHANNEL, error)
            return
        if origin != self.origin and changes:
            self.received += len(changes)
            self._heard(changes)

    def _warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last_log >= self._log_interval:
            self._last_log = now
            log.warning(message, *args)
