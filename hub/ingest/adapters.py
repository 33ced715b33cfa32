# SPDX-License-Identifier: Apache-2.0
"""Adapters plugged into the dispatcher: each family's topics route to a handler that turns its
payloads into readings, which provisioning then maps onto Datastreams.

No message leaves an adapter unaccounted for (DESIGN habit 13): readings go to the writer; an
AdapterError is dead-lettered as `invalid`; a message the adapter read and found no measurement
in is dead-lettered as `no_readings`; a message that carries none by design (a discovery config,
an event frame) is acknowledged as `consumed`. Each outcome is counted per adapter."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from adapters import load_adapters
from adapters.base import Adapter, AdapterContext, AdapterError, Consumed
from adapters.base import Message as AdapterMessage
from hub.config import Settings
from hub.ingest.dispatch import INVALID, NO_READINGS, Handler, IngestError, PendingObservation
from hub.query.topics import TopicFilter

# Zigbee2MQTT and ESPHome publish most Home Assistant discovery configs; their state topics are
# where the announced readings arrive, so they are listened to by default next to the discovery
# topics (others through `adapter_topics`).
EXTRA_DEFAULT_TOPICS = {"home_assistant": ("zigbee2mqtt/+", "+/sensor/+/state", "+/binary_sensor/+/state")}


def adapter_handler(
    adapter: Adapter, context: AdapterContext, counts: Counter[tuple[str, str]] | None = None
) -> Handler:
    """A dispatcher handler that runs one adapter; its errors become dead letters, never crashes."""
    outcomes: Counter[tuple[str, str]] = Counter() if counts is None else counts

    def handle(topic: str, payload: bytes, received_at: datetime) -> list[PendingObservation]:
        try:
            readings = adapter.parse(AdapterMessage(topic, payload, received_at), context)
        except AdapterError as error:
            outcomes[adapter.name, INVALID] += 1
            raise IngestError(INVALID, str(error)) from None
        except Consumed:
            outcomes[adapter.name, "consumed"] += 1
            return []
        if not readings:
            outcomes[adapter.name, NO_READINGS] += 1
            raise IngestError(NO_READINGS, f"{adapter.name}: the message holds no measurement it knows")
        outcomes[adapter.name, "readings"] += 1
        return [
            PendingObservation(
                result=r.value,
                phenomenon_time=r.phenomenon_time,
                result_time=r.result_time,
                parameters=r.parameters,
                reading=r,
            )
            for r in readings
        ]

    return handle


def register_adapters(
    register: Callable[[TopicFilter, Handler], None],
    settings: Settings,
    counts: Counter[tuple[str, str]] | None = None,
) -> list[str]:
    """Register every enabled adapter on its topics; returns the topic filters, for the log."""
    available = load_adapters()
    enabled = settings.adapters if settings.adapters is not None else tuple(available)
    registered: list[str] = []
    for name in enabled:
        adapter = available[name]
        context = AdapterContext(
            timezone=ZoneInfo(settings.timezone), options=dict(settings.adapter_options.get(name, {}))
        )
        topics = settings.adapter_topics.get(name) or (*adapter.topics, *EXTRA_DEFAULT_TOPICS.get(name, ()))
        handler = adapter_handler(adapter, context, counts)
        for topic_filter in topics:
            shared = not adapter.remembered(topic_filter)
            register(TopicFilter(topic_filter, shared), handler)
            registered.append(f"{name}: {topic_filter}" + ("" if shared else " (every process)"))
    return registered
