# SPDX-License-Identifier: Apache-2.0
"""TTN's normalized payload (`uplink_message.normalized_payload`) -> measured values.

The Things Stack adds it for devices of the LoRaWAN Device Repository whose codec normalises its
output: a list of measurements following the repository's payload schema (`lib/payload.json`),
each with fixed quantities and units (air, soil, water, wind, metering, action, battery, position)
and an optional RFC 3339 `time`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters.codec import flatten
from adapters.fields import Fields, is_number

# schema path -> (quantity, UCUM unit, stream); stream None where the quantity says it all
SCHEMA: dict[str, tuple[str, str | None, str | None]] = {
    "battery": ("battery_voltage", "V", None),
    "air.temperature": ("air_temperature", "Cel", None),
    "air.relativeHumidity": ("relative_humidity", "%", None),
    "air.pressure": ("air_pressure", "hPa", None),
    "air.co2": ("co2", "[ppm]", None),
    "air.lightIntensity": ("illuminance", "lx", None),
    "soil.moisture": ("soil_moisture", "%", None),
    "soil.temperature": ("soil_temperature", "Cel", None),
    "soil.ec": ("soil_conductivity", "dS/m", None),
    "soil.pH": ("soil_ph", "[pH]", None),
    "soil.n": ("soil_nitrogen", "[ppm]", None),
    "soil.p": ("soil_phosphorus", "[ppm]", None),
    "soil.k": ("soil_potassium", "[ppm]", None),
    "wind.speed": ("wind_speed", "m/s", None),
    "wind.direction": ("wind_direction", "deg", None),
    **{
        f"water.temperature.{k}": ("water_temperature", "Cel", f"water.temperature.{k}")
        for k in ("min", "max", "avg")
    },
    "water.temperature.current": ("water_temperature", "Cel", None),
    "water.leak": ("leak", None, None),
    "metering.water.total": ("water_volume", "L", None),
    "action.motion.detected": ("presence", None, None),
    "action.motion.count": ("motion", "{count}", None),
    "action.contactState": ("contact_state", None, None),
}
# Not observations: they qualify the others (parameters) or place the device.
QUALIFIERS = {"soil.depth": "soil_depth_cm", "air.location": "air_location"}
POSITION = ("position.latitude", "position.longitude")
NOT_READ = frozenset({"time", *POSITION})


@dataclass(frozen=True)
class Normalized:
    """One value of a normalized measurement."""

    quantity: str
    unit: str | None
    stream: str | None
    value: Any
    path: str
    time: datetime | None
    qualifiers: dict[str, Any]


def _value(raw: Any, unit: str | None, field: str, fields: Fields) -> Any:
    if unit is None:  # a truth or category result (leak, motion detected, contact state)
        if not isinstance(raw, bool | str):
            raise fields.fail(field, "is not a boolean or a string")
        return raw
    value = fields.number(raw, field)
    return int(value) if unit == "{count}" and float(value).is_integer() else value


def measurements(raw: Any, fields: Fields) -> list[Normalized]:
    """The values of every measurement of a normalized payload; unknown paths are an error."""
    at = "uplink_message.normalized_payload"
    if not isinstance(raw, list):
        raise fields.fail(at, "is not a list of measurements")
    found: list[Normalized] = []
    for index, measurement in enumerate(raw):
        here = f"{at}[{index}]"
        entry = fields.object(measurement, here)
        time = fields.maybe(entry.get("time"), f"{here}.time", fields.time)
        leaves = dict(flatten(entry))
        qualifiers = {name: leaves[path] for path, name in QUALIFIERS.items() if path in leaves}
        for path, value in leaves.items():
            if path in NOT_READ or path in QUALIFIERS or value is None:
                continue
            if path not in SCHEMA:
                raise fields.fail(f"{here}.{path}", "is not in TTN's normalized payload schema")
            quantity, unit, stream = SCHEMA[path]
            number = _value(value, unit, f"{here}.{path}", fields)
            found.append(Normalized(quantity, unit, stream, number, path, time, qualifiers))
    return found


def position(raw: Any) -> dict[str, Any] | None:
    """The first measurement's position.latitude/longitude as a GeoJSON Point."""
    for measurement in raw if isinstance(raw, list) else []:
        place = measurement.get("position") if isinstance(measurement, dict) else None
        if isinstance(place, dict) and is_number(place.get("latitude")) and is_number(place.get("longitude")):
            latitude, longitude = place["latitude"], place["longitude"]
            if -90 <= latitude <= 90 and -180 <= longitude <= 180:
                return {"type": "Point", "coordinates": [longitude, latitude]}
    return None
