# SPDX-License-Identifier: Apache-2.0
"""TTN v3 adapter: the LHT65N sample, fallbacks, malformed uplinks, fuzzing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from adapter_helpers import FUZZ, JSON, RECEIVED_AT, context, message, mutated, parse_or_fail, sample_bytes
from hypothesis import given
from hypothesis import strategies as st

from adapters.base import AdapterError, Message
from adapters.ttn import ADAPTER
from schemas.reading import Reading

SAMPLE = "ttn_v3_uplink.json"
GATEWAY_TIME = datetime(2026, 3, 5, 10, 14, 7, 683511, tzinfo=UTC)
PROPERTIES = {
    "brand_id": "dragino",
    "model_id": "lht65n",
    "hardware_version": "_unknown_hw_version_",
    "firmware_version": "1.8",
    "band_id": "EU_863_870",
}


def uplink() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(sample_bytes(SAMPLE))
    return document


def parse(document: Any) -> list[Reading]:
    return ADAPTER.parse(message(SAMPLE, payload=json.dumps(document).encode()), context())


def reading(quantity: str, value: Any, unit: str | None, stream: str | None = None) -> Reading:
    return Reading(
        "ttn",
        "A84041F2C1836A5B",
        quantity,
        value,
        unit,
        (GATEWAY_TIME, GATEWAY_TIME),
        stream=stream,
        result_time=datetime(2026, 3, 5, 10, 14, 7, 912348, tzinfo=UTC),
        device_name="lht65n-courtyard-03",
        device_properties=PROPERTIES,
        sensor_model="dragino/lht65n",
        parameters={"gateway_id": "kerlink-townhall-roof", "rssi": -97, "snr": 7.25},
    )


def test_sample_uplink() -> None:
    assert ADAPTER.parse(message(SAMPLE), context()) == [
        reading("battery_voltage", 3.055, "V"),
        reading("relative_humidity", 48.7, "%"),
        reading("temperature", 21.44, "Cel", "TempC_DS"),
        reading("air_temperature", 21.62, "Cel"),
    ]


def test_unknown_model_network_time_location_and_best_gateway() -> None:
    document = uplink()
    up = document["uplink_message"]
    up["version_ids"]["model_id"] = "mystery"
    up["decoded_payload"] = {"TempC_SHT": 20, "flag": True, "nested": {"a": "x"}, "Bat_status": 2}
    up["rx_metadata"] = [{"rssi": -120, "snr": 1}, {"gateway_ids": {"gateway_id": "gw"}, "rssi": -80}]
    up["locations"] = {"user": {"latitude": 51.05, "longitude": 3.72, "source": "SOURCE_REGISTRY"}}
    del document["received_at"]
    [only] = parse(document)
    network_time = datetime(2026, 3, 5, 10, 14, 7, 705126, tzinfo=UTC)
    assert (only.quantity, only.value, only.unit, only.stream) == ("air_temperature", 20, "Cel", "TempC_SHT")
    assert only.stream_properties == {"path": "TempC_SHT"}
    assert only.phenomenon_time == (network_time, network_time)
    assert only.result_time is None
    assert only.location == {"type": "Point", "coordinates": [3.72, 51.05]}
    assert only.parameters == {"gateway_id": "gw", "rssi": -80}


def test_abp_device_without_dev_eui_is_keyed_by_device_id() -> None:
    document = uplink()
    del document["end_device_ids"]["dev_eui"]
    assert {r.device for r in parse(document)} == {"lht65n-courtyard-03"}


def broken(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    document = uplink()
    node = document
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return document


UP = "uplink_message"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ((UP, "decoded_payload"), KeyError, "ttn: uplink_message.decoded_payload missing"),
        ((UP, "decoded_payload"), [1], "ttn: uplink_message.decoded_payload is not an object"),
        (
            (UP, "decoded_payload", "BatV"),
            "3.0 volts",
            "ttn: uplink_message.decoded_payload.BatV is not a finite",
        ),
        ((UP,), KeyError, "ttn: uplink_message missing"),
        (("end_device_ids",), "x", "ttn: end_device_ids is not an object"),
        (("end_device_ids", "dev_eui"), 7, "ttn: end_device_ids.dev_eui is not a non-empty string"),
        ((UP, "rx_metadata"), {}, "ttn: uplink_message.rx_metadata is not a list"),
        ((UP, "rx_metadata", 1), 5, "ttn: uplink_message.rx_metadata[1] is not an object"),
        ((UP, "rx_metadata", 0, "rssi"), "-97", "ttn: uplink_message.rx_metadata[0].rssi is not a finite"),
        (
            (UP, "rx_metadata", 0, "time"),
            "yesterday",
            "ttn: uplink_message.rx_metadata[0].time is not an ISO",
        ),
        (
            (UP, "rx_metadata", 0, "time"),
            "2026-03-05T10:14:07",
            "ttn: uplink_message.rx_metadata[0].time has no",
        ),
        ((UP, "rx_metadata"), KeyError, None),  # then the network time is used: still readable
        (("received_at",), 17, "ttn: received_at is not a non-empty string"),
        ((UP, "version_ids"), "lht65n", "ttn: uplink_message.version_ids is not an object"),
        (
            (UP, "locations"),
            {"user": {"latitude": 91, "longitude": 0}},
            "ttn: uplink_message.locations.user is",
        ),
        ((UP, "locations"), {"user": {"latitude": 1}}, "ttn: uplink_message.locations.user.longitude is not"),
    ],
)
def test_malformed_uplinks_name_the_field(path: tuple[Any, ...], value: Any, expected: str | None) -> None:
    if expected is None:
        assert parse(broken(path, value))
        return
    with pytest.raises(AdapterError) as error:
        parse(broken(path, value))
    assert str(error.value).startswith(expected)


def test_no_time_at_all() -> None:
    document = broken((UP, "rx_metadata"), [])
    del document[UP]["received_at"]
    with pytest.raises(AdapterError, match=r"^ttn: uplink_message.received_at is not a non-empty string$"):
        parse(document)


def test_payload_that_is_not_an_object() -> None:
    with pytest.raises(AdapterError, match=r"^ttn: payload is not an object$"):
        parse([1, 2])


def outcome(payload: bytes) -> None:
    """The only outcomes: readings in the vocabulary, or an AdapterError."""
    parse_or_fail(ADAPTER, Message("v3/a@ttn/devices/d/up", payload, RECEIVED_AT))


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
