# SPDX-License-Identifier: Apache-2.0
"""The output of a device codec (TTN `decoded_payload`, ChirpStack `object`) -> measured values.

Nested objects are flattened into dotted paths (`sensors.temperature`); each path is read through
the field vocabulary (adapters.keys), its last key and its whole path both telling what it is
(`soil.temperature` is the soil's). Latitude/longitude pairs become the device's position.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from adapters.fields import is_number
from adapters.keys import KEYS, UNKNOWN, Term, is_measured, measurement, normalise, with_unit
from adapters.vocabulary import COUNT_UNITS

MAX_DEPTH = 6  # codec outputs nest two or three levels; deeper is not a reading
LATITUDES = ("latitude", "lat")
LONGITUDES = ("longitude", "lon", "lng")
POSITION_OBJECTS = ("", "gps", "location", "position", "gnss")


@dataclass(frozen=True)
class Value:
    """One measured value of a codec output."""

    path: str  # dotted path in the codec output, e.g. "sensors.temperature"
    term: Term
    value: float | int
    stream: str | None  # None: the quantity names the Datastream (a plain, known, first key)


def flatten(document: dict[str, Any], prefix: str = "", depth: int = 0) -> Iterator[tuple[str, Any]]:
    """(dotted path, leaf value) of every leaf under the objects of a JSON object."""
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and is_number(value.get("value")) and isinstance(value.get("unit"), str):
            yield path, value  # a value with its unit (Decentlab codecs): one leaf
        elif isinstance(value, dict):
            if depth < MAX_DEPTH:
                yield from flatten(value, f"{path}.", depth + 1)
        else:
            yield path, value


def values(document: dict[str, Any]) -> list[Value]:
    """The measured values of a codec output, in the order the codec wrote them.

    A plain top-level key the vocabulary knows as it is (`temperature`, `co2`) is named by its
    quantity alone; every other value (nested, vendor-spelt, a second of its quantity) by its path."""
    found: list[Value] = []
    plain: set[str] = set()
    for path, raw in flatten(document):
        leaf = path.rsplit(".", 1)[-1]
        if not is_measured(normalise(leaf)):
            continue  # an id, link counter or flag, also when nested (`device.id`)
        measured = _with_stated_unit(path, raw) if isinstance(raw, dict) else measurement(path, raw)
        if measured is None:
            continue
        term, number = measured
        if term.unit in COUNT_UNITS and float(number).is_integer():
            number = int(number)  # Protobuf JSON and JavaScript give every number as a double
        stream: str | None = path
        known = KEYS.get(normalise(path))
        if known is not None and known.quantity == term.quantity and term.quantity not in plain:
            plain.add(term.quantity)
            stream = None
        found.append(Value(path, term, number, stream))
    return found


def _with_stated_unit(path: str, leaf: dict[str, Any]) -> tuple[Term, float] | None:
    """A `{"value": n, "unit": "..."}` leaf; a unit the table does not know makes it unknown."""
    measured = measurement(path, leaf["value"])
    if measured is None:
        return None
    found = with_unit(measured[0], leaf["unit"]) if measured[0] is not UNKNOWN else None
    return (found or UNKNOWN), measured[1]


def position(document: dict[str, Any]) -> dict[str, Any] | None:
    """A GeoJSON Point from latitude/longitude keys at the top or in a gps/location object."""
    for name in POSITION_OBJECTS:
        found = document.get(name) if name else document
        if not isinstance(found, dict):
            continue
        holder = {str(key).lower(): value for key, value in found.items()}
        latitude = next((holder[k] for k in LATITUDES if is_number(holder.get(k))), None)
        longitude = next((holder[k] for k in LONGITUDES if is_number(holder.get(k))), None)
        if latitude is None or longitude is None:
            continue
        if -90 <= latitude <= 90 and -180 <= longitude <= 180 and (latitude, longitude) != (0, 0):
            return {"type": "Point", "coordinates": [longitude, latitude]}
    return None
