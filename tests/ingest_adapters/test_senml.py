# SPDX-License-Identifier: Apache-2.0
"""SenML adapter: the sample pack, RFC 8428 resolution rules, malformed packs, fuzzing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from adapter_helpers import FUZZ, JSON, RECEIVED_AT, context, message, mutated, parse_or_fail, sample_bytes
from hypothesis import given
from hypothesis import strategies as st

from adapters.base import AdapterError, Message
from adapters.senml import ADAPTER
from schemas.reading import Reading

SAMPLE = "senml_pack.json"
TOPIC = "senml/urn:dev:mac:0024befffe804ff1"
DEVICE = "urn:dev:mac:0024befffe804ff1"
T0 = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=300)


def parse(pack: Any, topic: str = TOPIC) -> list[Reading]:
    return ADAPTER.parse(Message(topic, json.dumps(pack).encode(), RECEIVED_AT), context())


def reading(quantity: str, value: Any, unit: str | None, at: datetime, stream: str | None) -> Reading:
    return Reading("senml", DEVICE, quantity, value, unit, (at, at), stream=stream)


def test_sample_pack() -> None:
    assert ADAPTER.parse(message(SAMPLE), context()) == [
        reading("air_temperature", 21.4, "Cel", T0, "temperature"),
        reading("relative_humidity", 46.2, "%", T0, "humidity"),
        reading("co2", 612, "[ppm]", T0, None),
        reading("air_temperature", 21.6, "Cel", T1, "temperature"),
        reading("relative_humidity", 45.9, "%", T1, "humidity"),
        reading("co2", 655, "[ppm]", T1, None),
        reading("active_power", 1432.5, "W", T1, "power"),
        reading("energy", 5123894.0, "W.h", T1, None),
        reading("value", False, None, T1, "window-open"),
        reading("value", "3.2.1", None, T0, "firmware"),
    ]


def test_base_value_base_sum_base_unit_and_relative_time() -> None:
    pack = [
        {"bn": "dev/", "bu": "W", "bv": 100, "bs": 7200, "n": "power", "v": 5, "t": -60},
        {"n": "power", "s": 3600},
        {"n": "raw", "vd": "AQI", "bu": "Cel"},
    ]
    before = RECEIVED_AT - timedelta(seconds=60)
    assert parse(pack) == [
        Reading("senml", "dev", "active_power", 105, "W", (before, before), stream="power"),
        Reading("senml", "dev", "energy", 3.0, "W.h", (RECEIVED_AT, RECEIVED_AT), stream="power"),
        Reading("senml", "dev", "value", "AQI", None, (RECEIVED_AT, RECEIVED_AT), stream="raw"),
    ]


def test_value_and_sum_in_one_record_and_device_from_topic() -> None:
    readings = parse([{"n": "energy", "u": "Wh", "v": 2.5, "s": 10}], topic="senml/meter-7")
    assert [(r.device, r.quantity, r.value, r.unit, r.stream) for r in readings] == [
        ("meter-7", "energy", 2.5, "W.h", None),
        ("meter-7", "energy", 10, "W.h", "energy_sum"),
    ]


def test_unknown_extension_without_underscore_is_ignored() -> None:
    assert len(parse([{"bn": "d:", "n": "x", "v": 1, "foo": [1]}])) == 1


@pytest.mark.parametrize(
    ("pack", "expected"),
    [
        ({"bn": "d:"}, "senml: payload is not a SenML pack (JSON array)"),
        ([1], "senml: [0] is not a SenML record (JSON object)"),
        ([{"bn": 5, "v": 1}], "senml: [0].bn is not a string"),
        ([{"bn": "d:", "bt": "now", "v": 1}], "senml: [0].bt is not a number"),
        ([{"bn": "d:", "n": "x", "v": "1"}], "senml: [0].v is not a number"),
        ([{"bn": "d:", "n": "x", "v": True}], "senml: [0].v is not a number"),
        ([{"bn": "d:", "n": "x", "vb": 1}], "senml: [0].vb is not a boolean"),
        ([{"bn": "d:", "n": "x", "vs": 1}], "senml: [0].vs is not a string"),
        ([{"bn": "d:", "n": "x", "v": 1, "vs": "a"}], "senml: [0] has more than one value (v, vs)"),
        ([{"bn": "d:", "n": "x"}], "senml: [0] has neither a value nor a sum"),
        ([{"bn": "d:", "n": "x", "s": [1]}], "senml: [0].s is not a number"),
        ([{"bn": "d:", "n": "x", "v": 1, "u": "furlong"}], "senml: [0].u is an unknown SenML unit 'furlong'"),
        ([{"bn": "d:", "n": "x", "v": 1, "t": 1e300}], "senml: [0].t resolves to a time out of range"),
        ([{"bn": "d:", "n": " x", "v": 1}], "senml: [0].n resolves to an invalid SenML name 'd: x'"),
        ([{"bn": "d:", "n": "x", "v": 1, "ct_": "60"}], "senml: [0].ct_ is an extension"),
        ([{"bn": "d:", "n": "x", "v": 1e308, "bv": 1e308}], "senml: [0].v is not a finite number"),
    ],
)
def test_malformed_packs_name_the_field(pack: Any, expected: str) -> None:
    with pytest.raises(AdapterError) as error:
        parse(pack)
    assert str(error.value).startswith(expected)


def test_payload_that_is_not_json() -> None:
    with pytest.raises(AdapterError, match=r"^senml: payload is not JSON$"):
        ADAPTER.parse(message(SAMPLE, payload=b"[{"), context())


def outcome(payload: bytes, topic: str = TOPIC) -> None:
    """The only outcomes: readings in the vocabulary, or an AdapterError."""
    parse_or_fail(ADAPTER, Message(topic, payload, RECEIVED_AT))


@FUZZ
@given(st.one_of(JSON.map(lambda d: json.dumps(d).encode()), st.binary(max_size=64)), st.text(max_size=20))
def test_random_payloads_only_read_or_fail_cleanly(payload: bytes, topic: str) -> None:
    outcome(payload, topic)


@FUZZ
@given(st.integers(0, len(sample_bytes(SAMPLE))))
def test_truncated_sample_only_reads_or_fails_cleanly(cut: int) -> None:
    outcome(sample_bytes(SAMPLE)[:cut])


@FUZZ
@given(mutated(sample_bytes(SAMPLE)))
def test_mutated_sample_only_reads_or_fails_cleanly(payload: bytes) -> None:
    outcome(payload)
