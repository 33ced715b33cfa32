# SPDX-License-Identifier: Apache-2.0
"""The demo city's devices keep their Datastreams: the vocabulary must not rename the streams or
change the ObservedProperties of devices already in the field (issue 12; else a migration note)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from adapters import load_adapters
from adapters.base import AdapterContext, Message
from hub.demo.devices import make_devices
from hub.demo.formats import build

FAMILY = {
    "shelly_pro3em": "shelly",
    "tasmota": "tasmota",
    "ttn_lht65n": "ttn",
    "airrohr": "sensor_community",
    "telraam": "telraam",
}
MODES = {"car": "car_count", "heavy": "heavy_vehicle_count", "bike": "bicycle_count"}
MODES["pedestrian"] = "pedestrian_count"
# kind -> {(stream or quantity, quantity, unit)} as the adapters gave them before the vocabulary
STREAMS = {
    "shelly_pro3em": {
        ("em:0/a_voltage", "voltage", "V"),
        ("em:0/total_act_power", "active_power", "W"),
        ("em:0/total_current", "current", "A"),
        ("emdata:0/total_act", "energy", "W.h"),
    },
    "ttn_lht65n": {
        ("air_temperature", "air_temperature", "Cel"),
        ("battery_voltage", "battery_voltage", "V"),
        ("relative_humidity", "relative_humidity", "%"),
    },
    "tasmota": {
        ("Power_curr", "active_power", "W"),
        ("Total_in", "energy", "kW.h"),
        *((f"power_l{n}", "active_power", "W") for n in (1, 2, 3)),
        ("voltage_l1", "voltage", "V"),
    },
    "airrohr": {
        ("BME280_humidity", "relative_humidity", "%"),
        ("BME280_pressure", "air_pressure", "Pa"),
        ("BME280_temperature", "air_temperature", "Cel"),
        ("SDS_P1", "pm10", "ug/m3"),
        ("SDS_P2", "pm2_5", "ug/m3"),
        ("signal", "signal_strength", "dB[mW]"),
    },
    "telraam": {
        *((quantity, quantity, "/h") for quantity in MODES.values()),
        *((f"{mode}{side}", quantity, "/h") for mode, quantity in MODES.items() for side in ("_lft", "_rgt")),
        ("speed_v85", "speed_v85", "km/h"),
    },
}


@pytest.mark.parametrize("kind", sorted(STREAMS))
def test_demo_device_keeps_its_datastreams(kind: str) -> None:
    device = next(d for d in make_devices(15, 7) if d.kind == kind)
    moment = datetime(2026, 3, 5, 10, tzinfo=UTC)
    topic, payload = build(device, moment, random.Random(1), ZoneInfo("Europe/Berlin"), 10_000)
    adapter = load_adapters()[FAMILY[kind]]
    readings = adapter.parse(Message(topic, payload, moment), AdapterContext())
    assert {(r.stream or r.quantity, r.quantity, r.unit) for r in readings} == STREAMS[kind]
