# SPDX-License-Identifier: Apache-2.0
"""Rows -> STA JSON (OGC 18-088 §9.2.1: @iot.id, @iot.selfLink, navigation links)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from hub.query.links import format_query, next_page
from hub.query.plan import Selection
from hub.store.read import Node
from schemas.model import EntityType, Join, Kind, Property

EVERYTHING = Selection()


def format_instant(moment: datetime) -> str:
    """ISO 8601 in UTC with Z; milliseconds or microseconds only when present (a hot path: isoformat)."""
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    text = moment.isoformat()
    if text.endswith("+00:00"):
        text = text[:-6]
    micro = moment.microsecond
    if micro and micro % 1000 == 0:
        text = text[:-3]
    return text + "Z"


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


def render_entity(
    entity_type: EntityType, row: Mapping[str, Any], base: str, selection: Selection | None = None
) -> dict[str, Any]:
    """One entity as STA JSON; `base` is the absolute service root, e.g. https://host/v1.1."""
    selection = selection or EVERYTHING
    link = f"{base}/{entity_type.set_name}({row['id']})"
    entity: dict[str, Any] = {}
    if selection.id:
        entity["@iot.id"] = row["id"]
    if selection.self_link:
        entity["@iot.selfLink"] = link
    for prop in entity_type.properties:
        if not selection.wants_property(prop):
            continue
        value = property_value(row, prop)
        paths = selection.sub_paths.get(prop.name)
        if paths is not None:
            value = _pick(value, paths)
        if value is not None or prop.render_null:
            entity[prop.name] = value
    for nav in entity_type.navigation:
        # An Observation belongs to a Datastream or a MultiDatastream: link only the one it has.
        if nav.join is Join.FORWARD and row[nav.column] is None:
            continue
        if selection.wants_link(nav):
            entity[f"{nav.name}@iot.navigationLink"] = f"{link}/{nav.name}"
    return entity


def _pick(value: Any, paths: tuple[tuple[str, ...], ...]) -> Any:
    """Keep only the selected JSON sub-paths of a property value (`$select=properties/serviceName`)."""
    if not isinstance(value, dict):
        return None
    picked: dict[str, Any] = {}
    for path in paths:
        source: Any = value
        target = picked
        for key in path[:-1]:
            source = source.get(key) if isinstance(source, dict) else None
            target = target.setdefault(key, {})
        if isinstance(source, dict) and path[-1] in source:
            target[path[-1]] = source[path[-1]]
    return picked


def render_node(
    entity_type: EntityType, node: Node, base: str, selection: Selection | None = None
) -> dict[str, Any]:
    """An entity with its expanded navigation properties inline (§9.3.2.1)."""
    entity = render_entity(entity_type, node.row, base, selection)
    for name, expanded in node.expanded.items():
        plan = expanded.plan
        target = plan.nav.target
        items = [render_node(target, child, base, plan.selection) for child in expanded.nodes]
        if not plan.nav.many:
            entity[name] = items[0] if items else None
            continue
        if expanded.count is not None:
            entity[f"{name}@iot.count"] = expanded.count
        if expanded.has_more:
            # Literal $top/$skip: Masterportal parses them to know when to stop (STA-NOTES).
            query = format_query(next_page(dataclasses.replace(plan.query, skiptoken=None)))
            entity[f"{name}@iot.nextLink"] = f"{base}/{entity_type.set_name}({node.row['id']})/{name}?{query}"
        entity[name] = items
    return entity


def self_link(base: str, entity_type: EntityType, entity_id: int) -> str:
    """The absolute selfLink of one entity."""
    return f"{base}/{entity_type.set_name}({entity_id})"
