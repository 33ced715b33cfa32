# SPDX-License-Identifier: Apache-2.0
"""CreateObservations rows (OGC 18-088 §14.4): the fast path validates exactly as the full one."""

from __future__ import annotations

from typing import Any

import pytest

from hub.http.data_array_create import _pending, _pending_rows, parse_groups

GOOD_TIMES = ["2026-12-07T10:00:00Z", "2026-12-07T10:00:00.123+02:00", "2026-12-07t10:00:00z"]
ROWS: list[Any] = [
    *([t, 1.5] for t in GOOD_TIMES),
    ["2026-12-07T10:00:00Z/2026-12-07T11:00:00Z", "text"],  # an interval
    ["2026-12-07T10:00:00Z/PT1H", {"nested": [1, 2]}],  # start and duration
    [None, 3],  # no time: the time it arrives
    ["2026-12-07T10:00:00Z", None],  # a null result is a value
    ["2026-12-07T10:00:00Z", True],
    ["yesterday", 1],  # not a time
    ["2026-02-30T10:00:00Z", 1],  # no such day
    ["2026-12-07T11:00:00Z/2026-12-07T10:00:00Z", 1],  # ends before it starts
    [1733565600, 1],  # a number is not a time
    ["2026-12-07T10:00:00Z"],  # one value short
    ["2026-12-07T10:00:00Z", 1, 2],  # one value too many
    "not a row",
]


def body(components: list[str], rows: list[Any], stream: Any = None) -> list[dict[str, Any]]:
    return [{"Datastream": stream or {"@iot.id": 7}, "components": components, "dataArray": rows}]


@pytest.mark.parametrize(
    ("components", "reorder"),
    [(["phenomenonTime", "result"], False), (["result", "phenomenonTime"], True)],
)
def test_fast_rows_match_the_full_validation(components: list[str], reorder: bool) -> None:
    rows = [[*reversed(r)] if reorder and isinstance(r, list) and len(r) == 2 else r for r in ROWS]
    # the first row decides whether the fast path runs: give both a good one first
    rows = [rows[0], *rows]
    group = parse_groups(body(components, rows))[0]
    fast = _pending_rows(group)
    assert fast == [_pending(group, row) for row in rows]
    assert sum(p is None for p in fast) == 7  # the bad rows above fail, the others pass


@pytest.mark.parametrize(
    ("components", "stream"),
    [
        (["phenomenonTime", "result"], {"name": "no reference"}),  # a bad stream reference
        (["phenomenonTime", "result"], {"@iot.id": "seven"}),
        (["phenomenonTime"], None),  # no result: every row misses a required property
        (["result", "resultTime"], None),  # another component set: the full path
        (["phenomenonTime", "result", "FeatureOfInterest/id"], None),
    ],
)
def test_other_groups_take_the_full_path(components: list[str], stream: Any) -> None:
    rows = [["2026-12-07T10:00:00Z", 1, 1][: len(components)], ["bad", 2, 1][: len(components)]]
    group = parse_groups(body(components, rows, stream))[0]
    assert _pending_rows(group) == [_pending(group, row) for row in rows]
