# SPDX-License-Identifier: Apache-2.0
"""sensor.community (luftdaten) airRohr data pushes, republished on `airrohr/{sensor}/data` -> readings.

The Thing is `esp8266-{esp8266id}`. Each `sensordatavalues` entry is `<SENSOR>_<measure>` (or a
bare measure for DHT22 and the WiFi `signal`); the measure picks the quantity and unit, the
value type is the stream (several sensors on one board may measure the same quantity) and the
sensor prefix becomes the Sensor. Values are strings holding numbers. Unknown numeric value
types become `value` readings; loop diagnostics (`samples`, `min_micro`, `max_micro`) are not
observations; `GPS_lat`/`GPS_lon` become the Location. The payload has no time: pT is the
averaging window of `interval` ms ending at the receive time (an instant without `interval`).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.base import Adapter, AdapterContext, AdapterError, Message
from adapters.keys import term
from schemas.reading import Reading

NAME = "sensor_community"
VALUES = "sensordatavalues"

# measure (the value type without its sensor prefix) -> (quantity, UCUM unit)
MEASURES: dict[str, tuple[str, str]] = {
    "P0": ("pm1", "ug/m3"),
    "P1": ("pm10", "ug/m3"),
    "P2": ("pm2_5", "ug/m3"),
    "P4": ("pm4", "ug/m3"),  # SPS30
    "temperature": ("air_temperature", "Cel"),
    "humidity": ("relative_humidity", "%"),
    "pressure": ("air_pressure", "Pa"),
    "signal": ("signal_strength", "dB[mW]"),
}

# sensor prefix -> Sensor model, where the firmware abbreviates it
MODELS: dict[str, str] = {
    "SDS": "SDS011",
    "PMS": "Plantower PMS",
    "HPM": "Honeywell HPM",
    "NPM": "Tera NextPM",
}

NOT_OBSERVATIONS = frozenset(
    {
        "samples",
        "min_micro",
        "max_micro",
        "interval",
        "GPS_lat",
        "GPS_lon",
        "GPS_height",
        "GPS_date",
        "GPS_time",
    }
)


def _fail(field: str, message: str) -> AdapterError:
    return AdapterError(NAME, field, message)


def _decode(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):
        raise _fail("payload", "is not JSON") from None


def _number(raw: Any, field: str) -> float:
    """A value: a string holding a number, or a number."""
    if isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            raise _fail(field, f"is not a number: {raw[:32]!r}") from None
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        try:
            value = float(raw)
        except OverflowError:
            raise _fail(field, "is out of range") from None
    else:
        raise _fail(field, "is not a number")
    if not math.isfinite(value):
        raise _fail(field, "is not a finite number")
    return value


def _device(push: dict[str, Any]) -> str:
    chip = push.get("esp8266id")
    if chip is None:
        raise _fail("esp8266id", "missing")
    if isinstance(chip, bool) or not isinstance(chip, str | int) or chip == "":
        raise _fail("esp8266id", "is not a chip id")
    return f"esp8266-{chip}"


def _entries(push: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """value type -> (field name, raw value) of each sensordatavalues entry."""
    entries = push.get(VALUES)
    if entries is None:
        raise _fail(VALUES, "missing")
    if not isinstance(entries, list):
        raise _fail(VALUES, "is not a list")
    found: dict[str, tuple[str, Any]] = {}
    for index, entry in enumerate(entries):
        at = f"{VALUES}[{index}]"
        if not isinstance(entry, dict):
            raise _fail(at, "is not an object")
        value_type = entry.get("value_type")
        if not isinstance(value_type, str) or not value_type:
            raise _fail(f"{at}.value_type", "is not a non-empty string")
        if "value" not in entry:
            raise _fail(f"{at}.value", "missing")
        found[value_type] = (f"{at}.value", entry["value"])
    return found


def _window(entries: dict[str, tuple[str, Any]], received_at: datetime) -> tuple[datetime, datetime]:
    end = received_at.astimezone(UTC)
    if "interval" not in entries:
        return end, end
    field, raw = entries["interval"]
    milliseconds = _number(raw, field)
    if milliseconds < 0:
        raise _fail(field, "is a negative interval")
    try:
        return end - timedelta(milliseconds=milliseconds), end
    except OverflowError:
        raise _fail(field, "is out of range") from None


def _location(entries: dict[str, tuple[str, Any]]) -> dict[str, Any] | None:
    """The board's GPS position (NEO-6M option) as a GeoJSON Point."""
    if "GPS_lat" not in entries or "GPS_lon" not in entries:
        return None
    (lat_field, lat), (lon_field, lon) = entries["GPS_lat"], entries["GPS_lon"]
    latitude, longitude = _number(lat, lat_field), _number(lon, lon_field)
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise _fail(lat_field, "and GPS_lon are not a WGS84 position")
    return {"type": "Point", "coordinates": [longitude, latitude]}


def _mapping(value_type: str) -> tuple[str, str | None, str | None]:
    """(quantity, unit, sensor model) of a value type; quantity "value" when unknown."""
    prefix, _, measure = value_type.partition("_")
    if value_type in MEASURES:
        return (*MEASURES[value_type], None)
    if measure in MEASURES:
        return (*MEASURES[measure], MODELS.get(prefix, prefix))
    found = term(value_type)  # DNMS_noise_LAeq, noise_level, ...: the field vocabulary
    model = MODELS.get(prefix, prefix) if measure and prefix[:1].isupper() else None
    return (found.quantity, found.unit, model) if found is not None else ("value", None, None)


def _reading(value_type: str, field: str, raw: Any, base: dict[str, Any]) -> Reading | None:
    quantity, unit, model = _mapping(value_type)
    if quantity == "value" and unit is None:
        try:
            value = _number(raw, field)
        except AdapterError:
            return None  # unknown value types that hold no number are not observations
    else:
        value = _number(raw, field)
    return Reading(quantity=quantity, value=value, unit=unit, stream=value_type, sensor_model=model, **base)


def parse(message: Message, context: AdapterContext) -> list[Reading]:
    """An airRohr data push -> one reading per sensor value."""
    push = _decode(message.payload)
    if not isinstance(push, dict):
        raise _fail("payload", "is not an object")
    entries = _entries(push)
    version = push.get("software_version")
    base: dict[str, Any] = {
        "adapter": NAME,
        "device": _device(push),
        "phenomenon_time": _window(entries, message.received_at),
        "location": _location(entries),
        "device_properties": {"software_version": version} if isinstance(version, str) else {},
    }
    readings = [
        _reading(value_type, field, raw, base)
        for value_type, (field, raw) in entries.items()
        if value_type not in NOT_OBSERVATIONS
    ]
    return [reading for reading in readings if reading is not None]


ADAPTER = Adapter(
    name=NAME,
    topics=("airrohr/+/data",),
    parse=parse,
    description="sensor.community airRohr data pushes: PM, climate and WiFi signal values",
)
