# SPDX-License-Identifier: Apache-2.0
"""Entity create, update, delete and link, inside one transaction (OGC 18-088 §10).

A Writer is made per request on a connection with an open transaction; the
caller commits. Deep inserts recurse through the navigation properties of
schemas.model, so no entity type needs code of its own except for the
side effects the standard asks for (HistoricalLocations, generated
FeaturesOfInterest, MultiDatastream result arity), which live in small hooks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from hub.errors import BadLinkError, BadRequestError, ConflictError, NotFoundError
from hub.store import observations as obs
from hub.store import rollups
from schemas.entities import validate_create, validate_update
from schemas.model import (
    ENTITY_SETS,
    FEATURE_OF_INTEREST,
    HISTORICAL_LOCATION,
    LOCATION,
    MULTI_DATASTREAM,
    OBSERVATION,
    OBSERVED_PROPERTY,
    EntityType,
    Join,
    NavigationProperty,
    Property,
)


@dataclass(frozen=True)
class Change:
    """A committed change, for notifications (the MQTT extension publishes these)."""

    entity_type: EntityType
    entity_id: int
    operation: str  # "create" | "update" | "delete"
    # A created Observation as its insert stored it, when the writer has it at hand: the change
    # feed then announces it without reading it back (hub/changes/load.py).
    stored: obs.StoredObservation | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ParentLink:
    """The entity a nested or navigated create hangs from: Things(1)/Datastreams."""

    source: EntityType  # the parent's type
    nav: NavigationProperty  # navigation from the parent to the new entity
    parent_id: int

    @property
    def back(self) -> NavigationProperty | None:
        """The navigation from the new entity back to the parent."""
        return self.source.inverse(self.nav)


def split_body(entity_type: EntityType, body: object, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate a JSON body into properties and navigation properties; drop annotations."""
    if not isinstance(body, dict):
        raise BadRequestError(f"{where}: expected a JSON object, got {type(body).__name__}")
    props: dict[str, Any] = {}
    navs: dict[str, Any] = {}
    for key, value in body.items():
        if key in entity_type.navigation_by_name:
            navs[key] = value
        elif "@iot." in key:
            continue  # @iot.selfLink, X@iot.navigationLink: copied from another server, meaningless here
        else:
            props[key] = value  # unknown names are reported by validation
    return props, navs


_SELF_LINK_ID = re.compile(r"(?:^|/)(\w+)\((\d+)\)/?$")


def reference_id(entity_type: EntityType, body: object, where: str) -> int:
    """The id in a reference body: {"@iot.id": 1} or {"@iot.selfLink": ".../Things(1)"}."""
    if isinstance(body, dict) and "@iot.id" in body:
        entity_id = body["@iot.id"]
        if isinstance(entity_id, str) and entity_id.isdigit():
            entity_id = int(entity_id)
        if isinstance(entity_id, bool) or not isinstance(entity_id, int) or entity_id < 0:
            raise BadRequestError(f"{where}: @iot.id must be a non-negative integer, got {entity_id!r}")
        return entity_id
    if isinstance(body, dict) and isinstance(body.get("@iot.selfLink"), str):
        match = _SELF_LINK_ID.search(body["@iot.selfLink"])
        if match and ENTITY_SETS.get(match.group(1)) is entity_type:
            return int(match.group(2))
        raise BadRequestError(f"{where}: @iot.selfLink does not address a {entity_type.name}")
    raise BadRequestError(f'{where}: expected a reference {{"@iot.id": <id>}} to a {entity_type.name}')


def _column_values(entity_type: EntityType, values: Mapping[str, Any]) -> dict[str, Any]:
    """Validated property values -> column values (two columns for times)."""
    columns: dict[str, Any] = {}
    for name, value in values.items():
        prop: Property = entity_type.property_by_name[name]
        if prop.read_only:
            continue
        if len(prop.columns) == 2:
            start, end = value if value is not None else (None, None)
            columns[prop.columns[0]], columns[prop.columns[1]] = start, end
        else:
            columns[prop.column] = value
    return columns


@dataclass
class Writer:
    """Create, update, delete and link entities on one connection inside one transaction."""

    conn: asyncpg.Connection
    now: datetime
    changes: list[Change] = field(default_factory=list)
    # Thing id -> Locations newly linked to it in this request (for HistoricalLocations, §8.2.3).
    moved_things: dict[int, list[int]] = field(default_factory=dict)

    # ---- references -------------------------------------------------------------------------

    async def exists(self, entity_type: EntityType, entity_id: int) -> bool:
        """Whether the entity exists."""
        sql = f"SELECT 1 FROM {entity_type.table} WHERE id = $1"
        return await self.conn.fetchval(sql, entity_id) is not None

    async def reference(self, entity_type: EntityType, body: object, where: str) -> int:
        """Resolve a reference body to an existing entity id (a missing one is a 400, STA-NOTES 3)."""
        entity_id = reference_id(entity_type, body, where)
        if not await self.exists(entity_type, entity_id):
            raise BadLinkError(f"{where}: {entity_type.name} {entity_id} does not exist")
        return entity_id

    # ---- create -----------------------------------------------------------------------------

    async def create(
        self, entity_type: EntityType, body: object, parent: ParentLink | None = None, where: str = ""
    ) -> int:
        """Create an entity with its deep-inserted relatives, or resolve it when it is a reference."""
        where = where or entity_type.name
        if isinstance(body, dict) and "@iot.id" in body:
            # A nested object carrying @iot.id is a reference, whatever else it carries (STA-NOTES).
            entity_id = await self.reference(entity_type, body, where)
            if parent is not None:
                await self._attach_existing(entity_type, entity_id, parent, where)
            return entity_id
        props, navs = split_body(entity_type, body, where)
        values = validate_create(entity_type, props)
        back = parent.back if parent else None
        foreign = await self._to_one_links(entity_type, navs, parent, back, where)
        if entity_type is OBSERVATION:
            row = await self._observation_row(values, foreign, where)
            (entity_id,) = await obs.insert_observations(self.conn, [row])
            self.changes.append(Change(OBSERVATION, entity_id, "create"))
            return entity_id
        entity_id = await self._insert(entity_type, _column_values(entity_type, values), foreign)
        if parent is not None and back is not None and back.join is Join.LINK:
            await self._link_rows(back, entity_id, [parent.parent_id])
        await self._to_many_links(entity_type, entity_id, navs, where)
        await _AFTER_CREATE.get(entity_type.name, _nothing)(self, entity_id, values)
        return entity_id

    async def _to_one_links(
        self,
        entity_type: EntityType,
        navs: Mapping[str, Any],
        parent: ParentLink | None,
        back: NavigationProperty | None,
        where: str,
    ) -> dict[str, int]:
        foreign: dict[str, int] = {}
        for nav in entity_type.navigation:
            if nav.join is not Join.FORWARD:
                continue
            if parent is not None and back is nav:
                foreign[nav.column] = parent.parent_id
            elif navs.get(nav.name) is not None:
                foreign[nav.column] = await self._create_or_skip_check(
                    entity_type, nav, navs[nav.name], where
                )
            elif nav.required:
                raise BadLinkError(f"{where}.{nav.name}: is required")
        return foreign

    async def _create_or_skip_check(
        self, entity_type: EntityType, nav: NavigationProperty, body: object, where: str
    ) -> int:
        # An Observation's stream is checked by the FeatureOfInterest lookup or the foreign
        # key, which saves a round trip on the hottest write path.
        if entity_type is OBSERVATION and nav.column != "feature_of_interest_id" and _is_reference(body):
            return reference_id(nav.target, body, f"{where}.{nav.name}")
        return await self.create(nav.target, body, where=f"{where}.{nav.name}")

    async def _to_many_links(
        self, entity_type: EntityType, entity_id: int, navs: Mapping[str, Any], where: str
    ) -> None:
        for nav in entity_type.navigation:
            items = navs.get(nav.name)
            if nav.join is Join.FORWARD or items is None:
                continue
            if not isinstance(items, list):
                raise BadRequestError(f"{where}.{nav.name}: expected a JSON array")
            child_ids = []
            for index, item in enumerate(items):
                child_where = f"{where}.{nav.name}[{index}]"
                if nav.join is Join.REVERSE:
                    await self.create(nav.target, item, ParentLink(entity_type, nav, entity_id), child_where)
                else:
                    child_ids.append(await self.create(nav.target, item, where=child_where))
            if nav.join is Join.LINK:
                await self._link_rows(nav, entity_id, child_ids)

    async def _insert(
        self, entity_type: EntityType, columns: Mapping[str, Any], foreign: Mapping[str, int]
    ) -> int:
        names = [*columns, *foreign]
        values = [*columns.values(), *foreign.values()]
        placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        sql = f"INSERT INTO {entity_type.table} ({', '.join(names)}) VALUES ({placeholders}) RETURNING id"
        try:
            entity_id: int = await self.conn.fetchval(sql, *values)
        except asyncpg.ForeignKeyViolationError as error:
            raise BadLinkError(f"{entity_type.name}: links to a missing entity ({error.detail})") from None
        self.changes.append(Change(entity_type, entity_id, "create"))
        return entity_id

    async def _attach_existing(
        self, entity_type: EntityType, entity_id: int, parent: ParentLink, where: str
    ) -> None:
        """A reference inside a to-many list or a navigated POST: link it to the parent."""
        back = parent.back
        if back is None:
            raise BadRequestError(f"{where}: cannot be linked here")
        if back.join is Join.LINK:
            await self._link_rows(back, entity_id, [parent.parent_id])
        elif back.join is Join.FORWARD:
            sql = f"UPDATE {entity_type.table} SET {back.column} = $1 WHERE id = $2"
            await self.conn.execute(sql, parent.parent_id, entity_id)
            self.changes.append(Change(entity_type, entity_id, "update"))

    async def _link_rows(self, nav: NavigationProperty, source_id: int, target_ids: list[int]) -> None:
        """Insert link-table rows source -> targets (idempotent)."""
        link = nav.link
        assert link is not None
        if link.rank_column is None and link.table in _RANKED_LINK_TABLES:
            # Seen from the other side (ObservedProperty.MultiDatastreams): the order is the
            # MultiDatastream's, set when it was created; a link added later would have no rank.
            raise ConflictError(
                f"{nav.target_name}: the ObservedProperties of a MultiDatastream are fixed at creation"
            )
        rows: list[tuple[int, ...]]
        if link.rank_column is not None:
            rows = [(source_id, target, rank) for rank, target in enumerate(target_ids)]
            cols = f"{link.source_column}, {link.target_column}, {link.rank_column}"
        else:
            rows = [(source_id, target) for target in target_ids]
            cols = f"{link.source_column}, {link.target_column}"
        marks = ", ".join(f"${i}" for i in range(1, len(rows[0]) + 1)) if rows else ""
        sql = f"INSERT INTO {link.table} ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING"
        if rows:
            await self.conn.executemany(sql, rows)
        if link.table == "thing_locations":
            for source, target in ((r[0], r[1]) for r in rows):
                thing, location = (source, target) if nav.target_name == "Location" else (target, source)
                self.moved_things.setdefault(thing, []).append(location)

    # ---- Observations -----------------------------------------------------------------------

    async def _observation_row(
        self, values: Mapping[str, Any], foreign: dict[str, int], where: str
    ) -> obs.ObservationRow:
        stream_table, stream_id = _observation_stream(foreign, where)
        if stream_table == MULTI_DATASTREAM.table:
            await self._check_multi_result(stream_id, values.get("result"), where)
        if "feature_of_interest_id" not in foreign:
            features = await obs.features_for_streams(self.conn, stream_table, [stream_id])
            foreign["feature_of_interest_id"] = features[stream_id]
        elif not await self.exists(ENTITY_SETS[_STREAM_SETS[stream_table]], stream_id):
            kind = ENTITY_SETS[_STREAM_SETS[stream_table]].name
            raise BadLinkError(f"{where}.{kind}: {kind} {stream_id} does not exist")
        start, end = values.get("phenomenonTime") or (self.now, self.now)
        valid = values.get("validTime") or (None, None)
        return obs.ObservationRow(
            phenomenon_time_start=start,
            phenomenon_time_end=end,
            result=values.get("result"),
            feature_of_interest_id=foreign["feature_of_interest_id"],
            datastream_id=foreign.get("datastream_id"),
            multi_datastream_id=foreign.get("multi_datastream_id"),
            result_time=values.get("resultTime"),
            result_quality=values.get("resultQuality"),
            valid_time_start=valid[0],
            valid_time_end=valid[1],
            parameters=values.get("parameters"),
        )

    async def _check_multi_result(self, stream_id: int, result: object, where: str) -> None:
        """A MultiDatastream result is an array with one element per ObservedProperty (§10.2)."""
        sql = "SELECT count(*) FROM multi_datastream_observed_properties WHERE multi_datastream_id = $1"
        expected = await self.conn.fetchval(sql, stream_id)
        if not expected:  # every MultiDatastream has ObservedProperties, so it does not exist
            raise BadLinkError(f"{where}.MultiDatastream: MultiDatastream {stream_id} does not exist")
        if not isinstance(result, list) or len(result) != expected:
            raise BadRequestError(
                f"{where}.result: a MultiDatastream Observation needs an array of {expected} results "
                "(one per ObservedProperty)"
            )

    # ---- HistoricalLocations ----------------------------------------------------------------

    async def record_moves(self) -> None:
        """One HistoricalLocation per Thing whose Locations changed in this request (§8.2.3)."""
        for thing_id, location_ids in self.moved_things.items():
            sql = "INSERT INTO historical_locations (time, thing_id) VALUES ($1, $2) RETURNING id"
            hl_id = await self.conn.fetchval(sql, self.now, thing_id)
            await self.conn.executemany(
                "INSERT INTO location_historical_locations (location_id, historical_location_id) "
                "VALUES ($1, $2) ON CONFLICT DO NOTHING",
                [(location_id, hl_id) for location_id in location_ids],
            )
            self.changes.append(Change(HISTORICAL_LOCATION, hl_id, "create"))
        self.moved_things.clear()

    # ---- update -----------------------------------------------------------------------------

    async def update(
        self, entity_type: EntityType, entity_id: int, body: object, replace: bool = False
    ) -> None:
        """PATCH (merge) or PUT (replace) an entity's properties and to-one links."""
        where = entity_type.name
        props, navs = split_body(entity_type, body, where)
        values = validate_create(entity_type, props) if replace else validate_update(entity_type, props)
        columns = _column_values(entity_type, values)
        before = await self._observation_streams(entity_id) if entity_type is OBSERVATION else []
        touched = await rollups.changing_keys(self.conn, entity_type.name, entity_id)
        if replace:
            for prop in entity_type.properties:
                if not prop.read_only and prop.name not in values:
                    columns.update(dict.fromkeys(prop.columns))
        for nav in entity_type.navigation:
            if nav.name in navs and nav.join is Join.FORWARD:
                columns[nav.column] = await self.reference(nav.target, navs[nav.name], f"{where}.{nav.name}")
        await self._update_columns(entity_type, entity_id, columns)
        for nav in entity_type.navigation:
            if nav.name in navs and nav.join is not Join.FORWARD:
                await self._replace_links(entity_type, entity_id, nav, navs[nav.name])
        if entity_type is OBSERVATION and columns:
            # Both the streams it left and the one it is in now may have changed extents.
            for table, stream_id in {*before, *await self._observation_streams(entity_id)}:
                await obs.refresh_extents(self.conn, table, [stream_id])
            await rollups.recompute(
                self.conn, [*touched, *await rollups.changing_keys(self.conn, "Observation", entity_id)]
            )
        self.changes.append(Change(entity_type, entity_id, "update"))

    async def _update_columns(
        self, entity_type: EntityType, entity_id: int, columns: Mapping[str, Any]
    ) -> None:
        if not columns:
            if not await self.exists(entity_type, entity_id):
                raise NotFoundError(f"{entity_type.set_name}({entity_id}) does not exist")
            return
        sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(columns, start=2))
        sql = f"UPDATE {entity_type.table} SET {sets} WHERE id = $1 RETURNING id"
        try:
            found = await self.conn.fetchval(sql, entity_id, *columns.values())
        except asyncpg.CheckViolationError:
            raise BadRequestError(f"{entity_type.name}: an Observation needs exactly one stream") from None
        if found is None:
            raise NotFoundError(f"{entity_type.set_name}({entity_id}) does not exist")

    async def _replace_links(
        self, entity_type: EntityType, entity_id: int, nav: NavigationProperty, items: object
    ) -> None:
        """PATCH with a to-many navigation: link the given existing entities (§10.3)."""
        where = f"{entity_type.name}.{nav.name}"
        if not isinstance(items, list):
            raise BadRequestError(f"{where}: expected a JSON array")
        ids = [await self.reference(nav.target, item, f"{where}[{i}]") for i, item in enumerate(items)]
        if nav.join is Join.REVERSE:
            back = entity_type.inverse(nav)
            assert back is not None
            sql = f"UPDATE {nav.target.table} SET {back.column} = $1 WHERE id = ANY($2::bigint[])"
            await self.conn.execute(sql, entity_id, ids)
            return
        if nav.link is not None and nav.link.rank_column is not None:
            raise ConflictError(f"{where}: the ObservedProperties of a MultiDatastream are fixed at creation")
        assert nav.link is not None
        # A Thing's new Locations replace its current ones (STA-NOTES 14).
        if nav.link.table == "thing_locations":
            await self.conn.execute(
                f"DELETE FROM {nav.link.table} WHERE {nav.link.source_column} = $1", entity_id
            )
        await self._link_rows(nav, entity_id, ids)

    async def _observation_streams(self, observation_id: int) -> list[tuple[str, int]]:
        """(stream table, stream id) of an Observation."""
        sql = "SELECT datastream_id, multi_datastream_id FROM observations WHERE id = $1"
        record = await self.conn.fetchrow(sql, observation_id)
        if record is None:
            return []
        return [(table, record[column]) for table, column in obs.STREAMS if record[column] is not None]

    # ---- delete -----------------------------------------------------------------------------

    async def delete(self, entity_type: EntityType, entity_id: int) -> None:
        """Delete an entity and what the standard cascades to (§10.4); the schema's FKs do most."""
        await _BEFORE_DELETE.get(entity_type.name, _nothing)(self, entity_id, {})
        # A FeatureOfInterest takes its Observations along (§10.4): their streams shrink too.
        shrinking = await self._streams_of_feature(entity_id) if entity_type is FEATURE_OF_INTEREST else {}
        touched = await rollups.deleting_keys(self.conn, entity_type.name, entity_id)
        sql = f"DELETE FROM {entity_type.table} WHERE id = $1 RETURNING *"
        record = await self.conn.fetchrow(sql, entity_id)
        if record is None:
            raise NotFoundError(f"{entity_type.set_name}({entity_id}) does not exist")
        if entity_type is OBSERVATION:
            shrinking = {
                table: [record[column]] for table, column in obs.STREAMS if record[column] is not None
            }
        for table, stream_ids in shrinking.items():
            await obs.refresh_extents(self.conn, table, stream_ids)
        await rollups.recompute(self.conn, touched)
        self.changes.append(Change(entity_type, entity_id, "delete"))

    async def _streams_of_feature(self, feature_id: int) -> dict[str, list[int]]:
        """Stream table -> ids of the streams holding Observations of a FeatureOfInterest."""
        streams: dict[str, list[int]] = {}
        for table, column in obs.STREAMS:
            sql = (
                f"SELECT DISTINCT {column} FROM observations"
                f" WHERE feature_of_interest_id = $1 AND {column} IS NOT NULL"
            )
            ids = [r[0] for r in await self.conn.fetch(sql, feature_id)]
            if ids:
                streams[table] = ids
        return streams

    # ---- $ref -------------------------------------------------------------------------------

    async def add_link(
        self, source: EntityType, source_id: int, nav: NavigationProperty, body: object
    ) -> None:
        """POST/PUT .../$ref: link an existing entity (§10.3 "link to existing entities")."""
        where = f"{source.name}.{nav.name}"
        target_id = await self.reference(nav.target, body, where)
        if not await self.exists(source, source_id):
            raise NotFoundError(f"{source.set_name}({source_id}) does not exist")
        if nav.join is Join.FORWARD:
            await self._update_columns(source, source_id, {nav.column: target_id})
        elif nav.join is Join.REVERSE:
            await self._attach_existing(nav.target, target_id, ParentLink(source, nav, source_id), where)
        else:
            assert nav.link is not None
            if nav.link.rank_column is not None:
                raise ConflictError(
                    f"{where}: the ObservedProperties of a MultiDatastream are fixed at creation"
                )
            await self._link_rows(nav, source_id, [target_id])
        self.changes.append(Change(source, source_id, "update"))

    async def remove_link(
        self, source: EntityType, source_id: int, nav: NavigationProperty, target_id: int
    ) -> None:
        """DELETE .../$ref: unlink; required links cannot be removed, only replaced (409)."""
        where = f"{source.name}.{nav.name}"
        if nav.link is None or nav.link.rank_column is not None:
            raise ConflictError(
                f"{where}: this link is required; link another {nav.target_name} or delete the entity instead"
            )
        sql = (
            f"DELETE FROM {nav.link.table} WHERE {nav.link.source_column} = $1 "
            f"AND {nav.link.target_column} = $2 RETURNING 1"
        )
        if await self.conn.fetchval(sql, source_id, target_id) is None:
            raise NotFoundError(f"{source.set_name}({source_id})/{nav.name}({target_id}) is not linked")
        self.changes.append(Change(source, source_id, "update"))


def _is_reference(body: object) -> bool:
    return isinstance(body, dict) and "@iot.id" in body


_STREAM_SETS = {"datastreams": "Datastreams", "multi_datastreams": "MultiDatastreams"}


def _observation_stream(foreign: Mapping[str, int], where: str) -> tuple[str, int]:
    streams = [(table, foreign[column]) for table, column in obs.STREAMS if column in foreign]
    if len(streams) != 1:
        raise BadLinkError(f"{where}: an Observation needs exactly one Datastream or MultiDatastream")
    return streams[0]


async def _nothing(writer: Writer, entity_id: int, values: Mapping[str, Any]) -> None:
    return None


async def _after_multi_datastream(writer: Writer, entity_id: int, values: Mapping[str, Any]) -> None:
    """unitOfMeasurements, multiObservationDataTypes and ObservedProperties match in number (§10.2)."""
    sql = "SELECT count(*) FROM multi_datastream_observed_properties WHERE multi_datastream_id = $1"
    properties = await writer.conn.fetchval(sql, entity_id)
    units, types = len(values["unitOfMeasurements"]), len(values["multiObservationDataTypes"])
    if not properties or not units == types == properties:
        raise BadRequestError(
            f"MultiDatastream: unitOfMeasurements ({units}), multiObservationDataTypes ({types}) and "
            f"ObservedProperties ({properties}) must be non-empty and of equal length"
        )


async def _before_delete_location(writer: Writer, entity_id: int, values: Mapping[str, Any]) -> None:
    """HistoricalLocations left without any Location go with it (§10.4)."""
    await writer.conn.execute(
        """DELETE FROM historical_locations h
           WHERE h.id IN (SELECT historical_location_id FROM location_historical_locations
                          WHERE location_id = $1)
           AND NOT EXISTS (SELECT 1 FROM location_historical_locations x
                           WHERE x.historical_location_id = h.id AND x.location_id <> $1)""",
        entity_id,
    )


async def _before_delete_observed_property(writer: Writer, entity_id: int, values: Mapping[str, Any]) -> None:
    """A MultiDatastream cannot lose one of its ObservedProperties: it is deleted too (§10.4)."""
    await writer.conn.execute(
        """DELETE FROM multi_datastreams WHERE id IN (
             SELECT multi_datastream_id FROM multi_datastream_observed_properties
             WHERE observed_property_id = $1)""",
        entity_id,
    )


_AFTER_CREATE = {MULTI_DATASTREAM.name: _after_multi_datastream}
# Link tables whose rows carry a rank (the ObservedProperties of a MultiDatastream, in order).
_RANKED_LINK_TABLES = frozenset(
    nav.link.table
    for entity_type in ENTITY_SETS.values()
    for nav in entity_type.navigation
    if nav.link is not None and nav.link.rank_column is not None
)
_BEFORE_DELETE = {
    LOCATION.name: _before_delete_location,
    OBSERVED_PROPERTY.name: _before_delete_observed_property,
}
