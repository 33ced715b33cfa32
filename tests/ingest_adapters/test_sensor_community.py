# SPDX-License-Identifier: Apache-2.0
"""sensor.community adapter: the airRohr sample, other sensors, malformed pushes, fuzzing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from adapter_helpers import FUZZ, JSON, RECEIVED_AT, context, message, mutated, parse_or_fail, sample_bytes
from hypothesis import given
from hypothesis import strategies as st

from adapters.base import AdapterError, Message
from adapters.sensor_community import ADAPTER
from schemas.reading import Reading

SAMPLE = "sensor_community_push.json"
WINDOW = (RECEIVED_AT - timedelta(milliseconds=145000), RECEIVED_AT)


def parse(document: Any) -> list[Reading]:
    return ADAPTER.parse(message(SAMPLE, payload=json.dumps(document).encode()), context())


def push(*values: tuple[str, Any], **extra: Any) -> dict[str, Any]:
    entries = [{"value_type": value_type, "value": value} for value_type, value in values]
    return {"esp8266id": 42, "sensordatavalues": entries, **extra}


def reading(quantity: str, value: float, unit: str, stream: str, model: str | None) -> Reading:
    return Reading(
        "sensor_community",
        "esp8266-13463745",
        quantity,
        value,
        unit,
        WINDOW,
        stream=stream,
        device_properties={"software_version": "NRZ-2020-133"},
        sensor_model=model,
    )


def test_sample_push() -> None:
    assert ADAPTER.parse(message(SAMPLE), context()) == [
        reading("pm10", 18.43, "ug/m3", "SDS_P1", "SDS011"),
        reading("pm2_5", 11.07, "ug/m3", "SDS_P2", "SDS011"),
        reading("air_temperature", 8.62, "Cel", "BME280_temperature", "BME280"),
        reading("air_pressure", 101246.81, "Pa", "BME280_pressure", "BME280"),
        reading("relative_humidity", 81.35, "%", "BME280_humidity", "BME280"),
        reading("signal_strength", -71.0, "dB[mW]", "signal", None),
    ]


def test_other_sensors_gps_and_no_interval() -> None:
    document = push(
        ("PMS_P0", "3.1"),
        ("SHT3X_humidity", 55),
        ("temperature", "4.2"),
        ("GPS_lat", "51.05"),
        ("GPS_lon", "3.72"),
        ("GPS_date", "03/05/2026"),
        ("noise_level", "41.5"),
    )
    readings = parse(document)
    assert [(r.quantity, r.value, r.unit, r.stream, r.sensor_model) for r in readings] == [
        ("pm1", 3.1, "ug/m3", "PMS_P0", "Plantower PMS"),
        ("relative_humidity", 55.0, "%", "SHT3X_humidity", "SHT3X"),
        ("air_temperature", 4.2, "Cel", "temperature", None),
        ("sound_level", 41.5, "dB", "noise_level", None),
    ]
    assert {r.device for r in readings} == {"esp8266-42"}
    assert readings[0].phenomenon_time == (RECEIVED_AT, RECEIVED_AT)
    assert readings[0].location == {"type": "Point", "coordinates": [3.72, 51.05]}


VALUES = "sensor_community: sensordatavalues"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([1], "sensor_community: payload is not an object"),
        ({"sensordatavalues": []}, "sensor_community: esp8266id missing"),
        (push(esp8266id=True), "sensor_community: esp8266id is not a chip id"),
        ({"esp8266id": "1"}, "sensor_community: sensordatavalues missing"),
        ({"esp8266id": "1", "sensordatavalues": {}}, "sensor_community: sensordatavalues is not a list"),
        ({"esp8266id": "1", "sensordatavalues": ["x"]}, f"{VALUES}[0] is not an object"),
        ({"esp8266id": "1", "sensordatavalues": [{"value": "1"}]}, f"{VALUES}[0].value_type is not a"),
        ({"esp8266id": "1", "sensordatavalues": [{"value_type": "SDS_P1"}]}, f"{VALUES}[0].value missing"),
        (push(("SDS_P1", "n/a")), f"{VALUES}[0].value is not a number: 'n/a'"),
        (push(("SDS_P1", None)), f"{VALUES}[0].value is not a number"),
        (push(("BME280_pressure", "nan")), f"{VALUES}[0].value is not a finite number"),
        (push(("SDS_P1", "1"), ("interval", "-5")), f"{VALUES}[1].value is a negative interval"),
        (push(("interval", "1e300")), f"{VALUES}[0].value is out of range"),
        (push(("GPS_lat", "95"), ("GPS_lon", "3")), f"{VALUES}[0].value and GPS_lon are not a WGS84"),
    ],
)
def test_malformed_pushes_name_the_field(document: Any, expected: str) -> None:
    with pytest.raises(AdapterError) as error:
        parse(document)
    assert str(error.value).startswith(expected)


def outcome(payload: bytes) -> None:
    """The only outcomes: readings in the vocabulary, or an AdapterError."""
    readings = parse_or_fail(ADAPTER, Message("airrohr/esp8266-1/data", payload, RECEIVED_AT))
    for r in readings:
        assert r.phenomenon_time[1] == RECEIVED_AT


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
