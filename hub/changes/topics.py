# SPDX-License-Identifier: Apache-2.0
"""Which topics a committed entity is announced on (OGC 18-088 §14.1), derived from schemas.model.

The topic planner of the change feed: MQTT notifications and ``/live`` use the same topics.
Pure functions only: given a row (the columns of ``select_list`` plus the related ids
below) they return topics; hub/changes/load.py loads the rows, the sinks publish.

A row may carry, besides its columns, keys holding related ids (a missing key means none):

* ``row[N]`` for a LINK navigation N: the ids of the linked targets
  (a Location's ``"Things"``), giving ``Things(t)/Locations``;
* ``row["N/R"]`` for a two-hop listed in TWO_HOPS: the ids of the entities R of the targets
  of N (a Location's ``"Things/Datastreams"``), giving ``Datastreams(d)/Thing/Locations``;
* ``row["N@latest"]`` for an Observation that is the latest of its stream N
  (``datastreams.last_observation_id``): its collection topic is published RETAINED.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from hub.render import property_value
from schemas.model import EntityType, Join, NavigationProperty, Property

CREATE = "create"
UPDATE = "update"
# Not a committed operation: the entity did not change, but a collection it belongs to did
# (a Thing moved to an existing Location): only its navigation collection topics are published.
LINK = "link"
OPERATION_ORDER = (CREATE, UPDATE, LINK)  # the order topics of merged operations come in

# (target type, collection on it) -> to-many navigations of the target whose entities reach that
# collection over a to-one hop: Things(1)/Locations is also Datastreams(d)/Thing/Locations, the
# topic Masterportal subscribes to for moving Things.
TWO_HOPS: dict[tuple[str, str], tuple[str, ...]] = {
    ("Thing", "Locations"): ("Datastreams", "MultiDatastreams"),
}

# (entity type, navigation) whose collections are not published: the HistoricalLocations of a
# Location grow without bound (one per move), and HistoricalLocations(h)/Locations, a closed
# record of the past, is no collection anyone watches; the HistoricalLocation's own create is.
UNPUBLISHED: frozenset[tuple[str, str]] = frozenset({("Location", "HistoricalLocations")})

# Observation navigations whose stream remembers its latest Observation (last_observation_id).
LATEST_STREAMS: dict[str, tuple[str, ...]] = {"Observation": ("Datastream", "MultiDatastream")}

Topic = tuple[str, bool]  # (topic, retain)
# (topic, retain, the property whose value alone is the payload, or None for the whole entity)
Publication = tuple[str, bool, Property | None]


def entity_topic(version: str, entity_type: EntityType, entity_id: object) -> str:
    """``v1.1/Things(1)``."""
    return f"{version}/{entity_type.set_name}({entity_id})"


def property_topics(entity_type: EntityType, row: Mapping[str, Any], version: str) -> dict[str, Property]:
    """``v1.1/Things(1)/name`` -> property, for each property the entity has (a value, or rendered null)."""
    own = entity_topic(version, entity_type, row["id"])
    return {
        f"{own}/{prop.name}": prop
        for prop in entity_type.properties
        if prop.render_null or property_value(row, prop) is not None
    }


def _published(entity_type: EntityType) -> list[NavigationProperty]:
    return [nav for nav in entity_type.navigation if (entity_type.name, nav.name) not in UNPUBLISHED]


def _ids(value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return sorted(value)
    return [value]


@dataclass(frozen=True)
class _Collection:
    """One navigation whose targets hold the entity in a collection: how to name its topics."""

    nav: NavigationProperty
    key: str  # the row key holding the target ids: a FORWARD column, else the navigation's name
    target_set: str  # "Datastreams"
    collection: str  # "Observations"
    latest_key: str | None  # "Datastream@latest" where the stream remembers its latest Observation
    two_hops: tuple[tuple[str, str, str], ...]  # (row key, source set, to-one name): Datastreams(d)/Thing


@functools.cache
def _collections(entity_type: EntityType) -> tuple[_Collection, ...]:
    """Per entity type, worked out once from the model (this runs for every notification)."""
    latest = LATEST_STREAMS.get(entity_type.name, ())
    plan: list[_Collection] = []
    for nav in _published(entity_type):
        if nav.join is Join.REVERSE:
            continue  # targets point at us: we are not in a collection of theirs
        back = entity_type.inverse(nav)
        if back is None or not back.many:
            continue
        hops: list[tuple[str, str, str]] = []
        for hop in TWO_HOPS.get((nav.target_name, back.name), ()):
            via = nav.target.navigation_by_name[hop]  # Thing.Datastreams
            to_one = nav.target.inverse(via)  # Datastream.Thing
            if to_one is not None:
                hops.append((f"{nav.name}/{hop}", via.target.set_name, to_one.name))
        plan.append(
            _Collection(
                nav,
                nav.column if nav.join is Join.FORWARD and nav.column else nav.name,
                nav.target.set_name,
                back.name,
                f"{nav.name}@latest" if nav.name in latest else None,
                tuple(hops),
            )
        )
    return tuple(plan)


def collection_topics(entity_type: EntityType, row: Mapping[str, Any], version: str) -> Iterator[Topic]:
    """The navigation collections the entity belongs to: Datastreams(7)/Observations, ..."""
    for item in _collections(entity_type):
        retain = item.latest_key is not None and bool(row.get(item.latest_key))
        for target_id in _ids(row.get(item.key)):
            yield f"{version}/{item.target_set}({target_id})/{item.collection}", retain
        for key, source_set, to_one in item.two_hops:
            for source_id in _ids(row.get(key)):
                yield f"{version}/{source_set}({source_id})/{to_one}/{item.collection}", False


def topics_for(entity_type: EntityType, row: Mapping[str, Any], operation: str, version: str) -> list[Topic]:
    """The (topic, retain) pairs a created, updated or linked entity is published on, in order.

    create: entity set, entity, navigation collections. update: the same plus every property
    topic of the entity (which properties changed is not known, so all it has are published).
    link: navigation collections only. delete (or anything else): nothing, STA 1.1 has no
    delete notifications.
    """
    if operation not in (CREATE, UPDATE, LINK):
        return []
    topics: list[Topic] = []
    if operation != LINK:
        topics.append((f"{version}/{entity_type.set_name}", False))
        topics.append((entity_topic(version, entity_type, row["id"]), False))
    topics.extend(collection_topics(entity_type, row, version))
    if operation == UPDATE:
        topics.extend((topic, False) for topic in property_topics(entity_type, row, version))
    return list(dict.fromkeys(topics))


_CREATE_ONLY = frozenset({CREATE})


def plan(
    entity_type: EntityType, row: Mapping[str, Any], operations: Iterable[str], version: str
) -> list[Publication]:
    """Every publication of one changed entity under `version`, in order, each topic once.

    The operations of one batch are merged (a create and a later update are one announcement);
    property topics carry only that property (§14.1: ``Things(1)/name`` -> ``{"name": ...}``).
    """
    if operations == _CREATE_ONLY:  # the common case (every created Observation): no merging
        if _single_targets(entity_type):
            return _create_plan(entity_type, row, version)
        return [(topic, retain, None) for topic, retain in topics_for(entity_type, row, CREATE, version)]
    ordered = sorted(set(operations), key=OPERATION_ORDER.index)
    props = property_topics(entity_type, row, version) if UPDATE in ordered else {}
    topics = dict.fromkeys(t for op in ordered for t in topics_for(entity_type, row, op, version))
    return [(topic, retain, props.get(topic)) for topic, retain in topics]


@functools.cache
def _single_targets(entity_type: EntityType) -> bool:
    """Whether each collection the type's entities belong to is named by one id column of theirs
    (an Observation's Datastream, MultiDatastream, FeatureOfInterest): then its create's topics
    are distinct by construction and _create_plan gives them without merging."""
    return all(item.nav.join is Join.FORWARD and item.key == item.nav.column and not item.two_hops
               for item in _collections(entity_type))  # fmt: skip


def _create_plan(entity_type: EntityType, row: Mapping[str, Any], version: str) -> list[Publication]:
    """plan(..., {CREATE}, ...) for a type with _single_targets, straight (once per Observation)."""
    publications: list[Publication] = [
        (f"{version}/{entity_type.set_name}", False, None),
        (f"{version}/{entity_type.set_name}({row['id']})", False, None),
    ]
    for item in _collections(entity_type):
        target = row.get(item.key)
        if target is None:
            continue
        retain = item.latest_key is not None and bool(row.get(item.latest_key))
        for target_id in _ids(target):
            publications.append((f"{version}/{item.target_set}({target_id})/{item.collection}", retain, None))
    return publications


# ---- what to load for the related ids ---------------------------------------------------------


def related_queries(entity_type: EntityType) -> list[tuple[str, str]]:
    """(row key, SQL) for every related-id key topics_for reads; each SQL takes $1 = bigint[] of
    entity ids and answers (id, related) rows: one statement per key for a whole batch."""
    queries: list[tuple[str, str]] = []
    for nav in _published(entity_type):
        if nav.join is Join.LINK:
            assert nav.link is not None
            src, tgt = nav.link.source_column, nav.link.target_column
            sql = f"SELECT {src} AS id, {tgt} AS related FROM {nav.link.table} WHERE {src} = ANY($1)"
            queries.append((nav.name, sql))
        back = entity_type.inverse(nav)
        if nav.join is not Join.REVERSE and back is not None:
            for hop in TWO_HOPS.get((nav.target_name, back.name), ()):
                queries.append((f"{nav.name}/{hop}", _two_hop_sql(entity_type, nav, hop)))
    for name in LATEST_STREAMS.get(entity_type.name, ()):
        nav = entity_type.navigation_by_name[name]
        queries.append(
            (
                f"{name}@latest",
                f"SELECT e.id, s.id AS related FROM {entity_type.table} e "
                f"JOIN {nav.target.table} s ON s.id = e.{nav.column} AND s.last_observation_id = e.id "
                "WHERE e.id = ANY($1)",
            )
        )
    return queries


def _two_hop_sql(entity_type: EntityType, nav: NavigationProperty, hop: str) -> str:
    via = nav.target.navigation_by_name[hop]  # Thing.Datastreams: REVERSE, column on the Datastream
    if nav.join is Join.LINK:
        assert nav.link is not None
        src, tgt = nav.link.source_column, nav.link.target_column
        return (
            f"SELECT l.{src} AS id, x.id AS related FROM {nav.link.table} l "
            f"JOIN {via.target.table} x ON x.{via.column} = l.{tgt} WHERE l.{src} = ANY($1)"
        )
    return (
        f"SELECT e.id, x.id AS related FROM {entity_type.table} e "
        f"JOIN {via.target.table} x ON x.{via.column} = e.{nav.column} WHERE e.id = ANY($1)"
    )


def group_related(records: Sequence[Mapping[str, Any]]) -> dict[int, list[int]]:
    """(id, related) rows -> id -> related ids."""
    grouped: dict[int, list[int]] = {}
    for record in records:
        grouped.setdefault(record["id"], []).append(record["related"])
    return grouped


# ---- $select topics ----------------------------------------------------------------------------
#
# STA §14.1 lets a subscription carry $select (`v1.1/Datastreams(5)/Observations?$select=result,
# phenomenonTime`). An MQTT topic is matched literally and the hub cannot see who subscribes to
# what on an external broker, so it publishes the configured forms (settings.mqtt_select_topics)
# on every topic of an entity whose type has all the selected names (property topics excepted).

SELECT_MARK = "?$select="
ID_NAMES = frozenset({"id", "@iot.id"})
SelectForm = tuple[str, tuple[str, ...]]  # ("result,phenomenonTime", ("result", "phenomenonTime"))


def select_forms(forms: Sequence[str]) -> tuple[SelectForm, ...]:
    """The configured $select values with their names."""
    return tuple((form, tuple(name.strip() for name in form.split(","))) for form in forms)


def select_topics(
    entity_type: EntityType, topics: Sequence[Topic], forms: Sequence[SelectForm], skip: Mapping[str, Any]
) -> list[tuple[str, bool, tuple[str, ...]]]:
    """(topic?$select=form, retain, names) for each topic not in `skip` and each form that applies."""
    applicable = _applicable(entity_type, tuple(forms))
    return [
        (f"{topic}{SELECT_MARK}{form}", retain, names)
        for topic, retain in topics
        if topic not in skip
        for form, names in applicable
    ]


@functools.cache
def _applicable(entity_type: EntityType, forms: tuple[SelectForm, ...]) -> list[SelectForm]:
    """The forms whose names `entity_type` all has (worked out once per type: every notification asks)."""
    known = entity_type.property_by_name
    return [(f, names) for f, names in forms if all(n in known or n in ID_NAMES for n in names)]


def selected(entity: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """The rendered entity cut to the selected names, in their order (what $select gives over HTTP)."""
    keys = ("@iot.id" if name in ID_NAMES else name for name in names)
    return {key: entity[key] for key in keys if key in entity}


Members = tuple[tuple[str, bytes], ...]  # (entity key, b'"key":') of each selected member, in order


def members(names: Sequence[str]) -> Members:
    """The members `selected` keeps for these names, each once, with its JSON prefix: a payload is
    ``{`` + the present members' prefix and dumped value, comma-separated, + ``}``, byte for byte
    what orjson.dumps(selected(entity, names)) writes."""
    keys = dict.fromkeys("@iot.id" if name in ID_NAMES else name for name in names)
    return tuple((key, orjson.dumps(key) + b":") for key in keys)


@functools.cache
def version_of(prefix: str) -> str:
    """The STA version of a topic prefix, for selfLinks: ``test-1/v1.1`` -> ``v1.1``."""
    return prefix.rsplit("/", 1)[-1]


__all__ = [
    "CREATE",
    "LINK",
    "OPERATION_ORDER",
    "TWO_HOPS",
    "UNPUBLISHED",
    "UPDATE",
    "Members",
    "Publication",
    "Topic",
    "collection_topics",
    "entity_topic",
    "group_related",
    "members",
    "plan",
    "property_topics",
    "related_queries",
    "select_forms",
    "select_topics",
    "selected",
    "topics_for",
    "version_of",
]
