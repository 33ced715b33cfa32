# SPDX-License-Identifier: Apache-2.0
"""Consistency checks of the data-model table in schemas.model (OGC 18-088 §8, §10)."""

from __future__ import annotations

import pytest

from schemas.model import (
    ALL_TYPES,
    ENTITY_SETS,
    ENTITY_TYPES,
    EntityType,
    Join,
    NavigationProperty,
)

NAVS: list[tuple[EntityType, NavigationProperty]] = [(t, n) for t in ALL_TYPES for n in t.navigation]


def nav_id(value: object) -> str:
    """Readable test ids: `Thing` / `Locations`."""
    return getattr(value, "name", str(value))


def test_names_sets_and_tables_unique() -> None:
    for attribute in ("name", "set_name", "table"):
        values = [getattr(t, attribute) for t in ALL_TYPES]
        assert len(values) == len(set(values)), attribute
    assert set(ENTITY_SETS) == {t.set_name for t in ALL_TYPES}
    assert set(ENTITY_TYPES) == {t.name for t in ALL_TYPES}


def test_the_sta_entity_sets() -> None:
    # §8 (sensing core) plus the MultiDatastream extension (§10).
    assert set(ENTITY_SETS) == {
        "Things", "Locations", "HistoricalLocations", "Datastreams", "MultiDatastreams",
        "Sensors", "ObservedProperties", "Observations", "FeaturesOfInterest",
    }  # fmt: skip


@pytest.mark.parametrize("entity_type", ALL_TYPES, ids=nav_id)
def test_member_names_unique(entity_type: EntityType) -> None:
    props = [p.name for p in entity_type.properties]
    navs = [n.name for n in entity_type.navigation]
    assert len(props) == len(set(props))
    assert len(navs) == len(set(navs))
    assert not set(props) & set(navs)


@pytest.mark.parametrize("entity_type", ALL_TYPES, ids=nav_id)
def test_columns_unique(entity_type: EntityType) -> None:
    columns = [c for p in entity_type.properties for c in p.columns]
    assert len(columns) == len(set(columns))


@pytest.mark.parametrize("entity_type", ALL_TYPES, ids=nav_id)
def test_read_only_properties_are_not_required(entity_type: EntityType) -> None:
    assert not [p.name for p in entity_type.properties if p.read_only and p.required]


@pytest.mark.parametrize(("entity_type", "nav"), NAVS, ids=nav_id)
def test_navigation_target_exists(entity_type: EntityType, nav: NavigationProperty) -> None:
    assert nav.target_name in ENTITY_TYPES
    assert nav.target is ENTITY_TYPES[nav.target_name]


@pytest.mark.parametrize(("entity_type", "nav"), NAVS, ids=nav_id)
def test_navigation_join_is_well_formed(entity_type: EntityType, nav: NavigationProperty) -> None:
    if nav.join is Join.FORWARD:
        assert not nav.many
        assert nav.column
        assert nav.link is None
    elif nav.join is Join.REVERSE:
        assert nav.many
        assert nav.column
        assert nav.link is None
    else:
        assert nav.many
        assert nav.link is not None
        assert not nav.column


@pytest.mark.parametrize(("entity_type", "nav"), NAVS, ids=nav_id)
def test_navigation_has_inverse(entity_type: EntityType, nav: NavigationProperty) -> None:
    # Includes Observation.Datastream/MultiDatastream: each pairs with its own Observations.
    back = entity_type.inverse(nav)
    assert back is not None, f"{entity_type.name}.{nav.name} has no inverse on {nav.target_name}"
    assert back.target_name == entity_type.name
    assert nav.target.inverse(back) is nav
    if nav.join is Join.LINK:
        assert nav.link is not None
        assert back.link is not None
        assert (back.link.source_column, back.link.target_column) == (
            nav.link.target_column,
            nav.link.source_column,
        )


def test_observation_inverses_are_distinct() -> None:
    observation = ENTITY_TYPES["Observation"]
    datastream = observation.inverse(observation.navigation_by_name["Datastream"])
    multi = observation.inverse(observation.navigation_by_name["MultiDatastream"])
    assert datastream is ENTITY_TYPES["Datastream"].navigation_by_name["Observations"]
    assert multi is ENTITY_TYPES["MultiDatastream"].navigation_by_name["Observations"]


def test_required_to_one_navigations() -> None:
    # §10.2 integrity constraints for create: these links must be given when an entity is created.
    # Observation's Datastream/MultiDatastream is one-of, and its FeatureOfInterest may be generated
    # from the Thing's Location (§10.2), so none of them is flagged required in the table.
    required = {(t.name, n.name) for t, n in NAVS if n.required}
    assert required == {
        ("HistoricalLocation", "Thing"),
        ("Datastream", "Thing"),
        ("Datastream", "Sensor"),
        ("Datastream", "ObservedProperty"),
        ("MultiDatastream", "Thing"),
        ("MultiDatastream", "Sensor"),
    }
    assert all(not n.many for _, n in NAVS if n.required)
