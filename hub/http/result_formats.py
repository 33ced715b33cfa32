# SPDX-License-Identifier: Apache-2.0
"""`$resultFormat` of collections: dataArray (OGC 18-088 §14.3), CSV and GeoJSON (FROST's formats).

Pure functions over the rendered entities (or, for dataArray, the rows) of one page:

- dataArray (Observations only): one group per (Multi)Datastream in order of first appearance,
  `components` in $select order or the standard list; `@iot.count`/`@iot.nextLink` stay at the top.
- CSV: a header of the selected property names (all of them without $select: `@iot.id`,
  `@iot.selfLink`, then the properties in model order, then expanded navigation properties), one
  row per entity; JSON objects and arrays are written as compact JSON, null as an empty cell.
- GeoJSON: a FeatureCollection with one Feature per entity. The geometry is the entity's own
  (Location.location, FeatureOfInterest.feature, (Multi)Datastream.observedArea), for Things and
  HistoricalLocations that of their first Location, for Observations that of their
  FeatureOfInterest (expanded for the purpose, and hidden again unless the client expanded it);
  a GeoJSON Feature value gives its geometry. Entities without one get `"geometry": null`.
  `properties` is the rendered entity.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from hub.errors import BadRequestError
from hub.http.exchange import CSV, GEO_JSON, JSON
from hub.query.ast import Expand, Query
from hub.query.path import ResourcePath
from hub.query.plan import ID_NAMES, SELF_LINK, ExpandPlan, Selection, plan_expands
from hub.render import property_value
from hub.store.read import Page
from schemas.model import OBSERVATION, EntityType

DEFAULT_COMPONENTS = (
    "id",
    "phenomenonTime",
    "resultTime",
    "result",
    "resultQuality",
    "validTime",
    "parameters",
)
STREAM_COLUMNS = (
    ("datastream_id", "Datastreams", "Datastream"),
    ("multi_datastream_id", "MultiDatastreams", "MultiDatastream"),
)

# Entity set -> (property holding its own geometry, navigation property whose entity has one).
_GEOMETRY: dict[str, tuple[str | None, str | None]] = {
    "Locations": ("location", None),
    "FeaturesOfInterest": ("feature", None),
    "Datastreams": ("observedArea", None),
    "MultiDatastreams": ("observedArea", None),
    "Things": (None, "Locations"),
    "HistoricalLocations": (None, "Locations"),
    "Observations": (None, "FeatureOfInterest"),
}


def check_format(path: ResourcePath, query: Query) -> None:
    """400 for a format the addressed resource cannot be given in (before anything is read)."""
    if query.result_format is None:
        return
    if not path.is_collection or path.ref or path.property is not None:
        raise BadRequestError("$resultFormat applies to collections of entities, e.g. Things or Observations")
    target = path.target.entity_type
    if query.result_format == "dataArray" and target is not OBSERVATION:
        raise BadRequestError(
            f"$resultFormat=dataArray is defined for Observations only, not {target.set_name}"
        )


def geometry_expands(
    entity_type: EntityType, expands: tuple[ExpandPlan, ...], default_top: int
) -> tuple[tuple[ExpandPlan, ...], str | None]:
    """The expands plus the one GeoJSON needs for a geometry; the added name, to hide it again."""
    nav = _GEOMETRY.get(entity_type.set_name, (None, None))[1]
    if nav is None or any(plan.nav.name == nav for plan in expands):
        return expands, None
    extra = plan_expands(entity_type, (Expand((nav,), Query(top=1)),), default_top)
    return expands + extra, nav


def geometry_selection(entity_type: EntityType, selection: Selection) -> Selection:
    """The selection to fetch for GeoJSON: the client's, plus the entity's own geometry property."""
    own = _GEOMETRY.get(entity_type.set_name, (None, None))[0]
    if own is None or selection.everything:
        return selection
    prop = entity_type.property_by_name[own]
    return dataclasses.replace(selection, properties=(*selection.properties, prop))


def format_collection(
    entity_type: EntityType,
    query: Query,
    page: Page,
    entities: list[dict[str, Any]],
    base: str,
    hidden: str | None,
) -> tuple[Any, str]:
    """The page in query.result_format: (dataArray groups | CSV text | GeoJSON object, media type)."""
    if query.result_format == "dataArray":
        return data_array(page.rows, components(query), base), JSON
    if query.result_format == "CSV":
        return to_csv(entities, csv_columns(entity_type, query)), CSV
    return feature_collection(entity_type, page.rows, entities, hidden), GEO_JSON


# ---- dataArray ---------------------------------------------------------------------------------


def components(query: Query) -> tuple[str, ...]:
    """The dataArray components: the $select order, or the standard list."""
    if query.select is None:
        return DEFAULT_COMPONENTS
    names: list[str] = []
    for path in query.select:
        segments = path.segments[1:] if path.segments[0] == OBSERVATION.set_name else path.segments
        name = "id" if segments[0] in ID_NAMES else segments[0]
        if (name == "id" or name in OBSERVATION.property_by_name) and name not in names:
            names.append(name)
    return tuple(names)


def _component(row: Mapping[str, Any], name: str) -> Any:
    if name == "id":
        return row["id"]
    return property_value(row, OBSERVATION.property_by_name[name])


def data_array(rows: Sequence[Mapping[str, Any]], names: tuple[str, ...], base: str) -> list[dict[str, Any]]:
    """Observation rows grouped by their (Multi)Datastream in order of first appearance."""
    groups: dict[tuple[str, int], dict[str, Any]] = {}
    for row in rows:
        column, set_name, nav = next((c, s, n) for c, s, n in STREAM_COLUMNS if row[c] is not None)
        key = (set_name, row[column])
        group = groups.get(key)
        if group is None:
            group = groups[key] = {
                f"{nav}@iot.navigationLink": f"{base}/{set_name}({row[column]})",
                "components": list(names),
                "dataArray@iot.count": 0,
                "dataArray": [],
            }
        group["dataArray"].append([_component(row, name) for name in names])
        group["dataArray@iot.count"] += 1
    return list(groups.values())


# ---- CSV ---------------------------------------------------------------------------------------


def csv_columns(entity_type: EntityType, query: Query) -> list[str]:
    """Header names: the $select order, or @iot.id, @iot.selfLink and every property; then expands."""
    if query.select is None:
        columns = ["@iot.id", SELF_LINK, *(p.name for p in entity_type.properties)]
    else:
        columns = []
        for path in query.select:
            segments = path.segments[1:] if path.segments[0] == entity_type.set_name else path.segments
            head = "@iot.id" if segments[0] in ID_NAMES else segments[0]
            if head in ("@iot.id", SELF_LINK) or head in entity_type.property_by_name:
                columns.append(head)
    columns.extend(item.path[0] for item in query.expand)
    return list(dict.fromkeys(columns))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def to_csv(entities: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """RFC 4180 text: the header, then one line per entity."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for entity in entities:
        writer.writerow([_cell(entity.get(column)) for column in columns])
    return out.getvalue()


# ---- GeoJSON -----------------------------------------------------------------------------------


def geometry_of(value: Any) -> dict[str, Any] | None:
    """A GeoJSON geometry, the geometry of a GeoJSON Feature, or None."""
    if not isinstance(value, dict):
        return None
    if value.get("type") == "Feature":
        return geometry_of(value.get("geometry"))
    if isinstance(value.get("type"), str) and ("coordinates" in value or "geometries" in value):
        return value
    return None


def _entity_geometry(
    entity_type: EntityType, row: Mapping[str, Any], entity: Mapping[str, Any]
) -> dict[str, Any] | None:
    own, nav = _GEOMETRY.get(entity_type.set_name, (None, None))
    if own is not None:
        return geometry_of(property_value(row, entity_type.property_by_name[own]))
    if nav is None:
        return None
    related = entity.get(nav)
    for item in related if isinstance(related, list) else [related]:
        if isinstance(item, dict):
            found = geometry_of(item.get("location", item.get("feature")))
            if found is not None:
                return found
    return None


def feature_collection(
    entity_type: EntityType,
    rows: Sequence[Mapping[str, Any]],
    entities: Sequence[dict[str, Any]],
    hidden: str | None,
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of the entities (rendered from `rows`, in the same order)."""
    features = []
    for row, entity in zip(rows, entities, strict=True):
        geometry = _entity_geometry(entity_type, row, entity)
        drop = {hidden, f"{hidden}@iot.nextLink", f"{hidden}@iot.count"} if hidden else set()
        properties = {k: v for k, v in entity.items() if k not in drop}
        feature: dict[str, Any] = {"type": "Feature"}
        if "@iot.id" in entity:
            feature["id"] = entity["@iot.id"]
        feature["geometry"] = geometry
        feature["properties"] = properties
        features.append(feature)
    return {"type": "FeatureCollection", "features": features}
