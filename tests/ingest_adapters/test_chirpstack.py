# SPDX-License-Identifier: Apache-2.0
"""ChirpStack v4 adapter: the Elsys ERS CO2 sample, fallbacks, malformed events, fuzzing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from adapter_helpers import FUZZ, JSON, RECEIVED_AT, context, message, mutated, parse_or_fail, sample_bytes
from hypothesis import given
from hypothesis import strategies as st

from adapters.base import AdapterError, Message
from adapters.chirpstack import ADAPTER
from schemas.reading import Reading

SAMPLE = "chirpstack_v4_uplink.json"
GW_TIME = datetime(2026, 3, 5, 10, 15, 31, 791337, tzinfo=UTC)
EVENT_TIME = datetime(2026, 3, 5, 10, 15, 31, 804172, tzinfo=UTC)


def event() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(sample_bytes(SAMPLE))
    return document


def parse(document: Any) -> list[Reading]:
    return ADAPTER.parse(message(SAMPLE, payload=json.dumps(document).encode()), context())


def reading(quantity: str, value: Any, unit: str, path: str) -> Reading:
    return Reading(
        "chirpstack",
        "a81758fffe05e6fb",
        quantity,
        value,
        unit,
        (GW_TIME, GW_TIME),
        result_time=EVENT_TIME,
        device_name="ers-co2-classroom-2-14",
        device_properties={"building": "KA Ledeberg", "room": "2.14"},
        sensor_model="Elsys ERS CO2 (EU868, class A)",
        parameters={
            "deduplicationId": "4c1e7a90-3b5d-4f0e-9a2c-6d8b1f3e5a77",
            "gateway_id": "0016c001f11a2b3c",
            "rssi": -84,
            "snr": 9.5,
        },
        stream_properties={"path": path},
    )


def test_sample_event() -> None:
    readings = ADAPTER.parse(message(SAMPLE), context())
    assert readings == [
        reading("air_temperature", 21.7, "Cel", "temperature"),
        reading("relative_humidity", 42.0, "%", "humidity"),
        reading("illuminance", 300.0, "lx", "light"),
        reading("motion", 3, "{count}", "motion"),
        reading("co2", 675.0, "[ppm]", "co2"),
        reading("battery_voltage", 3610.0, "mV", "vdd"),
    ]
    assert type(readings[3].value) is int  # a count, although Protobuf JSON sent 3.0


def test_unknown_keys_and_event_time_without_gateway_time() -> None:
    document = event()
    document["object"] = {
        "temperature": 20.5,
        "flux": 12,
        "status": "ok",
        "device_id": 7,
        "protocol_version": 2,
        "nested": {"a": 1, "sensors": {"temperature": 19.5}},
        "alarm": True,
    }
    del document["rxInfo"][0]["gwTime"]
    readings = parse(document)
    assert [(r.quantity, r.value, r.unit, r.stream, r.stream_properties) for r in readings] == [
        ("air_temperature", 20.5, "Cel", None, {"path": "temperature"}),
        ("value", 12, None, "flux", {"path": "flux"}),
        ("value", 1, None, "nested.a", {"path": "nested.a"}),
        (
            "air_temperature",
            19.5,
            "Cel",
            "nested.sensors.temperature",
            {"path": "nested.sensors.temperature"},
        ),
    ]
    assert readings[0].phenomenon_time == (EVENT_TIME, EVENT_TIME)


def broken(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    document = event()
    node = document
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return document


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("object",), KeyError, "chirpstack: object missing (no device-profile codec"),
        (("object",), None, "chirpstack: object missing (no device-profile codec"),
        (("object",), "AQDZ", "chirpstack: object is not an object"),
        (("deviceInfo",), KeyError, "chirpstack: deviceInfo missing"),
        (("deviceInfo", "devEui"), KeyError, "chirpstack: deviceInfo.devEui is not a non-empty string"),
        (("deviceInfo", "tags"), ["a"], "chirpstack: deviceInfo.tags is not an object"),
        (("deviceInfo", "deviceName"), 3, "chirpstack: deviceInfo.deviceName is not a non-empty string"),
        (("rxInfo",), {"a": 1}, "chirpstack: rxInfo is not a list"),
        (("rxInfo", 0), "gw", "chirpstack: rxInfo[0] is not an object"),
        (("rxInfo", 0, "gwTime"), "noon", "chirpstack: rxInfo[0].gwTime is not an ISO 8601 time"),
        (("rxInfo", 0, "snr"), [], "chirpstack: rxInfo[0].snr is not a finite number"),
        (("time",), "2026-03-05", "chirpstack: time has no UTC offset"),
        (("deduplicationId",), 5, "chirpstack: deduplicationId is not a non-empty string"),
    ],
)
def test_malformed_events_name_the_field(path: tuple[Any, ...], value: Any, expected: str) -> None:
    with pytest.raises(AdapterError) as error:
        parse(broken(path, value))
    assert str(error.value).startswith(expected)


def test_no_time_at_all() -> None:
    document = broken(("rxInfo",), [])
    del document["time"]
    with pytest.raises(AdapterError, match=r"^chirpstack: time missing$"):
        parse(document)


def outcome(payload: bytes) -> None:
    """The only outcomes: readings in the vocabulary, or an AdapterError."""
    parse_or_fail(ADAPTER, Message("application/a/device/d/event/up", payload, RECEIVED_AT))


@FUZZ
@given(st.one_of(JSON.map(lambda d: json.dumps(d).encode()), st.binary(max_size=64)))
def test_random_payloads_only_read_or_fail_cleanly(payload: bytes) -> None:
    outcome(payload)


@FUZZ
@given(st.integers(0, len(sample_bytes(SAMPLE))))
def test_truncated_sample_only_reads_or_fails_cleanly(cut: int) -> None:
    outcome(sample_bytes(SAMPLE)[:cut])


@FUZZ
@given(mutated(sample_bytes(SAMPLE)))
def test_mutated_sample_only_reads_or_fails_cleanly(payload: bytes) -> None:
    outcome(payload)
