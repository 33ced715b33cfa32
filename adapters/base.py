# SPDX-License-Identifier: Apache-2.0
"""The adapter protocol, its one error type, and the converters adapters share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from schemas.reading import Reading


class AdapterError(ValueError):
    """A payload an adapter cannot read; names the adapter, the field and what is wrong."""

    def __init__(self, adapter: str, field: str, message: str) -> None:
        super().__init__(adapter, field, message)
        self.adapter = adapter
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return (
            f"{self.adapter}: {self.field} {self.message}"
            if self.field
            else f"{self.adapter}: {self.message}"
        )


class Consumed(Exception):  # a signal, not an error
    """A message that carries no observation by design (a discovery config, an event frame); the
    pipeline acknowledges it and counts it under its adapter, with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class AdapterContext:
    """What an adapter is handed instead of reaching for it: the time zone of devices that send
    local times, per-adapter options, and a memory between messages (Home Assistant discovery
    configs, Shelly status). Nothing else: no clock, no I/O."""

    timezone: tzinfo = field(default_factory=lambda: ZoneInfo("Europe/Berlin"))
    options: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    """One broker message as an adapter sees it."""

    topic: str
    payload: bytes
    received_at: datetime  # aware UTC


Parse = Callable[[Message, AdapterContext], list[Reading]]


def _nothing_remembered(topic_filter: str) -> bool:
    return False


@dataclass(frozen=True)
class Adapter:
    """One payload family: its name, default topic filters and parse function."""

    name: str
    topics: tuple[str, ...]  # MQTT topic filters it listens on by default
    parse: Parse
    description: str
    # Filters whose messages the adapter remembers (Home Assistant discovery configs): every
    # ingest process must receive all of them, retained ones included, so they are subscribed
    # outside the MQTT share group. A predicate, as operators may replace the default filters.
    remembered: Callable[[str], bool] = _nothing_remembered


def instant(moment: datetime) -> tuple[datetime, datetime]:
    """A phenomenonTime instant as (start, end)."""
    moment = moment.astimezone(UTC)
    return moment, moment
