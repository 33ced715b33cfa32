# SPDX-License-Identifier: Apache-2.0
"""Server-sent events of committed changes: ``GET /live?topic=v1.1/Observations``.

The browser's EventSource gets the same (topic, entity) pairs the MQTT notifier publishes
(hub/mqtt/topics_out.py), filtered by MQTT topic filters given as ``topic`` query parameters
(``+`` one level, ``#`` the rest; send ``+`` as ``%2B``). Each event is

    data: {"topic": "v1.1/Datastreams(7)/Observations", "payload": {...the entity as GET renders it}}

The feed hears this process's commits through ``AppState.change_listeners`` (HTTP writes and the
MQTT ingest running in the same process), not the broker. It is best-effort like the notifier:
each client has a bounded queue, and when a slow client's queue is full its oldest events are
dropped and an ``event: dropped`` with the count tells it to reload. A comment line every
``heartbeat`` seconds keeps proxies from closing idle streams and finds clients that went away.
On shutdown every stream ends, so the server does not wait for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import asyncpg
import orjson
from aiohttp import web

from hub.errors import BadRequestError
from hub.http.context import STATE
from hub.http.render import property_value, render_entity
from hub.mqtt.notify import base_url_of, load_rows
from hub.mqtt.topics import TopicFilter
from hub.mqtt.topics_out import CREATE, UPDATE, property_topics, topics_for
from hub.store.write import Change
from schemas.model import EntityType

log = logging.getLogger("twinhub.http.live")

VERSION = "v1.1"
HEARTBEAT_SECONDS = 15.0
CLIENT_QUEUE = 1000  # events one client may have waiting before its oldest are dropped
FEED_QUEUE = 10_000  # committed changes waiting to be loaded and rendered
MAX_FILTERS = 16
MAX_FILTER_LENGTH = 256
RETRY_MS = 3000  # how long EventSource waits before reconnecting

Event = tuple[str, bytes]  # (topic, rendered payload)


def check_filter(text: str) -> str:
    """A valid MQTT topic filter below the v1.1 tree, or BadRequestError naming what is wrong."""
    if not text or len(text) > MAX_FILTER_LENGTH or "\0" in text:
        raise BadRequestError(f"topic: must be 1 to {MAX_FILTER_LENGTH} characters, got {len(text)}")
    levels = text.split("/")
    if levels[0] != VERSION or len(levels) < 2:
        raise BadRequestError(f"topic: {text!r} must start with {VERSION}/ (e.g. {VERSION}/Observations)")
    for position, level in enumerate(levels):
        if "#" in level and (level != "#" or position != len(levels) - 1):
            raise BadRequestError(f"topic: {text!r}: '#' must be a whole level and the last one")
        if "+" in level and level != "+":
            raise BadRequestError(f"topic: {text!r}: '+' must be a whole level (send it as %2B)")
    return text


def matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching: ``+`` is one level, a final ``#`` any number of levels (also none)."""
    return _parsed(topic_filter).matches(topic)


@functools.lru_cache(maxsize=1024)
def _parsed(topic_filter: str) -> TopicFilter:
    return TopicFilter(topic_filter)  # once per filter, not once per event and subscriber


@dataclass(eq=False)
class Subscriber:
    """One open event stream: its filters and its bounded queue of events."""

    filters: tuple[str, ...]
    limit: int = CLIENT_QUEUE
    events: deque[Event] = field(default_factory=deque)
    dropped: int = 0  # events dropped since the client was last told
    closed: bool = False
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, topic: str) -> bool:
        return any(matches(f, topic) for f in self.filters)

    def push(self, event: Event) -> None:
        if len(self.events) >= self.limit:
            self.events.popleft()
            self.dropped += 1
        self.events.append(event)
        self._ready.set()

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def wait(self, seconds: float) -> None:
        """Until an event is queued, the stream is closed, or `seconds` pass."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), seconds)
        self._ready.clear()


class LiveFeed:
    """Committed changes -> rendered events -> the subscribers whose filters match."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        base_url: str,
        *,
        heartbeat: float = HEARTBEAT_SECONDS,
        client_queue: int = CLIENT_QUEUE,
        max_queue: int = FEED_QUEUE,
    ) -> None:
        self._pool = pool
        self._base = f"{base_url.rstrip('/')}/{VERSION}"
        self.heartbeat = heartbeat
        self.client_queue = client_queue
        self.subscribers: set[Subscriber] = set()
        self._changes: asyncio.Queue[Change] = asyncio.Queue(max_queue)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0  # changes dropped because the feed's own queue was full

    def subscribe(self, filters: Sequence[str]) -> Subscriber:
        subscriber = Subscriber(tuple(filters), self.client_queue)
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def on_commit(self, changes: Sequence[Change]) -> None:
        """A change listener: queue creates and updates while anyone listens; never blocks."""
        if not self.subscribers:
            return
        for change in changes:
            if change.operation not in (CREATE, UPDATE):
                continue
            if self._changes.full():
                self._changes.get_nowait()
                self.dropped += 1
            self._changes.put_nowait(change)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="live-feed")

    async def close(self) -> None:
        """End every stream and stop loading changes."""
        for subscriber in list(self.subscribers):
            subscriber.close()
        self.subscribers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._changes.get()]
            while len(batch) < 500 and not self._changes.empty():
                batch.append(self._changes.get_nowait())
            if not self.subscribers:
                continue
            try:
                await self.process(batch)
            except Exception:  # best-effort: one failed batch must not end the feed
                log.exception("live feed: %d change(s) could not be sent", len(batch))

    async def process(self, batch: Sequence[Change]) -> None:
        """Load the changed rows (one statement set per entity type) and hand out their events."""
        wanted: dict[EntityType, dict[int, set[str]]] = {}
        for change in batch:
            wanted.setdefault(change.entity_type, {}).setdefault(change.entity_id, set()).add(
                change.operation
            )
        async with self._pool.acquire() as conn:
            for entity_type, operations in wanted.items():
                rows = await load_rows(conn, entity_type, list(operations))
                for entity_id, row in rows.items():
                    self._fan_out(entity_type, row, operations[entity_id])

    def _fan_out(self, entity_type: EntityType, row: dict[str, object], operations: set[str]) -> None:
        payload: bytes | None = None
        props = property_topics(entity_type, row, VERSION) if UPDATE in operations else {}
        topics = dict.fromkeys(
            t for op in sorted(operations) for t, _ in topics_for(entity_type, row, op, VERSION)
        )
        for topic in topics:
            listeners = [s for s in self.subscribers if s.wants(topic)]
            if not listeners:
                continue
            prop = props.get(topic)
            if prop is not None:
                body = orjson.dumps({prop.name: property_value(row, prop)})
            else:
                payload = payload or orjson.dumps(render_entity(entity_type, row, self._base))
                body = payload
            for subscriber in listeners:
                subscriber.push((topic, body))


LIVE = web.AppKey("live", LiveFeed)


def _encode(event: Event) -> bytes:
    topic, payload = event
    return b'data: {"topic":' + orjson.dumps(topic) + b',"payload":' + payload + b"}\n\n"


async def handle_live(request: web.Request) -> web.StreamResponse:
    """GET /live?topic=FILTER[&topic=FILTER...]: an event stream until the client or server leaves."""
    feed = request.app[LIVE]
    filters = request.query.getall("topic", [])
    if not filters:
        raise BadRequestError(
            f"topic: give at least one topic filter, e.g. /live?topic={VERSION}/Observations"
        )
    if len(filters) > MAX_FILTERS:
        raise BadRequestError(f"topic: at most {MAX_FILTERS} filters, got {len(filters)}")
    filters = [check_filter(f) for f in filters]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    subscriber = feed.subscribe(filters)
    try:
        await response.write(f"retry: {RETRY_MS}\n: subscribed to {' '.join(filters)}\n\n".encode())
        while not subscriber.closed:
            await subscriber.wait(feed.heartbeat)
            if subscriber.dropped:
                count, subscriber.dropped = subscriber.dropped, 0
                await response.write(b"event: dropped\ndata: " + orjson.dumps({"count": count}) + b"\n\n")
            if subscriber.events:
                chunk = b"".join(_encode(e) for e in subscriber.events)
                subscriber.events.clear()
                await response.write(chunk)
            elif not subscriber.closed:
                await response.write(b": heartbeat\n\n")
    except ConnectionResetError:
        pass  # the client went away
    finally:
        feed.unsubscribe(subscriber)
    return response


async def live_context(app: web.Application) -> AsyncIterator[None]:
    """A cleanup_ctx (after the database one): the feed listens to commits for the app's lifetime."""
    state = app[STATE]
    feed = LiveFeed(state.pool, base_url_of(state.settings))
    app[LIVE] = feed
    state.change_listeners.append(feed.on_commit)
    feed.start()
    try:
        yield
    finally:
        state.change_listeners.remove(feed.on_commit)
        await feed.close()


async def end_streams(app: web.Application) -> None:
    """on_shutdown: close the open streams so the server need not wait for them."""
    if LIVE in app:
        for subscriber in list(app[LIVE].subscribers):
            subscriber.close()


def setup_live(app: web.Application) -> None:
    """The /live route and the feed's lifetime; call after the database cleanup context is added."""
    app.router.add_get("/live", handle_live)
    app.cleanup_ctx.append(live_context)
    app.on_shutdown.append(end_streams)
