# SPDX-License-Identifier: Apache-2.0
"""The SensorThings v1.1 data model (OGC 18-088 §8), declared once.

Everything else (validation, SQL, rendering, paths) is derived from the table
at the bottom of this module: adding a property is a one-line change there and,
for a new column, one line in a migration.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from functools import cached_property


class Kind(enum.Enum):
    """The value kinds a property can hold; each maps to a validator and SQL columns."""

    TEXT = "text"  # JSON string
    OBJECT = "object"  # JSON object (properties, parameters)
    JSON = "json"  # any JSON value (result, resultQuality, metadata)
    INSTANT = "instant"  # ISO 8601 instant, one timestamptz column
    TIME = "time"  # instant or interval: <column>_start, <column>_end
    INTERVAL = "interval"  # interval only (validTime, Datastream extents): <column>_start, <column>_end
    GEOJSON = "geojson"  # GeoJSON geometry or Feature, stored as jsonb
    UNIT = "unit"  # unitOfMeasurement object {name, symbol, definition}
    ARRAY = "array"  # JSON array (unitOfMeasurements, multiObservationDataTypes)


TWO_COLUMN_KINDS = frozenset({Kind.TIME, Kind.INTERVAL})


# The model's objects are singletons declared below: identity is equality, and hashing by
# identity keeps them cheap as dict and cache keys on hot paths (rendering, notifications).
@dataclass(frozen=True, eq=False)
class Property:
    """An entity property: its STA name, SQL column and rules."""

    name: str
    column: str
    kind: Kind
    required: bool = False  # must be given on create (§8.2 tables, "Multiplicity and use")
    read_only: bool = False  # computed by the server; accepted and ignored on input
    render_null: bool = False  # render as JSON null instead of omitting when unset

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """The SQL columns that hold this property."""
        if self.kind in TWO_COLUMN_KINDS:
            return (f"{self.column}_start", f"{self.column}_end")
        return (self.column,)


class Join(enum.Enum):
    """How a navigation property reaches its target rows."""

    FORWARD = "forward"  # to-one: the source row holds the target id in `column`
    REVERSE = "reverse"  # to-many: target rows hold the source id in `column`
    LINK = "link"  # many-to-many through a link table


@dataclass(frozen=True)
class LinkTable:
    """A many-to-many link table between two entity tables."""

    table: str
    source_column: str
    target_column: str
    rank_column: str | None = None  # keeps the order of an ordered link (MultiDatastream ObservedProperties)


@dataclass(frozen=True, eq=False)
class NavigationProperty:
    """A navigation property: target type, cardinality and how to join."""

    name: str
    target_name: str
    many: bool
    join: Join
    column: str = ""  # FORWARD: column on source; REVERSE: column on target
    link: LinkTable | None = None
    required: bool = False  # a to-one link that must be given on create

    @property
    def target(self) -> EntityType:
        """The entity type this navigation property leads to."""
        return ENTITY_TYPES[self.target_name]


@dataclass(frozen=True, eq=False)
class EntityType:
    """One STA entity type: its entity set, table, properties and navigation properties."""

    name: str
    set_name: str
    table: str
    properties: tuple[Property, ...]
    navigation: tuple[NavigationProperty, ...] = field(default=())

    @cached_property
    def property_by_name(self) -> dict[str, Property]:
        """Properties keyed by STA name."""
        return {p.name: p for p in self.properties}

    @cached_property
    def navigation_by_name(self) -> dict[str, NavigationProperty]:
        """Navigation properties keyed by STA name."""
        return {n.name: n for n in self.navigation}

    def inverse(self, nav: NavigationProperty) -> NavigationProperty | None:
        """The navigation property on nav's target that walks nav backwards."""
        return _inverse(self, nav)

    def _find_inverse(self, nav: NavigationProperty) -> NavigationProperty | None:
        for back in nav.target.navigation:
            if back.target_name != self.name:
                continue
            if nav.join is Join.LINK and back.join is Join.LINK:
                assert nav.link is not None
                assert back.link is not None
                if back.link.table == nav.link.table:
                    return back
            elif {nav.join, back.join} == {Join.FORWARD, Join.REVERSE} and back.column == nav.column:
                return back
        return None


@functools.cache
def _inverse(source: EntityType, nav: NavigationProperty) -> NavigationProperty | None:
    return source._find_inverse(nav)


def _named(name: str, column: str = "") -> Property:
    return Property(name, column or name, Kind.TEXT, required=True)


NAME = _named("name")
DESCRIPTION = _named("description")
ENCODING_TYPE = _named("encodingType", "encoding_type")
PROPERTIES = Property("properties", "properties", Kind.OBJECT)

_P = NavigationProperty
_J = Join

THING = EntityType(
    "Thing", "Things", "things",
    (NAME, DESCRIPTION, PROPERTIES),
    (
        _P("Locations", "Location", True, _J.LINK, link=LinkTable("thing_locations", "thing_id", "location_id")),
        _P("HistoricalLocations", "HistoricalLocation", True, _J.REVERSE, "thing_id"),
        _P("Datastreams", "Datastream", True, _J.REVERSE, "thing_id"),
        _P("MultiDatastreams", "MultiDatastream", True, _J.REVERSE, "thing_id"),
    ),
)  # fmt: skip

LOCATION = EntityType(
    "Location", "Locations", "locations",
    (NAME, DESCRIPTION, ENCODING_TYPE, Property("location", "location", Kind.GEOJSON, required=True), PROPERTIES),
    (
        _P("Things", "Thing", True, _J.LINK, link=LinkTable("thing_locations", "location_id", "thing_id")),
        _P("HistoricalLocations", "HistoricalLocation", True, _J.LINK,
           link=LinkTable("location_historical_locations", "location_id", "historical_location_id")),
    ),
)  # fmt: skip

HISTORICAL_LOCATION = EntityType(
    "HistoricalLocation", "HistoricalLocations", "historical_locations",
    (Property("time", "time", Kind.INSTANT, required=True),),
    (
        _P("Thing", "Thing", False, _J.FORWARD, "thing_id", required=True),
        _P("Locations", "Location", True, _J.LINK,
           link=LinkTable("location_historical_locations", "historical_location_id", "location_id")),
    ),
)  # fmt: skip

_DATASTREAM_EXTENTS = (
    Property("observedArea", "observed_area", Kind.GEOJSON, read_only=True),
    Property("phenomenonTime", "phenomenon_time", Kind.INTERVAL, read_only=True),
    Property("resultTime", "result_time", Kind.INTERVAL, read_only=True),
)

DATASTREAM = EntityType(
    "Datastream", "Datastreams", "datastreams",
    (
        NAME, DESCRIPTION,
        Property("unitOfMeasurement", "unit_of_measurement", Kind.UNIT, required=True),
        Property("observationType", "observation_type", Kind.TEXT, required=True),
        *_DATASTREAM_EXTENTS,
        PROPERTIES,
    ),
    (
        _P("Thing", "Thing", False, _J.FORWARD, "thing_id", required=True),
        _P("Sensor", "Sensor", False, _J.FORWARD, "sensor_id", required=True),
        _P("ObservedProperty", "ObservedProperty", False, _J.FORWARD, "observed_property_id", required=True),
        _P("Observations", "Observation", True, _J.REVERSE, "datastream_id"),
    ),
)  # fmt: skip

# MultiDatastream: the MultiDatastream extension (OGC 18-088 §10).
MULTI_DATASTREAM = EntityType(
    "MultiDatastream", "MultiDatastreams", "multi_datastreams",
    (
        NAME, DESCRIPTION,
        Property("unitOfMeasurements", "unit_of_measurements", Kind.ARRAY, required=True),
        Property("observationType", "observation_type", Kind.TEXT, required=True),
        Property("multiObservationDataTypes", "multi_observation_data_types", Kind.ARRAY, required=True),
        *_DATASTREAM_EXTENTS,
        PROPERTIES,
    ),
    (
        _P("Thing", "Thing", False, _J.FORWARD, "thing_id", required=True),
        _P("Sensor", "Sensor", False, _J.FORWARD, "sensor_id", required=True),
        _P("ObservedProperties", "ObservedProperty", True, _J.LINK,
           link=LinkTable("multi_datastream_observed_properties", "multi_datastream_id", "observed_property_id",
                         rank_column="rank")),
        _P("Observations", "Observation", True, _J.REVERSE, "multi_datastream_id"),
    ),
)  # fmt: skip

SENSOR = EntityType(
    "Sensor", "Sensors", "sensors",
    (NAME, DESCRIPTION, ENCODING_TYPE, Property("metadata", "metadata", Kind.JSON, required=True), PROPERTIES),
    (
        _P("Datastreams", "Datastream", True, _J.REVERSE, "sensor_id"),
        _P("MultiDatastreams", "MultiDatastream", True, _J.REVERSE, "sensor_id"),
    ),
)  # fmt: skip

OBSERVED_PROPERTY = EntityType(
    "ObservedProperty", "ObservedProperties", "observed_properties",
    (NAME, Property("definition", "definition", Kind.TEXT, required=True), DESCRIPTION, PROPERTIES),
    (
        _P("Datastreams", "Datastream", True, _J.REVERSE, "observed_property_id"),
        _P("MultiDatastreams", "MultiDatastream", True, _J.LINK,
           link=LinkTable("multi_datastream_observed_properties", "observed_property_id", "multi_datastream_id")),
    ),
)  # fmt: skip

OBSERVATION = EntityType(
    "Observation", "Observations", "observations",
    (
        Property("phenomenonTime", "phenomenon_time", Kind.TIME),
        Property("resultTime", "result_time", Kind.INSTANT, render_null=True),
        Property("result", "result", Kind.JSON, required=True, render_null=True),
        Property("resultQuality", "result_quality", Kind.JSON),
        Property("validTime", "valid_time", Kind.INTERVAL),
        Property("parameters", "parameters", Kind.OBJECT),
    ),
    (
        _P("Datastream", "Datastream", False, _J.FORWARD, "datastream_id"),
        _P("MultiDatastream", "MultiDatastream", False, _J.FORWARD, "multi_datastream_id"),
        _P("FeatureOfInterest", "FeatureOfInterest", False, _J.FORWARD, "feature_of_interest_id"),
    ),
)  # fmt: skip

FEATURE_OF_INTEREST = EntityType(
    "FeatureOfInterest", "FeaturesOfInterest", "features_of_interest",
    (NAME, DESCRIPTION, ENCODING_TYPE, Property("feature", "feature", Kind.GEOJSON, required=True), PROPERTIES),
    (_P("Observations", "Observation", True, _J.REVERSE, "feature_of_interest_id"),),
)  # fmt: skip

ALL_TYPES: tuple[EntityType, ...] = (
    THING, LOCATION, HISTORICAL_LOCATION, DATASTREAM, MULTI_DATASTREAM,
    SENSOR, OBSERVED_PROPERTY, OBSERVATION, FEATURE_OF_INTEREST,
)  # fmt: skip

ENTITY_TYPES: dict[str, EntityType] = {t.name: t for t in ALL_TYPES}
ENTITY_SETS: dict[str, EntityType] = {t.set_name: t for t in ALL_TYPES}

# The observationType of every MultiDatastream (§10.2, Table 27).
COMPLEX_OBSERVATION = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_ComplexObservation"
