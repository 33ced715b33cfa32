# SPDX-License-Identifier: Apache-2.0
"""Wiring: the broker connection + the ingest pipeline, started and stopped with the app.

`build_app` adds `mqtt_context(settings)` after the database context when TWINHUB_MQTT_URL is set.
Shutdown order: stop handing messages over, write the open batch, commit, ack, disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence

import asyncpg
import orjson
from aiohttp import web

from hub.config import Settings
from hub.ingest.adapters import register_adapters
from hub.ingest.dispatch import Dispatcher, Handler, IngestError, Message
from hub.ingest.provision import Provisioner
from hub.ingest.sta import register_sta
from hub.ingest.writer import BatchWriter, IngestStats, Outlets
from hub.mqtt.client import MqttClient
from hub.mqtt.notify import Notifier, base_url_of, version_prefixes
from hub.mqtt.topics import TopicFilter, dead_letter_topic
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
        for line in register_adapters(self.dispatcher.register, settings):
            log.info("ingest adapter %s", line)
        self.stats = IngestStats()
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
        """publish(topic, payload, qos, retain) on the hub's connection, for the Notifier."""
        return self.client.publish

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


INGEST = web.AppKey("ingest", IngestStats)
MQTT = web.AppKey("mqtt", IngestService)


@contextlib.asynccontextmanager
async def running_ingest(
    settings: Settings, pool: asyncpg.Pool, listeners: list[Callable[[Sequence[Change]], None]]
) -> AsyncIterator[IngestService]:
    """Ingest and change notifications on one broker connection, for as long as the block runs.

    `listeners` hear about every committed change (HTTP writes included, when the app shares
    its list); the notifier joins them for the block's lifetime."""

    def committed(changes: Sequence[Change]) -> None:
        for hear in listeners:
            hear(changes)

    service = IngestService(settings, pool, committed)
    notifier = Notifier(
        pool,
        service.publish,
        base_url_of(settings),
        qos=settings.mqtt_notify_qos,
        version_prefixes=version_prefixes(settings.mqtt_publish_v10),
    )
    listeners.append(notifier.on_commit)
    service.stats.notifications_dropped = lambda: notifier.dropped + service.client.dropped
    notifications = asyncio.create_task(notifier.run(), name="mqtt-notifications")
    service.start()
    try:
        yield service
    finally:
        # Ingest first: its last batch's changes still reach the notifier, which drains them
        # over the connection before it closes.
        try:
            await service.stop_ingest()
            listeners.remove(notifier.on_commit)
            await notifier.close()
        finally:
            notifications.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await notifications
            await service.disconnect()


def mqtt_context(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx that runs the broker connection and ingest for the app's lifetime."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        from hub.http.context import STATE  # the app layer; ingest itself never needs aiohttp

        state = app[STATE]
        async with running_ingest(settings, state.pool, state.change_listeners) as service:
            app[INGEST] = service.stats
            app[MQTT] = service
            yield

    return context
