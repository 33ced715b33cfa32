# SPDX-License-Identifier: Apache-2.0
"""The /live sink: Notices -> (topic, payload) events -> each open stream whose topic filters match.

No HTTP here (hub/http/live.py streams the events). Each subscriber has a bounded queue; when a
slow client's queue is full its oldest events are dropped and counted, and a gap in the feed
counts as a drop too, so the client knows to reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from hub.changes.notice import Notice

VERSION = "v1.1"
CLIENT_QUEUE = 1000  # events one client may have waiting before its oldest are dropped
HEARTBEAT_SECONDS = 15.0  # a comment on idle streams keeps proxies from closing them

Event = tuple[str, bytes]  # (topic, rendered payload)


def matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching (MQTT 3.1.1 §4.7): ``+`` is one level, a final ``#`` any number (also none)."""
    pattern = _levels(topic_filter)
    levels = topic.split("/")
    for index, part in enumerate(pattern):
        if part == "#":
            return True
        if index >= len(levels) or (part != "+" and part != levels[index]):
            return False
    return len(levels) == len(pattern)


@functools.lru_cache(maxsize=1024)
def _levels(topic_filter: str) -> tuple[str, ...]:
    return tuple(topic_filter.split("/"))  # once per filter, not once per event and subscriber


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
        self, base_url: str, client_queue: int = CLIENT_QUEUE, heartbeat: float = HEARTBEAT_SECONDS
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self.client_queue = client_queue
        self.heartbeat = heartbeat
        self.subscribers: set[Subscriber] = set()

    def subscribe(self, filters: Sequence[str]) -> Subscriber:
        subscriber = Subscriber(tuple(filters), self.client_queue)
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def active(self) -> bool:
        return bool(self.subscribers)

    def deliver(self, notices: Sequence[Notice]) -> None:
        """Each publication of each Notice to the streams that want its topic (rendered once)."""
        for notice in notices:
            for topic, _retain, prop in notice.publications(VERSION):
                listeners = [s for s in self.subscribers if s.wants(topic)]
                if listeners:
                    body = notice.body(prop, self._base_url, VERSION)
                    for subscriber in listeners:
                        subscriber.push((topic, body))

    def gap(self) -> None:
        for subscriber in self.subscribers:
            subscriber.lost()

    def close(self) -> None:
        """End every stream."""
        for subscriber in list(self.subscribers):
            subscriber.close()
        self.subscribers.clear()
