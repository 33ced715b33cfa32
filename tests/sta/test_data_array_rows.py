# SPDX-License-Identifier: Apache-2.0
"""CreateObservations rows (OGC 18-088 §14.4): validating column by column decides every row
exactly as validating the row as one POSTed Observation (the create model) does, values included."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

import pytest

from hub.errors import StaError
from hub.http.data_array_rows import FOI_ID, MAX_ID, Group, parse_groups, validate_rows
from hub.ingest.dispatch import PendingObservation
from hub.ingest.sta import validated_observation
from schemas.entities import ValidationError

GOOD = "2026-12-07T10:00:00Z"
TIMES: list[Any] = [
    GOOD,
    "2026-12-07T10:00:00.123456Z",
    "2026-12-07T10:00:00.5+00:00",
    "2026-12-07T10:00:00.1234567Z",  # more than microseconds
    "2026-12-07t10:00:00z",
    "2026-12-07T10:00Z",  # no seconds
    "2026-12-07T10:00:00+02:00",
    "2026-12-07T10:00:00-0130",
    "2026-12-07 10:00:00Z",
    "2026-12-07T10:00:00",  # no offset: UTC
    "2026-12-07T10:00:00,5Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "2026-12-07T10:00:00Z/2026-12-07T11:00:00Z",
    "2026-12-07T10:00:00Z/PT1H",
    "P1M/2026-03-31T00:00:00Z",
    None,
    # not times
    "2026-02-30T10:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-12-07T24:00:00Z",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
    "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
    "٢٠٢٦-12-07T10:00:00Z",  # not ASCII digits
    "2026-12-07T10:00:00Z/2026-12-07T09:00:00Z",  # ends before it starts
    "2026-12-07",
    "20261207T100000Z",
    "2026-12-07T10:00:00Z ",
    "",
    "yesterday",
    1733565600,
    True,
    [],
    {},
]
RESULTS: list[Any] = [1.5, 0, -3, "text", None, True, [1, 2], [1, 2, 3], {"nested": [1]}, 2**63]
FEATURES: list[Any] = [1, "1", 0, 2**63 - 1, -1, True, None, 1.0, "x", "٣", [1], {"@iot.id": 1}, 2**63]
PARAMETERS: list[Any] = [None, {}, {"a": [1, {"b": None}]}, [], "x", 1, False]
QUALITY: list[Any] = [None, 1, "good", [1], {"q": 1}]
CANDIDATES: dict[str, list[Any]] = {
    "phenomenonTime": TIMES,
    "result": RESULTS,
    "resultTime": TIMES,
    "resultQuality": QUALITY,
    "validTime": TIMES,
    "parameters": PARAMETERS,
    FOI_ID: FEATURES,
}
DEFAULTS: dict[str, Any] = {
    "phenomenonTime": GOOD,
    "result": 1,
    "resultTime": None,
    "resultQuality": None,
    "validTime": None,
    "parameters": None,
    FOI_ID: 1,
}


def row_body(group: Group, row: object) -> dict[str, Any]:
    """The single-POST Observation body of one dataArray row."""
    body: dict[str, Any] = {group.stream: group.reference}
    assert isinstance(row, list)
    for name, value in zip(group.components, row, strict=True):
        if name == FOI_ID:
            body["FeatureOfInterest"] = {"@iot.id": value}
        else:
            body[name] = value
    return body


def full_path(group: Group, row: object) -> PendingObservation | None:
    """What validating the row as one POSTed Observation gives (None: the row fails).

    An id no bigint can hold fails the row, too: the database could not even look it up."""
    if not isinstance(row, list) or len(row) != len(group.components):
        return None
    try:
        pending = validated_observation(row_body(group, row), None)
    except (StaError, ValidationError):
        return None
    ids = (pending.datastream_id, pending.multi_datastream_id, pending.feature_of_interest_id)
    return None if any(i is not None and i > MAX_ID for i in ids) else pending


Values = tuple[Any, ...]


def from_full_path(p: PendingObservation) -> Values:
    start, end = p.phenomenon_time or (None, None)
    valid_start, valid_end = p.valid_time or (None, None)
    return (
        start,
        end,
        p.result,
        p.result_time,
        p.result_quality,
        valid_start,
        valid_end,
        p.parameters,
        p.feature_of_interest_id,
        p.datastream_id or p.multi_datastream_id,
    )


def from_columns(group: Group) -> dict[int, Values]:
    valid = validate_rows(group)
    columns = valid.columns

    def at(name: str, p: int) -> Any:
        column = columns.get(name)
        return None if column is None else column[p]

    found = {}
    for p, position in enumerate(valid.index):
        start = at("phenomenon_time_start", p)
        end = at("phenomenon_time_end", p) or start
        found[position] = (
            start,
            end,
            at("result", p),
            at("result_time", p),
            at("result_quality", p),
            at("valid_time_start", p),
            at("valid_time_end", p),
            at("parameters", p),
            at("feature_of_interest_id", p),
            valid.stream_id,
        )
    return found


def assert_same_as_full_path(group: Group) -> int:
    """Both ways agree row for row; returns how many rows passed."""
    columns = from_columns(group)
    for position, row in enumerate(group.rows):
        full = full_path(group, row)
        if full is None:
            assert position not in columns, (row, columns.get(position))
        else:
            assert columns.get(position) == from_full_path(full), row
            for moment in columns[position][:2]:
                assert moment is None or moment.utcoffset().total_seconds() == 0
    return len(columns)


def group_of(components: list[str], rows: list[Any], stream: Any = None) -> Group:
    item = {"Datastream": stream or {"@iot.id": 7}, "components": components, "dataArray": rows}
    return parse_groups([item])[0]


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_each_component_decides_rows_as_the_full_path(name: str) -> None:
    components = ["result", name] if name != "result" else ["result", "phenomenonTime"]
    rows = [[value if c == name else DEFAULTS[c] for c in components] for value in CANDIDATES[name]]
    passed = assert_same_as_full_path(group_of(components, rows))
    assert 0 < passed < len(rows) or name in ("result", "resultQuality")


def test_mixed_rows_of_all_components_match_the_full_path() -> None:
    draw = random.Random(11)
    components = list(CANDIDATES)
    draw.shuffle(components)
    rows: list[Any] = [[draw.choice(CANDIDATES[c]) for c in components] for _ in range(400)]
    rows += [[DEFAULTS[c] for c in components], [1], "not a row", None, [*rows[0], 1]]
    passed = assert_same_as_full_path(group_of(components, rows))
    assert 0 < passed < len(rows)


@pytest.mark.parametrize(
    ("components", "stream"),
    [
        (["phenomenonTime", "result"], {"@iot.id": 7}),
        (["phenomenonTime", "result"], {"@iot.id": "7"}),
        (["phenomenonTime", "result"], {"@iot.selfLink": "http://example.org/v1.1/Datastreams(7)"}),
        (["phenomenonTime", "result"], {"@iot.selfLink": "http://example.org/v1.1/Things(7)"}),
        (["phenomenonTime", "result"], {"@iot.selfLink": 7}),
        (["phenomenonTime", "result"], {"@iot.id": "seven"}),
        (["phenomenonTime", "result"], {"@iot.id": -1}),
        (["phenomenonTime", "result"], {"name": "an inline Datastream, incomplete"}),
        (["phenomenonTime"], None),  # no result: every row misses a required property
        ([], None),
    ],
)
def test_stream_references_and_missing_results(components: list[str], stream: Any) -> None:
    rows = [[GOOD, 1][: len(components)], ["bad", 2][: len(components)]]
    assert_same_as_full_path(group_of(components, rows, stream))


def test_multi_datastream_groups_keep_array_results() -> None:
    item = {"MultiDatastream": {"@iot.id": 3}, "components": ["result"], "dataArray": [[[1, 2]], [5]]}
    valid = validate_rows(parse_groups([item])[0])
    assert (valid.stream, valid.stream_id, valid.index) == ("MultiDatastream", 3, [0, 1])
    assert valid.columns["result"] == [[1, 2], 5]  # the arity is the database's to say


def test_ids_no_bigint_can_hold_name_nothing() -> None:
    """A reference the database could not even look up fails its rows instead of the request."""
    assert validate_rows(group_of(["result"], [[1]], {"@iot.id": 2**63})).index == []
    valid = validate_rows(group_of(["result", FOI_ID], [[1, 2**63], [2, 2**63 - 1]]))
    assert (valid.index, valid.columns["feature_of_interest_id"]) == ([1], [2**63 - 1])


def test_an_inline_datastream_fails_its_rows() -> None:
    """A deep insert is no reference: CreateObservations adds rows to existing streams only."""
    stream = {"name": "new", "description": "d", "unitOfMeasurement": {}, "observationType": "x"}
    assert validate_rows(group_of(["result"], [[1]], stream)).index == []


def test_instants_need_no_end_column_and_arrival_is_left_open() -> None:
    valid = validate_rows(group_of(["phenomenonTime", "result"], [[GOOD, 1], [None, 2]]))
    assert valid.columns["phenomenon_time_end"] is None
    assert valid.columns["phenomenon_time_start"] == [datetime.fromisoformat(GOOD), None]
    interval = validate_rows(group_of(["phenomenonTime", "result"], [[GOOD, 1], [f"{GOOD}/PT1H", 2]]))
    ends = interval.columns["phenomenon_time_end"]
    assert ends is not None
    assert ends[1] - ends[0] == datetime.fromisoformat("2026-01-01T01:00:00") - datetime(2026, 1, 1)
