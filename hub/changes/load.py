# SPDX-License-Identifier: Apache-2.0
"""Committed changes -> Notices, read in one snapshot (set-based: statements per type, not per row)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import asyncpg

from hub.changes.notice import Notice, Row
from hub.changes.topics import CREATE, LATEST_STREAMS, LINK, UPDATE, group_related, related_queries
from hub.query.compile import select_list
from hub.store.observations import UNSURE, StoredObservation, jsonb_value, observation_columns
from hub.store.write import Change
from schemas.model import HISTORICAL_LOCATION, LOCATION, OBSERVATION, EntityType

ANNOUNCED = frozenset({CREATE, UPDATE})  # STA 1.1 has no delete notifications (§14.1)

# A new HistoricalLocation means its Thing's Locations changed (§8.2.3): announce them on the
# Thing's Locations collections even though the Location entities themselves did not change.
_MOVED_LOCATIONS_SQL = """
SELECT DISTINCT tl.location_id FROM historical_locations h
JOIN thing_locations tl ON tl.thing_id = h.thing_id WHERE h.id = ANY($1::bigint[])"""

Wanted = dict[tuple[EntityType, int], frozenset[str]]  # frozen: most are the one shared {create}
Held = dict[tuple[EntityType, int], Row]  # rows the writer handed over: not read back

_CREATED = frozenset({CREATE})
_ONE = {CREATE: _CREATED, UPDATE: frozenset({UPDATE}), LINK: frozenset({LINK})}


def _with(wanted: Wanted, key: tuple[EntityType, int], operation: str) -> None:
    found = wanted.get(key)
    if found is None:
        wanted[key] = _ONE[operation]
    elif operation not in found:
        wanted[key] = found | {operation}


def wanted_of(changes: Sequence[Change]) -> Wanted:
    """(entity type, id) -> operations, for the creates and updates among `changes`."""
    wanted: Wanted = {}
    for change in changes:
        if change.operation in ANNOUNCED:
            _with(wanted, (change.entity_type, change.entity_id), change.operation)
    return wanted


def held_of(changes: Sequence[Change], wanted: Wanted) -> Held:
    """The rows of created Observations the writer stored and handed over (Change.stored), as the
    snapshot would read them; an entity with more than its create in the batch is read back."""
    held: Held = {}
    for change in changes:
        stored = change.stored
        if stored is not None and change.entity_type is OBSERVATION:
            key = (OBSERVATION, change.entity_id)
            if wanted.get(key) is _CREATED:
                row = observation_row(stored)
                if row is not None:
                    held[key] = row
    return held


async def load_notices(pool: asyncpg.Pool, groups: Sequence[Sequence[Change]]) -> list[list[Notice]]:
    """The Notices of each group of changes, all read in one repeatable-read snapshot.

    Entities deleted since are left out. Groups keep apart what goes to different sinks (this
    process's commits, the other processes' ones). Observations created by this process come with
    their stored rows (Change.stored) and are not read back; when nothing else is wanted no
    snapshot is taken.
    """
    wanted = [wanted_of(changes) for changes in groups]
    if not any(wanted):
        return [[] for _ in groups]
    held = [held_of(changes, group) for changes, group in zip(groups, wanted, strict=True)]
    rows: dict[str, dict[int, Row]] = {}
    if any(len(group) > len(given) for group, given in zip(wanted, held, strict=True)):
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            for group in wanted:
                await _add_moved_locations(conn, group)
            union: Wanted = {}
            for group, given in zip(wanted, held, strict=True):
                for key, operations in group.items():
                    if key not in given:
                        union[key] = union.get(key, frozenset()) | operations
            rows = await _load_all(conn, union)
    return [_notices(group, rows, given) for group, given in zip(wanted, held, strict=True)]


def _notices(wanted: Wanted, rows: Mapping[str, Mapping[int, Row]], held: Held) -> list[Notice]:
    notices = []
    for key, operations in wanted.items():
        entity_type, entity_id = key
        row = held.get(key) or rows.get(entity_type.name, {}).get(entity_id)
        if row is not None:  # None: deleted since
            notices.append(Notice(entity_type, row, operations))
    return notices


_OBSERVATION_COLUMNS = observation_columns()
_JSON_COLUMNS = ("result", "result_quality", "parameters")
# The stream column of each navigation that remembers its latest Observation ("Datastream@latest").
_LATEST_KEYS = tuple(
    (f"{name}@latest", OBSERVATION.navigation_by_name[name].column) for name in LATEST_STREAMS["Observation"]
)


def observation_row(stored: StoredObservation) -> Row | None:
    """The row load_rows would read for a stored Observation (columns and related ids), or None
    when a JSON value may read back differently (jsonb_value): then it is read back."""
    source = stored.row
    row: Row = {"id": stored.id}
    for name in _OBSERVATION_COLUMNS:
        row[name] = getattr(source, name)
    for name in _JSON_COLUMNS:
        value = row[name]
        if value is not None:
            value = row[name] = jsonb_value(value)
            if value is UNSURE:
                return None
    if stored.latest:
        for key, column in _LATEST_KEYS:
            stream_id = row[column]
            if stream_id is not None:
                row[key] = [stream_id]
    return row


async def _add_moved_locations(conn: asyncpg.Connection, wanted: Wanted) -> None:
    """Locations of Things that got a new HistoricalLocation: announced as LINK (collections only)."""
    created = [i for (t, i), ops in wanted.items() if t is HISTORICAL_LOCATION and CREATE in ops]
    if created:
        for record in await conn.fetch(_MOVED_LOCATIONS_SQL, created):
            _with(wanted, (LOCATION, record["location_id"]), LINK)


async def _load_all(
    conn: asyncpg.Connection, wanted: Mapping[tuple[EntityType, int], frozenset[str]]
) -> dict[str, dict[int, Row]]:
    """Entity type name -> id -> row with its related ids, one set of statements per type."""
    by_type: dict[str, tuple[EntityType, list[int]]] = {}
    for entity_type, entity_id in wanted:
        by_type.setdefault(entity_type.name, (entity_type, []))[1].append(entity_id)
    return {name: await load_rows(conn, entity_type, ids) for name, (entity_type, ids) in by_type.items()}


async def load_rows(conn: asyncpg.Connection, entity_type: EntityType, ids: Sequence[int]) -> dict[int, Row]:
    """The rows of `ids` (those still there) with the related ids the topic planner needs."""
    sql = f"SELECT {select_list(entity_type)} FROM {entity_type.table} e WHERE e.id = ANY($1::bigint[])"
    rows: dict[int, Row] = {r["id"]: dict(r) for r in await conn.fetch(sql, list(ids))}
    if not rows:
        return rows
    found = list(rows)
    for key, related_sql in related_queries(entity_type):
        for entity_id, related in group_related(await conn.fetch(related_sql, found)).items():
            rows[entity_id][key] = related
    return rows
