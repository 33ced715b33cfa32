# SPDX-License-Identifier: Apache-2.0
"""ApplyPlan + path -> one SQL statement: pieces (rollup rows and/or raw Observations), merged
per group, paged, with the cost guard and the numeric check in the same round trip.

    WITH pieces AS MATERIALIZED (<rollup rows inside the bounds> UNION ALL <raw rows at the edges>
                                 LIMIT max_rows + 1),
         groups AS (SELECT <grouping>, <merged aggregates> FROM pieces GROUP BY <grouping>)
    SELECT read_rows, bad_stream, page.* FROM (<guard over pieces>) g
    LEFT JOIN LATERAL (<page of groups>) page ON TRUE

Reading stops after max_rows + 1 pieces, so a refused request costs at most that much.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hub.query.apply_parse import COUNT
from hub.query.apply_pieces import PIECE_COLUMNS, merged, raw_pieces
from hub.query.apply_plan import UNIT_SECONDS, ApplyPlan, Bound, BucketSpec, Unit
from hub.query.compile import Binds, Sql, target_condition
from hub.query.filter import Dialect, compile_filter
from hub.query.path import ResourcePath
from schemas.model import OBSERVATION

ROLLUP_TABLES: dict[Unit, str] = {"hour": "observation_rollups_hour", "day": "observation_rollups_day"}
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

# Method -> (group columns it needs, its value from the group row g).
METHOD_SQL: dict[str, tuple[tuple[str, ...], str]] = {
    COUNT: ((), "g.n"),
    "average": (("total",), "(g.total / NULLIF(g.n_numeric, 0))::float8"),
    "sum": (("total",), "g.total::float8"),
    "min": (("min",), "g.min"),
    "max": (("max",), "g.max"),
    "countdistinct": (("distinct_values",), "g.distinct_values"),
    "twinhub.first": (("first_value",), "g.first_value"),
    "twinhub.last": (("last_value",), "g.last_value"),
}
_EXTRA_GROUP_COLUMNS = {"distinct_values": "count(DISTINCT p.min) AS distinct_values"}
_ROW_COLUMN = re.compile(r"\be\.(\w+)")


@dataclass(frozen=True)
class ApplySql:
    """The statement; columns read_rows, bad_stream, total_rows (groups), then ds, b, a0..an, on_page."""

    sql: Sql
    source: Unit | None


def bucket_sql(spec: BucketSpec, column: str, binds: Binds) -> str:
    """The bucket start of instants `column` (timestamptz), per docs/aggregates.md."""
    if spec.kind == "clock":
        width = binds.add(timedelta(seconds=spec.amount))
        return f"date_bin({width}::interval, {column}, {binds.add(spec.origin())}::timestamptz)"
    zone = binds.add(spec.zone) + "::text"
    local = f"({column} AT TIME ZONE {zone})"
    if spec.kind == "days":
        width = binds.add(timedelta(days=spec.amount))
        origin = binds.add(datetime(2000, 1, 3))
        return f"(date_bin({width}::interval, {local}, {origin}::timestamp) AT TIME ZONE {zone})"
    months = binds.add(spec.amount)
    index = f"((extract(year from {local})::int - 2000) * 12 + extract(month from {local})::int - 1)"
    start = f"(floor({index}::numeric / {months}::int) * {months}::int)::int"
    return f"(timestamp '2000-01-01' + {start} * interval '1 month') AT TIME ZONE {zone}"


def _grid(moment: datetime, unit: Unit, up: bool) -> datetime:
    """`moment` rounded down (or up) to the UTC `unit` grid."""
    seconds = UNIT_SECONDS[unit]
    offset = (moment - EPOCH).total_seconds()
    steps = -(-offset // seconds) if up else offset // seconds
    return EPOCH + timedelta(seconds=steps * seconds)


def _interior(plan: ApplyPlan, unit: Unit) -> tuple[datetime | None, datetime | None]:
    """The rollup-served span [low, high): whole rollup buckets inside the bounds."""
    low = high = None
    if plan.lower is not None:
        low = _grid(plan.lower.value, unit, up=True)
        if plan.lower.op == "gt" and low == plan.lower.value:
            low += timedelta(seconds=UNIT_SECONDS[unit])  # `gt` excludes the bound itself
    if plan.upper is not None:
        high = _grid(plan.upper.value, unit, up=False)
    return low, high


def _bound_sql(bound: Bound | None, binds: Binds) -> str:
    if bound is None:
        return "TRUE"
    op = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}[bound.op]
    return f"e.phenomenon_time_start {op} {binds.add(bound.value)}::timestamptz"


def _on_stream_only(conditions: list[str]) -> bool:
    """Whether conditions on `e` read only e.datastream_id (so they also hold on rollup rows)."""
    return all(name == "datastream_id" for c in conditions for name in _ROW_COLUMN.findall(c))


def _piece_columns(plan: ApplyPlan) -> tuple[str, ...]:
    """The piece columns the plan's methods read (narrow pieces: less to materialise)."""
    wanted = {"n", "n_numeric"}
    for aggregate in plan.aggregates:
        for column in METHOD_SQL[aggregate.method][0]:
            wanted.update(_PIECE_NEEDS.get(column, (column,)))
    return tuple(c for c in PIECE_COLUMNS if c in wanted)


# Group columns -> the piece columns they are merged from.
_PIECE_NEEDS = {
    "first_value": ("first_time", "first_id", "first_value"),
    "last_value": ("last_time", "last_id", "last_value"),
    "distinct_values": ("min",),
}


def _pieces(plan: ApplyPlan, path: ResourcePath, binds: Binds, dialect: Dialect) -> tuple[str, Unit | None]:
    """The pieces query and the rollup it reads (None: raw only)."""
    wanted = _piece_columns(plan)
    streams = [target_condition(path.segments, binds)]
    streams += [compile_filter(c, OBSERVATION, "e", binds, dialect) for c in plan.stream_conditions]
    others = [compile_filter(c, OBSERVATION, "e", binds, dialect) for c in plan.other_conditions]
    raw_where = " AND ".join(
        [
            "e.datastream_id IS NOT NULL",
            *streams,
            *others,
            _bound_sql(plan.lower, binds),
            _bound_sql(plan.upper, binds),
        ]
    )
    raw = (
        f"SELECT e.datastream_id, e.phenomenon_time_start AS t, {raw_pieces('e', wanted)} FROM observations e"
    )
    unit = plan.source
    if unit is None or not _on_stream_only(streams):
        return f"{raw} WHERE {raw_where}", None
    low, high = _interior(plan, unit)
    if low is not None and high is not None and low >= high:
        return f"{raw} WHERE {raw_where}", None  # no whole rollup bucket inside the bounds
    columns = ", ".join(f"e.{c}" for c in wanted)
    inside = [*streams]
    parts = []
    if low is not None:
        at = binds.add(low)
        inside.append(f"e.bucket >= {at}::timestamptz")
        parts.append(f"{raw} WHERE {raw_where} AND e.phenomenon_time_start < {at}::timestamptz")
    if high is not None:
        at = binds.add(high)
        inside.append(f"e.bucket < {at}::timestamptz")
        parts.append(f"{raw} WHERE {raw_where} AND e.phenomenon_time_start >= {at}::timestamptz")
    rollup = (
        f"SELECT e.datastream_id, e.bucket AS t, {columns} FROM {ROLLUP_TABLES[unit]} e WHERE "
        + " AND ".join(inside)
    )
    return " UNION ALL ".join([rollup, *parts]), unit


def compile_apply(
    plan: ApplyPlan, path: ResourcePath, dialect: Dialect, top: int, skip: int, max_rows: int
) -> ApplySql:
    """The statement answering one page of an `$apply` request."""
    binds = Binds()
    pieces, source = _pieces(plan, path, binds, dialect)
    keys = []
    if plan.by_datastream:
        keys.append("p.datastream_id AS ds")
    if plan.bucket is not None:
        keys.append(f"{bucket_sql(plan.bucket, 'p.t', binds)} AS b")
    needed: list[str] = []
    for aggregate in plan.aggregates:
        needed += [c for c in METHOD_SQL[aggregate.method][0] if c not in needed]
    if "total" in needed:
        needed.append("n_numeric")
    stored = [c for c in needed if c in PIECE_COLUMNS and c != "n_numeric"]
    group_columns = [merged("p", ("n", "n_numeric", *stored))]
    group_columns += [_EXTRA_GROUP_COLUMNS[c] for c in needed if c in _EXTRA_GROUP_COLUMNS]
    group_by = f"GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}" if keys else ""
    order = ", ".join(k.rsplit(" AS ", 1)[1] for k in keys) or "1"
    values = [f"{METHOD_SQL[a.method][1]} AS a{i}" for i, a in enumerate(plan.aggregates)]
    outputs = [k.rsplit(" AS ", 1)[1] for k in keys]
    text = f"""
WITH pieces AS MATERIALIZED (SELECT * FROM ({pieces}) u LIMIT {binds.add(max_rows + 1)}),
groups AS (SELECT {", ".join([*keys, *group_columns])} FROM pieces p {group_by})
SELECT guard.*, page.* FROM (
    SELECT count(*) AS read_rows, min(datastream_id) FILTER (WHERE n_numeric < n) AS bad_stream,
           (SELECT count(*) FROM groups) AS total_rows
    FROM pieces
) guard LEFT JOIN LATERAL (
    SELECT {", ".join([*(f"g.{o}" for o in outputs), *values, "TRUE AS on_page"])}
    FROM groups g ORDER BY {order} LIMIT {binds.add(top + 1)} OFFSET {binds.add(skip)}
) page ON TRUE"""
    return ApplySql(Sql(text, tuple(binds.values)), source)
