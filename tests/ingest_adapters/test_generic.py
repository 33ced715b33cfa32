# SPDX-License-Identifier: Apache-2.0
"""The declarative generic JSON mapping: options check, topic patterns, pointers, time formats."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from adapter_helpers import JSON, RECEIVED_AT, context, paths, replaced
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.base import AdapterError, Message, instant
from adapters.generic import ADAPTER, check_options
from schemas.reading import Reading

WEATHER = {
    "topic": "city/{device}/weather",
    "device": "{device}",
    "readings": [
        {"pointer": "/temp", "quantity": "air_temperature", "unit": "Cel", "scale": 0.1},
        {"pointer": "/p/hpa", "quantity": "air_pressure", "unit": "hPa"},
        {"pointer": "/a~1b/0", "quantity": "value", "stream": "first", "offset": -1},
        {"pointer": "/state", "quantity": "value", "stream": "state"},
    ],
    "time": "/ts",
    "time_format": "unix",
}
OPTIONS: dict[str, Any] = {"mappings": [WEATHER]}
PAYLOAD = {"temp": 215, "p": {"hpa": 1013.2}, "a/b": ["7"], "state": "ok", "ts": 1772705700}


def parse(
    payload: Any, options: dict[str, Any] = OPTIONS, topic: str = "city/st-42/weather"
) -> list[Reading]:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return ADAPTER.parse(Message(topic, raw, RECEIVED_AT), context(options))


def test_mapping_reads_pointers_scales_and_unix_time() -> None:
    when = instant(datetime(2026, 3, 5, 10, 15, tzinfo=UTC))
    assert parse(PAYLOAD) == [
        Reading("generic", "st-42", "air_temperature", 21.5, "Cel", when),
        Reading("generic", "st-42", "air_pressure", 1013.2, "hPa", when),
        Reading("generic", "st-42", "value", 6.0, None, when, "first"),
        Reading("generic", "st-42", "value", "ok", None, when, "state"),
    ]


@pytest.mark.parametrize(
    ("time_format", "value", "expected"),
    [
        ("iso", "2026-03-05T11:15:00", datetime(2026, 3, 5, 10, 15, tzinfo=UTC)),  # local, Europe/Berlin
        ("iso", "2026-03-05T11:15:00Z", datetime(2026, 3, 5, 11, 15, tzinfo=UTC)),
        ("unix_ms", 1772705700500, datetime(2026, 3, 5, 10, 15, 0, 500000, tzinfo=UTC)),
        ("unix", "1772705700", datetime(2026, 3, 5, 10, 15, tzinfo=UTC)),
    ],
)
def test_time_formats(time_format: str, value: Any, expected: datetime) -> None:
    options = {"mappings": [{**WEATHER, "time_format": time_format}]}
    assert parse({**PAYLOAD, "ts": value}, options)[0].phenomenon_time == instant(expected)


def test_first_matching_mapping_device_pointer_receive_time_and_null() -> None:
    lab = {"topic": "lab/{room}-{n}", "device": "/id", "readings": [{"pointer": "/v", "quantity": "value"}]}
    readings = parse({"id": 17, "v": [1, 2]}, {"mappings": [WEATHER, lab]}, topic="lab/kitchen-2")
    assert readings == [Reading("generic", "17", "value", [1, 2], None, instant(RECEIVED_AT))]
    assert parse({"id": "x", "v": None}, {"mappings": [WEATHER, lab]}, topic="lab/a-b") == []


BAD_OPTIONS: list[tuple[Any, str]] = [
    ([], "options"),
    ({}, "mappings"),
    ({"mappings": [], "x": 1}, "x"),
    ({"mappings": []}, "mappings"),
    ({"mappings": ["city"]}, "mappings[0]"),
    ({"mappings": [{**WEATHER, "extra": 1}]}, "mappings[0].extra"),
    ({"mappings": [{**WEATHER, "topic": "city/+/weather"}]}, "mappings[0].topic"),
    ({"mappings": [{**WEATHER, "topic": "city/{a}/{a}"}]}, "mappings[0].topic"),
    ({"mappings": [{**WEATHER, "topic": "city/{a"}]}, "mappings[0].topic"),
    ({"mappings": [{**WEATHER, "device": "{station}"}]}, "mappings[0].device"),
    ({"mappings": [{**WEATHER, "device": "/a~2"}]}, "mappings[0].device"),
    ({"mappings": [{**WEATHER, "readings": []}]}, "mappings[0].readings"),
    (
        {"mappings": [{**WEATHER, "readings": [{"pointer": "temp", "quantity": "value"}]}]},
        "mappings[0].readings[0].pointer",
    ),
    (
        {"mappings": [{**WEATHER, "readings": [{"pointer": "/t", "quantity": "heat"}]}]},
        "mappings[0].readings[0].quantity",
    ),
    (
        {"mappings": [{**WEATHER, "readings": [{"pointer": "/t", "quantity": ["value"]}]}]},
        "mappings[0].readings[0].quantity",
    ),
    (
        {"mappings": [{**WEATHER, "readings": [{"pointer": "/t", "quantity": "value", "unit": "degC"}]}]},
        "mappings[0].readings[0].unit",
    ),
    (
        {"mappings": [{**WEATHER, "readings": [{"pointer": "/t", "quantity": "value", "scale": "10"}]}]},
        "mappings[0].readings[0].scale",
    ),
    (
        {"mappings": [{**WEATHER, "readings": [{"pointer": "/t", "quantity": "value", "offset": True}]}]},
        "mappings[0].readings[0].offset",
    ),
    (
        {"mappings": [{**WEATHER, "readings": [{"pointer": "/t", "quantity": "value", "units": "W"}]}]},
        "mappings[0].readings[0].units",
    ),
    (
        {"mappings": [{**WEATHER, "readings": [{"pointer": "/t", "quantity": "value"}] * 2}]},
        "mappings[0].readings",
    ),
    ({"mappings": [{**WEATHER, "time": 3}]}, "mappings[0].time"),
    ({"mappings": [{**WEATHER, "time_format": "excel"}]}, "mappings[0].time_format"),
    ({"mappings": [{**WEATHER, "time_format": ["iso"]}]}, "mappings[0].time_format"),
]


@pytest.mark.parametrize(("options", "key"), BAD_OPTIONS)
def test_check_options_names_the_bad_key(options: Any, key: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(key)}: "):
        check_options(options)
    with pytest.raises(AdapterError) as error:  # parse never trusts its options either
        ADAPTER.parse(Message("city/x/weather", b"{}", RECEIVED_AT), context(options))
    assert error.value.field == "options"


def test_check_options_accepts_the_example() -> None:
    check_options(OPTIONS)


@pytest.mark.parametrize(
    ("topic", "payload", "field"),
    [
        ("city/x/weather/now", PAYLOAD, "topic"),
        ("town/x/weather", PAYLOAD, "topic"),
        ("city/x/weather", b"{", "payload"),
        ("city/x/weather", [PAYLOAD], "/ts"),
        ("city/x/weather", {**PAYLOAD, "temp": "warm"}, "/temp"),
        ("city/x/weather", {**PAYLOAD, "temp": True}, "/temp"),
        ("city/x/weather", {**PAYLOAD, "temp": "1e999"}, "/temp"),
        ("city/x/weather", {**PAYLOAD, "p": {}}, "/p/hpa"),
        ("city/x/weather", {**PAYLOAD, "p": {"hpa": float("nan")}}, "/p/hpa"),
        ("city/x/weather", {**PAYLOAD, "a/b": []}, "/a~1b/0"),
        ("city/x/weather", {k: v for k, v in PAYLOAD.items() if k != "ts"}, "/ts"),
        ("city/x/weather", {**PAYLOAD, "ts": "soon"}, "/ts"),
        ("city/x/weather", {**PAYLOAD, "ts": 1e20}, "/ts"),
    ],
)
def test_unreadable_messages_name_the_field(topic: str, payload: Any, field: str) -> None:
    with pytest.raises(AdapterError) as error:
        parse(payload, topic=topic)
    assert (error.value.adapter, error.value.field) == ("generic", field)


def test_iso_time_must_be_a_string() -> None:
    options = {"mappings": [{**WEATHER, "time_format": "iso"}]}
    with pytest.raises(AdapterError) as error:
        parse(PAYLOAD, options)
    assert error.value.field == "/ts"


def outcome(payload: bytes, options: Any = OPTIONS, topic: str = "city/st-42/weather") -> None:
    try:
        readings = ADAPTER.parse(Message(topic, payload, RECEIVED_AT), context(options))
    except AdapterError:
        return
    assert all(isinstance(r, Reading) for r in readings)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SAMPLE = json.dumps(PAYLOAD).encode()


@FUZZ
@given(st.one_of(JSON.map(lambda d: json.dumps(d).encode()), st.binary(max_size=64)), st.text(max_size=20))
def test_random_payloads_and_topics_only_read_or_fail_cleanly(payload: bytes, topic: str) -> None:
    outcome(payload, topic=topic)


@FUZZ
@given(st.integers(0, len(SAMPLE)))
def test_truncated_payloads_only_read_or_fail_cleanly(cut: int) -> None:
    outcome(SAMPLE[:cut])


@FUZZ
@given(st.data())
def test_mutated_payloads_and_options_only_read_or_fail_cleanly(data: st.DataObject) -> None:
    which = data.draw(st.sampled_from(["payload", "options"]))
    document: Any = PAYLOAD if which == "payload" else OPTIONS
    path = data.draw(st.sampled_from(paths(document)))
    changed = replaced(document, path, data.draw(JSON))
    if which == "payload":
        outcome(json.dumps(changed).encode())
    else:
        outcome(SAMPLE, options=changed)
