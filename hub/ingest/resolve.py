# SPDX-License-Identifier: Apache-2.0
"""One batch of received messages -> Observations in the open transaction, bad rows isolated.

Links are checked set-based per batch (one query per kind of link), so an unknown Datastream is
rejected before it can fail the insert. Whatever the database still refuses (a bad value, a link
deleted meanwhile) is isolated by bisecting the batch under savepoints: the good messages of a
batch are all written, in the same outer transaction, whatever one bad message does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import asyncpg
import orjson

from hub.errors import BadLinkError
from hub.ingest.dispatch import (
    INVALID,
    NO_FEATURE,
    REJECTED,
    UNKNOWN_DATASTREAM,
    UNKNOWN_FEATURE,
    IngestError,
    Message,
    PendingObservation,
)
from hub.ingest.provision import Provisioner
from hub.ingest.sta import create_inline
from hub.store.observation_columns import insert_batch
from hub.store.observations import (
    ObservationRow,
    StoredObservation,
    features_for_streams,
    no_location_reason,
)
from hub.store.pool import CACHED_PLANS
from hub.store.write import Change

# Errors that belong to the rows of a batch, not to the database being away.
ROW_ERRORS = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
    BadLinkError,
)

Item = tuple[Message, list[PendingObservation]]


@dataclass
class Outcome:
    """What a batch came to: the Observations stored per message, and the rejected messages with
    their reasons."""

    stored: list[tuple[Message, list[StoredObservation]]] = field(default_factory=list)
    rejected: list[tuple[Message, IngestError]] = field(default_factory=list)
    created: list[Change] = field(default_factory=list)  # entities deep-inserted by STA creates

    def extend(self, other: Outcome) -> None:
        """Add another part of the same batch."""
        self.stored.extend(other.stored)
        self.rejected.extend(other.rejected)
        self.created.extend(other.created)


async def write_batch(
    conn: asyncpg.Connection, items: Sequence[Item], provisioner: Provisioner | None = None
) -> Outcome:
    """Write a batch in one transaction; the caller acknowledges after this returns (committed).

    Adapter readings first get their Datastreams (found or created, committed on their own: an
    entity made for a message that is then redelivered is simply found the second time)."""
    rejected: list[tuple[Message, IngestError]] = []
    if provisioner is not None and any(p.reading for _, pending in items for p in pending):
        items, rejected = await _assign_streams(conn, items, provisioner)
    async with conn.transaction():
        await conn.execute(CACHED_PLANS)  # the rows' key checks keep their plans (store/pool.py)
        outcome = await _isolating(conn, items)
    outcome.rejected.extend(rejected)
    return outcome


async def _assign_streams(
    conn: asyncpg.Connection, items: Sequence[Item], provisioner: Provisioner
) -> tuple[list[Item], list[tuple[Message, IngestError]]]:
    """Fill in the Datastream of every reading; a message whose entities the database refuses is
    rejected on its own, after the whole batch was tried at once."""
    now = datetime.now(UTC)
    readings = [p.reading for _, pending in items for p in pending if p.reading is not None]
    try:
        streams = await provisioner.datastreams(conn, readings, now)
        return [_with_streams(item, streams) for item in items], []
    except ROW_ERRORS:
        pass
    kept: list[Item] = []
    rejected: list[tuple[Message, IngestError]] = []
    for message, pending in items:
        mine = [p.reading for p in pending if p.reading is not None]
        try:
            streams = await provisioner.datastreams(conn, mine, now)
        except ROW_ERRORS as error:
            rejected.append(
                (message, IngestError(REJECTED, f"cannot provision its entities: {_describe(error)}"))
            )
            continue
        kept.append(_with_streams((message, pending), streams))
    return kept, rejected


def _with_streams(item: Item, streams: dict[str, tuple[int, int | None]]) -> Item:
    message, pending = item
    return message, [_assigned(p, streams) if p.reading is not None else p for p in pending]


def _assigned(pending: PendingObservation, streams: dict[str, tuple[int, int | None]]) -> PendingObservation:
    assert pending.reading is not None
    datastream_id, feature_id = streams[pending.reading.stream_key]
    return replace(pending, datastream_id=datastream_id, feature_of_interest_id=feature_id)


async def _isolating(conn: asyncpg.Connection, items: Sequence[Item]) -> Outcome:
    """Try the items under a savepoint; on a row error, split them in halves until it is isolated."""
    try:
        async with conn.transaction():
            return await _write_items(conn, items)
    except ROW_ERRORS as error:
        if len(items) == 1:
            return Outcome(rejected=[(items[0][0], IngestError(REJECTED, _describe(error)))])
        half = len(items) // 2
        outcome = await _isolating(conn, items[:half])
        outcome.extend(await _isolating(conn, items[half:]))
        return outcome


def _describe(error: Exception) -> str:
    detail = getattr(error, "detail", None)
    return f"{error} ({detail})" if detail else str(error)


async def _write_items(conn: asyncpg.Connection, items: Sequence[Item]) -> Outcome:
    outcome = Outcome()
    items = await create_inline(conn, items, outcome)  # STA deep inserts (hub/ingest/sta.py)
    links = await Links.load(conn, [p for _, pending in items for p in pending])
    kept: list[tuple[Message, list[ObservationRow]]] = []
    for message, pending in items:
        try:
            kept.append((message, [links.row(p, message.received_at) for p in pending]))
        except IngestError as error:
            outcome.rejected.append((message, error))
    if links.deduplicated:
        kept = await _without_known(conn, kept, links.deduplicated)
    stored = await insert_batch(conn, [row for _, rows in kept for row in rows])
    start = 0
    for message, rows in kept:
        outcome.stored.append((message, stored[start : start + len(rows)]))
        start += len(rows)
    return outcome


@dataclass
class Links:
    """What the database says about the links of a batch's Observations."""

    datastreams: set[int]
    multi_arity: dict[int, int]  # MultiDatastream id -> number of ObservedProperties
    features: set[int]
    derived: dict[tuple[str, int], int | IngestError]  # (table, stream id) -> feature or why none
    deduplicated: set[int] = field(default_factory=set)  # Datastreams that opted into DEDUPLICATE

    @classmethod
    async def load(cls, conn: asyncpg.Connection, pending: Sequence[PendingObservation]) -> Links:
        """Query each kind of link once for the whole batch."""
        ds = {p.datastream_id for p in pending if p.datastream_id is not None}
        md = {p.multi_datastream_id for p in pending if p.multi_datastream_id is not None}
        foi = {p.feature_of_interest_id for p in pending if p.feature_of_interest_id is not None}
        datastreams = await _datastreams(conn, ds)
        links = cls(
            datastreams=set(datastreams),
            multi_arity=await _multi_arity(conn, md),
            features=await _existing(conn, "features_of_interest", foi),
            derived={},
            deduplicated={i for i, found in datastreams.items() if found["dedupe"]},
        )
        need = [p for p in pending if p.feature_of_interest_id is None]
        derive_ds: set[int] = set()
        for stream_id in {p.datastream_id for p in need if p.datastream_id in datastreams}:
            assert stream_id is not None
            found = datastreams[stream_id]
            if found["location_id"] is None:
                links.derived["datastreams", stream_id] = IngestError(
                    NO_FEATURE, no_location_reason("Datastream", stream_id)
                )
            elif found["feature_id"] is not None:  # the Location's feature, made before
                links.derived["datastreams", stream_id] = found["feature_id"]
            else:
                derive_ds.add(stream_id)  # its first Observation without a feature: make it
        derive_md = {p.multi_datastream_id for p in need if p.multi_datastream_id in links.multi_arity}
        for table, ids in (("datastreams", derive_ds), ("multi_datastreams", derive_md)):
            for stream_id, feature in (await _derive(conn, table, ids)).items():
                links.derived[table, stream_id] = feature
        return links

    def row(self, p: PendingObservation, received_at: float) -> ObservationRow:
        """The row for one Observation, or IngestError naming the link that is missing."""
        table, stream_id = self._stream(p)
        feature = p.feature_of_interest_id
        if feature is None:
            derived = self.derived[table, stream_id]
            if isinstance(derived, IngestError):
                raise derived
            feature = derived
        elif feature not in self.features:
            raise IngestError(UNKNOWN_FEATURE, f"Observation.FeatureOfInterest: {feature} does not exist")
        return observation_row(p, received_at, feature)

    def _stream(self, p: PendingObservation) -> tuple[str, int]:
        if p.datastream_id is not None:
            if p.datastream_id not in self.datastreams:
                raise IngestError(
                    UNKNOWN_DATASTREAM, f"Observation.Datastream: {p.datastream_id} does not exist"
                )
            return "datastreams", p.datastream_id
        assert p.multi_datastream_id is not None
        arity = self.multi_arity.get(p.multi_datastream_id)
        if arity is None:
            reason = f"Observation.MultiDatastream: {p.multi_datastream_id} does not exist"
            raise IngestError(UNKNOWN_DATASTREAM, reason)
        if not isinstance(p.result, list) or len(p.result) != arity:
            reason = f"Observation.result: a MultiDatastream Observation needs an array of {arity} results"
            raise IngestError(INVALID, reason)
        return "multi_datastreams", p.multi_datastream_id


def observation_row(p: PendingObservation, received_at: float, feature: int) -> ObservationRow:
    """The row of one Observation whose links are settled (`feature` its FeatureOfInterest)."""
    if p.phenomenon_time is None:  # the time it arrived (only then: ~8 % of ingest samples)
        start = end = datetime.fromtimestamp(received_at, UTC)
    else:
        start, end = p.phenomenon_time
    valid = p.valid_time or (None, None)
    return ObservationRow(
        phenomenon_time_start=start,
        phenomenon_time_end=end,
        result=p.result,
        feature_of_interest_id=feature,
        datastream_id=p.datastream_id,
        multi_datastream_id=p.multi_datastream_id,
        result_time=p.result_time,
        result_quality=p.result_quality,
        valid_time_start=valid[0],
        valid_time_end=valid[1],
        parameters=p.parameters,
    )


# A Datastream whose properties carry {"twinhub:deduplicate": true} stores an Observation arriving
# over MQTT only when it has no Observation at that phenomenonTime yet: a QoS 1 redelivery after a
# crash between commit and acknowledgement then leaves no duplicate (docs/mqtt.md).
DEDUPLICATE = "twinhub:deduplicate"


# Per Datastream: whether it deduplicates, and the feature its Observations without one get (its
# Thing's most recent Location and the feature made from it, as features_for_streams finds them):
# one statement for what a batch of Observations on Datastreams needs in the common case.
_DATASTREAMS_SQL = """
SELECT d.id, coalesce(d.properties @> $2::text::jsonb, false) AS dedupe, tl.location_id, f.id AS feature_id
FROM datastreams d
LEFT JOIN LATERAL (
    SELECT location_id FROM thing_locations WHERE thing_id = d.thing_id ORDER BY location_id DESC LIMIT 1
) tl ON TRUE
LEFT JOIN features_of_interest f ON f.location_id = tl.location_id
WHERE d.id = ANY($1::bigint[])"""
_DEDUPLICATE_JSON = orjson.dumps({DEDUPLICATE: True}).decode()


async def _datastreams(conn: asyncpg.Connection, ids: Iterable[int]) -> dict[int, asyncpg.Record]:
    """The Datastreams that exist: id -> (dedupe, location_id, feature_id)."""
    wanted = sorted(ids)
    if not wanted:
        return {}
    return {r["id"]: r for r in await conn.fetch(_DATASTREAMS_SQL, wanted, _DEDUPLICATE_JSON)}


_KNOWN_SQL = """
SELECT DISTINCT o.datastream_id, o.phenomenon_time_start FROM observations o
JOIN unnest($1::bigint[], $2::timestamptz[]) AS u(d, t)
  ON o.datastream_id = u.d AND o.phenomenon_time_start = u.t"""


async def _without_known(
    conn: asyncpg.Connection, kept: list[tuple[Message, list[ObservationRow]]], streams: set[int]
) -> list[tuple[Message, list[ObservationRow]]]:
    """Drop the rows of deduplicating Datastreams whose phenomenonTime is already stored (or already
    earlier in this batch); their messages still count as stored and are acknowledged."""
    keys = [
        (r.datastream_id, r.phenomenon_time_start)
        for _, rows in kept
        for r in rows
        if r.datastream_id in streams
    ]
    if not keys:
        return kept
    records = await conn.fetch(_KNOWN_SQL, [k[0] for k in keys], [k[1] for k in keys])
    seen = {(r["datastream_id"], r["phenomenon_time_start"]) for r in records}
    result = []
    for message, rows in kept:
        fresh = []
        for row in rows:
            key = (row.datastream_id, row.phenomenon_time_start)
            if row.datastream_id in streams:
                if key in seen:
                    continue
                seen.add(key)
            fresh.append(row)
        result.append((message, fresh))
    return result


async def _existing(conn: asyncpg.Connection, table: str, ids: Iterable[int]) -> set[int]:
    wanted = sorted(ids)
    if not wanted:
        return set()
    records = await conn.fetch(f"SELECT id FROM {table} WHERE id = ANY($1::bigint[])", wanted)
    return {r["id"] for r in records}


_ARITY_SQL = """
SELECT m.id, count(o.observed_property_id) AS n FROM multi_datastreams m
LEFT JOIN multi_datastream_observed_properties o ON o.multi_datastream_id = m.id
WHERE m.id = ANY($1::bigint[]) GROUP BY m.id"""


async def _multi_arity(conn: asyncpg.Connection, ids: set[int]) -> dict[int, int]:
    if not ids:
        return {}
    return {r["id"]: r["n"] for r in await conn.fetch(_ARITY_SQL, sorted(ids))}


async def _derive(conn: asyncpg.Connection, table: str, ids: set[int]) -> dict[int, int | IngestError]:
    """Features derived from Locations, per stream; a stream whose Thing has none gets the reason."""
    if not ids:
        return {}
    try:
        async with conn.transaction():
            return dict(await features_for_streams(conn, table, sorted(ids)))
    except BadLinkError:
        pass  # at least one stream has no Location: find which, one by one
    found: dict[int, int | IngestError] = {}
    for stream_id in sorted(ids):
        try:
            async with conn.transaction():
                found.update(await features_for_streams(conn, table, [stream_id]))
        except BadLinkError as error:
            found[stream_id] = IngestError(NO_FEATURE, str(error))
    return found
