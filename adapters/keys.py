# SPDX-License-Identifier: Apache-2.0
"""The field vocabulary: the keys payload formatters and firmware emit -> quantity and UCUM unit.

Shared by every adapter that meets free-form keys (TTN and ChirpStack codecs, Tasmota sensor
blocks, SenML record names). A key is normalised (camelCase split, lower case, separators to
`_`), then matched whole, then by its longest run of tokens that the table knows: the token
after the match may state the unit (`temperature_f`, `BatV`, `TempC_SHT`), the others qualify
it (`TempC_DS` is a probe, `temp_SOIL` the soil). Keys that are not measurements (ids, radio
link counters, versions, modes, flags) give None and never become Datastreams; a numeric key
nothing matches gives UNKNOWN: quantity "value", no unit (the Datastream states it as unknown).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from adapters.fields import is_number
from adapters.units import DIMENSIONS, SUFFIXES, VALUE_WITH_UNIT, same_dimension, ucum


@dataclass(frozen=True)
class Term:
    """What a key measures: a quantity of adapters.vocabulary and its UCUM unit."""

    quantity: str
    unit: str | None


UNKNOWN = Term("value", None)

# quantity -> (default UCUM unit, normalised keys that mean it)
ALIASES: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "air_temperature": (
        "Cel",
        ("temperature", "temp", "air_temperature", "air_temp", "ambient_temperature", "tmp", "env_temp"),
    ),
    "temperature": ("Cel", ("probe_temperature", "ext_temperature", "temp_ds", "external_temperature")),
    "device_temperature": ("Cel", ("device_temperature", "internal_temperature", "cpu_temperature")),
    "soil_temperature": ("Cel", ("soil_temperature", "temp_soil", "soil_temp")),
    "water_temperature": ("Cel", ("water_temperature", "water_temp")),
    "relative_humidity": (
        "%",
        ("humidity", "hum", "rh", "relative_humidity", "relativehumidity", "air_humidity", "humi"),
    ),
    "dew_point": ("Cel", ("dew_point", "dewpoint", "dew_point_temperature")),
    "air_pressure": (
        "hPa",
        ("pressure", "air_pressure", "barometric_pressure", "baro", "barometer", "atm_pressure"),
    ),
    "sea_level_pressure": ("hPa", ("sea_pressure", "sea_level_pressure", "pressure_sea_level")),
    "co2": ("[ppm]", ("co2", "carbon_dioxide", "e_co2", "eco2", "co2_concentration")),
    "tvoc": ("[ppb]", ("tvoc", "voc", "total_voc")),
    "co": ("[ppm]", ("co", "carbon_monoxide")),
    "o3": ("[ppb]", ("o3", "ozone")),
    "no2": ("ug/m3", ("no2", "nitrogen_dioxide")),
    "nh3": ("[ppm]", ("nh3", "ammonia")),
    "hcho": ("mg/m3", ("hcho", "formaldehyde")),
    "pm1": ("ug/m3", ("pm1", "pm1_0", "pm01")),
    "pm2_5": ("ug/m3", ("pm2_5", "pm25", "pm2p5")),
    "pm4": ("ug/m3", ("pm4", "pm4_0")),
    "pm10": ("ug/m3", ("pm10", "pm10_0")),
    "illuminance": (
        "lx",
        ("illuminance", "illumination", "light", "lux", "light_intensity", "ill", "luminosity"),
    ),
    "uv_index": ("1", ("uv_index", "uvi", "uv")),
    "sound_level": (
        "dB",
        ("sound_level", "noise", "sound", "laeq", "la", "lai", "laimax", "lamax", "noise_level"),
    ),
    "motion": ("{count}", ("motion", "pir", "motion_count", "pir_count")),
    "presence": (None, ("occupancy", "presence", "occupied")),
    "distance": ("mm", ("distance", "range", "dist")),
    "water_level": ("cm", ("water_level", "level_water", "waterlevel")),
    "wind_speed": ("m/s", ("wind_speed", "windspeed", "wind")),
    "wind_direction": ("deg", ("wind_direction", "winddirection", "wind_dir")),
    "rainfall": ("mm", ("rainfall", "rain", "precipitation", "rain_gauge")),
    "soil_moisture": ("%", ("soil_moisture", "moisture", "water_soil", "vwc", "soil_water", "soil_humidity")),
    "soil_conductivity": ("uS/cm", ("soil_conductivity", "conductivity", "conduct_soil", "ec", "soil_ec")),
    "ph": ("[pH]", ("ph", "ph_value")),
    "soil_ph": ("[pH]", ("soil_ph",)),
    "battery": ("%", ("battery", "battery_level", "battery_percentage", "batt", "bat_pct")),
    "battery_voltage": (
        "V",
        ("battery_voltage", "batv", "bat", "vbat", "bat_voltage", "batt_volt", "battery_volt", "vdd"),
    ),
    "voltage": ("V", ("voltage", "volt")),
    "current": ("A", ("current", "amps", "amperage")),
    "active_power": ("W", ("power", "active_power", "act_power", "apower", "power_curr")),
    "apparent_power": ("V.A", ("apparent_power", "aprt_power")),
    "reactive_power": ("V.A", ("reactive_power",)),
    "power_factor": ("1", ("power_factor", "factor", "pf", "cos_phi")),
    "frequency": ("Hz", ("frequency", "freq")),
    "energy": ("kW.h", ("energy", "total_energy", "e_in", "energy_in", "total_in", "consumption")),
    "energy_returned": ("kW.h", ("energy_returned", "e_out", "energy_out", "total_out", "export")),
    "speed": ("km/h", ("speed", "velocity")),
    "water_volume": ("L", ("water_volume", "water_meter", "water_consumption")),
    "gas_volume": ("m3", ("gas_volume", "gas_meter", "gas_consumption")),
    "pulse_count": ("{count}", ("pulse", "pulses", "pulse_count", "counter", "count", "pulse_counter")),
    "analog_input": ("V", ("analog", "analog_in", "adc", "analog_input", "adc_v")),
    "signal_strength": ("dB[mW]", ("signal", "wifi_rssi", "signal_strength")),
}
KEYS: dict[str, Term] = {
    key: Term(quantity, unit) for quantity, (unit, keys) in ALIASES.items() for key in keys
}
KEYS["vdd"] = Term("battery_voltage", "mV")  # Elsys and other codecs give the supply in mV

# Keys that describe the device or the radio link, not the world: never a Datastream.
NOT_MEASURED = frozenset(
    {
        *("id", "device_id", "deviceid", "dev_eui", "deveui", "devaddr", "dev_addr", "eui", "mac", "ip"),
        *("serial", "sn", "serial_number", "protocol_version", "version", "ver", "fw", "firmware"),
        *("hw", "sw", "model", "device_type", "type", "sensor_type", "packet_type", "msg_type"),
        *("message_type", "frame_type", "payload_type", "fcnt", "f_cnt", "frame_counter", "fport"),
        *("f_port", "port", "rssi", "snr", "lsnr", "sf", "spreading_factor", "datarate", "dr"),
        *("channel", "status", "mode", "mod", "alarm", "error", "err", "errors", "flag", "flags"),
        *("ext", "ext_sensor", "connect", "tdc", "interval", "report_interval", "tx_interval"),
        *("time", "timestamp", "ts", "date", "uptime", "latitude", "longitude", "lat", "lon", "lng"),
        *("altitude", "alt", "hdop", "pdop", "sats", "satellites", "node_type", "node", "reserved"),
        *("sequence", "seq", "seq_no", "tx_power", "sensor_id", "meter_id", "ipso", "event", "events"),
        *("payload", "raw", "bytes", "data", "hex", "total_start_time", "temp_unit", "pressure_unit"),
        *("speed_unit", "i_flag", "s_flag", "pol", "message", "msg", "input", "output", "relay", "state"),
        *("meter_number", "meter_no", "serial_no", "server_id"),
    }
)
NOT_MEASURED_ENDINGS = (
    "_id",
    "_version",
    "_ver",
    "_status",
    "_mode",
    "_flag",
    "_type",
    "_alarm",
    "_unit",
    "_interval",
)
NOT_MEASURED_TOKENS = frozenset({"rssi", "snr", "fcnt", "is", "has", "firmware", "version", "alarm"})

# Device-specific index levels (0-5, 1-6) that look like known keys but carry no unit.
LEVELS = frozenset({"light_level", "iaq", "aqi", "tvoc_level", "co2_level", "air_quality"})

# A qualifier token next to a matched key that changes its quantity (`TempC_DS` is a probe).
QUALIFIERS: dict[tuple[str, str], str] = {
    **{("air_temperature", t): "temperature" for t in ("ds", "ds18b20", "probe", "ext", "external")},
    **{("air_temperature", t): "device_temperature" for t in ("internal", "device", "cpu", "board", "esp32")},
    ("air_temperature", "soil"): "soil_temperature",
    ("air_temperature", "water"): "water_temperature",
    ("relative_humidity", "soil"): "soil_moisture",
}

# When a stated unit is of another dimension than the key's default, the quantity follows the unit.
BY_DIMENSION: dict[tuple[str, str], str] = {
    ("battery", "voltage"): "battery_voltage",
    ("battery_voltage", "fraction"): "battery",
    ("battery", "current"): "battery_current",
}
QUANTITY_OF_DIMENSION: dict[str, str] = {
    "temperature": "temperature",
    "pressure": "air_pressure",
    "voltage": "voltage",
    "current": "current",
    "power": "active_power",
    "energy": "energy",
    "length": "distance",
    "speed": "speed",
    "mass_concentration": "value",
    "conductivity": "soil_conductivity",
    "volume": "water_volume",
    "level": "signal_strength",
}

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")
_INDEXED = re.compile(r"[a-z_]{3,}[0-9]+")


@lru_cache(maxsize=8192)
def normalise(key: str) -> str:
    """`TempC_SHT` -> `temp_c_sht`, `PM2.5` -> `pm2_5`, `batteryVoltage` -> `battery_voltage`."""
    return _SEPARATORS.sub("_", _CAMEL.sub("_", key).lower()).strip("_")


@lru_cache(maxsize=8192)
def is_measured(normalised: str) -> bool:
    """False for keys that describe the device or its link (ids, counters, versions, flags)."""
    if normalised in NOT_MEASURED or normalised.endswith(NOT_MEASURED_ENDINGS):
        return False
    return not NOT_MEASURED_TOKENS.intersection(normalised.split("_"))


def _with_unit(term: Term, unit: str | None) -> Term:
    """The term with a unit the key or value stated, the quantity following a change of dimension."""
    if unit is None or unit == term.unit:
        return term
    if term.unit is None or same_dimension(unit, term.unit):
        return Term(term.quantity, unit)
    dimension = DIMENSIONS.get(unit, unit)
    quantity = BY_DIMENSION.get((term.quantity, dimension)) or QUANTITY_OF_DIMENSION.get(dimension, "value")
    return Term(quantity, unit)


def _match(tokens: list[str]) -> Term | None:
    """The longest known run of tokens (leftmost first), with its unit token and qualifiers."""
    for length in range(len(tokens), 0, -1):
        for start in range(len(tokens) - length + 1):
            found = KEYS.get("_".join(tokens[start : start + length]))
            if found is None:
                continue
            rest = tokens[:start] + tokens[start + length :]
            following = tokens[start + length] if start + length < len(tokens) else None
            unit = SUFFIXES.get(following) if following is not None else None
            quantity = next(
                (QUALIFIERS[found.quantity, t] for t in rest if (found.quantity, t) in QUALIFIERS),
                found.quantity,
            )
            return _with_unit(Term(quantity, found.unit), unit)
    return None


@lru_cache(maxsize=8192)  # keys repeat message after message; the lookup is pure
def term(key: str) -> Term | None:
    """What a key measures: a known Term, UNKNOWN, or None when it is not a measurement."""
    normalised = normalise(key)
    if not normalised or not is_measured(normalised):
        return None
    if normalised in LEVELS:
        return UNKNOWN
    found = KEYS.get(normalised) or _match(normalised.split("_"))
    if found is None and _INDEXED.fullmatch(normalised):  # `Temperature1`, `power2`: a channel
        found = term(normalised.rstrip("0123456789"))
    return found or UNKNOWN


def with_unit(found: Term, spelling: str) -> Term | None:
    """The term in a unit a payload states as text; None when the unit table does not know it."""
    unit = ucum(spelling)
    return None if unit is None else _with_unit(found, unit)


def measurement(key: str, value: Any) -> tuple[Term, float] | None:
    """(Term, number) of one key/value pair, or None when it is no measurement.

    Numbers count; booleans are flags; text counts when the key is known and it holds a number,
    optionally with a unit ("3.384 V", "25.17 %"), as some payload formatters write them."""
    found = term(key)
    if found is None or isinstance(value, bool):
        return None
    if is_number(value):
        return found, value
    if not isinstance(value, str) or found is UNKNOWN:
        return None
    match = VALUE_WITH_UNIT.fullmatch(value)
    if match is None:
        return None
    number, unit_text = float(match.group(1)), match.group(2)
    unit = ucum(unit_text) if unit_text else None
    if unit_text and unit is None:
        return None
    return _with_unit(found, unit), number
