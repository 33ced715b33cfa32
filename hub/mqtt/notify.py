# SPDX-License-Identifier: Apache-2.0
"""Publish committed changes to MQTT subscribers (OGC 18-088 §14.1 "receive updates via MQTT").

The HTTP handlers (and the ingest) call ``on_commit`` after each commit; it only enqueues.
``run`` drains the queue in batches, loads the changed rows set-based (one statement per
entity type and per kind of related id, never one per row), renders them exactly as HTTP GET
does and hands (topic, payload, qos, retain) to the broker client's ``publish``.

Notifications are best-effort: the data is safe in the store, so when the queue is full the
oldest change is dropped and counted. Topics: see hub/mqtt/topics_out.py and
docs/mqtt-subscriptions.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import asyncpg
import orjson

from hub.config import Settings
from hub.http.render import property_value, render_entity
from hub.mqtt.topics_out import (
    CREATE,
    LINK,
    UPDATE,
    group_related,
    property_topics,
    related_queries,
    topics_for,
    version_of,
)
from hub.query.compile import select_list
from hub.store.write import Change
from schemas.model import HISTORICAL_LOCATION, LOCATION, EntityType

log = logging.getLogger("twinhub.mqtt.notify")

Publish = Callable[[str, bytes, int, bool], None]  # (topic, payload, qos, retain)
Row = dict[str, Any]

V11 = "v1.1"
V10 = "v1.0"

# A new HistoricalLocation means its Thing's Locations changed (§8.2.3): publish them on the
# Thing's Locations collections even though the Location entities themselves did not change.
_MOVED_LOCATIONS_SQL = """
SELECT DISTINCT tl.location_id FROM historical_locations h
JOIN thing_locations tl ON tl.thing_id = h.thing_id WHERE h.id = ANY($1::bigint[])"""


def base_url_of(settings: Settings) -> str:
    """The absolute base of payload links: settings.base_url, else http://{http_host}:{http_port}."""
    if settings.base_url:
        return settings.base_url.rstrip("/")
    host = settings.http_host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"http://{host}:{settings.http_port}"


def version_prefixes(publish_v10: bool = False) -> tuple[str, ...]:
    """Topic trees to publish on: v1.1 always, v1.0 too when asked (default off)."""
    return (V11, V10) if publish_v10 else (V11,)


class Notifier:
    """Turns committed Changes into MQTT publications; one background task drains a bounded queue."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        publish: Publish,
        base_url: str,
        qos: int = 1,
        version_prefixes: tuple[str, ...] = (V11,),
        *,
        max_queue: int = 100_000,  # a 10k-row CreateObservations filled 10k alone (bench/deployed.py)
        max_batch: int = 500,
        log_interval: float = 60.0,
    ) -> None:
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, got {qos!r}")
        self._pool = pool
        self._publish = publish
        self._base_url = base_url.rstrip("/")
        self._qos = qos
        self._prefixes = tuple(p.strip("/") for p in version_prefixes)
        self._queue: asyncio.Queue[Change] = asyncio.Queue(max_queue)
        self._max_batch = max_batch
        self._log_interval = log_interval
        self._last_log = float("-inf")
        self._unreported = 0
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0  # changes dropped because the queue was full
        self.published = 0  # messages handed to publish
        self.failed = 0  # messages publish refused, plus changes of batches that failed to load

    # ---- producer side (the event loop of the HTTP handlers) -----------------------------------

    def on_commit(self, changes: Sequence[Change]) -> None:
        """Enqueue committed changes; never blocks. Deletes are not published (STA 1.1 has none)."""
        for change in changes:
            if change.operation not in (CREATE, UPDATE):
                continue
            if self._queue.full():
                self._queue.get_nowait()
                self._queue.task_done()
                self.dropped += 1
                self._unreported += 1
            self._queue.put_nowait(change)
        self._report_drops()

    def _report_drops(self) -> None:
        """Log dropped notifications at most once per interval."""
        now = time.monotonic()
        if self._unreported and now - self._last_log >= self._log_interval:
            log.warning(
                "MQTT notification queue full: dropped %d oldest change(s) (%d in total); "
                "the data is stored, only the notifications are lost",
                self._unreported,
                self.dropped,
            )
            self._unreported = 0
            self._last_log = now

    # ---- consumer side -------------------------------------------------------------------------

    async def run(self) -> None:
        """Drain the queue in batches until cancelled (close() does that once the queue is empty)."""
        self._task = asyncio.current_task()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self.process(batch)
            except Exception:  # best-effort: a failed batch must not stop later notifications
                self.failed += len(batch)
                log.exception("MQTT notification of %d change(s) failed", len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()
            self._report_drops()

    async def close(self, drain_seconds: float = 5.0) -> None:
        """Publish what is queued (waiting at most `drain_seconds`), then stop run()."""
        task = self._task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(self._queue.join(), drain_seconds)
        except TimeoutError:
            log.warning("MQTT notifier closed with %d change(s) unpublished", self._queue.qsize())
        task.cancel()
        await asyncio.wait([task])
        self._task = None

    async def process(self, batch: Sequence[Change]) -> None:
        """Load, render and publish one batch of changes."""
        wanted: dict[tuple[EntityType, int], set[str]] = {}
        for change in batch:
            wanted.setdefault((change.entity_type, change.entity_id), set()).add(change.operation)
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            await _add_moved_locations(conn, wanted)
            rows = await _load_all(conn, wanted)
        for (entity_type, entity_id), operations in wanted.items():
            row = rows.get(entity_type.name, {}).get(entity_id)
            if row is not None:  # None: deleted since
                self._publish_entity(entity_type, row, operations)

    def _publish_entity(self, entity_type: EntityType, row: Row, operations: set[str]) -> None:
        for prefix in self._prefixes:
            base = f"{self._base_url}/{version_of(prefix)}"
            payload = orjson.dumps(render_entity(entity_type, row, base))
            props = property_topics(entity_type, row, prefix) if UPDATE in operations else {}
            ordered = sorted(operations, key=(CREATE, UPDATE, LINK).index)
            topics = dict.fromkeys(t for op in ordered for t in topics_for(entity_type, row, op, prefix))
            for topic, retain in topics:
                prop = props.get(topic)
                if prop is None:
                    self._send(topic, payload, retain)
                else:
                    self._send(topic, orjson.dumps({prop.name: property_value(row, prop)}), retain)

    def _send(self, topic: str, payload: bytes, retain: bool) -> None:
        try:
            self._publish(topic, payload, self._qos, retain)
        except Exception as error:  # the broker client's business; count, log, go on
            self.failed += 1
            now = time.monotonic()
            if now - self._last_log >= self._log_interval:
                self._last_log = now
                log.warning("MQTT publish on %s failed (%d failures so far): %s", topic, self.failed, error)
        else:
            self.published += 1


async def _add_moved_locations(
    conn: asyncpg.Connection, wanted: dict[tuple[EntityType, int], set[str]]
) -> None:
    """Locations of Things that got a new HistoricalLocation: publish them as LINK (collections only)."""
    created = [i for (t, i), ops in wanted.items() if t is HISTORICAL_LOCATION and CREATE in ops]
    if created:
        for record in await conn.fetch(_MOVED_LOCATIONS_SQL, created):
            wanted.setdefault((LOCATION, record["location_id"]), set()).add(LINK)


async def _load_all(
    conn: asyncpg.Connection, wanted: Mapping[tuple[EntityType, int], set[str]]
) -> dict[str, dict[int, Row]]:
    """Entity type name -> id -> row with its related ids, one set of statements per type."""
    by_type: dict[str, tuple[EntityType, list[int]]] = {}
    for entity_type, entity_id in wanted:
        by_type.setdefault(entity_type.name, (entity_type, []))[1].append(entity_id)
    return {name: await load_rows(conn, entity_type, ids) for name, (entity_type, ids) in by_type.items()}


async def load_rows(conn: asyncpg.Connection, entity_type: EntityType, ids: Sequence[int]) -> dict[int, Row]:
    """The rows of `ids` (those still there) with the related ids topics_for needs."""
    sql = f"SELECT {select_list(entity_type)} FROM {entity_type.table} e WHERE e.id = ANY($1::bigint[])"
    rows: dict[int, Row] = {r["id"]: dict(r) for r in await conn.fetch(sql, list(ids))}
    if not rows:
        return rows
    found = list(rows)
    for key, related_sql in related_queries(entity_type):
        for entity_id, related in group_related(await conn.fetch(related_sql, found)).items():
            rows[entity_id][key] = related
    return rows
