# SPDX-License-Identifier: Apache-2.0
"""POST CreateObservations: many Observations in the dataArray form (OGC 18-088 §14.4, data-array).

The body is a JSON array of {"Datastream" | "MultiDatastream": reference, "components": [...],
"dataArray": [[...], ...]}. Every row is validated like a single POST (it becomes an Observation
body for the same validation the MQTT ingest and the group-committed POSTs use), the links of all
rows are checked together (one query per kind of link, not per row), and the valid rows are
inserted with one statement in one transaction. The answer is a JSON array of selfLinks in
input order with "error" in place of each row that failed (FROST); a request that is malformed
as a whole is a 400.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from hub.errors import BadRequestError, StaError
from hub.http.context import AppState
from hub.http.exchange import StaRequest, StaResponse, transaction
from hub.http.mutations import now
from hub.ingest.dispatch import IngestError, PendingObservation
from hub.ingest.resolve import Links
from hub.ingest.sta import pending_observation
from hub.query.path import PathError
from hub.render import self_link
from hub.store.observations import ObservationRow, insert_observations
from hub.store.write import Change
from schemas.entities import ValidationError, parse_time
from schemas.model import OBSERVATION

FOI_ID = "FeatureOfInterest/id"
COMPONENTS = frozenset(
    {"phenomenonTime", "result", "resultTime", "resultQuality", "validTime", "parameters", FOI_ID}
)
STREAMS = ("Datastream", "MultiDatastream")
ERROR = "error"
# What makes one row fail rather than the whole request: the client's input, not the server.
ROW_ERRORS = (StaError, ValidationError, PathError)


@dataclass(frozen=True)
class _Group:
    """One element of the request body: a stream, its components and rows."""

    stream: str  # "Datastream" or "MultiDatastream"
    reference: Any
    components: tuple[str, ...]
    rows: list[Any]


def _group(index: int, item: object) -> _Group:
    """Check the shape of one element of the body (400 for the whole request when broken)."""
    where = f"CreateObservations[{index}]"
    if not isinstance(item, dict):
        raise BadRequestError(f"{where}: expected an object with Datastream, components and dataArray")
    streams = [name for name in STREAMS if name in item]
    if len(streams) != 1 or not isinstance(item[streams[0]], dict):
        raise BadRequestError(f"{where}: give exactly one Datastream or MultiDatastream reference")
    components = item.get("components")
    if not isinstance(components, list) or not all(isinstance(c, str) for c in components):
        raise BadRequestError(f"{where}.components: expected an array of property names")
    unknown = [c for c in components if c not in COMPONENTS]
    if unknown or len(set(components)) != len(components):
        raise BadRequestError(
            f"{where}.components: {unknown or 'duplicates'} not allowed; use {', '.join(sorted(COMPONENTS))}"
        )
    rows = item.get("dataArray")
    if not isinstance(rows, list):
        raise BadRequestError(f"{where}.dataArray: expected an array of rows")
    return _Group(streams[0], item[streams[0]], tuple(components), rows)


def parse_groups(body: object) -> list[_Group]:
    """The groups of a CreateObservations body."""
    if not isinstance(body, list):
        raise BadRequestError(
            "CreateObservations: expected a JSON array of {Datastream, components, dataArray}"
        )
    return [_group(index, item) for index, item in enumerate(body)]


def row_body(group: _Group, row: object) -> dict[str, Any]:
    """The single-POST Observation body of one dataArray row."""
    if not isinstance(row, list) or len(row) != len(group.components):
        raise BadRequestError(f"dataArray: each row needs {len(group.components)} values, one per component")
    body: dict[str, Any] = {group.stream: group.reference}
    for name, value in zip(group.components, row, strict=True):
        if name == FOI_ID:
            body["FeatureOfInterest"] = {"@iot.id": value}
        else:
            body[name] = value
    return body


def _pending(group: _Group, row: object) -> PendingObservation | None:
    """The validated Observation of one row (its links still unchecked), or None when invalid."""
    try:
        return pending_observation(row_body(group, row), None)
    except ROW_ERRORS:
        return None


# Components whose rows take the fast path: the same converter the create model runs on the time
# (schemas.entities.parse_time), none on the result (any JSON value, null included), and the
# group's stream reference checked once instead of per row. Anything else takes the full path.
FAST_COMPONENTS = frozenset({"phenomenonTime", "result"})
PHENOMENON_TIME = "Observation.phenomenonTime"


def _pending_rows(group: _Group) -> list[PendingObservation | None]:
    """The validated Observations of a group's rows, row for row as _pending would make them."""
    fast = "result" in group.components and FAST_COMPONENTS.issuperset(group.components)
    if not group.rows or not fast:
        return [_pending(group, row) for row in group.rows]
    first = _pending(group, group.rows[0])
    if first is None:  # e.g. a bad stream reference: let the full path judge every row
        return [first, *(_pending(group, row) for row in group.rows[1:])]
    width = len(group.components)
    time_at = group.components.index("phenomenonTime") if "phenomenonTime" in group.components else None
    result_at = group.components.index("result")
    stream, multi = first.datastream_id, first.multi_datastream_id
    pending: list[PendingObservation | None] = [first]
    for row in group.rows[1:]:
        if not isinstance(row, list) or len(row) != width:
            pending.append(_pending(group, row))
            continue
        when = None if time_at is None else row[time_at]
        try:
            interval = None if when is None else parse_time(when, PHENOMENON_TIME)
        except ValidationError:
            pending.append(None)  # what the full path makes of it, without parsing it twice
            continue
        pending.append(PendingObservation(row[result_at], interval, stream, multi))
    return pending


def _row(links: Links, pending: PendingObservation | None, received_at: float) -> ObservationRow | None:
    """The row ready for insertion, or None when one of its links is missing."""
    if pending is None:
        return None
    try:
        return links.row(pending, received_at)
    except IngestError:
        return None


async def create_observations(
    state: AppState, request: StaRequest, conn: asyncpg.Connection | None = None
) -> StaResponse:
    """Validate every row, insert the valid ones with one statement, answer their selfLinks."""
    groups = parse_groups(request.body)
    pending = [observation for group in groups for observation in _pending_rows(group)]
    received_at = now().timestamp()
    async with transaction(state, conn) as db:
        checked = await Links.load(db, [p for p in pending if p is not None])
        rows = [_row(checked, p, received_at) for p in pending]
        valid = [row for row in rows if row is not None]
        ids = iter(await insert_observations(db, valid) if valid else [])
    links: list[str] = []
    changes: list[Change] = []
    for row in rows:
        if row is None:
            links.append(ERROR)
            continue
        entity_id = next(ids)
        links.append(self_link(request.base, OBSERVATION, entity_id))
        changes.append(Change(OBSERVATION, entity_id, "create"))
    return StaResponse(201, links, changes=changes)
