# SPDX-License-Identifier: Apache-2.0
"""$apply on Observation collections (docs/aggregates.md), through HTTP on real PostgreSQL."""

from __future__ import annotations

import csv
import io
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import asyncpg
import pydantic
import pytest
from helpers import (
    Json,
    assert_error,
    create,
    datastream,
    follow,
    get,
    get_ok,
    populate,
    post,
    ref,
    send,
)

START = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)  # the night Berlin's clocks go forward


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def series(count: int, step_min: int = 10, start: datetime = START) -> list[tuple[datetime, float]]:
    """Deterministic numbers, not in a simple pattern, one every `step_min` minutes."""
    return [
        (start + timedelta(minutes=step_min * i), round((i * 7919 % 97) / 4 - 9.5, 2)) for i in range(count)
    ]


async def load(client: Any, stream: int, points: list[tuple[datetime, Any]]) -> None:
    """POST the points with CreateObservations (the insert path that maintains rollups)."""
    body = [
        {
            "Datastream": ref(stream),
            "components": ["phenomenonTime", "result"],
            "dataArray": [[iso(t), v] for t, v in points],
        }
    ]
    status, links, _ = await post(client, "CreateObservations", body)
    assert status == 201, links


def apply_path(prefix: str, apply: str, extra: str = "") -> str:
    return f"{prefix}?$apply={quote(apply, safe='(),/$@')}{extra}"


HOURLY = (
    "compute(twinhub.bucket(phenomenonTime,'PT1H') as hour)/groupby((hour),aggregate("
    "result with average as mean,result with min as lo,result with max as hi,"
    "result with sum as total,$count as n))"
)


def expected_groups(points: list[tuple[datetime, float]], key: Any) -> dict[Any, list[float]]:
    groups: dict[Any, list[float]] = {}
    for t, v in points:
        groups.setdefault(key(t), []).append(v)
    return groups


async def test_hourly_mean_min_max_sum_count_with_bucket_start_and_end(client: Any) -> None:
    await populate(client)
    stream = await create(client, "Datastreams", datastream("Hourly"))
    points = series(40)
    await load(client, stream, points)
    body = await get_ok(client, apply_path(f"Datastreams({stream})/Observations", HOURLY, "&$top=100"))
    groups = expected_groups(points, lambda t: t.replace(minute=0))
    assert [row["hour"] for row in body["value"]] == [iso(h) for h in sorted(groups)]
    for row in body["value"]:
        start = datetime.fromisoformat(row["hour"])
        values = groups[start]
        assert datetime.fromisoformat(row["hourEnd"]) - start == timedelta(hours=1)
        assert row["n"] == len(values)
        assert (row["lo"], row["hi"]) == (min(values), max(values))
        assert abs(row["mean"] - statistics.fmean(values)) < 1e-9
        assert abs(row["total"] - sum(values)) < 1e-9


async def test_berlin_days_are_local_days_and_datastreams_group(client: Any) -> None:
    await populate(client)
    first = await create(client, "Datastreams", datastream("A"))
    second = await create(client, "Datastreams", datastream("B"))
    points = series(6 * 24 * 3, step_min=10)  # three days from 2026-03-28 20:00Z
    await load(client, first, points)
    await load(client, second, points[::2])
    apply = (
        "filter(Datastream/Thing/@iot.id eq 1)/"
        "compute(twinhub.bucket(phenomenonTime,'P1D','Europe/Berlin') as day)/"
        "groupby((Datastream/@iot.id,day),aggregate(result with max as hi,$count as n))"
    )
    rows = (await get_ok(client, apply_path("Observations", apply, "&$top=50")))["value"]
    berlin_day = {  # local midnights around the switch to summer time on 2026-03-29
        datetime(2026, 3, 27, 23, tzinfo=UTC): "2026-03-28T00:00:00+01:00",
        datetime(2026, 3, 28, 23, tzinfo=UTC): "2026-03-29T00:00:00+01:00",
        datetime(2026, 3, 29, 22, tzinfo=UTC): "2026-03-30T00:00:00+02:00",
        datetime(2026, 3, 30, 22, tzinfo=UTC): "2026-03-31T00:00:00+02:00",
        datetime(2026, 3, 31, 22, tzinfo=UTC): "2026-04-01T00:00:00+02:00",
    }
    edges = sorted(berlin_day)

    def local_day(t: datetime) -> str:
        return berlin_day[max(e for e in edges if e <= t)]

    for stream, data in ((first, points), (second, points[::2])):
        groups = expected_groups(data, local_day)
        mine = [r for r in rows if r["Datastream"] == {"@iot.id": stream}]
        assert [r["day"] for r in mine] == sorted(groups)
        assert [r["n"] for r in mine] == [len(groups[d]) for d in sorted(groups)]
        assert [r["hi"] for r in mine] == [max(groups[d]) for d in sorted(groups)]
    the_short_day = next(r for r in rows if r["day"] == "2026-03-29T00:00:00+01:00")
    assert the_short_day["dayEnd"] == "2026-03-30T00:00:00+02:00"


async def test_filter_runs_before_aggregation_and_bounds_off_the_grid(client: Any) -> None:
    await populate(client)
    stream = await create(client, "Datastreams", datastream("Filtered"))
    points = series(300)
    await load(client, stream, points)
    low, high = START + timedelta(minutes=95), START + timedelta(days=1, minutes=35)
    apply = (
        f"filter(phenomenonTime ge {iso(low)} and phenomenonTime lt {iso(high)} "
        "and Datastream/name eq 'Filtered')/"
        "aggregate(result with sum as total,result with min as lo,$count as n)"
    )
    row = (await get_ok(client, apply_path("Observations", apply)))["value"]
    kept = [v for t, v in points if low <= t < high]
    assert row == [{"total": row[0]["total"], "lo": min(kept), "n": len(kept)}]
    assert abs(row[0]["total"] - sum(kept)) < 1e-9


async def test_non_numeric_results_are_refused_but_counted(client: Any) -> None:
    await populate(client)
    stream = await create(client, "Datastreams", datastream("Status"))
    await load(client, stream, [(START, "open"), (START + timedelta(minutes=1), 2.0)])
    status, body = await get(client, apply_path(f"Datastreams({stream})/Observations", HOURLY))
    assert_error(status, body, 400, f"Datastream {stream}", "not a number")
    counted = await get_ok(
        client, apply_path(f"Datastreams({stream})/Observations", "aggregate($count as n)")
    )
    assert counted["value"] == [{"n": 2}]


async def test_bad_requests_name_the_problem(client: Any) -> None:
    await populate(client)
    cases = [
        ("Observations", "topcount(2,result)", "", "topcount"),
        ("Observations", "aggregate(result with median as m)", "", "median"),
        ("Observations", "aggregate(phenomenonTime with max as m)", "", "only result"),
        (
            "Observations",
            "compute(twinhub.bucket(phenomenonTime,'P1DT2H') as b)/groupby((b),aggregate($count as n))",
            "",
            "mixes",
        ),
        (
            "Observations",
            "compute(twinhub.bucket(phenomenonTime,'P1D','Mars/Olympus') as b)/"
            "groupby((b),aggregate($count as n))",
            "",
            "Mars/Olympus",
        ),
        (
            "Observations",
            "compute(twinhub.bucket(phenomenonTime,'P1D') as b)/aggregate($count as n)",
            "",
            "groupby((b)",
        ),
        ("Observations", "groupby((name),aggregate($count as n))", "", "name"),
        ("Observations", "aggregate($count as n,$count as n)", "", "twice"),
        ("Observations", "aggregate($count as n)", "&$filter=result gt 1", "filter(...)"),
        ("Things", "aggregate($count as n)", "", "Observation collections"),
        ("MultiDatastreams(1)/Observations", "aggregate($count as n)", "", "MultiDatastreams"),
        ("Observations", "aggregate($count as n", "", "end of input"),
    ]
    for prefix, apply, extra, mention in cases:
        status, body = await get(client, apply_path(prefix, apply, extra))
        assert_error(status, body, 400, mention)
    status, body = await get(client, apply_path("Datastreams(99)/Observations", "aggregate($count as n)"))
    assert_error(status, body, 404, "Datastreams(99)")


async def test_paging_count_and_next_link(client: Any) -> None:
    await populate(client)
    stream = await create(client, "Datastreams", datastream("Paged"))
    points = series(50)
    await load(client, stream, points)
    first = await get_ok(
        client, apply_path(f"Datastreams({stream})/Observations", HOURLY, "&$top=3&$count=true")
    )
    hours = len(expected_groups(points, lambda t: t.replace(minute=0)))
    assert first["@iot.count"] == hours
    seen = [row["hour"] for row in first["value"]]
    link = first["@iot.nextLink"]
    while link:
        status, page = await follow(client, link)
        assert status == 200, page
        seen += [row["hour"] for row in page["value"]]
        link = page.get("@iot.nextLink")
    assert len(seen) == hours == len(set(seen))
    assert seen == sorted(seen)
    beyond = await get_ok(
        client, apply_path(f"Datastreams({stream})/Observations", HOURLY, "&$skip=1000&$count=true")
    )
    assert beyond["value"] == []
    assert beyond["@iot.count"] == hours


async def test_data_array_and_csv(client: Any) -> None:
    await populate(client)
    stream = await create(client, "Datastreams", datastream("Formats"))
    points = series(20)
    await load(client, stream, points)
    apply = (
        "compute(twinhub.bucket(phenomenonTime,'PT1H') as hour)/"
        "groupby((Datastream/@iot.id,hour),aggregate(result with max as hi,$count as n))"
    )
    prefix = f"Datastreams({stream})/Observations"
    as_json = (await get_ok(client, apply_path(prefix, apply)))["value"]
    data_array = (await get_ok(client, apply_path(prefix, apply, "&$resultFormat=dataArray")))["value"]
    assert len(data_array) == 1
    assert data_array[0]["components"] == ["Datastream/@iot.id", "hour", "hourEnd", "hi", "n"]
    assert data_array[0]["dataArray"] == [
        [r["Datastream"]["@iot.id"], r["hour"], r["hourEnd"], r["hi"], r["n"]] for r in as_json
    ]
    response = await client.get(f"/v1.1/{apply_path(prefix, apply, '&$resultFormat=CSV')}")
    assert response.status == 200
    assert response.content_type == "text/csv"
    lines = list(csv.reader(io.StringIO(await response.text())))
    assert lines[0] == ["Datastream/@iot.id", "hour", "hourEnd", "hi", "n"]
    assert [line[1] for line in lines[1:]] == [r["hour"] for r in as_json]
    assert [float(line[3]) for line in lines[1:]] == [r["hi"] for r in as_json]


async def test_cost_guard_refuses_raw_scans_beyond_the_limit(clean_db: str, settings: Any) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from hub.app import build_app

    small = settings.model_copy(update={"apply_max_rows": 30})
    async with TestClient(TestServer(build_app(small))) as client:
        await populate(client)
        stream = await create(client, "Datastreams", datastream("Guarded"))
        await load(client, stream, series(60, step_min=1))
        quarter = "compute(twinhub.bucket(phenomenonTime,'PT15M') as q)/groupby((q),aggregate($count as n))"
        status, body = await get(client, apply_path(f"Datastreams({stream})/Observations", quarter))
        assert_error(status, body, 400, "more than 30 rows")
        hourly = await get_ok(client, apply_path(f"Datastreams({stream})/Observations", HOURLY))
        assert sum(row["n"] for row in hourly["value"]) == 60  # two hour-rollup rows: under the limit


_FIRST = "(array_agg(id ORDER BY phenomenon_time_start, id) FILTER (WHERE result_number IS NOT NULL))[1]"
_LAST = (
    "(array_agg(id ORDER BY phenomenon_time_start DESC, id DESC) FILTER (WHERE result_number IS NOT NULL))[1]"
)


def rollup_check(table: str, width: str) -> str:
    """Rows in which the rollup table and the same aggregates computed from raw rows differ."""
    stored = f"SELECT datastream_id, bucket, n, n_numeric, total, min, max, first_id, last_id FROM {table}"
    raw = (
        f"SELECT datastream_id, date_bin('{width}', phenomenon_time_start, '2000-01-01Z'), count(*), "
        "count(result_number), sum(CASE WHEN result_number IS NOT NULL THEN result::numeric END), "
        "min(result_number), max(result_number), "
        f"{_FIRST}, {_LAST} FROM observations WHERE datastream_id IS NOT NULL GROUP BY 1, 2"
    )
    return f"SELECT count(*) FROM (({stored} EXCEPT {raw}) UNION ALL ({raw} EXCEPT {stored})) d"


async def rollups_match_raw(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        hours = await conn.fetchval(rollup_check("observation_rollups_hour", "1 hour"))
        days = await conn.fetchval(rollup_check("observation_rollups_day", "1 day"))
        return bool(hours == days == 0)
    finally:
        await conn.close()


async def test_rollups_follow_updates_deletes_and_cascades(client: Any, clean_db: str) -> None:
    graph = await populate(client)
    stream = await create(client, "Datastreams", datastream("Edited"))
    await load(client, stream, series(30))
    assert await rollups_match_raw(clean_db)
    edits: list[tuple[str, str, Json | None]] = [
        ("PATCH", "Observations(5)", {"result": 1000.0}),  # a new maximum
        ("PATCH", "Observations(6)", {"phenomenonTime": "2026-03-30T05:00:00Z"}),  # moves to another hour
        ("PATCH", "Observations(7)", {"result": "broken"}),  # no longer numeric
        ("DELETE", "Observations(8)", None),
        ("PATCH", "Observations(9)", {"Datastream": ref(graph.datastream)}),  # moves to another stream
    ]
    for method, path, body in edits:
        status, answer, _ = await send(client, method, path, body)
        assert status == 200, (method, path, answer)
        assert await rollups_match_raw(clean_db), (method, path)
    status, answer, _ = await send(client, "DELETE", "FeaturesOfInterest(1)")
    assert status == 200, answer
    assert await rollups_match_raw(clean_db)
    status, answer, _ = await send(client, "DELETE", f"Datastreams({stream})")
    assert status == 200, answer
    conn = await asyncpg.connect(clean_db)
    try:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM observation_rollups_day WHERE datastream_id = $1", stream
            )
            == 0
        )
    finally:
        await conn.close()


async def test_import_and_duplicate_removal_keep_rollups_exact(
    client: Any, clean_db: str, tmp_path: Any
) -> None:
    from hub.backfill.run import import_files
    from hub.store.maintenance import remove_duplicate_observations

    await populate(client)
    stream = await create(client, "Datastreams", datastream("Imported"))
    await load(client, stream, series(10))
    lines = ["datastream,phenomenonTime,result"]
    lines += [f"{stream},{iso(t)},{v}" for t, v in series(50, step_min=7)]  # overlaps the posted hours
    lines += [f"{stream},{iso(START)},{series(1)[0][1]}"]  # a duplicate of the first posted row
    csv_file = tmp_path / "late.csv"
    csv_file.write_text("\n".join(lines) + "\n")
    result = await import_files(clean_db, [csv_file], progress_out=io.StringIO())
    assert result.imported == 51, result
    assert await rollups_match_raw(clean_db)
    conn = await asyncpg.connect(clean_db)
    try:
        assert await remove_duplicate_observations(conn, stream) >= 1
    finally:
        await conn.close()
    assert await rollups_match_raw(clean_db)


async def test_rollups_have_their_own_retention(client: Any, clean_db: str) -> None:
    from hub.store.retention import RetentionPolicy, apply_retention

    await populate(client)
    stream = await create(client, "Datastreams", datastream("Old and new"))
    await load(client, stream, [(START, 1.0), (START + timedelta(days=40), 2.0)])
    conn = await asyncpg.connect(clean_db)
    try:
        now = START + timedelta(days=45)
        # Raw rows older than 30 days go; the rollups, kept 60 days, still answer for them.
        await apply_retention(conn, RetentionPolicy(default_days=30, rollup_days=60), now)
        assert await conn.fetchval("SELECT count(*) FROM observations WHERE datastream_id = $1", stream) == 1
        kept = await conn.fetchval(
            "SELECT sum(n) FROM observation_rollups_day WHERE datastream_id = $1", stream
        )
        assert kept == 2
        report = await apply_retention(conn, RetentionPolicy(default_days=30, rollup_days=30), now)
        assert report.rollup_rows == 2  # the old hour and the old day
        kept = await conn.fetchval(
            "SELECT sum(n) FROM observation_rollups_day WHERE datastream_id = $1", stream
        )
        assert kept == 1
    finally:
        await conn.close()
    daily = "compute(twinhub.bucket(phenomenonTime,'P1D') as d)/groupby((d),aggregate($count as n))"
    rows = (await get_ok(client, apply_path(f"Datastreams({stream})/Observations", daily)))["value"]
    assert [row["n"] for row in rows] == [1]


@pytest.mark.parametrize(
    "bad",
    [
        {"retention_days": 30, "rollup_retention_days": 10},
        {"rollup_retention_days": 10},  # Observations kept forever
        {"retention_days": 30, "retention_datasets": {"climate": 0}, "rollup_retention_days": 100},
    ],
)
def test_rollup_retention_must_cover_the_raw_retention(bad: dict[str, Any]) -> None:
    from hub.config import Settings

    assert Settings(retention_days=30, rollup_retention_days=3650).rollup_retention_days == 3650
    with pytest.raises(pydantic.ValidationError, match="rollup_retention_days"):
        Settings(**bad)


async def test_apply_inside_a_json_batch(client: Any) -> None:
    await populate(client)
    request = {
        "requests": [
            {"id": "a", "method": "get", "url": apply_path("Observations", "aggregate($count as n)")}
        ]
    }
    status, body, _ = await post(client, "$batch", request)
    assert status == 200, body
    assert body["responses"][0]["status"] == 200, body
    assert body["responses"][0]["body"]["value"] == [{"n": 2}]


async def test_migration_fills_rollups_from_rows_already_stored(new_database: Any, tmp_path: Any) -> None:
    import shutil

    from hub.store.migrate import MIGRATIONS_DIR, apply_migrations

    earlier = tmp_path / "migrations"
    earlier.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if path.name < "0007":
            shutil.copy(path, earlier / path.name)
    dsn = await new_database()
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn, directory=earlier)
        await conn.execute(
            """
            INSERT INTO things (name, description) VALUES ('t', 'd');
            INSERT INTO sensors (name, description, encoding_type, metadata)
                VALUES ('s', 'd', 'text/plain', '"m"');
            INSERT INTO observed_properties (name, definition, description) VALUES ('p', 'd', 'd');
            INSERT INTO datastreams (name, description, unit_of_measurement, observation_type, thing_id,
                                     sensor_id, observed_property_id) VALUES ('d', 'd', '{}', 'x', 1, 1, 1);
            INSERT INTO features_of_interest (name, description, encoding_type, feature)
                VALUES ('f', 'd', 'application/geo+json', '{"type": "Point", "coordinates": [10, 53.5]}');
            INSERT INTO observations (phenomenon_time_start, phenomenon_time_end, result, datastream_id,
                                      feature_of_interest_id)
            SELECT t, t, CASE WHEN g % 7 = 0 THEN '"text"'::jsonb ELSE to_jsonb(g % 13 - 6.5) END, 1, 1
            FROM (SELECT '2026-03-01Z'::timestamptz + g * interval '17 minutes' AS t, g
                  FROM generate_series(1, 500) g) s"""
        )
        assert await apply_migrations(conn)  # 0007 and later, on the rows already there
        assert await conn.fetchval("SELECT sum(n) FROM observation_rollups_day") == 500
    finally:
        await conn.close()
    assert await rollups_match_raw(dsn)
