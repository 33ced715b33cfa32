# SPDX-License-Identifier: Apache-2.0
"""GET of an Observation collection with `$apply` (docs/aggregates.md): parse, plan, one SQL
round trip, then rows as JSON, dataArray or CSV with paging."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import asyncpg
import orjson

from hub.errors import NotFoundError
from hub.http.context import AppState
from hub.http.exchange import CSV, StaRequest, StaResponse, connection
from hub.query.apply_parse import OPTION, parse_apply
from hub.query.apply_plan import ApplyPlan, BucketSpec, plan_apply
from hub.query.apply_sql import compile_apply
from hub.query.ast import Query
from hub.query.compile import compile_exists
from hub.query.parse import QueryError, parse_query
from hub.query.path import ResourcePath, parse_path
from schemas.model import OBSERVATION

# Options that would act on the aggregated rows (OData-Aggr §3.3): said so, instead of guessed.
_REFUSED = {
    "$filter": "put the condition into $apply as filter(...)",
    "$orderby": "aggregated rows come ordered by Datastream, then bucket",
    "$select": "aggregate(...) already selects the row's properties",
    "$expand": "aggregated rows have no navigation properties",
}


def apply_text(params: Mapping[str, str]) -> str | None:
    """The `$apply` value of a query (option names are case-insensitive), or None."""
    for name, value in params.items():
        if name.strip().lower() == "$apply":
            return value
    return None


def _query(params: Mapping[str, str], state: AppState) -> Query:
    rest = {k: v for k, v in params.items() if k.strip().lower() != "$apply"}
    query = parse_query(rest, state.settings.default_top, state.settings.max_top)
    given = {
        "$filter": query.filter is not None,
        "$orderby": bool(query.orderby),
        "$select": query.select is not None,
        "$expand": bool(query.expand),
    }
    for name, present in given.items():
        if present:
            raise QueryError(f"{name} cannot be combined with $apply: {_REFUSED[name]}", option=name)
    if query.result_format == "GeoJSON":
        raise QueryError(
            "$resultFormat=GeoJSON: aggregated rows have no geometry; use JSON, dataArray or CSV"
        )
    if query.skiptoken is not None:
        raise QueryError("$skiptoken is not used with $apply; page with $skip")
    return query


def _check_path(path: ResourcePath) -> None:
    target = path.target
    if (
        target.entity_type is not OBSERVATION
        or not path.is_collection
        or path.property is not None
        or path.ref
    ):
        raise QueryError(f"{OPTION} is served on Observation collections, not on {path}", option=OPTION)
    if any(s.entity_type.name == "MultiDatastream" for s in path.segments):
        raise QueryError(
            f"{OPTION}: the Observations of MultiDatastreams (array results) are not aggregated",
            option=OPTION,
        )


async def get_aggregates(
    state: AppState, request: StaRequest, conn: asyncpg.Connection | None = None, rollups: bool = True
) -> StaResponse:
    """Answer a GET with `$apply`; rollups=False computes from raw Observations only."""
    path = parse_path(request.tail)
    _check_path(path)
    text = apply_text(request.query) or ""
    query = _query(request.query, state)
    plan = plan_apply(parse_apply(text), rollups)
    max_rows = state.settings.apply_max_rows
    compiled = compile_apply(plan, path, state.dialect, query.top, query.skip, max_rows)
    async with connection(state, conn) as db:
        try:
            records = await db.fetch(compiled.sql.text, *compiled.sql.args)
        except asyncpg.InvalidParameterValueError as error:
            raise QueryError(f"{OPTION}: {error}", option=OPTION) from None
        guard = records[0]
        if guard["read_rows"] == 0 and len(path.segments) > 1:
            await _check_parent(db, path)
    if guard["read_rows"] > max_rows:
        raise QueryError(
            f"{OPTION}: this aggregation would read more than {max_rows} rows; narrow the time range, "
            "use a coarser bucket or a rollup-aligned one (docs/aggregates.md)",
            option=OPTION,
        )
    if plan.numeric and guard["bad_stream"] is not None:
        raise QueryError(
            f"{OPTION}: Datastream {guard['bad_stream']} has Observations whose result is not a number; "
            "only $count can aggregate them (filter them out or use $count)",
            option=OPTION,
        )
    rows = [r for r in records if r["on_page"]]
    has_more = 0 < query.top < len(rows)
    items = _rows(plan, rows[: query.top])
    body: dict[str, Any] = {}
    if query.count:
        body["@iot.count"] = guard["total_rows"]
    if has_more:
        body["@iot.nextLink"] = _next_link(request, path, text, query)
    return _formatted(plan, query, body, items, request.base)


async def _check_parent(db: asyncpg.Connection, path: ResourcePath) -> None:
    """Datastreams(99)/Observations of a missing Datastream is a 404, not an empty aggregate."""
    sql = compile_exists(path.segments[:-1])
    if await db.fetchval(sql.text, *sql.args) is None:
        raise NotFoundError(f"{path} does not exist")


UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Z"})


def _bucket_times(spec: BucketSpec) -> Callable[[datetime], tuple[datetime, datetime]]:
    """Start and end of a bucket in the zone (orjson prints them with the zone's offset, Z for UTC)."""
    if spec.zone in UTC_NAMES and spec.kind != "months":
        # A hot path (thousands of rows): no zone arithmetic where there is none to do.
        step = timedelta(seconds=spec.amount) if spec.kind == "clock" else timedelta(days=spec.amount)
        return lambda start: (start, start + step)
    tz = spec.tz
    return lambda start: (start.astimezone(tz), spec.end(start))


def _rows(plan: ApplyPlan, records: Sequence[asyncpg.Record]) -> list[dict[str, Any]]:
    """The aggregated rows: grouping properties first, then the aggregates by alias."""
    bucket = plan.bucket
    times = _bucket_times(bucket) if bucket is not None else None
    end_alias = bucket.alias + "End" if bucket is not None else ""
    aliases = [(a.alias, f"a{i}") for i, a in enumerate(plan.aggregates)]
    rows = []
    for record in records:
        row: dict[str, Any] = {}
        if plan.by_datastream:
            row["Datastream"] = {"@iot.id": record["ds"]}
        if bucket is not None and times is not None:
            row[bucket.alias], row[end_alias] = times(record["b"])
        for alias, column in aliases:
            row[alias] = record[column]
        rows.append(row)
    return rows


_SAFE = "$(),'/:@"


def _next_link(request: StaRequest, path: ResourcePath, text: str, query: Query) -> str:
    """Absolute and complete in itself (STA-NOTES 1): $apply as given, the next $skip."""
    options: dict[str, str] = {"$apply": text, "$top": str(query.top), "$skip": str(query.skip + query.top)}
    if query.count:
        options["$count"] = "true"
    if query.result_format is not None:
        options["$resultFormat"] = query.result_format
    return f"{request.base}/{path}?{urlencode(options, quote_via=quote, safe=_SAFE)}"


def _components(plan: ApplyPlan) -> list[str]:
    names = ["Datastream/@iot.id"] if plan.by_datastream else []
    if plan.bucket is not None:
        names += [plan.bucket.alias, plan.bucket.alias + "End"]
    return names + [a.alias for a in plan.aggregates]


def _flat(row: dict[str, Any]) -> list[Any]:
    return [value["@iot.id"] if key == "Datastream" else value for key, value in row.items()]


def _formatted(
    plan: ApplyPlan, query: Query, body: dict[str, Any], items: list[dict[str, Any]], base: str
) -> StaResponse:
    if query.result_format is None:
        return _json({**body, "value": items})
    components = _components(plan)
    if query.result_format == "CSV":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(components)
        writer.writerows([[_cell(v) for v in _flat(item)] for item in items])
        return StaResponse(200, out.getvalue(), CSV)
    groups: dict[int | None, list[list[Any]]] = {}
    for item in items:
        groups.setdefault(item["Datastream"]["@iot.id"] if plan.by_datastream else None, []).append(
            _flat(item)
        )
    value = []
    for stream, rows in groups.items():
        group: dict[str, Any] = {}
        if stream is not None:
            group["Datastream@iot.navigationLink"] = f"{base}/Datastreams({stream})"
        value.append({**group, "components": components, "dataArray@iot.count": len(rows), "dataArray": rows})
    return _json({**body, "value": value})


def _json(body: dict[str, Any]) -> StaResponse:
    """Serialised here: orjson prints the bucket times, in UTC with Z (as the hub's other times)."""
    return StaResponse(200, orjson.Fragment(orjson.dumps(body, option=orjson.OPT_UTC_Z)))


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return orjson.dumps(value, option=orjson.OPT_UTC_Z).decode()[1:-1]
    return value
