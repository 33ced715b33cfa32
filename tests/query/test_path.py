# SPDX-License-Identifier: Apache-2.0
"""Tests for the STA resource-path parser (OGC 18-088 §9.2)."""

from __future__ import annotations

import pytest

from hub.query.path import MAX_KEY, PathError, ResourcePath, parse_path

# (path, [(entity type, key, via)], property, value, ref, is_collection, canonical text or None if same)
Steps = list[tuple[str, int | None, str | None]]
VALID: list[tuple[str, Steps, str | None, bool, bool, bool, str | None]] = [
    ("Things", [("Thing", None, None)], None, False, False, True, None),
    ("Things(1)", [("Thing", 1, None)], None, False, False, False, None),
    ("Things(0)", [("Thing", 0, None)], None, False, False, False, None),
    ("Things(007)", [("Thing", 7, None)], None, False, False, False, "Things(7)"),
    (f"Things({MAX_KEY})", [("Thing", MAX_KEY, None)], None, False, False, False, None),
    ("Things/", [("Thing", None, None)], None, False, False, True, "Things"),
    ("/Things(1)//", [("Thing", 1, None)], None, False, False, False, "Things(1)"),
    ("Locations", [("Location", None, None)], None, False, False, True, None),
    ("HistoricalLocations(3)", [("HistoricalLocation", 3, None)], None, False, False, False, None),
    ("Sensors", [("Sensor", None, None)], None, False, False, True, None),
    ("ObservedProperties(2)", [("ObservedProperty", 2, None)], None, False, False, False, None),
    ("FeaturesOfInterest", [("FeatureOfInterest", None, None)], None, False, False, True, None),
    ("MultiDatastreams(4)", [("MultiDatastream", 4, None)], None, False, False, False, None),
    (
        "Things(1)/Datastreams",
        [("Thing", 1, None), ("Datastream", None, "Datastreams")],
        None, False, False, True, None,
    ),
    (
        "Things(1)/Datastreams(2)",
        [("Thing", 1, None), ("Datastream", 2, "Datastreams")],
        None, False, False, False, None,
    ),
    (
        "Datastreams(1)/Thing",
        [("Datastream", 1, None), ("Thing", None, "Thing")],
        None, False, False, False, None,
    ),
    (
        "Datastreams(1)/Thing/Locations",
        [("Datastream", 1, None), ("Thing", None, "Thing"), ("Location", None, "Locations")],
        None, False, False, True, None,
    ),
    (
        "Datastreams(1)/Thing/Locations(5)/name",
        [("Datastream", 1, None), ("Thing", None, "Thing"), ("Location", 5, "Locations")],
        "name", False, False, False, None,
    ),
    (
        "Observations(5)/FeatureOfInterest",
        [("Observation", 5, None), ("FeatureOfInterest", None, "FeatureOfInterest")],
        None, False, False, False, None,
    ),
    (
        "Observations(5)/MultiDatastream/ObservedProperties",
        [("Observation", 5, None), ("MultiDatastream", None, "MultiDatastream"),
         ("ObservedProperty", None, "ObservedProperties")],
        None, False, False, True, None,
    ),
    (
        "HistoricalLocations(1)/Thing/HistoricalLocations",
        [("HistoricalLocation", 1, None), ("Thing", None, "Thing"),
         ("HistoricalLocation", None, "HistoricalLocations")],
        None, False, False, True, None,
    ),
    ("Things(1)/name", [("Thing", 1, None)], "name", False, False, False, None),
    ("Things(1)/properties", [("Thing", 1, None)], "properties", False, False, False, None),
    ("Things(1)/name/$value", [("Thing", 1, None)], "name", True, False, False, None),
    ("Things(1)/name/$value/", [("Thing", 1, None)], "name", True, False, False, "Things(1)/name/$value"),
    ("Observations(1)/result/$value", [("Observation", 1, None)], "result", True, False, False, None),
    (
        "Datastreams(1)/Thing/description",
        [("Datastream", 1, None), ("Thing", None, "Thing")],
        "description", False, False, False, None,
    ),
    (
        "Datastreams(1)/unitOfMeasurement",
        [("Datastream", 1, None)],
        "unitOfMeasurement", False, False, False, None,
    ),
    ("Things/$ref", [("Thing", None, None)], None, False, True, True, None),
    ("Things(1)/$ref", [("Thing", 1, None)], None, False, True, False, None),
    (
        "Things(1)/Locations/$ref",
        [("Thing", 1, None), ("Location", None, "Locations")],
        None, False, True, True, None,
    ),
    (
        "Datastreams(1)/Thing/$ref",
        [("Datastream", 1, None), ("Thing", None, "Thing")],
        None, False, True, False, None,
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "segments", "prop", "value", "ref", "is_collection", "canonical"),
    VALID,
    ids=[row[0] for row in VALID],
)
def test_valid_path(
    text: str,
    segments: Steps,
    prop: str | None,
    value: bool,
    ref: bool,
    is_collection: bool,
    canonical: str | None,
) -> None:
    path = parse_path(text)
    got = [(s.entity_type.name, s.key, s.via.name if s.via else None) for s in path.segments]
    assert got == segments
    assert (path.property.name if path.property else None) == prop
    assert (path.value, path.ref, path.is_collection) == (value, ref, is_collection)
    assert path.target is path.segments[-1]
    assert str(path) == (canonical or text)
    # The canonical text parses back to the same path.
    assert parse_path(str(path)) == path


# (path, a piece of text the message must contain)
INVALID: list[tuple[str, str]] = [
    ("", "empty resource path"),
    ("/", "empty resource path"),
    ("Thingz", "unknown entity set 'Thingz'"),
    ("things", "unknown entity set 'things'"),
    ("things(1)", "did you mean 'Things'"),
    ("Thing(1)", "unknown entity set 'Thing'"),
    ("Things(1)/Foo", "Things has no property or navigation property 'Foo'"),
    ("Things(1)/Foo(2)", "Things has no navigation property 'Foo'"),
    ("Datastreams(1)/Thing/Foo", "Thing has no property or navigation property 'Foo'"),
    ("Things(1)/datastreams", "'datastreams'"),
    ("Things(abc)", "entity ids are integers: 'abc'"),
    ("Things('abc')", "entity ids are integers: \"'abc'\""),
    ("Things(-1)", "entity ids are integers: '-1'"),
    ("Things(+1)", "entity ids are integers: '+1'"),
    ("Things(1.5)", "entity ids are integers: '1.5'"),
    ("Things( 1)", "entity ids are integers: ' 1'"),
    ("Things()", "entity ids are integers: ''"),
    ("Things(\u0661)", "entity ids are integers: '\u0661'"),  # ARABIC-INDIC DIGIT ONE: not ASCII
    (f"Things({MAX_KEY + 1})", f"entity id out of range: '{MAX_KEY + 1}'"),
    ("Things(1)/Datastreams(99999999999999999999)", "out of range: '99999999999999999999'"),
    ("Things(1", "malformed segment 'Things(1'"),
    ("Things(1)(2)", "malformed segment 'Things(1)(2)'"),
    ("Things[1]", "malformed segment 'Things[1]'"),
    ("Things//Datastreams", "empty segment"),
    ("Things/Datastreams", "Things is a collection"),
    ("Things/name", "before 'name'"),
    ("Things(1)/Datastreams/Thing", "Datastreams is a collection"),
    (
        "Datastreams(1)/Thing(3)",
        "Datastream.Thing is a to-one navigation property and takes no key: 'Thing(3)'",
    ),
    ("Observations(1)/FeatureOfInterest(2)", "'FeatureOfInterest(2)'"),
    ("Things(1)/name(2)", "'name' is a property and takes no key: 'name(2)'"),
    ("Things(1)/name/description", "nothing but $value may follow property 'name': 'description'"),
    ("Things(1)/name/Datastreams", "'Datastreams'"),
    ("Things(1)/$value", "$value must follow a property"),
    ("Things/$value", "$value must follow a property"),
    ("Things(1)/name/$value/$value", "$value must follow a property and be the last segment"),
    ("Things(1)/name/$ref", "$ref cannot follow property 'name'"),
    ("Things(1)/name/$value/$ref", "$ref cannot follow property 'name'"),
    ("Things(1)/$ref/Datastreams", "$ref must be the last segment"),
    ("Things(1)/$ref/$ref", "$ref must be the last segment"),
    ("$ref", "not '$ref'"),
    ("$metadata", "not '$metadata'"),
    ("Things/$count", "unsupported path segment '$count'"),
    ("Things(1)/$value/name", "$value must follow a property"),
]


@pytest.mark.parametrize(("text", "message"), INVALID, ids=[row[0] or "<empty>" for row in INVALID])
def test_invalid_path(text: str, message: str) -> None:
    with pytest.raises(PathError) as info:
        parse_path(text)
    assert message in str(info.value)


def test_path_error_is_a_value_error() -> None:
    assert issubclass(PathError, ValueError)


def test_resource_path_is_hashable_value() -> None:
    assert parse_path("Things(1)/Datastreams") == parse_path("Things(1)/Datastreams/")
    assert len({parse_path("Things(1)"), parse_path("Things(1)/")}) == 1
    assert isinstance(parse_path("Things"), ResourcePath)


# OData 4.0 Part 2 §4.6: members of complex (unitOfMeasurement) and JSON (properties, result,
# parameters) properties are addressed by further segments, optionally followed by $value.
MEMBERS = [
    ("Datastreams(1)/unitOfMeasurement/symbol", "unitOfMeasurement", ("symbol",), False),
    ("Datastreams(1)/unitOfMeasurement/symbol/$value", "unitOfMeasurement", ("symbol",), True),
    ("Things(1)/properties/owner/name", "properties", ("owner", "name"), False),
    ("Observations(7)/parameters/quality flag/$value", "parameters", ("quality flag",), True),
    ("Locations(2)/location/type", "location", ("type",), False),
]


@pytest.mark.parametrize(("text", "prop", "members", "value"), MEMBERS, ids=[row[0] for row in MEMBERS])
def test_member_of_complex_property(text: str, prop: str, members: tuple[str, ...], value: bool) -> None:
    path = parse_path(text)
    assert path.property is not None
    assert path.property.name == prop
    assert (path.members, path.value, path.ref, path.is_collection) == (members, value, False, False)
    assert str(path) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Things(1)/properties/owner/$ref", "$ref cannot follow property 'properties'"),
        ("Things(1)/properties/$count", "unsupported path segment '$count'"),
        ("Observations(1)/resultTime/x", "nothing but $value may follow property 'resultTime': 'x'"),
    ],
)
def test_member_paths_that_address_nothing(text: str, message: str) -> None:
    with pytest.raises(PathError) as info:
        parse_path(text)
    assert message in str(info.value)


def test_short_paths_are_parsed_once_and_long_ones_not_remembered() -> None:
    from hub.query import path as module

    module._parse_cached.cache_clear()
    first = parse_path("Datastreams(5)/Observations")
    assert parse_path("Datastreams(5)/Observations") is first
    assert first == module._parse("Datastreams(5)/Observations")
    long = "Things(1)/properties/" + "/".join(["member"] * 40)
    assert len(long) > module._CACHED_LENGTH
    assert parse_path(long) == module._parse(long)
    assert module._parse_cached.cache_info().currsize == 1


def test_a_bad_path_fails_every_time_it_is_asked() -> None:
    for _ in range(2):
        with pytest.raises(PathError):
            parse_path("Things(1)/NoSuchThing")
