# SPDX-License-Identifier: Apache-2.0
"""The output of a device codec (TTN `decoded_payload`, ChirpStack `object`) -> measured values.

Nested objects are flattened into dotted paths (`sensors.temperature`); each path is read through
the field vocabulary (adapters.keys), its last key and its whole path both telling what it is
(`soil.temperature` is the soil's). Lists are read element by element: `probes[1].temperature`
is the second probe's, `temperatures[0]` the first of a list of temperatures. SenseCAP decoders'
measurement lists (adapters.sensecap) are read by their measurement ids. Latitude/longitude pairs
become the device's position.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters import sensecap
from adapters.fields import is_number
from adapters.keys import KEYS, UNKNOWN, Term, is_measured, measurement, normalise, term, with_unit
from adapters.vocabulary import COUNT_UNITS

MAX_DEPTH = 6  # codec outputs nest two or three levels; deeper is not a reading
LATITUDES = ("latitude", "lat")
LONGITUDES = ("longitude", "lon", "lng")
POSITION_OBJECTS = ("", "gps", "location", "position", "gnss")
_INDEX = re.compile(r"\[[0-9]+\]")


@dataclass(frozen=True)
class Value:
    """One measured value of a codec output."""

    path: str  # dotted path in the codec output, e.g. "sensors.temperature"
    term: Term
    value: float | int | bool
    stream: str | None  # None: the quantity names the Datastream (a plain, known, first key)
    time: datetime | None = None  # the value's own time, when the codec gives one


def flatten(document: dict[str, Any], prefix: str = "", depth: int = 0) -> Iterator[tuple[str, Any]]:
    """(path, leaf value) of every leaf under the objects and lists of a JSON object.

    Object keys join with dots, list elements add their index: `probes[1].temperature`."""
    for key, value in document.items():
        yield from _leaves(f"{prefix}{key}", value, depth)


def _leaves(path: str, value: Any, depth: int) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and is_number(value.get("value")) and isinstance(value.get("unit"), str):
        yield path, value  # a value with its unit (Decentlab codecs): one leaf
    elif isinstance(value, dict):
        if depth < MAX_DEPTH:
            yield from flatten(value, f"{path}.", depth + 1)
    elif isinstance(value, list):
        if depth < MAX_DEPTH:
            for index, item in enumerate(value):
                yield from _leaves(f"{path}[{index}]", item, depth + 1)
    else:
        yield path, value


def _naming_path(path: str) -> str:
    """The path that says what a leaf measures: list indexes dropped, and a list's plural key
    made singular when only the singular is known (`temperatures[0]` -> `temperature`)."""
    if "[" not in path:
        return path
    named = _INDEX.sub("", path)
    head, _, leaf = named.rpartition(".")
    if path.endswith("]") and leaf.endswith("s") and term(leaf) is UNKNOWN:
        singular = term(leaf[:-1])
        if singular is not None and singular is not UNKNOWN:
            return f"{head}.{leaf[:-1]}" if head else leaf[:-1]
    return named


def values(document: dict[str, Any]) -> list[Value]:
    """The measured values of a codec output, in the order the codec wrote them.

    A plain top-level key the vocabulary knows as it is (`temperature`, `co2`) is named by its
    quantity alone; every other value (nested, vendor-spelt, listed, a second of its quantity)
    by its path."""
    if sensecap.is_sensecap(document):
        return _sensecap_values(document)
    return _values(document, set())


def _sensecap_values(document: dict[str, Any]) -> list[Value]:
    """A SenseCAP measurement list, then what its status objects and other keys add."""
    measured, others = sensecap.measurements(document)
    found = [Value(m.path, Term(m.quantity, m.unit), m.value, m.stream, m.time) for m in measured]
    plain = {m.quantity for m in measured if m.stream is None}
    rest = {key: value for key, value in document.items() if key != "messages"}
    for extra in [rest, *others]:
        found.extend(_values(extra, plain))
    return found


def _values(document: dict[str, Any], plain: set[str]) -> list[Value]:
    found: list[Value] = []
    for path, raw in flatten(document):
        naming = _naming_path(path)
        leaf = naming.rsplit(".", 1)[-1]
        if not is_measured(normalise(leaf)):
            continue  # an id, link counter or flag, also when nested (`device.id`)
        measured = _with_stated_unit(naming, raw) if isinstance(raw, dict) else measurement(naming, raw)
        if measured is None:
            continue
        kind, number = measured
        if kind.unit in COUNT_UNITS and float(number).is_integer():
            number = int(number)  # Protobuf JSON and JavaScript give every number as a double
        stream: str | None = path
        known = KEYS.get(normalise(path))
        if known is not None and known.quantity == kind.quantity and kind.quantity not in plain:
            plain.add(kind.quantity)
            stream = None
        found.append(Value(path, kind, number, stream))
    return found


def _with_stated_unit(path: str, leaf: dict[str, Any]) -> tuple[Term, float] | None:
    """A `{"value": n, "unit": "..."}` leaf; a unit the table does not know makes it unknown."""
    measured = measurement(path, leaf["value"])
    if measured is None:
        return None
    found = with_unit(measured[0], leaf["unit"]) if measured[0] is not UNKNOWN else None
    return (found or UNKNOWN), measured[1]


def position(document: dict[str, Any]) -> dict[str, Any] | None:
    """A GeoJSON Point from latitude/longitude keys at the top or in a gps/location object, or
    from a SenseCAP tracker's position measurements."""
    found = sensecap.position(document)
    if found is not None:
        return found
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
