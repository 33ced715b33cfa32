# SPDX-License-Identifier: Apache-2.0
"""The field vocabulary and the unit table every adapter shares (adapters.keys, adapters.units)."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.keys import ALIASES, UNKNOWN, Term, measurement, normalise, term
from adapters.units import UNIT_ALIASES, UNITS, ucum
from adapters.vocabulary import QUANTITIES


@pytest.mark.parametrize(
    ("key", "normalised"),
    [
        ("TempC_SHT", "temp_c_sht"),
        ("BatV", "bat_v"),
        ("PM2.5", "pm2_5"),
        ("batteryVoltage", "battery_voltage"),
        ("DS18B20-1", "ds18b20_1"),
        ("sensors.temperature", "sensors_temperature"),
        ("CO2", "co2"),
    ],
)
def test_keys_are_normalised(key: str, normalised: str) -> None:
    assert normalise(key) == normalised


@pytest.mark.parametrize(
    ("key", "quantity", "unit"),
    [
        # vendor spellings of TTN Device Repository formatters
        ("TempC_SHT", "air_temperature", "Cel"),
        ("Hum_SHT", "relative_humidity", "%"),
        ("TempC_DS", "temperature", "Cel"),
        ("TempC_DS18B20", "temperature", "Cel"),
        ("BatV", "battery_voltage", "V"),
        ("Bat", "battery_voltage", "V"),
        ("water_SOIL", "soil_moisture", "%"),
        ("temp_SOIL", "soil_temperature", "Cel"),
        ("conduct_SOIL", "soil_conductivity", "uS/cm"),
        ("vdd", "battery_voltage", "mV"),
        # plain keys
        ("temperature", "air_temperature", "Cel"),
        ("humidity", "relative_humidity", "%"),
        ("co2", "co2", "[ppm]"),
        ("tvoc", "tvoc", "[ppb]"),
        ("pm2_5", "pm2_5", "ug/m3"),
        ("illumination", "illuminance", "lx"),
        ("pressure", "air_pressure", "hPa"),
        ("battery", "battery", "%"),
        # unit suffixes, also changing the quantity with the dimension
        ("temperature_f", "air_temperature", "[degF]"),
        ("temp_c", "air_temperature", "Cel"),
        ("humidity_pct", "relative_humidity", "%"),
        ("battery_mv", "battery_voltage", "mV"),
        ("battery_v", "battery_voltage", "V"),
        ("co2_ppm", "co2", "[ppm]"),
        ("pressure_pa", "air_pressure", "Pa"),
        # qualifiers, channels, sensor prefixes
        ("ESP32_Temperature", "device_temperature", "Cel"),
        ("Temperature1", "air_temperature", "Cel"),
        ("Current2", "current", "A"),
        ("BME280_temperature", "air_temperature", "Cel"),
        ("externalTemperature", "temperature", "Cel"),
        ("temperatureSensor_1", "air_temperature", "Cel"),
        # Tasmota names
        ("DewPoint", "dew_point", "Cel"),
        ("SeaPressure", "sea_level_pressure", "hPa"),
        ("CarbonDioxide", "co2", "[ppm]"),
        ("eCO2", "co2", "[ppm]"),
        ("E_in", "energy", "kW.h"),
        ("E_out", "energy_returned", "kW.h"),
    ],
)
def test_known_keys_have_a_quantity_and_a_unit(key: str, quantity: str, unit: str) -> None:
    assert term(key) == Term(quantity, unit)


@pytest.mark.parametrize(
    "key",
    [
        "device_id",
        "protocol_version",
        "dev_eui",
        "Bat_status",
        "fCnt",
        "f_port",
        "rssi",
        "snr",
        "gateway_rssi",
        "firmware_version",
        "FW",
        "Mod",
        "Interrupt_flag",
        "ALARM_status",
        "Latitude",
        "Work_mode",
        "sensor_type",
        "Meter_Id",
    ],
)
def test_keys_that_are_no_measurement_are_never_read(key: str) -> None:
    assert term(key) is None
    assert measurement(key, 1) is None


@pytest.mark.parametrize("key", ["Roll", "flux", "A0", "light_level", "CF2.5"])
def test_unknown_numeric_keys_are_unknown_not_dropped(key: str) -> None:
    assert term(key) is UNKNOWN
    assert measurement(key, 3) == (UNKNOWN, 3)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("Bat", "3.384 V", (Term("battery_voltage", "V"), 3.384)),
        ("TempC_DS18B20", "30.11 °C", (Term("temperature", "Cel"), 30.11)),
        ("conduct_SOIL", "0 uS/cm", (Term("soil_conductivity", "uS/cm"), 0.0)),
        ("water_SOIL", "25.17", (Term("soil_moisture", "%"), 25.17)),
        ("Distance", "1523 mm", (Term("distance", "mm"), 1523.0)),
        ("Bat", "3.4 mV", (Term("battery_voltage", "mV"), 3.4)),
        ("temperature", "hot", None),  # text that is no number
        ("temperature", "21 furlongs", None),  # a unit nobody knows
        ("temperature", True, None),  # booleans are flags
        ("mystery", "12", None),  # text of an unknown key
        ("temperature", {"a": 1}, None),
    ],
)
def test_values_as_text_with_units(key: str, value: Any, expected: tuple[Term, float] | None) -> None:
    assert measurement(key, value) == expected


def test_every_alias_names_a_vocabulary_quantity_and_unit() -> None:
    for quantity, (unit, _) in ALIASES.items():
        assert quantity in QUANTITIES
        assert unit is None or unit in UNITS
    for code in UNIT_ALIASES.values():
        assert code in UNITS


@pytest.mark.parametrize(
    ("spelling", "code"),
    [
        ("°C", "Cel"),
        ("℃", "Cel"),
        ("%RH", "%"),
        ("µg/m³", "ug/m3"),
        ("kWh", "kW.h"),
        ("KWH", "kW.h"),
        ("dBm", "dB[mW]"),
        ("mmHg", "mm[Hg]"),
        ("inHg", "[in_i'Hg]"),
        ("lux", "lx"),
        ("furlongs", None),
    ],
)
def test_unit_spellings_resolve_to_ucum(spelling: str, code: str | None) -> None:
    assert ucum(spelling) == code
