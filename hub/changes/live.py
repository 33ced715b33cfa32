# SPDX-License-Identifier: Apache-2.0
"""The /live sink: Notices -> (topic, payload) events -> each open stream whose topic filters match.

No HTTP here (hub/http/live.py streams the events). Each subscriber has a bounded queue; when a
slow client's queue is full its oldest events are dropped and counted, and a gap in the feed
counts as a drop too, so the client knows to reload.

Resume where it is cheap: every event has an id ``<process token>-<sequence>``, and the sink
keeps the last RECENT events of the filters of open streams and of streams closed in the last
RESUME_SECONDS. A client reconnecting with ``Last-Event-ID`` (EventSource sends it by itself) to
the same process within that time gets what it missed; otherwise (another process behind a load
balancer, too long away, too much missed) it is told of a gap and reloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from hub.changes.notice import Notice
from hub.query.topics import TopicFilter

VERSION = "v1.1"
CLIENT_QUEUE = 1000  # events one client may have waiting before its oldest are dropped
HEARTBEAT_SECONDS = 15.0  # a comment on idle streams keeps proxies from closing them
RECENT = 2000  # events kept for clients that reconnect with Last-Event-ID
RESUME_SECONDS = 30.0  # how long the filters of a closed stream are still recorded for its return

Event = tuple[str, str, bytes]  # (event id, topic, rendered payload)


def matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching (MQTT 3.1.1 §4.7): ``+`` is one level, a final ``#`` any number (also none)."""
    return _filter(topic_filter).matches(topic)


@functools.lru_cache(maxsize=1024)
def _filter(topic_filter: str) -> TopicFilter:
    return TopicFilter(topic_filter)  # once per filter, not once per event and subscriber


@dataclass(eq=False)
class Subscriber:
    """One open event stream: its filters and its bounded queue of events."""

    filters: tuple[str, ...]
    limit: int = CLIENT_QUEUE
    events: deque[Event] = field(default_factory=deque)
    dropped: int = 0  # events dropped (or lost upstream) since the client was last told
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

    def lost(self) -> None:
        """Events were lost before they reached this stream."""
        self.dropped += 1
        self._ready.set()

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def wait(self, seconds: float) -> None:
        """Until an event is queued, the stream is closed, or `seconds` pass."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), seconds)
        self._ready.clear()


class LiveFanout:
    """The sink of the open event streams; hears every process's commits."""

    every_process = True

    def __init__(
        self,
        base_url: str,
        client_queue: int = CLIENT_QUEUE,
        heartbeat: float = HEARTBEAT_SECONDS,
        *,
        recent: int = RECENT,
        resume_seconds: float = RESUME_SECONDS,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self.client_queue = client_queue
        self.heartbeat = heartbeat
        self.subscribers: set[Subscriber] = set()
        self.token = uuid.uuid4().hex[:8]  # event ids of another process do not resume here
        self._sequence = 0
        self._recent: deque[tuple[int, Event]] = deque(maxlen=recent)
        self._resume_seconds = resume_seconds
        self._departed: dict[tuple[str, ...], float] = {}  # filters of closed streams -> until when
        # The last sequence number after which events may have gone unrecorded (nobody listened, or
        # the feed lost changes): a client whose last event is not after it cannot resume.
        self._blind_at = 0

    def subscribe(self, filters: Sequence[str], last_event_id: str | None = None) -> Subscriber:
        """A new stream; with `last_event_id`, first what it missed since, or a gap when unknown."""
        subscriber = Subscriber(tuple(filters), self.client_queue)
        if last_event_id is not None:
            self._resume(subscriber, last_event_id)
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self.subscribers:
            self.subscribers.discard(subscriber)
            self._departed[subscriber.filters] = time.monotonic() + self._resume_seconds

    def active(self) -> bool:
        self._forget_departed()
        if self.subscribers or self._departed:
            return True
        self._blind_at = self._sequence  # the feed stops loading for us: nothing is recorded
        return False

    async def drained(self) -> None:
        """Never waits: each stream's queue is bounded, and a slow stream is told of its gap."""

    def deliver(self, notices: Sequence[Notice]) -> None:
        """Each publication of each Notice to the streams that want its topic (rendered once)."""
        self._forget_departed()
        for notice in notices:
            for topic, _retain, prop in notice.publications(VERSION):
                listeners = [s for s in self.subscribers if s.wants(topic)]
                remembered = any(_wanted(f, topic) for f in self._departed)
                if not listeners and not remembered:
                    continue
                self._sequence += 1
                event = (f"{self.token}-{self._sequence}", topic, notice.body(prop, self._base_url, VERSION))
                self._recent.append((self._sequence, event))
                for subscriber in listeners:
                    subscriber.push(event)

    def gap(self) -> None:
        self._sequence += 1  # nobody can resume across a gap
        self._blind_at = self._sequence
        for subscriber in self.subscribers:
            subscriber.lost()

    def close(self) -> None:
        """End every stream."""
        for subscriber in list(self.subscribers):
            subscriber.close()
        self.subscribers.clear()

    def _resume(self, subscriber: Subscriber, last_event_id: str) -> None:
        token, _, number = last_event_id.partition("-")
        last = int(number) if number.isdigit() else -1
        oldest = self._recent[0][0] if self._recent else self._sequence + 1
        # Its filters were recorded: remembered since it left, or still open (the server has not yet
        # noticed that the old connection of a reconnecting client is gone).
        recorded = self._departed.get(subscriber.filters, 0.0) >= time.monotonic() or any(
            other.filters == subscriber.filters for other in self.subscribers
        )
        known = self._blind_at < last <= self._sequence and last >= oldest - 1
        if token != self.token or not recorded or not known:
            subscriber.lost()
            return
        for sequence, event in self._recent:
            if sequence > last and subscriber.wants(event[1]):
                subscriber.push(event)

    def _forget_departed(self) -> None:
        now = time.monotonic()
        for filters in [f for f, until in self._departed.items() if until < now]:
            del self._departed[filters]


def _wanted(filters: tuple[str, ...], topic: str) -> bool:
    return any(matches(f, topic) for f in filters)
