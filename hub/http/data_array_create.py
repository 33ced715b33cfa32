# SPDX-License-Identifier: Apache-2.0
"""POST CreateObservations: many Observations in the dataArray form (OGC 18-088 §14.4, data-array).

The rows of each group are validated column by column (hub/http/data_array_rows.py), the links
of all groups are checked together (one query per kind of link, as the ingest checks them: one
representative per stream and FeatureOfInterest, not one per row), and the valid rows are
inserted column by column with one statement in one transaction, the Datastream extents and
rollups with them (hub/store/observation_columns.py). The answer is a JSON array of selfLinks in
input order with "error" in place of each row that failed (FROST); a request that is malformed as
a whole is a 400. Each stored Observation is announced as a create once the transaction commits.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from itertools import repeat
from typing import Any

import asyncpg

from hub.http.context import AppState
from hub.http.data_array_rows import Column, ValidRows, parse_groups, validate_rows
from hub.http.exchange import StaRequest, StaResponse, transaction
from hub.http.mutations import now
from hub.ingest.dispatch import IngestError, PendingObservation
from hub.ingest.resolve import Links
from hub.render import self_link
from hub.store.observation_columns import ObservationColumns, insert_columns_latest
from hub.store.observations import ObservationRow, StoredObservation
from hub.store.write import Change
from schemas.model import OBSERVATION

ERROR = "error"
_COLUMN_NAMES = tuple(f.name for f in fields(ObservationColumns))


def _stream_ids(rows: ValidRows) -> tuple[int | None, int | None]:
    """(Datastream id, MultiDatastream id) of a group."""
    return (rows.stream_id, None) if rows.stream == "Datastream" else (None, rows.stream_id)


def _representatives(groups: list[ValidRows]) -> list[PendingObservation]:
    """One Observation per stream and FeatureOfInterest (or derived feature): all Links.load reads."""
    representatives = []
    for rows in groups:
        if not rows.index:
            continue
        datastream, multi = _stream_ids(rows)
        features = rows.columns["feature_of_interest_id"]
        for feature in {None} if features is None else set(features):
            representatives.append(PendingObservation(None, None, datastream, multi, feature))
    return representatives


@dataclass(frozen=True)
class _Linked:
    """The rows of a group whose links exist, and the feature derived for them (None: given per row)."""

    rows: ValidRows
    feature: int | None = None


def _linked(links: Links, rows: ValidRows) -> _Linked:
    """The rows whose links exist (as Links.row decides them), with their FeatureOfInterest."""
    stream = rows.stream_id
    if not rows.index or stream is None:
        return _Linked(rows)
    if rows.stream == "Datastream":
        table, arity = "datastreams", None
        if stream not in links.datastreams:
            return _Linked(rows.keep([]))
    else:
        table, arity = "multi_datastreams", links.multi_arity.get(stream)
        if arity is None:
            return _Linked(rows.keep([]))
    keep = list(range(len(rows.index)))
    features, derived = rows.columns["feature_of_interest_id"], None
    if features is None:
        found = links.derived[table, stream]
        if isinstance(found, IngestError):  # the Thing has no Location to derive it from
            return _Linked(rows.keep([]))
        derived = found
    else:
        keep = [p for p in keep if features[p] in links.features]
    if arity is not None:  # a MultiDatastream result is an array with one value per ObservedProperty
        results = rows.columns["result"] or []
        keep = [p for p in keep if isinstance(results[p], list) and len(results[p]) == arity]
    return _Linked(rows.keep(keep), derived)


def _column(group: _Linked, name: str, arrival: datetime) -> Column | int | None:
    """One column of a group's rows for the insert; an id the same in every row is one int."""
    rows = group.rows
    if name in ("datastream_id", "multi_datastream_id"):
        return _stream_ids(rows)[name == "multi_datastream_id"]
    if name == "feature_of_interest_id" and group.feature is not None:
        return group.feature
    column = rows.columns.get(name)
    if name == "phenomenon_time_start" and column is not None:
        return [arrival if start is None else start for start in column]
    return column


def _merged(pieces: list[Column | int | None], sizes: list[int]) -> Column | int | None:
    """The pieces of one column, one per group, as one column (an id shared by all: one int)."""
    first = pieces[0]
    if len(pieces) == 1 or all(piece is None for piece in pieces):
        return first
    if type(first) is int and all(piece == first for piece in pieces):
        return first
    return [
        value
        for piece, size in zip(pieces, sizes, strict=True)
        for value in (piece if isinstance(piece, list) else [piece] * size)
    ]


def _columns(groups: list[_Linked], arrival: datetime) -> ObservationColumns | None:
    """The rows of all groups, in input order, as the columns of one insert (None: no rows)."""
    parts = [group for group in groups if group.rows.index]
    if not parts:
        return None
    sizes = [len(group.rows.index) for group in parts]
    merged: dict[str, Any] = {
        name: _merged([_column(group, name, arrival) for group in parts], sizes) for name in _COLUMN_NAMES
    }
    return ObservationColumns(**merged)


async def create_observations(
    state: AppState, request: StaRequest, conn: asyncpg.Connection | None = None
) -> StaResponse:
    """Validate every row, insert the valid ones with one statement, answer their selfLinks."""
    groups = parse_groups(request.body)
    valid = [validate_rows(group) for group in groups]
    if conn is None:  # not inside a $batch's open transaction: never wait holding locks
        await state.room()  # while the change feed is far behind, bulk creates wait here
    arrival = now()  # the phenomenonTime of rows that give none
    ids: list[int] = []
    latest: set[int] | None = None
    async with transaction(state, conn) as db:
        links = await Links.load(db, _representatives(valid))
        linked = [_linked(links, rows) for rows in valid]
        columns = _columns(linked, arrival)
        if columns:
            ids, now_latest = await insert_columns_latest(db, columns)
            if conn is None:  # in a $batch a later request may still change the latest
                latest = now_latest
    answer: list[str] = []
    start = 0
    for group, stored in zip(groups, linked, strict=True):
        index = stored.rows.index
        links_of_group = [ERROR] * len(group.rows)
        for position, entity_id in zip(index, ids[start : start + len(index)], strict=True):
            links_of_group[position] = self_link(request.base, OBSERVATION, entity_id)
        answer.extend(links_of_group)
        start += len(index)
    if columns is None or latest is None:
        changes = [Change(OBSERVATION, entity_id, "create") for entity_id in ids]
    else:
        changes = _stored_changes(columns, ids, latest)
    return StaResponse(201, answer, changes=changes)


def _stored_changes(columns: ObservationColumns, ids: list[int], latest: set[int]) -> list[Change]:
    """Each inserted row as its create with the row as stored (Change.stored), so that the change
    feed announces it without reading it back; `ids` are in the order of the columns."""
    count = len(ids)

    def column(value: Any) -> Any:
        return value if isinstance(value, list) else repeat(value, count)

    starts = columns.phenomenon_time_start
    given = columns.phenomenon_time_end  # an instant's end is stored as its start
    ends = (
        starts
        if given is None
        else [start if end is None else end for start, end in zip(starts, given, strict=True)]
    )
    rows = zip(
        ids,
        starts,
        ends,
        columns.result,
        column(columns.feature_of_interest_id),
        column(columns.datastream_id),
        column(columns.multi_datastream_id),
        column(columns.result_time),
        column(columns.result_quality),
        column(columns.valid_time_start),
        column(columns.valid_time_end),
        column(columns.parameters),
        strict=True,
    )
    return [
        Change(
            OBSERVATION,
            entity_id,
            "create",
            StoredObservation(
                entity_id,
                ObservationRow(start, end, result, foi, ds, mds, rt, rq, vs, ve, params),
                entity_id in latest,
            ),
        )
        for entity_id, start, end, result, foi, ds, mds, rt, rq, vs, ve, params in rows
    ]
