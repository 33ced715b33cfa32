# SPDX-License-Identifier: Apache-2.0
"""SQL for "pieces": partial aggregates of Observations that merge into coarser ones.

A piece is one raw Observation or one rollup row, with the same columns either way
(PIECE_COLUMNS). Merging pieces (a rollup bucket from raw rows, a day from hours, an `$apply`
group from either) is the same set of aggregates, so rollup-served and raw answers agree by
construction: counts add, exact numeric sums add, min/max combine, first/last go by
(time, id). Pure strings; hub/store/rollups.py and hub/query/apply_sql.py both use them.
"""

from __future__ import annotations

PIECE_COLUMNS = (
    "n",
    "n_numeric",
    "total",
    "min",
    "max",
    "first_time",
    "first_id",
    "first_value",
    "last_time",
    "last_id",
    "last_value",
)

# One raw Observation `{a}` as a piece (first/last only for numeric results).
RAW_PIECE = {
    "n": "1::bigint",
    "n_numeric": "({a}.result_number IS NOT NULL)::int::bigint",
    "total": "{a}.result_number::numeric",
    "min": "{a}.result_number",
    "max": "{a}.result_number",
    "first_time": "CASE WHEN {a}.result_number IS NOT NULL THEN {a}.phenomenon_time_start END",
    "first_id": "CASE WHEN {a}.result_number IS NOT NULL THEN {a}.id END",
    "first_value": "{a}.result_number",
    "last_time": "CASE WHEN {a}.result_number IS NOT NULL THEN {a}.phenomenon_time_start END",
    "last_id": "CASE WHEN {a}.result_number IS NOT NULL THEN {a}.id END",
    "last_value": "{a}.result_number",
}

_FIRST = "ORDER BY {a}.first_time, {a}.first_id) FILTER (WHERE {a}.first_id IS NOT NULL))[1]"
_LAST = "ORDER BY {a}.last_time DESC, {a}.last_id DESC) FILTER (WHERE {a}.last_id IS NOT NULL))[1]"

# Aggregates merging pieces `{a}` into one piece.
MERGE = {
    "n": "sum({a}.n)::bigint",
    "n_numeric": "sum({a}.n_numeric)::bigint",
    "total": "sum({a}.total)",
    "min": "min({a}.min)",
    "max": "max({a}.max)",
    "first_time": "(array_agg({a}.first_time " + _FIRST,
    "first_id": "(array_agg({a}.first_id " + _FIRST,
    "first_value": "(array_agg({a}.first_value " + _FIRST,
    "last_time": "(array_agg({a}.last_time " + _LAST,
    "last_id": "(array_agg({a}.last_id " + _LAST,
    "last_value": "(array_agg({a}.last_value " + _LAST,
}


def raw_pieces(alias: str) -> str:
    """The select list of raw Observations `alias` as pieces, named by PIECE_COLUMNS."""
    return ", ".join(f"{RAW_PIECE[c].format(a=alias)} AS {c}" for c in PIECE_COLUMNS)


def merged(alias: str, columns: tuple[str, ...] = PIECE_COLUMNS) -> str:
    """The select list merging pieces `alias` into `columns`, named by them."""
    return ", ".join(f"{MERGE[c].format(a=alias)} AS {c}" for c in columns)


# Merging a new piece EXCLUDED into a stored one `r` (INSERT ... ON CONFLICT DO UPDATE).
_EARLIER = (
    "EXCLUDED.first_id IS NOT NULL AND (r.first_id IS NULL "
    "OR (EXCLUDED.first_time, EXCLUDED.first_id) < (r.first_time, r.first_id))"
)
_LATER = (
    "EXCLUDED.last_id IS NOT NULL AND (r.last_id IS NULL "
    "OR (EXCLUDED.last_time, EXCLUDED.last_id) > (r.last_time, r.last_id))"
)
UPSERT_SET = ", ".join(
    [
        "n = r.n + EXCLUDED.n",
        "n_numeric = r.n_numeric + EXCLUDED.n_numeric",
        "total = CASE WHEN r.total IS NULL THEN EXCLUDED.total "
        "WHEN EXCLUDED.total IS NULL THEN r.total ELSE r.total + EXCLUDED.total END",
        "min = LEAST(r.min, EXCLUDED.min)",
        "max = GREATEST(r.max, EXCLUDED.max)",
        *(f"{c} = CASE WHEN {_EARLIER} THEN EXCLUDED.{c} ELSE r.{c} END" for c in PIECE_COLUMNS[5:8]),
        *(f"{c} = CASE WHEN {_LATER} THEN EXCLUDED.{c} ELSE r.{c} END" for c in PIECE_COLUMNS[8:]),
    ]
)
# Replacing a stored piece by a recomputed one.
REPLACE_SET = ", ".join(f"{c} = EXCLUDED.{c}" for c in PIECE_COLUMNS)
