# SPDX-License-Identifier: Apache-2.0
"""The hot write path: batches of Observations in one statement, with the
Datastream extents and latest Observation maintained set-based per batch.

HTTP POSTs and (later) MQTT ingest both come through insert_observations, so
the extents are right whichever way an Observation arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from hub.errors import BadLinkError
from hub.store import rollups


@dataclass(slots=True)  # not frozen: see hub/ingest/dispatch.py Message (made once per row)
class ObservationRow:
    """One Observation ready for the table; exactly one stream id is set. Not changed once made."""

    phenomenon_time_start: datetime
    phenomenon_time_end: datetime
    result: Any
    feature_of_interest_id: int
    datastream_id: int | None = None
    multi_datastream_id: int | None = None
    result_time: datetime | None = None
    result_quality: Any = None
    valid_time_start: datetime | None = None
    valid_time_end: datetime | None = None
    parameters: dict[str, Any] | None = None


@dataclass(slots=True)  # not frozen: see ObservationRow
class StoredObservation:
    """An Observation as its insert committed it: its id, its row, and whether the insert made it
    its stream's latest (``last_observation_id``). The change feed announces it from this without
    reading it back (hub/changes/load.py)."""

    id: int
    row: ObservationRow
    latest: bool
    # Its insert statement also sent its id to the other hub processes (IdNotice): nobody else must.
    notified: bool = False


@dataclass(frozen=True)
class IdNotice:
    """A NOTIFY an insert statement sends with the ids it made, in the caller's format: per
    notification ``head + before + id + after + "," + ... + tail`` on `channel`, with at most
    `per_notification` ids. Sent by PostgreSQL when (and only when) the statement commits."""

    channel: str
    head: str
    before: str
    after: str
    tail: str
    per_notification: int


# (column, SQL type) of what an insert writes, in statement order (hub/store/observation_columns.py
# writes the same columns from columns instead of rows)
COLUMN_TYPES = (
    ("phenomenon_time_start", "timestamptz"),
    ("phenomenon_time_end", "timestamptz"),
    ("result_time", "timestamptz"),
    ("result", "jsonb"),
    ("result_quality", "jsonb"),
    ("valid_time_start", "timestamptz"),
    ("valid_time_end", "timestamptz"),
    ("parameters", "jsonb"),
    ("datastream_id", "bigint"),
    ("multi_datastream_id", "bigint"),
    ("feature_of_interest_id", "bigint"),
)


def observation_columns() -> tuple[str, ...]:
    """The table columns an ObservationRow fills (all of them but id and result_number)."""
    return tuple(name for name, _ in COLUMN_TYPES)


_FEATURE = "feature_of_interest_id"

# (stream table, observation column) for both kinds of stream.
STREAMS = (("datastreams", "datastream_id"), ("multi_datastreams", "multi_datastream_id"))


def extent_update(table: str, column: str) -> str:
    """UPDATE widening each touched stream's extents by the batch `o` (GREATEST/LEAST skip NULLs)."""
    latest = "ORDER BY phenomenon_time_start DESC, id DESC"
    return f"""
    UPDATE {table} d SET
        phenomenon_time_start = LEAST(d.phenomenon_time_start, a.ps),
        phenomenon_time_end = GREATEST(d.phenomenon_time_end, a.pe),
        result_time_start = LEAST(d.result_time_start, a.rs),
        result_time_end = GREATEST(d.result_time_end, a.re),
        last_observation_id = CASE WHEN d.last_phenomenon_time IS NULL OR a.lt >= d.last_phenomenon_time
                                   THEN a.last_id ELSE d.last_observation_id END,
        last_result = CASE WHEN d.last_phenomenon_time IS NULL OR a.lt >= d.last_phenomenon_time
                           THEN a.last_result ELSE d.last_result END,
        last_phenomenon_time = GREATEST(d.last_phenomenon_time, a.lt),
        observation_count = d.observation_count + a.n
    FROM (
        SELECT {column} AS stream_id,
               min(phenomenon_time_start) AS ps, max(phenomenon_time_end) AS pe,
               min(result_time) AS rs, max(result_time) AS re,
               max(phenomenon_time_start) AS lt, count(*) AS n,
               (array_agg(id {latest}))[1] AS last_id,
               (array_agg(result {latest}))[1] AS last_result
        FROM o WHERE {column} IS NOT NULL GROUP BY {column}
    ) a
    WHERE d.id = a.stream_id
    RETURNING d.last_observation_id"""


# For each stream: the Thing's most recent Location and the feature already made from it.
_FEATURE_SOURCE_SQL = """
SELECT d.id AS stream_id, tl.location_id, f.id AS feature_id
FROM {table} d
LEFT JOIN LATERAL (
    SELECT location_id FROM thing_locations WHERE thing_id = d.thing_id ORDER BY location_id DESC LIMIT 1
) tl ON TRUE
LEFT JOIN features_of_interest f ON f.location_id = tl.location_id
WHERE d.id = ANY({ids}::bigint[])"""


def _insert_sql(derive_features: bool = False) -> str:
    names = ", ".join(name for name, _ in COLUMN_TYPES)
    # JSON travels as text: asyncpg would read a JSON array inside a jsonb[] as another dimension.
    arrays = ", ".join(
        f"${i}::{'text' if sqltype == 'jsonb' else sqltype}[]"
        for i, (_, sqltype) in enumerate(COLUMN_TYPES, start=1)
    )
    values = ", ".join(
        f"u.{name}::jsonb" if sqltype == "jsonb" else f"u.{name}" for name, sqltype in COLUMN_TYPES
    )
    kinds = STREAMS[:1] if derive_features else STREAMS  # deriving: Datastreams only
    updates = ",\n".join(f"u{i} AS ({extent_update(t, c)})" for i, (t, c) in enumerate(kinds))
    latest = (
        "id IN ("
        + " UNION ALL ".join(f"SELECT last_observation_id FROM u{i}" for i in range(len(kinds)))
        + ")"
    )
    if not derive_features:
        # unnest keeps the input order, so ids come back in the order the rows were given.
        links, source, notices = "", f"unnest({arrays}) AS u({names})", ""
        tail = f"SELECT id, {latest} AS latest FROM o"
    else:
        # A NULL feature becomes the one derived from the Datastream's Thing's Location. All rows or
        # none: when a link is missing nothing is inserted, and no id is drawn in vain. The join
        # loses the input order, which ORDER BY restores: ids are drawn in insert order.
        streams, features = (f"${1 + observation_columns().index(c)}" for c in ("datastream_id", _FEATURE))
        links = f"""links AS ({_FEATURE_SOURCE_SQL.format(table="datastreams", ids=streams)}),
    given AS (SELECT id FROM features_of_interest WHERE id = ANY({features}::bigint[])),
    r AS (
        SELECT u.*, coalesce(u.feature_of_interest_id, l.feature_id) AS feature,
               l.stream_id IS NOT NULL
               AND (u.feature_of_interest_id IS NULL OR u.feature_of_interest_id IN (SELECT id FROM given))
               AS linked
        FROM unnest({arrays}) WITH ORDINALITY AS u({names}, n)
        LEFT JOIN links l ON l.stream_id = u.datastream_id
    ),
    """
        source = "r u WHERE NOT EXISTS (SELECT FROM r WHERE NOT r.linked OR r.feature IS NULL) ORDER BY u.n"
        values = values.replace("u.feature_of_interest_id", "u.feature")
        # The IdNotice's parameters follow the columns' (all NULL: no NOTIFY).
        channel, head, before, after, end, per = (f"${len(COLUMN_TYPES) + i}" for i in range(1, 7))
        notices = f""",
    notices AS (
        SELECT pg_notify(
            {channel}::text,
            {head}::text || string_agg({before}::text || c.id || {after}::text, ',' ORDER BY c.id)
            || {end}::text
        )
        FROM (SELECT id, (row_number() OVER (ORDER BY id) - 1) / {per}::int AS part FROM o) c
        WHERE {channel}::text IS NOT NULL
        GROUP BY c.part
    )"""
        tail = (
            f"SELECT id, {latest} AS latest, feature_of_interest_id,"
            " (SELECT count(*) FROM notices) AS notices FROM o ORDER BY id"
        )
    return f"""
    WITH {links}o AS (
        INSERT INTO observations ({names})
        SELECT {values} FROM {source}
        RETURNING id, phenomenon_time_start, phenomenon_time_end, result_time, result,
                  datastream_id, multi_datastream_id, result_number, feature_of_interest_id
    ),
    {updates}{rollups.insert_ctes("o")}{notices}
    {tail}"""


INSERT_SQL = _insert_sql()
# Observations on Datastreams, a NULL FeatureOfInterest derived in the same statement (insert_deriving)
INSERT_DERIVING_SQL = _insert_sql(derive_features=True)


def _json_text(value: Any) -> str | None:
    # SQL NULL for an absent value; a posted JSON null result is also stored as SQL NULL and
    # rendered as null, which is indistinguishable to clients.
    return None if value is None else orjson.dumps(value).decode()


async def insert_observations(conn: asyncpg.Connection, rows: Sequence[ObservationRow]) -> list[int]:
    """Insert a batch in one statement; returns the new ids in input order."""
    return [r["id"] for r in await _insert(conn, rows)]


async def insert_stored(conn: asyncpg.Connection, rows: Sequence[ObservationRow]) -> list[StoredObservation]:
    """insert_observations, answering each row with its id and whether it became its stream's latest."""
    records = await _insert(conn, rows)
    return [StoredObservation(r["id"], row, r["latest"]) for r, row in zip(records, rows, strict=True)]


async def insert_deriving(
    conn: asyncpg.Connection,
    rows: Sequence[ObservationRow],
    derive: Sequence[bool],
    notice: IdNotice | None = None,
) -> list[StoredObservation]:
    """insert_stored for Observations on Datastreams in one statement with their links: a row whose
    `derive` is true gets the FeatureOfInterest of its Datastream's Thing's Location (its own
    feature_of_interest_id is only a guess, not sent), and comes back with it (the same row when
    the guess was right).

    All or nothing: no rows (nothing inserted) when a Datastream or FeatureOfInterest is missing or
    no feature to derive exists yet, an asyncpg error when the database refuses a row (a DataError,
    a link deleted meanwhile); the caller then takes the way that checks each link and says which.
    With a `notice`, the statement also sends the new ids (then `notified`); a full notification
    queue fails it with asyncpg.ProgramLimitExceededError."""
    columns = _columns(rows)
    features = columns[_FEATURE_COLUMN]
    columns[_FEATURE_COLUMN] = [None if d else f for f, d in zip(features, derive, strict=True)]
    announce = (
        (None,) * 6
        if notice is None
        else (notice.channel, notice.head, notice.before, notice.after, notice.tail, notice.per_notification)
    )
    records = await conn.fetch(INSERT_DERIVING_SQL, *columns, *announce)
    if not records:
        return []
    notified = notice is not None
    return [
        StoredObservation(
            r["id"],
            replace(row, feature_of_interest_id=feature)
            if d and (feature := r["feature_of_interest_id"]) != row.feature_of_interest_id
            else row,
            r["latest"],
            notified,
        )
        for r, row, d in zip(records, rows, derive, strict=True)
    ]


_FEATURE_COLUMN = observation_columns().index(_FEATURE)


def _columns(rows: Sequence[ObservationRow]) -> list[list[Any]]:
    """The statement's arrays, one per column of COLUMN_TYPES."""
    return [
        [_json_text(getattr(row, name)) for row in rows]
        if sqltype == "jsonb"
        else [getattr(row, name) for row in rows]
        for name, sqltype in COLUMN_TYPES
    ]


async def _insert(conn: asyncpg.Connection, rows: Sequence[ObservationRow]) -> list[asyncpg.Record]:
    columns = _columns(rows)
    try:
        records: list[asyncpg.Record] = await conn.fetch(INSERT_SQL, *columns)
    except asyncpg.ForeignKeyViolationError as error:
        raise BadLinkError(f"an Observation links to a missing entity ({error.detail})") from None
    return records


# ---- a value as jsonb hands it back -------------------------------------------------------------

UNSURE = object()  # jsonb_value's answer when it cannot tell without asking the database

# orjson writes floats from 1e16 on with an exponent (1e16); numeric's output spells them out
# (10000000000000000), which reads back as an integer. Below that a float reads back as itself.
_FLOAT_EXACT = 1e16


def jsonb_value(value: Any) -> Any:
    """`value` (as orjson read it) the way a jsonb column returns it: object keys in jsonb's order
    (shorter first, then bytewise), -0.0 as 0.0; UNSURE for a float whose text numeric rewrites.
    Lets the change feed render a stored Observation without reading it back."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if -_FLOAT_EXACT < value < _FLOAT_EXACT:
            return value + 0.0  # -0.0 + 0.0 is 0.0: numeric has no negative zero
        return UNSURE
    if kind is list:
        items = [jsonb_value(item) for item in value]
        return UNSURE if any(item is UNSURE for item in items) else items
    if kind is dict:
        stored = {}
        for key in sorted(value, key=_jsonb_key_order):
            item = jsonb_value(value[key])
            if item is UNSURE:
                return UNSURE
            stored[key] = item
        return stored
    return UNSURE


def _jsonb_key_order(key: str) -> tuple[int, bytes]:
    raw = key.encode()
    return len(raw), raw


_REFRESH_SQL = """
UPDATE {table} d SET
    phenomenon_time_start = a.ps, phenomenon_time_end = a.pe,
    result_time_start = a.rs, result_time_end = a.re,
    last_observation_id = l.id, last_phenomenon_time = l.phenomenon_time_start, last_result = l.result,
    observation_count = a.n
FROM unnest($1::bigint[]) AS s(id)
CROSS JOIN LATERAL (
    SELECT min(phenomenon_time_start) AS ps, max(phenomenon_time_end) AS pe,
           min(result_time) AS rs, max(result_time) AS re, count(*) AS n
    FROM observations o WHERE o.{column} = s.id
) a
LEFT JOIN LATERAL (
    SELECT o.id, o.phenomenon_time_start, o.result FROM observations o
    WHERE o.{column} = s.id ORDER BY o.phenomenon_time_start DESC, o.id DESC LIMIT 1
) l ON TRUE
WHERE d.id = s.id"""


async def refresh_extents(conn: asyncpg.Connection, table: str, stream_ids: Sequence[int]) -> None:
    """Recompute extents of whole streams after an update or delete may have shrunk them."""
    if not stream_ids:
        return
    column = dict(STREAMS)[table]
    await conn.execute(_REFRESH_SQL.format(table=table, column=column), list(set(stream_ids)))


_FEATURE_FROM_LOCATION_SQL = """
WITH made AS (
    INSERT INTO features_of_interest (name, description, encoding_type, feature, location_id)
    SELECT name, description, encoding_type, location, id FROM locations WHERE id = $1
    ON CONFLICT (location_id) DO NOTHING RETURNING id
)
SELECT id FROM made UNION ALL SELECT id FROM features_of_interest WHERE location_id = $1"""


def no_location_reason(kind: str, stream_id: int) -> str:
    """Why an Observation of a stream whose Thing has no Location gets no FeatureOfInterest."""
    return (
        f"Observation.FeatureOfInterest: not given, and the Thing of {kind} {stream_id} "
        "has no Location to derive it from"
    )


async def features_for_streams(
    conn: asyncpg.Connection, table: str, stream_ids: Sequence[int]
) -> dict[int, int]:
    """FeatureOfInterest per stream, generated from its Thing's Location and reused (§8.2.8)."""
    wanted = sorted(set(stream_ids))
    records = await conn.fetch(_FEATURE_SOURCE_SQL.format(table=table, ids="$1"), wanted)
    found = {r["stream_id"]: r for r in records}
    kind = "Datastream" if table == "datastreams" else "MultiDatastream"
    features: dict[int, int] = {}
    for stream_id in wanted:
        record = found.get(stream_id)
        if record is None:
            raise BadLinkError(f"Observation.{kind}: {kind} {stream_id} does not exist")
        if record["location_id"] is None:
            raise BadLinkError(no_location_reason(kind, stream_id))
        feature_id = record["feature_id"]
        if feature_id is None:
            feature_id = await conn.fetchval(_FEATURE_FROM_LOCATION_SQL, record["location_id"])
        features[stream_id] = feature_id
    return features
