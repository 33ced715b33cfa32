# SPDX-License-Identifier: Apache-2.0
"""SenseCAP codec outputs: measurement lists keyed by SenseCAP measurement ids -> measured values.

Seeed's payload decoders for SenseCAP LoRaWAN sensors (S210x, S2120 weather station, T1000
trackers) do not write one key per quantity. They write
`{"valid": true, "err": 0, "payload": "<hex>", "messages": [...]}` where `messages` holds
objects `{"measurementId": "4097", "measurementValue": 23.6, "type": "Air Temperature"}`,
flat or grouped in nested lists, sometimes with a `timestamp` in epoch milliseconds, and beside
them device-status objects (`{"Battery(%)": 100, "Firmware Version": "1.11", ...}`) that the
ordinary key vocabulary reads. The measurement id decides the quantity and unit, from Seeed's
public "List of Measurement IDs"; an id this table does not know still becomes a reading
(quantity `value`, no unit) named by its `type`, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.fields import is_number

# SenseCAP measurement id -> (quantity of adapters.vocabulary, UCUM unit, stream name or None)
# A stream name is given where the quantity alone would not tell two measurements apart.
MEASUREMENTS: dict[int, tuple[str, str | None, str | None]] = {
    4097: ("air_temperature", "Cel", None),
    4098: ("relative_humidity", "%", None),
    4099: ("illuminance", "lx", None),
    4100: ("co2", "[ppm]", None),
    4101: ("air_pressure", "Pa", None),
    4102: ("soil_temperature", "Cel", None),
    4103: ("soil_moisture", "%", None),
    4104: ("wind_direction", "deg", None),
    4105: ("wind_speed", "m/s", None),
    4106: ("ph", "[pH]", None),
    4108: ("soil_conductivity", "dS/m", None),
    4110: ("soil_moisture", "%", "soil_volumetric_water_content"),
    4111: ("soil_conductivity", "dS/m", None),  # deprecated by Seeed in favour of 4108
    4112: ("soil_temperature", "Cel", None),  # deprecated by Seeed in favour of 4102
    4113: ("rainfall", "mm/h", "rainfall_hourly"),
    4115: ("distance", "cm", None),
    4116: ("leak", None, None),
    4117: ("water_level", "cm", None),
    4118: ("nh3", "[ppm]", None),
    4123: ("value", "uS/cm", "water_conductivity"),
    4124: ("water_temperature", "Cel", None),
    4125: ("value", "W/m2", "soil_heat_flux"),
    4126: ("value", "h", "sunshine_duration"),
    4127: ("value", "W/m2", "total_solar_radiation"),
    4128: ("value", "mm", "water_surface_evaporation"),
    4131: ("sound_level", None, "sound_intensity"),
    4133: ("value", "kPa", "soil_tension"),
    4136: ("temperature", "Cel", "leaf_temperature"),
    4137: ("value", "%", "leaf_wetness"),
    4138: ("soil_moisture", "%", "soil_moisture_10cm"),
    4139: ("soil_moisture", "%", "soil_moisture_20cm"),
    4140: ("soil_moisture", "%", "soil_moisture_30cm"),
    4141: ("soil_moisture", "%", "soil_moisture_40cm"),
    4142: ("soil_temperature", "Cel", "soil_temperature_10cm"),
    4143: ("soil_temperature", "Cel", "soil_temperature_20cm"),
    4144: ("soil_temperature", "Cel", "soil_temperature_30cm"),
    4145: ("soil_temperature", "Cel", "soil_temperature_40cm"),
    4146: ("pm2_5", "ug/m3", None),
    4147: ("pm10", "ug/m3", None),
    4148: ("sound_level", "dB", "noise"),
    4190: ("uv_index", "1", None),
    4191: ("wind_speed", "m/s", "peak_wind_gust"),
    4192: ("sound_level", "dB", None),
    4195: ("tvoc", "[ppb]", None),
    3000: ("battery", "%", None),  # T1000 trackers
    4199: ("value", "%", "light"),  # T1000 trackers: light level in percent, not lux
}
LONGITUDE, LATITUDE = 4197, 4198  # T1000 trackers report their position as two measurements
POSITION_IDS = frozenset({LONGITUDE, LATITUDE})


@dataclass(frozen=True)
class Measurement:
    """One value of a SenseCAP measurement list."""

    path: str  # where it sat, e.g. "messages[0][1]"
    quantity: str
    unit: str | None
    stream: str | None  # None: the quantity names the Datastream
    value: float | int | bool
    time: datetime | None  # the item's own timestamp, when it has one


def is_sensecap(document: dict[str, Any]) -> bool:
    """Whether a codec output is a SenseCAP measurement list."""
    messages = document.get("messages")
    return isinstance(messages, list) and any(True for _ in _items(messages, "messages"))


def _items(messages: list[Any], path: str, depth: int = 0) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, object) of every object in the (possibly nested) message list."""
    for index, item in enumerate(messages):
        where = f"{path}[{index}]"
        if isinstance(item, list) and depth < 3:
            yield from _items(item, where, depth + 1)
        elif isinstance(item, dict):
            yield where, item


def _id(item: dict[str, Any]) -> int | None:
    raw = item.get("measurementId")
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw)
    return None


def _time(item: dict[str, Any]) -> datetime | None:
    raw = item.get("timestamp")
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not is_number(raw) or raw <= 0:
        return None
    seconds = raw / 1000 if raw > 1e11 else raw  # Seeed's decoders give epoch milliseconds
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _name(item: dict[str, Any], number: int) -> str:
    kind = item.get("type")
    text = kind.strip() if isinstance(kind, str) else ""
    return "_".join(text.lower().split()) if text else f"measurement_{number}"


def measurements(document: dict[str, Any]) -> tuple[list[Measurement], list[dict[str, Any]]]:
    """The measurements of a SenseCAP codec output, and the other objects of its message list
    (device status: battery, intervals, versions) for the ordinary vocabulary to read."""
    found: list[Measurement] = []
    others: list[dict[str, Any]] = []
    seen: set[tuple[str, str | None]] = set()
    for path, item in _items(document.get("messages") or [], "messages"):
        number = _id(item)
        if number is None or "measurementValue" not in item:
            others.append(item)
            continue
        if number in POSITION_IDS:
            continue  # read by position()
        raw = item["measurementValue"]
        quantity, unit, stream = MEASUREMENTS.get(number, ("value", None, None))
        if number not in MEASUREMENTS:
            stream = _name(item, number)
        if isinstance(raw, bool):
            if quantity != "leak":
                continue  # a flag, not a measurement
            value: float | int | bool = raw
        elif is_number(raw):
            value = raw
        elif isinstance(raw, str) and _is_numeric_text(raw):
            value = float(raw)
        else:
            continue  # Wi-Fi/Bluetooth scans and event lists are not measurements
        key = (quantity, stream)
        if key in seen and stream is None:  # a second value of one quantity gets its own stream
            stream = f"{_name(item, number)}_{number}"
        seen.add((quantity, stream))
        found.append(Measurement(path, quantity, unit, stream, value, _time(item)))
    return found, others


def _is_numeric_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def position(document: dict[str, Any]) -> dict[str, Any] | None:
    """A GeoJSON Point from a T1000's longitude (4197) and latitude (4198) measurements."""
    if not isinstance(document.get("messages"), list):
        return None
    place: dict[int, float] = {}
    for _, item in _items(document["messages"], "messages"):
        number = _id(item)
        raw = item.get("measurementValue")
        if number in POSITION_IDS and isinstance(raw, int | float) and not isinstance(raw, bool):
            place[number] = float(raw)
    longitude, latitude = place.get(LONGITUDE), place.get(LATITUDE)
    if longitude is None or latitude is None:
        return None
    if -90 <= latitude <= 90 and -180 <= longitude <= 180 and (latitude, longitude) != (0, 0):
        return {"type": "Point", "coordinates": [longitude, latitude]}
    return None
