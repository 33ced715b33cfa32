# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for the adapter tests: a sample as a Message, a context, the sample bytes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from adapters.base import Adapter, AdapterContext, AdapterError, Consumed, Message
from adapters.vocabulary import QUANTITIES, UNITS
from schemas.reading import Reading

SAMPLES = Path(__file__).parent / "samples"
RECEIVED_AT = datetime(2026, 3, 5, 10, 16, 0, tzinfo=UTC)


def sample_bytes(name: str) -> bytes:
    """The payload bytes of a sample file."""
    return (SAMPLES / name).read_bytes()


def sample_topic(name: str) -> str:
    """The example topic topics.json gives a sample."""
    topics: dict[str, dict[str, Any]] = json.loads((SAMPLES / "topics.json").read_text())
    return str(topics[name]["topic"])


def message(
    name: str, topic: str | None = None, payload: bytes | None = None, received_at: datetime = RECEIVED_AT
) -> Message:
    """A sample as a broker would deliver it; topic and payload may be overridden."""
    return Message(
        topic=sample_topic(name) if topic is None else topic,
        payload=sample_bytes(name) if payload is None else payload,
        received_at=received_at,
    )


def context(
    options: dict[str, Any] | None = None, memory: dict[str, Any] | None = None, tz: str = "Europe/Berlin"
) -> AdapterContext:
    """A fresh adapter context (Europe/Berlin, as topics.json says for the samples)."""
    return AdapterContext(
        timezone=ZoneInfo(tz), options=options or {}, memory={} if memory is None else memory
    )


# --- hypothesis: random JSON and mutated samples ---------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and indexes) into a JSON document, the root included."""
    found = [prefix]
    children = (
        document.items()
        if isinstance(document, dict)
        else enumerate(document)
        if isinstance(document, list)
        else []
    )
    for key, child in children:
        found.extend(paths(child, (*prefix, key)))
    return found


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of the document with the node at path replaced."""
    if not path:
        return value
    copy = document.copy()
    copy[path[0]] = replaced(document[path[0]], path[1:], value)
    return copy


@st.composite
def mutated(draw: st.DrawFn, payload: bytes) -> bytes:
    """The payload with one node replaced by random JSON."""
    document = json.loads(payload)
    path = draw(st.sampled_from(paths(document)))
    return json.dumps(replaced(document, path, draw(JSON))).encode()


# Bounded property runs: fast enough for every `make test`.
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_or_fail(adapter: Adapter, message: Message, ctx: AdapterContext | None = None) -> list[Reading]:
    """The only outcomes allowed: readings in the vocabulary (UCUM units, UTC times), or an
    AdapterError of this adapter; returns the readings ([] after an error)."""
    failed_in = None
    try:
        readings = adapter.parse(message, ctx or context())
    except AdapterError as error:
        failed_in, readings = error.adapter, []
    except Consumed:
        readings = []
    assert failed_in in (None, adapter.name)
    for r in readings:
        assert isinstance(r, Reading)
        assert r.quantity in QUANTITIES
        assert r.unit is None or r.unit in UNITS
        assert r.phenomenon_time[0].tzinfo is UTC
    return readings
