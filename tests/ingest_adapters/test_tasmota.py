# SPDX-License-Identifier: Apache-2.0
"""Tasmota SENSOR telemetry (ENERGY and SML sections) -> readings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from adapter_helpers import FUZZ, JSON, RECEIVED_AT, context, message, mutated, parse_or_fail, sample_bytes
from hypothesis import given
from hypothesis import strategies as st

from adapters.base import AdapterError, instant
from adapters.tasmota import ADAPTER
from schemas.reading import Reading

PLUG = "tasmota_energy_sensor.json"
METER = "tasmota_sml_sensor.json"
# 11:15 in Berlin (CET, UTC+1) on 5 March 2026
LOCAL_1115 = instant(datetime(2026, 3, 5, 10, 15, tzinfo=UTC))


def test_energy_block() -> None:
    readings = ADAPTER.parse(message(PLUG), context())
    properties = {"total_start_time": "2025-10-12T12:03:27+00:00"}  # CEST, UTC+2
    rows = [
        ("Total", "energy", 187.412, "kW.h"),
        ("Yesterday", "energy", 1.205, "kW.h"),
        ("Today", "energy", 0.874, "kW.h"),
        ("Period", "energy_delta", 10, "W.h"),
        ("Power", "active_power", 118, "W"),
        ("ApparentPower", "apparent_power", 131, "V.A"),
        ("ReactivePower", "reactive_power", 57, "V.A"),
        ("Factor", "power_factor", 0.90, "1"),
        ("Voltage", "voltage", 231, "V"),
        ("Current", "current", 0.568, "A"),
    ]
    assert readings == [
        Reading("tasmota", "kitchen-kettle-plug", q, v, u, LOCAL_1115, s, device_properties=properties)
        for s, q, v, u in rows
    ]


def test_sml_block_is_the_meter() -> None:
    readings = ADAPTER.parse(message(METER), context())
    rows = [
        ("Total_in", "energy", 13502.4417, "kW.h"),
        ("Total_out", "energy_returned", 2874.1093, "kW.h"),
        ("Power_curr", "active_power", -1264, "W"),
        ("power_l1", "active_power", -402, "W"),
        ("power_l2", "active_power", -455, "W"),
        ("power_l3", "active_power", -407, "W"),
        ("voltage_l1", "voltage", 231.2, "V"),
        ("voltage_l2", "voltage", 230.6, "V"),
        ("voltage_l3", "voltage", 232.0, "V"),
    ]
    assert readings == [
        Reading("tasmota", "0a01454d480000b8e3f1", q, v, u, LOCAL_1115, s) for s, q, v, u in rows
    ]


def sensor(time: Any = "2026-07-01T08:00:00", **sections: Any) -> bytes:
    return json.dumps({"Time": time, **sections}).encode()


def test_summer_time_custom_section_unknown_keys_and_channels() -> None:
    payload = sensor(
        Heat={"Total_in": 5.5, "Flow_temp": 61.5, "Meter_Id": 4711},
        ENERGY={"Power": [12, 0], "Custom": 3, "Note": "x"},
        AM2301={"Temperature": 21.3},
        TempUnit="C",
    )
    readings = ADAPTER.parse(message(METER, topic="tele/boiler/SENSOR", payload=payload), context())
    when = instant(datetime(2026, 7, 1, 6, 0, tzinfo=UTC))  # CEST
    assert readings == [
        Reading("tasmota", "4711", "energy", 5.5, "kW.h", when, "Total_in"),
        Reading("tasmota", "4711", "air_temperature", 61.5, "Cel", when, "Flow_temp"),
        Reading("tasmota", "boiler", "active_power", 12, "W", when, "Power/1"),
        Reading("tasmota", "boiler", "active_power", 0, "W", when, "Power/2"),
        Reading("tasmota", "boiler", "value", 3, None, when, "ENERGY/Custom"),
        Reading(
            "tasmota",
            "boiler",
            "air_temperature",
            21.3,
            "Cel",
            when,
            "AM2301/Temperature",
            stream_properties={"sensor": "AM2301"},
        ),
    ]


def test_named_sml_section_without_meter_id_and_explicit_offset() -> None:
    payload = sensor("2026-03-05T11:15:00+00:00", Gas={"Count": 12.5})
    readings = ADAPTER.parse(message(METER, payload=payload), context({"sml_sections": ["Gas"]}))
    when = instant(datetime(2026, 3, 5, 11, 15, tzinfo=UTC))
    assert readings == [Reading("tasmota", "hichi-ir-meter", "pulse_count", 12.5, "{count}", when, "Count")]


def test_unsynced_clock_falls_back_to_receive_time() -> None:
    payload = sensor("1970-01-01T00:03:10", ENERGY={"Power": 5})
    [reading] = ADAPTER.parse(message(PLUG, payload=payload), context())
    assert reading.phenomenon_time == instant(RECEIVED_AT)


@pytest.mark.parametrize(
    ("topic", "payload", "options", "field"),
    [
        (None, b"not json", {}, "payload"),
        (None, b'"ENERGY"', {}, "payload"),
        ("SENSOR", None, {}, "topic"),
        ("tele//SENSOR", None, {}, "topic"),
        (None, b'{"ENERGY": {"Power": 1}}', {}, "Time"),
        (None, sensor(1772705700, ENERGY={}), {}, "Time"),
        (None, sensor("yesterday", ENERGY={}), {}, "Time"),
        (None, sensor(ENERGY={"Power": "118"}), {}, "ENERGY.Power"),
        (None, sensor(ENERGY={"Power": [1, None]}), {}, "ENERGY.Power"),
        (None, sensor(ENERGY={"Total": True}), {}, "ENERGY.Total"),
        (None, sensor(ENERGY={"TotalStartTime": 5}), {}, "ENERGY.TotalStartTime"),
        (None, sensor(SML={"Total_in": {"v": 1}}), {}, "SML.Total_in"),
        (None, sensor(SML={"Total_in": 1, "Meter_Id": ["a"]}), {}, "SML.Meter_Id"),
        (None, sensor(SML={"Total_in": 1, "Meter_Id": ""}), {}, "SML.Meter_Id"),
        (None, sensor(ENERGY={}), {"sml_sections": "SML"}, "options.sml_sections"),
    ],
)
def test_malformed_telemetry_names_the_field(
    topic: str | None, payload: bytes | None, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(AdapterError) as error:
        ADAPTER.parse(message(PLUG, topic=topic, payload=payload), context(options))
    assert (error.value.adapter, error.value.field) == ("tasmota", field)


def outcome(payload: bytes) -> None:
    """The only outcomes: readings in the vocabulary, or an AdapterError."""
    parse_or_fail(ADAPTER, message(PLUG, payload=payload))


SAMPLES = st.sampled_from([PLUG, METER])


@FUZZ
@given(st.one_of(JSON.map(lambda d: json.dumps(d).encode()), st.binary(max_size=64)))
def test_random_payloads_only_read_or_fail_cleanly(payload: bytes) -> None:
    outcome(payload)


@FUZZ
@given(
    SAMPLES.flatmap(
        lambda name: st.integers(0, len(sample_bytes(name))).map(lambda n: sample_bytes(name)[:n])
    )
)
def test_truncated_samples_only_read_or_fail_cleanly(payload: bytes) -> None:
    outcome(payload)


@FUZZ
@given(SAMPLES.flatmap(lambda name: mutated(sample_bytes(name))))
def test_mutated_samples_only_read_or_fail_cleanly(payload: bytes) -> None:
    outcome(payload)


@FUZZ
@given(st.text(max_size=30))
def test_random_times_only_read_or_fail_cleanly(time: str) -> None:
    outcome(sensor(time, ENERGY={"Power": 1}))


@pytest.mark.parametrize(
    ("settings", "block", "expected"),
    [
        ({"TempUnit": "F"}, {"Temperature": 70.3}, ("air_temperature", 70.3, "[degF]")),
        ({"TempUnit": "C"}, {"Temperature": 21.3}, ("air_temperature", 21.3, "Cel")),
        ({"PressureUnit": "inHg"}, {"Pressure": 29.92}, ("air_pressure", 29.92, "[in_i'Hg]")),
        ({"PressureUnit": "mmHg"}, {"Pressure": 760.1}, ("air_pressure", 760.1, "mm[Hg]")),
        ({"SpeedUnit": "kn"}, {"Speed": 12.5}, ("speed", 12.5, "[kn_i]")),
        ({"SpeedUnit": "m/s"}, {"Speed": 3.2}, ("speed", 3.2, "m/s")),
        ({"SpeedUnit": "ft/s"}, {"Speed": 9.0}, ("speed", 9.0, "[ft_i]/s")),
    ],
)
def test_unit_settings_of_the_document(
    settings: dict[str, str], block: dict[str, Any], expected: tuple[str, float, str]
) -> None:
    payload = sensor(SENSOR=block, **settings)
    [reading] = ADAPTER.parse(message(PLUG, payload=payload), context())
    assert (reading.quantity, reading.value, reading.unit) == expected


def test_an_unknown_unit_setting_names_it() -> None:
    payload = sensor(BME280={"Pressure": 1.0}, PressureUnit="furlongs")
    with pytest.raises(AdapterError, match="PressureUnit"):
        ADAPTER.parse(message(PLUG, payload=payload), context())


def test_probes_are_named_by_their_id_and_text_only_blocks_give_nothing() -> None:
    payload = sensor(**{"DS18B20-1": {"Id": "0316A2795E4A", "Temperature": 58.3}, "Switch1": "ON"})
    [probe] = ADAPTER.parse(message(PLUG, payload=payload), context())
    assert (probe.quantity, probe.stream, probe.unit) == (
        "temperature",
        "DS18B20:0316A2795E4A/Temperature",
        "Cel",
    )
    assert probe.stream_properties == {"sensor": "DS18B20", "sensor_id": "0316A2795E4A"}
    assert ADAPTER.parse(message(PLUG, payload=sensor(Switch1="ON")), context()) == []
