# SPDX-License-Identifier: Apache-2.0
"""Rows -> STA JSON (OGC 18-088 §9.2.1: @iot.id, @iot.selfLink, navigation links)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from schemas.model import EntityType, Join, Kind, Property


def format_instant(moment: datetime) -> str:
    """ISO 8601 in UTC with Z; milliseconds or microseconds only when present."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    micro = moment.microsecond
    if micro == 0:
        return text + "Z"
    if micro % 1000 == 0:
        return f"{text}.{micro // 1000:03d}Z"
    return f"{text}.{micro:06d}Z"


def _time(start: datetime | None, end: datetime | None) -> str | None:
    if start is None:
        return None
    if end is None or end == start:
        return format_instant(start)
    return f"{format_instant(start)}/{format_instant(end)}"


def _interval(start: datetime | None, end: datetime | None) -> str | None:
    if start is None or end is None:
        return None
    return f"{format_instant(start)}/{format_instant(end)}"


def _instant(row: Mapping[str, Any], prop: Property) -> Any:
    value = row[prop.column]
    return None if value is None else format_instant(value)


# Kind -> how to read the property's value from its columns.
_READERS: dict[Kind, Callable[[Mapping[str, Any], Property], Any]] = {
    Kind.INSTANT: _instant,
    Kind.TIME: lambda row, p: _time(*(row[c] for c in p.columns)),
    Kind.INTERVAL: lambda row, p: _interval(*(row[c] for c in p.columns)),
}


def _plain(row: Mapping[str, Any], prop: Property) -> Any:
    return row[prop.column]


def property_value(row: Mapping[str, Any], prop: Property) -> Any:
    """The JSON value of one property of a row."""
    return _READERS.get(prop.kind, _plain)(row, prop)


def render_entity(entity_type: EntityType, row: Mapping[str, Any], base: str) -> dict[str, Any]:
    """One entity as STA JSON; `base` is the absolute service root, e.g. https://host/v1.1."""
    self_link = f"{base}/{entity_type.set_name}({row['id']})"
    entity: dict[str, Any] = {"@iot.id": row["id"], "@iot.selfLink": self_link}
    for prop in entity_type.properties:
        value = property_value(row, prop)
        if value is not None or prop.render_null:
            entity[prop.name] = value
    for nav in entity_type.navigation:
        # An Observation belongs to a Datastream or a MultiDatastream: link only the one it has.
        if nav.join is Join.FORWARD and row[nav.column] is None:
            continue
        entity[f"{nav.name}@iot.navigationLink"] = f"{self_link}/{nav.name}"
    return entity


def self_link(base: str, entity_type: EntityType, entity_id: int) -> str:
    """The absolute selfLink of one entity."""
    return f"{base}/{entity_type.set_name}({entity_id})"
