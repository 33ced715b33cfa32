# SPDX-License-Identifier: Apache-2.0
"""Adapters plugged into the dispatcher: each family's topics route to a handler that turns its
payloads into readings, which provisioning then maps onto Datastreams."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from adapters import load_adapters
from adapters.base import Adapter, AdapterContext, AdapterError
from adapters.base import Message as AdapterMessage
from hub.config import Settings
from hub.ingest.dispatch import INVALID, Handler, IngestError, PendingObservation

# Zigbee2MQTT is what publishes most Home Assistant discovery configs; its state topics are where
# the announced readings arrive, so they are listened to by default next to the discovery topics.
EXTRA_DEFAULT_TOPICS = {"home_assistant": ("zigbee2mqtt/+",)}


def adapter_handler(adapter: Adapter, context: AdapterContext) -> Handler:
    """A dispatcher handler that runs one adapter; its errors become dead letters, never crashes."""

    def handle(topic: str, payload: bytes, received_at: datetime) -> list[PendingObservation]:
        try:
            readings = adapter.parse(AdapterMessage(topic, payload, received_at), context)
        except AdapterError as error:
            raise IngestError(INVALID, str(error)) from None
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


def register_adapters(register: Callable[[str, Handler], None], settings: Settings) -> list[str]:
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
        handler = adapter_handler(adapter, context)
        for topic_filter in topics:
            register(topic_filter, handler)
            registered.append(f"{name}: {topic_filter}")
    return registered
