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

# A numeric result as the exact decimal it was posted as: jsonb keeps numbers as numeric, so this
# is cheap (a cast of the double would print and parse it) and sums are exact in any order.
_EXACT = "CASE WHEN {a}.result_number IS NOT NULL THEN ({a}.result)::numeric END"

# One raw Observation `{a}` as a piece (first/last only for numeric results).
RAW_PIECE = {
    "n": "1::bigint",
    "n_numeric": "({a}.result_number IS NOT NULL)::int::bigint",
    "total": _EXACT,
    "min": "{a}.result_number",
    "max": "{a}.result_number",
    "first_time": "CASE WHEN {a}.result_number IS NOT NULL THEN {a}.phenomenon_time_start END",
    "first_id": "CASE WHEN {a}.result_number IS NOT NULL THEN {a}.id END",
    "first_value": "{a}.result_number",
    "last_time": "CASE WHEN {a}.result_number IS NOT NULL THEN {a}.phenomenon_time_start END",
    "last_id": "CASE WHEN {a}.result_number IS NOT NULL THEN {a}.id END",
    "last_value": "{a}.result_number",
}

# First and last travel as one composite (time, id, value) per aggregate: PostgreSQL computes
# identical aggregate calls once, so the three fields cost one sort, not three.
POINT = "twinhub_rollup_point"
_FIRST = (
    "((array_agg(ROW({a}.first_time, {a}.first_id, {a}.first_value)::"
    + POINT
    + " ORDER BY {a}.first_time, {a}.first_id) FILTER (WHERE {a}.first_id IS NOT NULL))[1])"
)
_LAST = (
    "((array_agg(ROW({a}.last_time, {a}.last_id, {a}.last_value)::"
    + POINT
    + " ORDER BY {a}.last_time DESC, {a}.last_id DESC) FILTER (WHERE {a}.last_id IS NOT NULL))[1])"
)

# Aggregates merging pieces `{a}` into one piece.
MERGE = {
    "n": "sum({a}.n)::bigint",
    "n_numeric": "sum({a}.n_numeric)::bigint",
    "total": "sum({a}.total)",
    "min": "min({a}.min)",
    "max": "max({a}.max)",
    "first_time": _FIRST + ".t",
    "first_id": _FIRST + ".id",
    "first_value": _FIRST + ".v",
    "last_time": _LAST + ".t",
    "last_id": _LAST + ".id",
    "last_value": _LAST + ".v",
}

# Aggregates of raw Observations `{a}` straight into one piece: first and last are the two ends
# of one sorted array (one sort per group).
_POINTS = (
    "(array_agg(ROW({a}.phenomenon_time_start, {a}.id, {a}.result_number)::"
    + POINT
    + " ORDER BY {a}.phenomenon_time_start, {a}.id) FILTER (WHERE {a}.result_number IS NOT NULL))"
)
RAW_MERGE = {
    "n": "count(*)",
    "n_numeric": "count({a}.result_number)",
    "total": f"sum({_EXACT})",
    "min": "min({a}.result_number)",
    "max": "max({a}.result_number)",
    "first_time": f"({_POINTS}[1]).t",
    "first_id": f"({_POINTS}[1]).id",
    "first_value": f"({_POINTS}[1]).v",
    "last_time": f"({_POINTS}[cardinality({_POINTS})]).t",
    "last_id": f"({_POINTS}[cardinality({_POINTS})]).id",
    "last_value": f"({_POINTS}[cardinality({_POINTS})]).v",
}


def raw_merged(alias: str) -> str:
    """The select list aggregating raw Observations `alias` into pieces, named by PIECE_COLUMNS."""
    return ", ".join(f"{RAW_MERGE[c].format(a=alias)} AS {c}" for c in PIECE_COLUMNS)


def raw_pieces(alias: str, columns: tuple[str, ...] = PIECE_COLUMNS) -> str:
    """The select list of raw Observations `alias` as pieces, named by `columns`."""
    return ", ".join(f"{RAW_PIECE[c].format(a=alias)} AS {c}" for c in columns)


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
