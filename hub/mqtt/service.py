# SPDX-License-Identifier: Apache-2.0
"""The broker connection + the ingest pipeline + the MQTT notifications, run as one block.

The app layer (hub/app.py) runs `running_ingest` for the app's lifetime when TWINHUB_MQTT_URL is
set; `twinhub ingest` workers run it alone. Shutdown order: stop handing messages over, write the
open batch, commit, ack, announce, disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence

import asyncpg
import orjson

from hub.changes.feed import ChangeFeed, running_feed
from hub.changes.notice import base_url_of
from hub.config import Settings
from hub.ingest.adapters import register_adapters
from hub.ingest.dispatch import Dispatcher, Handler, IngestError, Message
from hub.ingest.provision import Provisioner
from hub.ingest.sta import register_sta
from hub.ingest.writer import BatchWriter, IngestStats, Outlets
from hub.mqtt.client import MqttClient
from hub.mqtt.notify import Notifier, version_prefixes
from hub.query.topics import TopicFilter, dead_letter_topic
from hub.store.write import Change

log = logging.getLogger("twinhub.mqtt")
DEAD_LETTER_PAYLOAD_MAX = 64 * 1024
DRAIN_QUIET = 0.3  # seconds without a new message after which a leaving share member is drained
DRAIN_MAX = 10.0  # characters of the original payload quoted in a dead letter


class IngestService:
    """One MQTT client feeding one batch writer; `register` adapter topics before `start`."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        committed: Callable[[Sequence[Change]], None],
        client_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.dispatcher = Dispatcher(settings.max_body_bytes)
        register_sta(self.dispatcher)
        self.stats = IngestStats()
        for line in register_adapters(self.dispatcher.register, settings, self.stats.adapters):
            log.info("ingest adapter %s", line)
        self.client = MqttClient(settings, [], self._deliver, client_id)
        outlets = Outlets(self.client.done, self._dead_letter, committed, self.client.is_current)
        self.writer = BatchWriter(
            pool,
            self.dispatcher,
            outlets,
            self.stats,
            settings.ingest_batch_size,
            settings.ingest_batch_ms,
            Provisioner(settings.dataset_labels),
        )
        self.stats.connected = self.client_ready  # /ready: connected, and every subscription granted
        self.stats.buffer_depth = lambda: self.client.depth

    def register(self, topic_filter: str | TopicFilter, handler: Handler) -> None:
        """Route (and subscribe to) another topic filter, e.g. an adapter's."""
        self.dispatcher.register(topic_filter, handler)

    @property
    def publish(self) -> Callable[[str, bytes, int, bool], None]:
        """publish(topic, payload, qos, retain) on the hub's connection, for the Notifier: marked
        as a notification, so that hub ingests drop it as an echo (MqttClient.publish_notification)."""
        return self.client.publish_notification

    def client_ready(self) -> bool:
        """Connected and subscribed (for /ready and for tests that publish right after start)."""
        return self.client.connected and self.client.subscribed

    def start(self) -> None:
        """Start the writer task and the connection (connecting in the background)."""
        self.client.filters = self.dispatcher.filters
        self.writer.start()
        self.client.start()

    async def stop(self) -> None:
        """Stop reading, write and ack the open batch, then disconnect."""
        try:
            await self.stop_ingest()
        finally:
            await self.disconnect()

    async def stop_ingest(self) -> None:
        """Stop reading; write and ack the open batch. The connection stays up for publishing.

        With mqtt_leave_on_stop, a member of a share group leaves it first: it unsubscribes (the
        broker then hands the group's messages to the others), finishes what it already received,
        and `disconnect` ends its session, which would otherwise be handed a share of the group's
        messages while away (see docs/mqtt.md)."""
        if self._leaving and await self.client.leave():
            await self._drain()
        self.client.stop_reading()
        await self.writer.stop()

    async def _drain(self) -> None:
        """Until what was delivered before the unsubscribe is written and acked (at most DRAIN_MAX s)."""
        deadline = time.monotonic() + DRAIN_MAX
        seen = -1
        while time.monotonic() < deadline:
            received = self.stats.received
            if received == seen and self.client.depth == 0:
                return
            seen = received
            await asyncio.sleep(DRAIN_QUIET)
        log.warning("ingest: leaving the share group with %d messages unfinished", self.client.depth)

    async def disconnect(self) -> None:
        """Send the queued acks and publications, then disconnect (ending a leaving member's session)."""
        await self.client.close(end_session=self._leaving)

    @property
    def _leaving(self) -> bool:
        return bool(self.settings.mqtt_share_group and self.settings.mqtt_leave_on_stop)

    def _deliver(self, messages: list[Message]) -> None:
        self.writer.submit(messages)

    def _dead_letter(self, message: Message, error: IngestError) -> None:
        text = message.payload[:DEAD_LETTER_PAYLOAD_MAX].decode("utf-8", "replace")
        body = {"topic": message.topic, "cause": error.cause, "reason": error.reason, "payload": text}
        topic = dead_letter_topic(self.settings.dead_letter_prefix, message.topic)
        self.client.publish(topic, orjson.dumps(body), self.settings.mqtt_qos, False)


@contextlib.asynccontextmanager
async def running_ingest(
    settings: Settings, pool: asyncpg.Pool, feed: ChangeFeed | None = None
) -> AsyncIterator[IngestService]:
    """Ingest and change notifications on one broker connection, for as long as the block runs.

    The ingest's commits go to `feed` (the app's, which HTTP writes share), or to a feed of the
    block's own, relayed to the other processes; the Notifier is the feed's MQTT sink meanwhile."""
    async with contextlib.AsyncExitStack() as stack:
        if feed is None:
            feed = await stack.enter_async_context(running_feed(pool, settings.database_url))
        yield await stack.enter_async_context(_ingest_into(settings, pool, feed))


@contextlib.asynccontextmanager
async def _ingest_into(
    settings: Settings, pool: asyncpg.Pool, feed: ChangeFeed
) -> AsyncIterator[IngestService]:
    service = IngestService(settings, pool, feed.on_commit)
    notifier = Notifier(
        service.publish,
        base_url_of(settings),
        qos=settings.mqtt_notify_qos,
        version_prefixes=version_prefixes(settings.mqtt_publish_v10),
        selects=settings.mqtt_select_topics,
        select_scope=settings.mqtt_select_scope,
        publish_many=service.client.publish_notifications,
        drained=service.client.drained,
    )
    feed.sinks.append(notifier)
    service.writer.room = feed.room  # batches wait while the feed is far behind (backpressure)
    service.stats.notifications_dropped = lambda: feed.dropped + service.client.dropped
    service.start()
    try:
        yield service
    finally:
        # Ingest first: its last batch's changes still reach the feed, which the owner of the
        # feed drains (over this connection, while it is up) when it closes.
        try:
            await service.stop_ingest()
            await feed.flush()
        finally:
            feed.sinks.remove(notifier)
            await service.disconnect()
