# SPDX-License-Identifier: Apache-2.0
"""Tests for request-body validation derived from the data model."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pydantic
import pytest

from schemas.entities import (
    ValidationError,
    create_model_for,
    parse_instant,
    parse_time,
    update_model_for,
    validate_create,
    validate_geojson,
    validate_update,
)
from schemas.model import (
    ALL_TYPES,
    DATASTREAM,
    ENTITY_TYPES,
    FEATURE_OF_INTEREST,
    HISTORICAL_LOCATION,
    LOCATION,
    MULTI_DATASTREAM,
    OBSERVATION,
    OBSERVED_PROPERTY,
    SENSOR,
    THING,
    EntityType,
)

F = "Observation.phenomenonTime"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    """A UTC datetime, shorter to write in tables."""
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


# --- instants ----------------------------------------------------------------------------------

INSTANTS: list[tuple[str, datetime]] = [
    ("2020-01-01T00:00:00Z", utc(2020, 1, 1)),
    ("2020-01-01T00:00:00.000Z", utc(2020, 1, 1)),
    ("2020-01-01T00:00:00+00:00", utc(2020, 1, 1)),
    ("2020-01-01T01:30:00+01:30", utc(2020, 1, 1)),
    ("2020-01-01T00:00:00-05:00", utc(2020, 1, 1, 5)),
    ("2020-01-01T00:00:00+0100", utc(2019, 12, 31, 23)),
    ("2020-01-01T10:15Z", utc(2020, 1, 1, 10, 15)),
    ("2020-01-01T10:15:20.123456789Z", utc(2020, 1, 1, 10, 15, 20, 123456)),
    ("2020-01-01T10:15:20,5Z", utc(2020, 1, 1, 10, 15, 20, 500000)),
    ("2020-01-01T10:15:20", utc(2020, 1, 1, 10, 15, 20)),  # no offset: UTC
    ("2020-01-01t10:15:20z", utc(2020, 1, 1, 10, 15, 20)),  # RFC 3339 lower case
    ("2020-01-01 10:15:20Z", utc(2020, 1, 1, 10, 15, 20)),  # RFC 3339 space
    ("2020-02-29T00:00:00Z", utc(2020, 2, 29)),
]


@pytest.mark.parametrize(("text", "expected"), INSTANTS)
def test_parse_instant(text: str, expected: datetime) -> None:
    parsed = parse_instant(text, "HistoricalLocation.time")
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


BAD_INSTANTS = [
    "xyz",
    "",
    "2020-01-01",  # a date is not an instant
    "2020-01",
    "20200101T101520Z",  # basic format
    "2020-W01-1T00:00:00Z",
    "2020-02-30T00:00:00Z",
    "2021-02-29T00:00:00Z",
    "2020-01-01T24:00:00Z",
    "2020-13-01T00:00:00Z",
    "2020-01-01T00:00:00+25:00",
    "2020-01-01T00:00:00Zjunk",
    "2020-01-01T00:00:00Z/2020-01-02T00:00:00Z",  # an interval is not an instant
    "1577836800",
]


@pytest.mark.parametrize("text", BAD_INSTANTS)
def test_parse_instant_rejects(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_instant(text, "HistoricalLocation.time")
    assert str(info.value).startswith("HistoricalLocation.time: not an ISO 8601 instant: ")
    assert repr(text) in str(info.value)


# --- instants and intervals --------------------------------------------------------------------

TIMES: list[tuple[str, tuple[datetime, datetime]]] = [
    ("2020-01-01T00:00:00Z", (utc(2020, 1, 1), utc(2020, 1, 1))),
    ("2020-01-01T00:00:00+00:00", (utc(2020, 1, 1), utc(2020, 1, 1))),
    ("2020-01-01T00:00:00Z/2020-01-02T00:00:00Z", (utc(2020, 1, 1), utc(2020, 1, 2))),
    ("2020-01-01T00:00:00Z/2020-01-01T00:00:00Z", (utc(2020, 1, 1), utc(2020, 1, 1))),
    ("2020-01-01T01:00:00+01:00/2020-01-01T00:15:00Z", (utc(2020, 1, 1), utc(2020, 1, 1, 0, 15))),
    ("2020-01-01T00:00:00Z/PT15M", (utc(2020, 1, 1), utc(2020, 1, 1, 0, 15))),
    ("2020-01-01T00:00:00Z/PT1H", (utc(2020, 1, 1), utc(2020, 1, 1, 1))),
    ("2020-01-01T00:00:00Z/P1D", (utc(2020, 1, 1), utc(2020, 1, 2))),
    ("2020-01-01T00:00:00Z/P1W", (utc(2020, 1, 1), utc(2020, 1, 8))),
    ("2020-01-01T00:00:00Z/P1DT2H3M4S", (utc(2020, 1, 1), utc(2020, 1, 2, 2, 3, 4))),
    ("2020-01-01T00:00:00Z/PT0.5S", (utc(2020, 1, 1), utc(2020, 1, 1, 0, 0, 0, 500000))),
    ("2020-01-01T00:00:00Z/PT1,5H", (utc(2020, 1, 1), utc(2020, 1, 1, 1, 30))),
    ("2020-01-01T00:00:00Z/PT0S", (utc(2020, 1, 1), utc(2020, 1, 1))),
    ("2020-01-01T00:00:00Z/PT36H", (utc(2020, 1, 1), utc(2020, 1, 2, 12))),
    ("PT1H/2020-01-01T00:00:00Z", (utc(2019, 12, 31, 23), utc(2020, 1, 1))),
    ("P1D/2020-03-01T00:00:00Z", (utc(2020, 2, 29), utc(2020, 3, 1))),
    # Years and months use calendar arithmetic, clamping to the month's last day.
    ("2020-01-31T00:00:00Z/P1M", (utc(2020, 1, 31), utc(2020, 2, 29))),
    ("2020-01-15T00:00:00Z/P1Y", (utc(2020, 1, 15), utc(2021, 1, 15))),
    ("2020-01-01T00:00:00Z/P1Y2M3DT4H5M6S", (utc(2020, 1, 1), utc(2021, 3, 4, 4, 5, 6))),
    ("P1M/2020-03-31T00:00:00Z", (utc(2020, 2, 29), utc(2020, 3, 31))),
    # Month arithmetic happens in the instant's own offset, then converts to UTC.
    ("2020-01-31T23:00:00-02:00/P1M", (utc(2020, 2, 1, 1), utc(2020, 3, 1, 1))),
    ("2020-01-01t00:00:00z/pt1h", (utc(2020, 1, 1), utc(2020, 1, 1, 1))),
]


@pytest.mark.parametrize(("text", "expected"), TIMES)
def test_parse_time(text: str, expected: tuple[datetime, datetime]) -> None:
    start, end = parse_time(text, F)
    assert (start, end) == expected
    assert start.tzinfo is not None
    assert start.utcoffset() == timedelta(0)
    assert end.utcoffset() == timedelta(0)


BAD_TIMES: list[tuple[object, str]] = [
    ("xyz", "not an ISO 8601 instant or interval: 'xyz'"),
    ("", "not an ISO 8601 instant or interval: ''"),
    ("2020-01-01", "not an ISO 8601 instant or interval"),
    ("2020-01-02T00:00:00Z/2020-01-01T00:00:00Z", "interval starts after it ends"),
    ("2020-01-01T00:00:00Z/", "not an ISO 8601 instant or interval"),
    ("/2020-01-01T00:00:00Z", "not an ISO 8601 instant or interval"),
    ("2020-01-01T00:00:00Z/xyz", "not an ISO 8601 instant or interval"),
    ("PT1H/PT2H", "not an ISO 8601 instant or interval"),
    ("2020-01-01T00:00:00Z/P", "not an ISO 8601 instant or interval"),
    ("2020-01-01T00:00:00Z/PT", "not an ISO 8601 instant or interval"),
    ("2020-01-01T00:00:00Z/P1H", "not an ISO 8601 instant or interval"),  # hours need T
    ("2020-01-01T00:00:00Z/PT1D", "not an ISO 8601 instant or interval"),
    ("2020-01-01T00:00:00Z/P1.5DT1H", "not an ISO 8601 instant or interval"),  # fraction not last
    ("2020-01-01T00:00:00Z/P1.5M", "not an ISO 8601 instant or interval"),  # no fractional months
    ("2020-01-01T00:00:00Z/P1W2D", "not an ISO 8601 instant or interval"),  # weeks stand alone
    ("2020-01-01T00:00:00Z/-PT1H", "not an ISO 8601 instant or interval"),
    ("2020-01-01T00:00:00Z/2020-01-02T00:00:00Z/2020-01-03T00:00:00Z", "not an ISO 8601 instant or interval"),
    ("../2020-01-01T00:00:00Z", "not an ISO 8601 instant or interval"),
    ("9999-12-31T00:00:00Z/P1D", "out of range"),
    ("P1D/0001-01-01T00:00:00Z", "out of range"),
    ("2020-01-01T00:00:00Z/P99999999999D", "out of range"),
    (42, "must be an ISO 8601 instant or interval string, not a number"),
    (None, "not null"),
    (["2020-01-01T00:00:00Z"], "not an array"),
    ({"start": "2020-01-01T00:00:00Z"}, "not an object"),
]


@pytest.mark.parametrize(("value", "message"), BAD_TIMES)
def test_parse_time_rejects(value: object, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_time(value, F)
    assert str(info.value).startswith(f"{F}: ")
    assert message in str(info.value)


def test_validation_error_fields_and_pickle() -> None:
    error = ValidationError("Thing.name", "is required")
    assert (error.field, error.message, str(error)) == (
        "Thing.name",
        "is required",
        "Thing.name: is required",
    )
    assert isinstance(error, ValueError)
    assert str(pickle.loads(pickle.dumps(error))) == "Thing.name: is required"


# --- GeoJSON -----------------------------------------------------------------------------------

SQUARE = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
HOLE = [[0.2, 0.2], [0.4, 0.2], [0.4, 0.4], [0.2, 0.2]]
OPEN = [[0.2, 0.2], [0.4, 0.2], [0.4, 0.4], [0.2, 0.4]]

GEOMETRIES: list[dict[str, Any]] = [
    {"type": "Point", "coordinates": [9.99, 53.55]},
    {"type": "Point", "coordinates": [9.99, 53.55, 12.5]},
    {"type": "Point", "coordinates": [10, 53]},
    {"type": "MultiPoint", "coordinates": [[1, 2], [3, 4]]},
    {"type": "LineString", "coordinates": [[1, 2], [3, 4]]},
    {"type": "MultiLineString", "coordinates": [[[1, 2], [3, 4]], [[5, 6], [7, 8], [9, 10]]]},
    {"type": "Polygon", "coordinates": [SQUARE]},
    {"type": "Polygon", "coordinates": [SQUARE, HOLE]},
    {"type": "MultiPolygon", "coordinates": [[SQUARE], [SQUARE, HOLE]]},
    {
        "type": "GeometryCollection",
        "geometries": [
            {"type": "Point", "coordinates": [1, 2]},
            {"type": "Polygon", "coordinates": [SQUARE]},
        ],
    },
    {"type": "Point", "coordinates": [1, 2], "bbox": [1, 2, 1, 2], "crs": {"type": "name"}},
]


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: str(g["type"]))
def test_geojson_geometry(geometry: dict[str, Any]) -> None:
    assert validate_geojson(geometry, "Location.location") is geometry


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: str(g["type"]))
def test_geojson_feature(geometry: dict[str, Any]) -> None:
    # Hamburg's Locations are GeoJSON Features (STA-NOTES, "Hamburg's conventions").
    feature = {"type": "Feature", "geometry": geometry, "properties": {"name": "x"}}
    assert validate_geojson(feature, "Location.location") is feature
    assert validate_geojson({"type": "Feature", "geometry": geometry}, "f") is not None
    assert validate_geojson({"type": "Feature", "geometry": geometry, "properties": None}, "f") is not None


BAD_GEOJSON: list[tuple[object, str]] = [
    (None, "must be a GeoJSON geometry or Feature object"),
    ("POINT(1 2)", "must be a GeoJSON geometry or Feature object"),
    ([1, 2], "must be a GeoJSON geometry or Feature object"),
    ({}, "with a 'type'"),
    ({"coordinates": [1, 2]}, "with a 'type'"),
    ({"type": "Circle", "coordinates": [1, 2]}, "unsupported geometry type 'Circle'"),
    ({"type": "point", "coordinates": [1, 2]}, "unsupported geometry type 'point'"),
    ({"type": "FeatureCollection", "features": []}, "unsupported geometry type 'FeatureCollection'"),
    ({"type": "Point"}, "coordinates is missing"),
    ({"type": "Point", "coordinates": None}, "coordinates must be a position"),
    ({"type": "Point", "coordinates": [1]}, "coordinates must be a position"),
    ({"type": "Point", "coordinates": [1, 2, 3, 4]}, "coordinates must be a position"),
    ({"type": "Point", "coordinates": ["1", "2"]}, "only numbers, found '1'"),
    ({"type": "Point", "coordinates": [1, True]}, "only numbers, found True"),
    ({"type": "Point", "coordinates": [1, None]}, "only numbers, found None"),
    ({"type": "Point", "coordinates": [1, float("nan")]}, "only numbers"),
    ({"type": "Point", "coordinates": [[1, 2], [3, 4]]}, "only numbers, found [1, 2]"),
    ({"type": "MultiPoint", "coordinates": [1, 2]}, "coordinates[0] must be a position"),
    ({"type": "MultiPoint", "coordinates": []}, "coordinates needs at least 1 positions, has 0"),
    ({"type": "LineString", "coordinates": [[1, 2]]}, "coordinates needs at least 2 positions, has 1"),
    ({"type": "LineString", "coordinates": [1, 2]}, "coordinates[0] must be a position"),
    ({"type": "LineString", "coordinates": {"a": 1}}, "coordinates must be an array of positions"),
    ({"type": "MultiLineString", "coordinates": [[[1, 2]]]}, "coordinates[0] needs at least 2 positions"),
    ({"type": "MultiLineString", "coordinates": [[1, 2], [3, 4]]}, "coordinates[0][0] must be a position"),
    ({"type": "Polygon", "coordinates": []}, "coordinates needs at least 1 linear rings"),
    ({"type": "Polygon", "coordinates": SQUARE}, "coordinates[0][0] must be a position"),
    (
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]},
        "coordinates[0] needs at least 4 positions",
    ),
    ({"type": "Polygon", "coordinates": [SQUARE[:-1]]}, "coordinates[0] is not a closed ring"),
    ({"type": "Polygon", "coordinates": [SQUARE, OPEN]}, "coordinates[1] is not a closed ring"),
    ({"type": "MultiPolygon", "coordinates": [SQUARE]}, "coordinates[0][0][0] must be a position"),
    (
        {"type": "MultiPolygon", "coordinates": [[SQUARE], [SQUARE[:-1]]]},
        "coordinates[1][0] is not a closed ring",
    ),
    ({"type": "GeometryCollection"}, "geometries must be an array of geometries"),
    ({"type": "GeometryCollection", "geometries": []}, "geometries needs at least 1 geometries"),
    (
        {"type": "GeometryCollection", "geometries": [{"type": "Point"}]},
        "geometries[0].coordinates is missing",
    ),
    (
        {"type": "GeometryCollection", "geometries": [{"type": "GeometryCollection", "geometries": []}]},
        "geometries[0]: nested GeometryCollections are not supported",
    ),
    (
        {"type": "GeometryCollection", "geometries": [{"type": "Feature"}]},
        "unsupported geometry type 'Feature'",
    ),
    ({"type": "Feature"}, "geometry is missing"),
    ({"type": "Feature", "geometry": None}, "geometry is missing"),
    ({"type": "Feature", "geometry": {"type": "Point", "coordinates": [1]}}, "geometry.coordinates must be"),
    ({"type": "Feature", "geometry": {"type": "Feature"}}, "geometry.type: unsupported geometry type"),
    (
        {"type": "Feature", "geometry": GEOMETRIES[0], "properties": [1]},
        "properties must be an object or null",
    ),
]


@pytest.mark.parametrize(("value", "message"), BAD_GEOJSON)
def test_geojson_rejects(value: object, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_geojson(value, "Location.location")
    assert str(info.value).startswith("Location.location: ")
    assert message in str(info.value)


# --- create and update per entity type ---------------------------------------------------------

POINT = {"type": "Point", "coordinates": [9.99, 53.55]}
UNIT = {"name": "degree Celsius", "symbol": "°C", "definition": "http://unitsofmeasure.org/ucum.html#para-30"}

# A minimal valid create body per entity type.
MINIMAL: dict[str, dict[str, object]] = {
    "Thing": {"name": "Oven", "description": "An oven"},
    "Location": {
        "name": "Kitchen",
        "description": "d",
        "encodingType": "application/geo+json",
        "location": POINT,
    },
    "HistoricalLocation": {"time": "2020-01-01T00:00:00Z"},
    "Datastream": {
        "name": "Temperature",
        "description": "d",
        "unitOfMeasurement": UNIT,
        "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
    },
    "MultiDatastream": {
        "name": "Wind",
        "description": "d",
        "unitOfMeasurements": [UNIT, UNIT],
        "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_ComplexObservation",
        "multiObservationDataTypes": ["x", "y"],
    },
    "Sensor": {
        "name": "DHT22",
        "description": "d",
        "encodingType": "application/pdf",
        "metadata": "http://x",
    },
    "ObservedProperty": {"name": "Temperature", "definition": "http://x", "description": "d"},
    "Observation": {"result": 21.5},
    "FeatureOfInterest": {
        "name": "Kitchen",
        "description": "d",
        "encodingType": "application/geo+json",
        "feature": POINT,
    },
}


def test_minimal_bodies_cover_every_type() -> None:
    assert set(MINIMAL) == set(ENTITY_TYPES)


@pytest.mark.parametrize("entity_type", ALL_TYPES, ids=lambda t: t.name)
def test_minimal_create_is_valid(entity_type: EntityType) -> None:
    body = MINIMAL[entity_type.name]
    validated = validate_create(entity_type, body)
    assert set(validated) == set(body)


REQUIRED: list[tuple[EntityType, str]] = [
    (entity_type, prop.name)
    for entity_type in ALL_TYPES
    for prop in entity_type.properties
    if prop.required and not prop.read_only
]


@pytest.mark.parametrize(("entity_type", "name"), REQUIRED, ids=lambda x: getattr(x, "name", x))
def test_create_requires(entity_type: EntityType, name: str) -> None:
    body = {k: v for k, v in MINIMAL[entity_type.name].items() if k != name}
    with pytest.raises(ValidationError) as info:
        validate_create(entity_type, body)
    assert str(info.value) == f"{entity_type.name}.{name}: is required"


@pytest.mark.parametrize(("entity_type", "name"), REQUIRED, ids=lambda x: getattr(x, "name", x))
def test_update_makes_required_optional(entity_type: EntityType, name: str) -> None:
    body = {k: v for k, v in MINIMAL[entity_type.name].items() if k != name}
    assert name not in validate_update(entity_type, body)
    assert validate_update(entity_type, {}) == {}


NOT_NULL = [(t, n) for t, n in REQUIRED if t.property_by_name[n].kind.value != "json"]


@pytest.mark.parametrize(("entity_type", "name"), NOT_NULL, ids=lambda x: getattr(x, "name", x))
def test_required_rejects_null(entity_type: EntityType, name: str) -> None:
    for validate in (validate_create, validate_update):
        with pytest.raises(ValidationError) as info:
            validate(entity_type, {**MINIMAL[entity_type.name], name: None})
        assert str(info.value) == f"{entity_type.name}.{name}: must not be null"


UNKNOWN: list[tuple[EntityType, dict[str, object], str]] = [
    (THING, {"foo": 1}, "Thing: unknown property 'foo'"),
    (THING, {"foo": 1, "bar": 2}, "Thing: unknown properties 'foo', 'bar'"),
    (THING, {"Name": "x"}, "'Name'"),  # STA names are case-sensitive
    (THING, {"location": POINT}, "Thing: unknown property 'location'"),
    (LOCATION, {"encoding_type": "x"}, "Location: unknown property 'encoding_type'"),  # attribute, not alias
    (OBSERVATION, {"phenomenon_time": "2020-01-01T00:00:00Z"}, "'phenomenon_time'"),
    (DATASTREAM, {"unitOfMeasurements": []}, "Datastream: unknown property 'unitOfMeasurements'"),
    (SENSOR, {"definition": "x"}, "Sensor: unknown property 'definition'"),
]


@pytest.mark.parametrize(("entity_type", "extra", "message"), UNKNOWN)
def test_unknown_properties(entity_type: EntityType, extra: dict[str, object], message: str) -> None:
    for validate in (validate_create, validate_update):
        with pytest.raises(ValidationError) as info:
            validate(entity_type, {**MINIMAL[entity_type.name], **extra})
        assert message in str(info.value)


READ_ONLY: list[tuple[EntityType, dict[str, object]]] = [
    # aio-sensorthings copies the computed extents from another server (STA-NOTES).
    (DATASTREAM, {"phenomenonTime": "2020-01-01T00:00:00Z/2020-01-02T00:00:00Z"}),
    (DATASTREAM, {"resultTime": "not even a time", "observedArea": POINT}),
    (DATASTREAM, {"observedArea": None}),
    (MULTI_DATASTREAM, {"phenomenonTime": 5, "resultTime": None, "observedArea": "x"}),
]


@pytest.mark.parametrize(("entity_type", "extra"), READ_ONLY)
def test_read_only_accepted_and_dropped(entity_type: EntityType, extra: dict[str, object]) -> None:
    body = {**MINIMAL[entity_type.name], **extra}
    assert set(validate_create(entity_type, body)) == set(MINIMAL[entity_type.name])
    assert validate_update(entity_type, extra) == {}


RESULTS: list[object] = [
    None,
    True,
    False,
    0,
    21.5,
    -3,
    "on",
    "",
    {"a": [1, {"b": None}]},
    [],
    [1, "x", None],
]


@pytest.mark.parametrize("result", RESULTS, ids=repr)
def test_result_json_preserved(result: object) -> None:
    created = validate_create(OBSERVATION, {"result": result})
    assert created == {"result": result}
    assert type(created["result"]) is type(result)
    assert validate_update(OBSERVATION, {"result": result}) == {"result": result}


CONVERTED: list[tuple[EntityType, dict[str, object], dict[str, object] | None]] = [
    (
        OBSERVATION,
        {"result": 1, "phenomenonTime": "2020-01-01T00:00:00+01:00", "resultTime": "2020-01-01T00:00:00Z"},
        {
            "result": 1,
            "phenomenonTime": (utc(2019, 12, 31, 23), utc(2019, 12, 31, 23)),
            "resultTime": utc(2020, 1, 1),
        },
    ),
    (
        OBSERVATION,
        {"result": 1, "phenomenonTime": "2020-01-01T00:00:00Z/PT15M", "resultTime": None},
        {"result": 1, "phenomenonTime": (utc(2020, 1, 1), utc(2020, 1, 1, 0, 15)), "resultTime": None},
    ),
    (
        OBSERVATION,
        {"result": 1, "validTime": "2020-01-01T00:00:00Z", "resultQuality": ["ok"], "parameters": {"q": 1}},
        {
            "result": 1,
            "validTime": (utc(2020, 1, 1), utc(2020, 1, 1)),
            "resultQuality": ["ok"],
            "parameters": {"q": 1},
        },
    ),
    (
        OBSERVATION,
        {"result": 1, "phenomenonTime": None, "validTime": None, "parameters": None, "resultQuality": None},
        {"result": 1, "phenomenonTime": None, "validTime": None, "parameters": None, "resultQuality": None},
    ),
    (HISTORICAL_LOCATION, {"time": "2020-06-01T12:00:00+02:00"}, {"time": utc(2020, 6, 1, 10)}),
    (
        THING,
        {"name": "", "description": "", "properties": {}},
        {"name": "", "description": "", "properties": {}},
    ),
    (
        THING,
        {"name": "a", "description": "b", "properties": None},
        {"name": "a", "description": "b", "properties": None},
    ),
    (SENSOR, {**MINIMAL["Sensor"], "metadata": {"a": 1}}, {**MINIMAL["Sensor"], "metadata": {"a": 1}}),
    (DATASTREAM, {**MINIMAL["Datastream"], "unitOfMeasurement": {"name": None}}, None),
    (DATASTREAM, {**MINIMAL["Datastream"], "unitOfMeasurement": {}}, None),
    (LOCATION, {**MINIMAL["Location"], "location": {"type": "Feature", "geometry": POINT}}, None),
    (FEATURE_OF_INTEREST, {**MINIMAL["FeatureOfInterest"], "properties": {"x": [1]}}, None),
]


@pytest.mark.parametrize(("entity_type", "body", "expected"), CONVERTED)
def test_create_converts(
    entity_type: EntityType, body: dict[str, object], expected: dict[str, object] | None
) -> None:
    assert validate_create(entity_type, body) == (body if expected is None else expected)


INVALID: list[tuple[EntityType, dict[str, object], str]] = [
    (THING, {"name": 5}, "Thing.name: must be a string, not a number"),
    (THING, {"name": True}, "Thing.name: must be a string, not a boolean"),
    (THING, {"description": ["x"]}, "Thing.description: must be a string, not an array"),
    (THING, {"properties": "x"}, "Thing.properties: must be a JSON object, not a string"),
    (THING, {"properties": [1]}, "Thing.properties: must be a JSON object, not an array"),
    (OBSERVATION, {"parameters": 1}, "Observation.parameters: must be a JSON object, not a number"),
    (
        OBSERVATION,
        {"phenomenonTime": "xyz"},
        "Observation.phenomenonTime: not an ISO 8601 instant or interval: 'xyz'",
    ),
    (
        OBSERVATION,
        {"phenomenonTime": 1577836800},
        "Observation.phenomenonTime: must be an ISO 8601 instant or",
    ),
    (
        OBSERVATION,
        {"resultTime": "2020-01-01T00:00:00Z/PT1H"},
        "Observation.resultTime: not an ISO 8601 instant",
    ),
    (
        OBSERVATION,
        {"resultTime": 5},
        "Observation.resultTime: must be an ISO 8601 instant string, not a number",
    ),
    (
        OBSERVATION,
        {"validTime": "2020-01-02T00:00:00Z/2020-01-01T00:00:00Z"},
        "Observation.validTime: interval",
    ),
    (
        HISTORICAL_LOCATION,
        {"time": "2020-01-01"},
        "HistoricalLocation.time: not an ISO 8601 instant: '2020-01-01'",
    ),
    (LOCATION, {"location": {"type": "Point"}}, "Location.location: coordinates is missing"),
    (LOCATION, {"location": "POINT(1 2)"}, "Location.location: must be a GeoJSON geometry or Feature object"),
    (FEATURE_OF_INTEREST, {"feature": {"type": "Feature"}}, "FeatureOfInterest.feature: geometry is missing"),
    (DATASTREAM, {"unitOfMeasurement": "°C"}, "Datastream.unitOfMeasurement: must be an object"),
    (
        DATASTREAM,
        {"unitOfMeasurement": {"symbol": 1}},
        "Datastream.unitOfMeasurement.symbol: must be a string",
    ),
    (DATASTREAM, {"observationType": 1}, "Datastream.observationType: must be a string, not a number"),
    (
        MULTI_DATASTREAM,
        {"unitOfMeasurements": UNIT},
        "MultiDatastream.unitOfMeasurements: must be a JSON array",
    ),
    (
        MULTI_DATASTREAM,
        {"multiObservationDataTypes": "x"},
        "MultiDatastream.multiObservationDataTypes: must be",
    ),
    (
        OBSERVED_PROPERTY,
        {"definition": {"x": 1}},
        "ObservedProperty.definition: must be a string, not an object",
    ),
]


@pytest.mark.parametrize(("entity_type", "change", "message"), INVALID)
def test_invalid_values(entity_type: EntityType, change: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_create(entity_type, {**MINIMAL[entity_type.name], **change})
    assert str(info.value).startswith(message)
    with pytest.raises(ValidationError) as info:
        validate_update(entity_type, change)
    assert str(info.value).startswith(message)
    assert "pydantic" not in str(info.value)
    assert "type=" not in str(info.value)


def test_update_returns_only_given_properties() -> None:
    assert validate_update(THING, {"name": "new"}) == {"name": "new"}
    assert validate_update(OBSERVATION, {"resultTime": None}) == {"resultTime": None}


def test_create_does_not_invent_defaults() -> None:
    # resultTime null is decided by the caller (STA-NOTES 7), not by validation.
    assert validate_create(OBSERVATION, {"result": 1}) == {"result": 1}


@pytest.mark.parametrize("entity_type", ALL_TYPES, ids=lambda t: t.name)
def test_models_are_cached_and_strict(entity_type: EntityType) -> None:
    create, update = create_model_for(entity_type), update_model_for(entity_type)
    assert create is create_model_for(entity_type)
    assert update is update_model_for(entity_type)
    assert issubclass(create, pydantic.BaseModel)
    assert create is not update
    assert create.model_config.get("extra") == "forbid"
    assert create.model_config.get("strict") is True
    writable = {p.name for p in entity_type.properties if not p.read_only}
    assert {f.alias for f in create.model_fields.values()} == writable
    assert {f.alias for f in update.model_fields.values()} == writable
    required = {f.alias for f in create.model_fields.values() if f.is_required()}
    assert required == {p.name for p in entity_type.properties if p.required and not p.read_only}
    assert not any(f.is_required() for f in update.model_fields.values())


def test_offsets_are_normalised_to_utc() -> None:
    created = validate_create(HISTORICAL_LOCATION, {"time": "2020-01-01T00:00:00-08:00"})
    time = created["time"]
    assert isinstance(time, datetime)
    assert time.tzinfo == UTC
    assert time == datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=-8)))
