# SPDX-License-Identifier: Apache-2.0
"""Aggregates ($apply, docs/aggregates.md) against `twinhub serve` as a user starts it.

    .venv/bin/python bench/aggregates.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
        [--requests 40] [--dense-streams 1] [--keep]

1. Creates the database `twinhub_bench_agg` (dropping a leftover), starts `twinhub serve` in a
   child process as bench/harness.py does for every bench (default settings but the access log
   off and anonymous writes; migrations on start; a private mosquitto when one is installed), and
   creates one Thing with ten Datastreams over HTTP.
2. Loads one year of one-minute data (525,600 rows) into `--dense-streams` Datastreams and one
   year of 15-minute data into the others (the ten-stream query reads daily rollups, whose size
   does not depend on the raw density), then builds their rollups with hub.store.rollups.recompute.
3. Times each issue target over HTTP (`--requests` sequential requests after 3 warm-ups; client
   latency to the last body byte) and, in the same run, two ceilings: the hub's own SQL for the
   request run directly on one asyncpg connection, and the plain aggregate over the raw rows.
4. Ingest: the batch INSERT statement of the ingest writer (1,000 rows per batch, one
   transaction each) with the rollup CTEs and without them, alternating batch by batch on one
   connection (median rows/s of each); and HTTP CreateObservations with rollups, 1,000 rows per POST.
Prints a markdown report.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    API,
    BenchError,
    Broker,
    Serve,
    check_loopback,
    drop_database,
    fresh_database,
    iso,
    mosquitto,
)
from hub.store import observations, rollups

DB = "twinhub_bench_agg"
# The settings this bench has always run the hub with beside the defaults: no access log (WARNING),
# anonymous writes (it creates its Thing and Observations without a key).
SETTINGS = {"TWINHUB_LOG_LEVEL": "WARNING", "TWINHUB_AUTH_ANONYMOUS_WRITE": "true"}
YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
MINUTES_PER_YEAR = 525_600
TARGETS = {  # name -> p50 target in ms
    "daily mean/min/max, 1 stream, 1 year (365 rows)": 20,
    "hourly mean/min/max, 1 stream, 30 days (720 rows)": 20,
    "15-minute mean/min/max, 1 stream, 1 day, raw (96 rows)": 10,
    "daily mean/min/max, 10 streams, 1 year (3,650 rows)": 50,
}


def apply_query(bucket: str, low: datetime, high: datetime, where: str = "", by_stream: bool = False) -> str:
    """An $apply value: mean/min/max per bucket between low and high."""
    group = "Datastream/@iot.id,b" if by_stream else "b"
    return (
        f"filter({where}phenomenonTime ge {iso(low)} and phenomenonTime lt {iso(high)})"
        f"/compute(twinhub.bucket(phenomenonTime,'{bucket}') as b)/groupby(({group}),aggregate("
        "result with average as mean,result with min as lo,result with max as hi))"
    )


RAW_SQL = """
SELECT {by} date_bin($4::interval, phenomenon_time_start, '2000-01-03Z') AS b,
       avg(result_number), min(result_number), max(result_number)
FROM observations WHERE datastream_id = ANY($1::bigint[]) AND phenomenon_time_start >= $2
  AND phenomenon_time_start < $3 GROUP BY {group} ORDER BY {group}"""


async def make_thing(session: aiohttp.ClientSession, base: str, streams: int) -> tuple[int, list[int]]:
    unit = {"name": "degree Celsius", "symbol": "°C", "definition": "ucum:Cel"}
    body = {
        "name": "Bench station",
        "description": "aggregates benchmark",
        "Locations": [{"name": "here", "description": "-", "encodingType": "application/geo+json",
                       "location": {"type": "Point", "coordinates": [10.0, 53.55]}}],
        "Datastreams": [
            {"name": f"stream {i}", "description": "-", "unitOfMeasurement": unit,
             "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
             "Sensor": {"name": "s", "description": "-", "encodingType": "text/plain", "metadata": "-"},
             "ObservedProperty": {"name": f"p{i}", "definition": "-", "description": "-"}}
            for i in range(streams)
        ],
    }  # fmt: skip
    async with session.post(f"{base}/Things", json=body) as response:
        assert response.status == 201, await response.text()
        thing = int(response.headers["Location"].rsplit("(", 1)[1].rstrip(")"))
    async with session.get(f"{base}/Things({thing})/Datastreams?$select=id&$orderby=id") as response:
        ids = [d["@iot.id"] for d in (await response.json())["value"]]
    return thing, ids


async def load(dsn: str, streams: list[int], dense: int) -> float:
    """A year per stream (one-minute for the first `dense`, else 15-minute), then its rollups; seconds."""
    conn = await asyncpg.connect(dsn)
    t0 = time.perf_counter()
    try:
        feature = await conn.fetchval("SELECT id FROM features_of_interest LIMIT 1")
        if feature is None:  # made from the Location on the first Observation, as the hub does
            feature = (await observations.features_for_streams(conn, "datastreams", streams[:1]))[streams[0]]
        await conn.execute("SELECT twinhub_ensure_observation_partitions($1, $2, 'month')", YEAR_START,
                           YEAR_START + timedelta(days=400))  # fmt: skip
        for i, stream in enumerate(streams):
            step = 1 if i < dense else 15
            await conn.execute(
                """INSERT INTO observations (phenomenon_time_start, phenomenon_time_end, result,
                                             datastream_id, feature_of_interest_id)
                   SELECT t, t, to_jsonb(round((10 + 8 * sin(g / 9000.0) + random())::numeric, 2)), $1, $2
                   FROM (SELECT $3::timestamptz + g * ($4 * interval '1 minute') AS t, g
                         FROM generate_series(0, $5::int - 1) g) s""",
                stream, feature, YEAR_START, step, MINUTES_PER_YEAR // step,
            )  # fmt: skip
            hours = [YEAR_START + timedelta(hours=h) for h in range(366 * 24)]
            await rollups.recompute(conn, [(stream, h) for h in hours])
        await conn.execute("VACUUM (ANALYZE) observations")
        await conn.execute(f"VACUUM (ANALYZE) {rollups.HOUR_TABLE}")
        await conn.execute(f"VACUUM (ANALYZE) {rollups.DAY_TABLE}")
        await observations.refresh_extents(conn, "datastreams", streams)
    finally:
        await conn.close()
    return time.perf_counter() - t0


async def timed(call: Callable[[], Awaitable[Any]], requests: int) -> list[float]:
    for _ in range(3):
        await call()
    samples = []
    for _ in range(requests):
        t0 = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def p(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1] if len(samples) > 1 else samples[0]


async def hub_sql(conn: asyncpg.Connection, path: str, apply: str, top: int) -> tuple[str, tuple[Any, ...]]:
    """The statement the hub runs for the request (compiled the same way)."""
    from hub.query.apply_parse import parse_apply
    from hub.query.apply_plan import plan_apply
    from hub.query.apply_sql import compile_apply
    from hub.query.filter import Dialect
    from hub.query.path import parse_path

    compiled = compile_apply(
        plan_apply(parse_apply(apply)), parse_path(path), Dialect(False), top, 0, 500_000
    )
    return compiled.sql.text, compiled.sql.args


async def queries(base: str, dsn: str, thing: int, streams: list[int], requests: int) -> list[list[str]]:
    end = YEAR_START + timedelta(days=365)
    one = f"Datastreams({streams[0]})/Observations"
    names = list(TARGETS)
    last_30_days, last_day = end - timedelta(days=30), end - timedelta(days=1)
    by_thing = f"Datastream/Thing/@iot.id eq {thing} and "
    berlin = apply_query("P1D", YEAR_START, end).replace("'P1D'", "'P1D','Europe/Berlin'")
    cases = [
        (names[0], one, apply_query("P1D", YEAR_START, end), [streams[0]], "1 day", 365),
        (names[1], one, apply_query("PT1H", last_30_days, end), [streams[0]], "1 hour", 720),
        (names[2], one, apply_query("PT15M", last_day, end), [streams[0]], "15 minutes", 96),
        (
            names[3],
            "Observations",
            apply_query("P1D", YEAR_START, end, by_thing, True),
            streams,
            "1 day",
            3650,
        ),
        ("daily, Europe/Berlin days, 1 stream, 1 year (hour rollup)", one, berlin, [streams[0]], None, 366),
    ]
    rows = []
    conn = await asyncpg.connect(dsn)
    try:
        async with aiohttp.ClientSession() as session:
            for name, path, apply, ids, width, expected in cases:
                url = f"{base}/{path}?$apply={quote(apply, safe='(),/$@')}&$top=4000"

                async def get(url: str = url, expected: int = expected) -> None:
                    async with session.get(url) as response:
                        body = await response.json()
                        assert response.status == 200, body
                        assert len(body["value"]) == expected, (len(body["value"]), expected)

                http = await timed(get, requests)
                sql, args = await hub_sql(conn, path, apply, 4000)
                own = await timed(lambda sql=sql, args=args: conn.fetch(sql, *args), requests)
                raw: list[float] = []
                if width is not None:
                    by = "datastream_id," if len(ids) > 1 else ""
                    group = "datastream_id, b" if len(ids) > 1 else "b"
                    text = RAW_SQL.format(by=by, group=group)
                    low = end - {"1 day": timedelta(days=365), "1 hour": timedelta(days=30)}.get(
                        width, timedelta(days=1)
                    )
                    args2 = (ids, low, end, {"1 day": timedelta(days=1), "1 hour": timedelta(hours=1)}.get(
                        width, timedelta(minutes=15)))  # fmt: skip
                    raw = await timed(
                        lambda text=text, args2=args2: conn.fetch(text, *args2), max(5, requests // 4)
                    )
                target = TARGETS.get(name)
                rows.append([
                    name, f"{p(http, 50):.1f}", f"{p(http, 95):.1f}", f"≤ {target}" if target else "-",
                    f"{p(own, 50):.2f}", f"{p(raw, 50):.1f}" if raw else "-",
                ])  # fmt: skip
        async with aiohttp.ClientSession() as session:
            floor = f"{base}/Datastreams({streams[0]})?$select=id"

            async def tiny() -> None:
                async with session.get(floor) as response:
                    assert response.status == 200
                    await response.read()

            http = await timed(tiny, requests)
            name = "HTTP floor of the same hub: GET Datastreams(id)?$select=id"
            rows.append([name, f"{p(http, 50):.1f}", f"{p(http, 95):.1f}", "-", "-", "-"])
    finally:
        await conn.close()
    return rows


async def ingest(base: str, dsn: str, stream: int, rounds: int, batch: int = 1000) -> list[list[str]]:
    """Rows/s of the ingest statement with and without the rollup CTEs, A/B alternating; and HTTP."""
    with_rollups = observations.INSERT_SQL
    without = with_rollups.replace(rollups.insert_ctes("o"), "")
    assert without != with_rollups
    conn = await asyncpg.connect(dsn)
    feature = await conn.fetchval("SELECT id FROM features_of_interest LIMIT 1")
    start = YEAR_START + timedelta(days=366)
    figures: dict[str, list[float]] = {"with rollups": [], "without rollups": []}
    counter = 0
    try:
        # Paired batch by batch, so that the other load of a shared machine hits both alike.
        for _ in range(rounds * 20):
            for label, sql in (("with rollups", with_rollups), ("without rollups", without)):
                times = [start + timedelta(seconds=counter + i) for i in range(batch)]
                counter += batch
                rows = [observations.ObservationRow(t, t, 20.5, feature, datastream_id=stream) for t in times]
                observations.INSERT_SQL = sql  # the statement insert_observations runs
                t0 = time.perf_counter()
                async with conn.transaction():
                    await observations.insert_observations(conn, rows)
                figures[label].append(batch / (time.perf_counter() - t0))
    finally:
        observations.INSERT_SQL = with_rollups
        await conn.close()
    http: list[float] = []
    async with aiohttp.ClientSession() as session:
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(5):
                points = [[iso(start + timedelta(seconds=counter + i)), 21.0] for i in range(batch)]
                counter += batch
                body = [{"Datastream": {"@iot.id": stream}, "components": ["phenomenonTime", "result"],
                         "dataArray": points}]  # fmt: skip
                async with session.post(f"{base}/CreateObservations", json=body) as response:
                    assert response.status == 201, await response.text()
            http.append(5 * batch / (time.perf_counter() - t0))
    med = {k: statistics.median(v) for k, v in figures.items()}
    ratio = med["with rollups"] / med["without rollups"] * 100
    return [
        [
            "ingest statement, 1,000-row batches, with rollups (paired)",
            f"{med['with rollups']:,.0f}",
            f"{ratio:.0f} % (≥ 90)",
        ],
        ["ingest statement, 1,000-row batches, without rollups", f"{med['without rollups']:,.0f}", "100 %"],
        [
            "HTTP CreateObservations, 1,000 rows per POST (with rollups)",
            f"{statistics.median(http):,.0f}",
            "-",
        ],
    ]


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dsn", default=os.environ.get("TWINHUB_BENCH_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--dense-streams", type=int, default=1)
    parser.add_argument("--ingest-rounds", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    try:
        check_loopback(args.dsn)
        with tempfile.TemporaryDirectory(prefix="twinhub-bench-agg-") as tmp:
            report = await run(args, Path(tmp))
    except BenchError as exc:
        raise SystemExit(f"bench: {exc}") from None
    print(report)


async def run(args: argparse.Namespace, home: Path) -> str:
    """Every phase against one hub on a fresh database; the report."""
    broker = Broker(home) if mosquitto() else None
    hub: Serve | None = None
    try:
        dsn = await fresh_database(args.dsn, DB)
        hub = Serve(dsn, broker.url if broker else None, home, home / "hub.log", extra=SETTINGS)
        await hub.start()
        base = f"{hub.base}{API}"
        async with aiohttp.ClientSession() as session:
            thing, streams = await make_thing(session, base, 10)
        loaded = await load(dsn, streams, args.dense_streams)
        load_avg = os.getloadavg()
        rows = await queries(base, dsn, thing, streams, args.requests)
        ingest_rows = await ingest(base, dsn, streams[-1], args.ingest_rounds)
    finally:
        if hub is not None:
            hub.stop()
        if broker is not None:
            broker.stop()
        if not args.keep:
            await drop_database(args.dsn, DB)
    broker_state = "connected" if broker else "not found"
    intro = (
        f"`twinhub serve` (defaults, broker {broker_state}), {args.dense_streams} stream(s) of one-minute "
        f"data and {10 - args.dense_streams} of 15-minute data for 2025, loaded with rollups in "
        f"{loaded:.0f} s; load average {load_avg[0]:.1f} (a shared 2-core machine: noisy, compare with "
        "the ceilings of the same run)."
    )
    header = ["request", "HTTP p50 ms", "HTTP p95 ms", "target p50", "hub's SQL p50 ms", "raw SQL p50 ms"]
    return "\n".join(
        [
            f"# Aggregates benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            intro,
            "",
            table(header, rows),
            "",
            table(["ingest", "rows/s (median)", "relative"], ingest_rows),
        ]
    )


if __name__ == "__main__":
    asyncio.run(main())
