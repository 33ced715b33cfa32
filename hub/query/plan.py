# SPDX-License-Identifier: Apache-2.0
"""Query + entity type -> a plan whose every name is checked against schemas.model.

$expand paths become a tree of ExpandPlans (the path form
`Datastreams/Observations($top=1)` nests one level in another and merges with
a sibling `Datastreams(...)`); $select becomes a Selection that says which
properties, sub-paths and navigation links to render.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from hub.query.ast import Expand, Path, Query
from hub.query.parse import QueryError
from schemas.model import EntityType, Join, NavigationProperty, Property

ID_NAMES = frozenset({"@iot.id", "id"})
SELF_LINK = "@iot.selfLink"


@dataclass(frozen=True)
class Selection:
    """What to render of each entity; `everything` when there was no $select."""

    everything: bool = True
    id: bool = True
    self_link: bool = True
    properties: tuple[Property, ...] = ()
    # (property name, the JSON sub-paths selected inside it) pairs: `properties/serviceName`
    sub_paths: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = ()
    navigation: frozenset[str] = frozenset()

    def paths_for(self, name: str) -> tuple[tuple[str, ...], ...] | None:
        """The selected sub-paths inside property `name`, or None when it is selected whole."""
        for prop_name, paths in self.sub_paths:
            if prop_name == name:
                return paths
        return None

    def wants_property(self, prop: Property) -> bool:
        """Whether `prop` is rendered."""
        return self.everything or prop in self.properties

    def wants_link(self, nav: NavigationProperty) -> bool:
        """Whether the navigation link of `nav` is rendered."""
        return self.everything or nav.name in self.navigation


@dataclass(frozen=True)
class ExpandPlan:
    """One expanded navigation property with its options and its own nested expands."""

    nav: NavigationProperty
    query: Query
    selection: Selection
    children: tuple[ExpandPlan, ...]


def _strip_set_prefix(entity_type: EntityType, segments: tuple[str, ...]) -> tuple[str, ...]:
    # Some clients write `Things/name` when querying Things (STA-NOTES).
    if len(segments) > 1 and segments[0] == entity_type.set_name:
        return segments[1:]
    return segments


def plan_selection(entity_type: EntityType, select: tuple[Path, ...] | None) -> Selection:
    """Check $select names against the model (§9.3.2.4)."""
    if select is None:
        return Selection()
    properties: list[Property] = []
    sub_paths: dict[str, list[tuple[str, ...]]] = {}
    navigation: set[str] = set()
    wants_id = wants_self = False
    for path in select:
        segments = _strip_set_prefix(entity_type, path.segments)
        head = segments[0]
        if head in ID_NAMES and len(segments) == 1:
            wants_id = True
        elif head == SELF_LINK and len(segments) == 1:
            wants_self = True
        elif head in entity_type.property_by_name:
            prop = entity_type.property_by_name[head]
            if prop not in properties:
                properties.append(prop)
            if len(segments) > 1:
                sub_paths.setdefault(head, []).append(segments[1:])
        elif head in entity_type.navigation_by_name and len(segments) == 1:
            navigation.add(head)
        else:
            raise QueryError(
                f"$select: {entity_type.set_name} has no property or navigation '{'/'.join(segments)}'"
            )
    # A whole property selected next to a sub-path of it wins.
    whole = {p.name for p in properties} - {name for name, paths in sub_paths.items() if all(paths)}
    return Selection(
        everything=False,
        id=wants_id,
        self_link=wants_self,
        properties=tuple(properties),
        sub_paths=tuple((k, tuple(v)) for k, v in sub_paths.items() if k not in whole),
        navigation=frozenset(navigation),
    )


def _merge(expands: tuple[Expand, ...], default_top: int) -> list[Expand]:
    """Turn `A/B(opts)` into `A($expand=B(opts))`, merged with a sibling `A(...)` whose options win."""
    merged: dict[str, Expand] = {}
    implied: set[str] = set()  # heads that exist only to carry a path-form child
    for item in expands:
        head, rest = item.path[0], item.path[1:]
        if rest:
            item = Expand((head,), Query(top=default_top, expand=(Expand(rest, item.query),)))
        existing = merged.get(head)
        if existing is None:
            merged[head] = item
            if rest:
                implied.add(head)
            continue
        base, extra = (item, existing) if head in implied and not rest else (existing, item)
        if not rest:
            implied.discard(head)
        merged[head] = Expand(
            (head,), dataclasses.replace(base.query, expand=base.query.expand + extra.query.expand)
        )
    return list(merged.values())


def plan_expands(
    entity_type: EntityType, expands: tuple[Expand, ...], default_top: int
) -> tuple[ExpandPlan, ...]:
    """Check $expand names against the model and build the expand tree (§9.3.2.1)."""
    plans = []
    for item in _merge(expands, default_top):
        name = item.path[0]
        nav = entity_type.navigation_by_name.get(name)
        if nav is None:
            raise QueryError(f"$expand: {entity_type.set_name} has no navigation property '{name}'")
        plans.append(
            ExpandPlan(
                nav=nav,
                query=item.query,
                selection=plan_selection(nav.target, item.query.select),
                children=plan_expands(nav.target, item.query.expand, default_top),
            )
        )
    return tuple(plans)


def is_latest_only(nav: NavigationProperty, query: Query) -> bool:
    """`Observations($orderby=phenomenonTime desc;$top=1)` on a (Multi)Datastream: served from the
    Datastream's stored latest Observation instead of a scan (issue 3, viewer shape 1)."""
    if nav.name != "Observations" or nav.join is not Join.REVERSE:
        return False
    if query.top != 1 or query.skip or query.filter is not None or query.count or len(query.orderby) != 1:
        return False
    order = query.orderby[0]
    return order.descending and isinstance(order.expr, Path) and order.expr.segments == ("phenomenonTime",)
