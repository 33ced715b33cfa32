# SPDX-License-Identifier: Apache-2.0
"""Topic -> handler table: turns one received message into Observations ready for the writer.

A handler is a plain function `(topic, payload, received_at) -> list[PendingObservation]`; it
validates without I/O and raises IngestError naming the cause. Checks that need the database
(does the Datastream exist, which FeatureOfInterest) happen per batch in the writer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.query.topics import TopicFilter
from schemas.reading import Reading

# Causes by which rejected messages are counted and published to the dead-letter topic.
BAD_JSON = "bad_json"
INVALID = "invalid"
UNKNOWN_DATASTREAM = "unknown_datastream"
UNKNOWN_FEATURE = "unknown_feature"
NO_FEATURE = "no_feature"  # no FeatureOfInterest given and none derivable from a Location
HANDLER_FAILED = "handler_failed"  # a handler raised something other than IngestError (a bug)
OVERSIZED = "oversized"
NO_HANDLER = "no_handler"
REJECTED = "rejected"  # the database refused the row (after isolating it)
NO_READINGS = "no_readings"  # an adapter read the message and found no measurement in it


class IngestError(Exception):
    """A message that cannot become Observations; `cause` is one of the constants above."""

    def __init__(self, cause: str, reason: str) -> None:
        super().__init__(cause, reason)
        self.cause = cause
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.cause}: {self.reason}"


class Echo(Exception):  # a signal, not an error
    """The message is an entity the hub (or a replica) published itself; acknowledge and ignore it."""


# Message, PendingObservation (and ObservationRow, StoredObservation) are made once per received
# message on the ingest path and never changed afterwards; they are not frozen because a frozen
# dataclass sets each field through object.__setattr__: 0.6-1 µs more per object, ~2 µs per
# ingested Observation (bench/deployed.py profile).
@dataclass(slots=True)
class Message:
    """One received MQTT message; `generation` counts connections, so stale ones are never acked."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: float  # time.time() when the client read it from the socket
    generation: int = 0
    # It carries the hub's notification mark (MQTT 5 user property, hub/mqtt/client.py): an echo.
    echo: bool = False


@dataclass(slots=True)
class PendingObservation:
    """A validated Observation whose links the writer still checks; exactly one stream is set."""

    result: Any
    phenomenon_time: tuple[datetime, datetime] | None  # None: the time the message was received
    datastream_id: int | None = None
    multi_datastream_id: int | None = None
    feature_of_interest_id: int | None = None  # None: derived from the Thing's Location
    result_time: datetime | None = None
    result_quality: Any = None
    valid_time: tuple[datetime, datetime] | None = None
    parameters: dict[str, Any] | None = None
    # An adapter's reading whose Datastream provisioning finds or creates (datastream_id is then None).
    reading: Reading | None = None
    # STA create over MQTT: deep-inserted related entities (navigation name -> body), created with
    # the Observation in the batch's transaction (hub/ingest/sta.py create_inline).
    inline: dict[str, Any] | None = None


Handler = Callable[[str, bytes, datetime], list[PendingObservation]]


@dataclass(frozen=True)
class Route:
    """One row of the dispatch table."""

    topic_filter: TopicFilter
    handler: Handler


class Dispatcher:
    """The topic -> handler table; the first registered filter that matches a topic wins."""

    def __init__(self, max_payload: int) -> None:
        self.max_payload = max_payload
        self.routes: list[Route] = []
        self._cache: dict[str, Handler | None] = {}

    def register(self, topic_filter: str | TopicFilter, handler: Handler) -> None:
        """Route messages on topics matching `topic_filter` to `handler` (and subscribe to it)."""
        if isinstance(topic_filter, str):
            topic_filter = TopicFilter(topic_filter)
        self.routes.append(Route(topic_filter, handler))
        self._cache.clear()

    @property
    def filters(self) -> list[TopicFilter]:
        """The filters to subscribe to."""
        return [route.topic_filter for route in self.routes]

    def handler_for(self, topic: str) -> Handler | None:
        """The handler of a topic, cached per topic (topics repeat; filters are few)."""
        try:
            return self._cache[topic]
        except KeyError:
            pass
        found = next((r.handler for r in self.routes if r.topic_filter.matches(topic)), None)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[topic] = found
        return found

    def dispatch(self, topic: str, payload: bytes, received_at: datetime) -> list[PendingObservation]:
        """Run the handler of `topic`; raise IngestError (or Echo) when there is nothing to store."""
        if len(payload) > self.max_payload:
            raise IngestError(OVERSIZED, f"payload of {len(payload)} bytes exceeds {self.max_payload}")
        handler = self.handler_for(topic)
        if handler is None:
            raise IngestError(NO_HANDLER, f"no handler for topic '{topic}'")
        return handler(topic, payload, received_at)
