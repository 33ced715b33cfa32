# SPDX-License-Identifier: Apache-2.0
"""The device corpus (tests/ingest_adapters/corpus/*.json): loading it and running it through the
adapters' pure functions. Shared by the pure test and the end-to-end test through the broker."""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from adapters import load_adapters
from adapters.base import AdapterContext, Consumed, Message
from schemas.reading import Reading

CORPUS = Path(__file__).parent / "corpus"
RECEIVED_AT = datetime(2026, 3, 5, 12, 0, 0, tzinfo=UTC)
ADAPTERS = load_adapters()


@dataclass(frozen=True)
class Case:
    """One corpus payload: what is published, and the readings it must give."""

    family: str
    name: str
    source: str
    topic: str
    payload: bytes
    before: tuple[tuple[str, bytes], ...]  # messages that must come first (discovery configs)
    expected: tuple[dict[str, Any], ...]
    device: str | None
    location: dict[str, Any] | None
    timezone: str

    @property
    def id(self) -> str:
        """The pytest id."""
        return f"{self.family}/{self.name}"


def _bytes(entry: dict[str, Any]) -> bytes:
    if "text" in entry:
        return str(entry["text"]).encode()
    return json.dumps(entry["payload"], ensure_ascii=False).encode()


def load_cases() -> list[Case]:
    """Every case of every family file, in file order."""
    cases = []
    for path in sorted(CORPUS.glob("*.json")):
        document = json.loads(path.read_text())
        for raw in document["cases"]:
            cases.append(
                Case(
                    family=document["family"],
                    name=raw["name"],
                    source=raw["source"],
                    topic=raw["topic"],
                    payload=_bytes(raw),
                    before=tuple((b["topic"], _bytes(b)) for b in raw.get("before", [])),
                    expected=tuple(raw["expected"]),
                    device=raw.get("device"),
                    location=raw.get("location"),
                    timezone=raw.get("timezone", "Europe/Berlin"),
                )
            )
    return cases


def received_offset(text: str) -> timedelta | None:
    """For "received" or "received-60s" (a time relative to reception, SenML): the offset."""
    if not text.startswith("received"):
        return None
    rest = text.removeprefix("received").removesuffix("s")
    return timedelta(seconds=float(rest)) if rest else timedelta(0)


def expected_time(text: str, received_at: datetime = RECEIVED_AT) -> datetime:
    """An expected phenomenonTime: ISO 8601, or relative to the receive time ("received-60s")."""
    offset = received_offset(text)
    if offset is not None:
        return received_at + offset
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def read(case: Case, received_at: datetime = RECEIVED_AT) -> list[Reading]:
    """The readings of a case through its adapter's pure function (discovery configs first)."""
    adapter = ADAPTERS[case.family]
    context = AdapterContext(timezone=ZoneInfo(case.timezone))
    for topic, payload in case.before:
        with contextlib.suppress(Consumed):
            adapter.parse(Message(topic, payload, received_at), context)
    return adapter.parse(Message(case.topic, case.payload, received_at), context)


def same_value(got: Any, want: Any) -> bool:
    """Results compare as JSON does: numbers by value (1523 == 1523.0), the rest exactly."""
    numbers = (int, float)
    if isinstance(got, numbers) and isinstance(want, numbers) and not isinstance(got, bool):
        return not isinstance(want, bool) and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
    return bool(got == want)


def mismatches(readings: list[Reading], case: Case, received_at: datetime = RECEIVED_AT) -> list[str]:
    """What differs between the readings and the case's expectations (empty when it passes)."""
    problems: list[str] = []
    left = list(readings)
    for want in case.expected:
        time = expected_time(want["time"], received_at)
        match = next(
            (
                r
                for r in left
                if r.quantity == want["quantity"]
                and r.stream == want["stream"]
                and r.unit == want["unit"]
                and same_value(r.value, want["value"])
                and r.phenomenon_time[0] == time
            ),
            None,
        )
        if match is None:
            problems.append(f"missing {want}")
        else:
            left.remove(match)
    problems.extend(
        f"unexpected {(r.quantity, r.stream, r.value, r.unit, r.phenomenon_time[0].isoformat())}"
        for r in left
    )
    if case.device is not None:
        problems.extend(f"device {r.device} != {case.device}" for r in readings if r.device != case.device)
    if case.location is not None and not any(r.location == case.location for r in readings):
        problems.append(f"no reading located at {case.location}")
    return problems


def sta_message(case: Case, datastream: int) -> tuple[str, bytes]:
    """The topic and payload of a native STA case, bound to an existing Datastream."""
    topic = case.topic.replace("{datastream}", str(datastream))
    return topic, case.payload.replace(b'"{datastream}"', str(datastream).encode())
