# SPDX-License-Identifier: Apache-2.0
"""The body of CreateObservations (OGC 18-088 §14.4) -> its groups, their rows validated column by column.

The body is a JSON array of {"Datastream" | "MultiDatastream": reference, "components": [...],
"dataArray": [[...], ...]}. A body malformed as a whole is a 400 (parse_groups). Each group's
rows are validated one component at a time, down the column, with the converter the create model
(schemas/entities.py) runs on that property: a row fails exactly when the same values POSTed as
one Observation would fail validation, but no per-row body, model or object is built. The
common ISO 8601 form, a UTC instant such as 2026-12-07T10:00:00.123Z, takes a shortcut to the
same datetime. Whether the links exist is the database's to say (hub/http/data_array_create.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.errors import BadRequestError, StaError
from hub.store.write import reference_id
from schemas.entities import ValidationError, parse_instant, parse_time
from schemas.model import ENTITY_TYPES, FEATURE_OF_INTEREST

FOI_ID = "FeatureOfInterest/id"
COMPONENTS = frozenset(
    {"phenomenonTime", "result", "resultTime", "resultQuality", "validTime", "parameters", FOI_ID}
)
STREAMS = ("Datastream", "MultiDatastream")
# What makes a row fail rather than the whole request: the client's input, not the server.
ROW_ERRORS = (StaError, ValidationError)
# Ids are bigints: a larger one names nothing that exists.
MAX_ID = 2**63 - 1

Column = list[Any]


@dataclass(frozen=True)
class Group:
    """One element of the request body: a stream, its components and rows."""

    stream: str  # "Datastream" or "MultiDatastream"
    reference: dict[str, Any]
    components: tuple[str, ...]
    rows: list[Any]


def _group(index: int, item: object) -> Group:
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
    return Group(streams[0], item[streams[0]], tuple(components), rows)


def parse_groups(body: object) -> list[Group]:
    """The groups of a CreateObservations body."""
    if not isinstance(body, list):
        raise BadRequestError(
            "CreateObservations: expected a JSON array of {Datastream, components, dataArray}"
        )
    return [_group(index, item) for index, item in enumerate(body)]


@dataclass
class ValidRows:
    """The rows of one group that passed validation, column by column.

    `columns` is keyed by the ObservationColumns field names (hub/store/observation_columns.py);
    a column no component gave is None. A None phenomenon_time_start entry means "the time it
    arrived"; phenomenon_time_end is None when every row is an instant."""

    stream: str
    stream_id: int | None  # None: the reference names no stream (then no row is valid)
    index: list[int]  # the positions in the group's dataArray of the rows below
    columns: dict[str, Column | None]

    def keep(self, positions: list[int]) -> ValidRows:
        """These rows only (positions into `index`)."""
        if len(positions) == len(self.index):
            return self
        columns = {
            name: None if column is None else [column[p] for p in positions]
            for name, column in self.columns.items()
        }
        return ValidRows(self.stream, self.stream_id, [self.index[p] for p in positions], columns)


def stream_id(group: Group) -> int | None:
    """The id the group's stream reference gives, or None when it is not a reference to one.

    A Datastream given inline (a deep insert) is not one: CreateObservations only adds rows to
    existing streams."""
    reference = group.reference
    if "@iot.id" not in reference and "@iot.selfLink" not in reference:
        return None
    try:
        entity_id = reference_id(ENTITY_TYPES[group.stream], reference, f"Observation.{group.stream}")
    except ROW_ERRORS:
        return None
    return entity_id if entity_id <= MAX_ID else None


# The shortcut: ASCII digits, upper-case T, seconds, up to microseconds, UTC. Everything this
# matches, parse_time reads as the datetime fromisoformat gives (already UTC); the rest goes there.
_UTC_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|\+00:00)"
).fullmatch
_from_iso = datetime.fromisoformat


def _times(values: Column, field: str, interval: bool, bad: set[int]) -> tuple[Column, Column]:
    """Starts and ends of a time column (None stays None); failing positions go to `bad`.

    An interval column takes what parse_time takes (instants too), else what parse_instant does."""
    starts: Column = []
    ends: Column = []
    for position, value in enumerate(values):
        if value is None:
            start = end = None
        elif type(value) is str and _UTC_INSTANT(value):
            try:
                start = end = _from_iso(value)
            except ValueError:  # e.g. February 30: the full parser says why
                start = end = None
                bad.add(position)
        elif interval or isinstance(value, str):
            try:
                if interval:
                    start, end = parse_time(value, field)
                else:
                    start = end = parse_instant(value, field)
            except ValidationError:
                start = end = None
                bad.add(position)
        else:  # an instant is a string
            start = end = None
            bad.add(position)
        starts.append(start)
        ends.append(end)
    return starts, ends


def _objects(values: Column, bad: set[int]) -> Column:
    """parameters: a JSON object or null."""
    for position, value in enumerate(values):
        if value is not None and not isinstance(value, dict):
            bad.add(position)
    return values


def _feature_id(value: object) -> int:
    if type(value) is int and 0 <= value <= MAX_ID:
        return value
    where = "Observation.FeatureOfInterest"
    entity_id = reference_id(FEATURE_OF_INTEREST, {"@iot.id": value}, where)
    if entity_id > MAX_ID:
        raise BadRequestError(f"{where}: no FeatureOfInterest has the id {entity_id}")
    return entity_id


def _features(values: Column, bad: set[int]) -> Column:
    ids: Column = []
    for position, value in enumerate(values):
        try:
            ids.append(_feature_id(value))
        except ROW_ERRORS:
            ids.append(None)
            bad.add(position)
    return ids


def validate_rows(group: Group) -> ValidRows:
    """The rows of a group that pass validation, column by column."""
    stream = stream_id(group)
    if stream is None or "result" not in group.components:  # every row fails the same way
        return ValidRows(group.stream, stream, [], {})
    width = len(group.components)
    rows = group.rows
    index = [i for i, row in enumerate(rows) if isinstance(row, list) and len(row) == width]
    if len(index) != len(rows):
        rows = [rows[i] for i in index]
    bad: set[int] = set()
    columns: dict[str, Column | None] = {
        "phenomenon_time_start": [None] * len(rows),
        "phenomenon_time_end": None,
        "result": None,
        "feature_of_interest_id": None,
    }
    for at, name in enumerate(group.components):
        values = [row[at] for row in rows]
        if name == "result":
            columns["result"] = values
        elif name == "resultQuality":
            columns["result_quality"] = values
        elif name == "parameters":
            columns["parameters"] = _objects(values, bad)
        elif name == FOI_ID:
            columns["feature_of_interest_id"] = _features(values, bad)
        elif name == "phenomenonTime":
            starts, ends = _times(values, "Observation.phenomenonTime", True, bad)
            columns["phenomenon_time_start"] = starts
            if any(s is not e and s != e for s, e in zip(starts, ends, strict=True)):
                columns["phenomenon_time_end"] = ends
        elif name == "resultTime":
            columns["result_time"] = _times(values, "Observation.resultTime", False, bad)[0]
        else:  # validTime
            starts, ends = _times(values, "Observation.validTime", True, bad)
            columns["valid_time_start"], columns["valid_time_end"] = starts, ends
    valid = ValidRows(group.stream, stream, index, columns)
    if bad:
        valid = valid.keep([p for p in range(len(index)) if p not in bad])
    return valid
