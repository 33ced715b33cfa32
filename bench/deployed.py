# SPDX-License-Identifier: Apache-2.0
"""`make bench`: every figure of the hub as deployed, beside ceilings measured in the same run.

    .venv/bin/python -m bench.deployed [--quick] [--dsn postgresql://...] [--output FILE]

The hub is `twinhub serve` in a child process, started the way a user starts it: default
settings, only the database URL, the broker URL and the HTTP host and port given (loopback),
so the broker is connected, change notifications are on and the access log is on. The broker
is a private mosquitto on a free port (`max_queued_messages 0`: it never drops what it
acknowledged); the database is a fresh one on the given (local) PostgreSQL, dropped at the end.
Writes use an API key made with `twinhub keys create`, as a user would.

Ceilings, measured in the same run on the same machine: a raw COPY of the same rows, a naive
paho -> orjson -> COPY pipeline on the same broker, single-row INSERT + commit, and for every
read the SQL statements the hub's own compiler makes for it, run alone on one connection.
Every load loop is bounded in count and time. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import asyncpg
import orjson

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.core import Profiler  # noqa: E402
from bench.harness import (  # noqa: E402
    API,
    IDLE_TIMEOUT,
    PHASE_TIMEOUT,
    BenchError,
    Broker,
    Cpu,
    Serve,
    check_loopback,
    copy_rows,
    drop_database,
    fresh_database,
    iso,
    metric,
    naive_pipeline,
    process_cpu,
    publish,
    say,
)

DB_NAME = "twinhub_bench_deployed"
DROPPED = "twinhub_mqtt_notifications_dropped_total"
THINGS = 50  # x 2 Datastreams: the ingest streams, and the $expand shape


@dataclass(frozen=True)
class Sizes:
    """How much each phase does (full run or --quick)."""

    ingest: int
    big_rows: int
    post_seconds: float
    reads: int
    counts: int
    creates: int
    naive: int


FULL = Sizes(
    ingest=100_000, big_rows=1_000_000, post_seconds=8.0, reads=300, counts=15, creates=10, naive=100_000
)
QUICK = Sizes(ingest=30_000, big_rows=200_000, post_seconds=3.0, reads=100, counts=5, creates=4, naive=30_000)


@dataclass
class Row:
    """One line of the final table."""

    measure: str
    hub: str
    ceiling: str
    ratio: str
    target: str
    verdict: str
    note: str = ""


@dataclass
class Context:
    """What the phases share."""

    base: str
    dsn: str
    port: int
    key: str
    streams: list[int]
    big_stream: int
    feature: int
    sizes: Sizes
    hub_pid: int
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    broker_pid: int = 0

    def broker_cpu(self) -> float:
        """CPU seconds mosquitto has used so far (notifications cost the broker too)."""
        return process_cpu(self.broker_pid)

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key, "Content-Type": "application/json"}


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile q (0-100) of values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


# ---- entities ------------------------------------------------------------------------------------


def thing_body(index: int) -> dict[str, Any]:
    lon, lat = 9.9 + (index % 10) / 100, 53.5 + (index // 10) / 100
    return {
        "name": f"station {index}",
        "description": "bench station",
        "Locations": [
            {
                "name": f"site {index}",
                "description": "where it stands",
                "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [lon, lat]},
            }
        ],
        "Datastreams": [
            {
                "name": f"station {index} {quantity}",
                "description": quantity,
                "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                "unitOfMeasurement": {"name": "degree Celsius", "symbol": "degC", "definition": "ucum:Cel"},
                "Sensor": {"name": "s", "description": "d", "encodingType": "text/plain", "metadata": "m"},
                "ObservedProperty": {
                    "name": quantity,
                    "definition": f"urn:{quantity}",
                    "description": quantity,
                },
            }
            for quantity in ("temperature", "humidity")
        ],
    }


async def create_things(base: str, headers: dict[str, str]) -> list[int]:
    """50 Things x 2 Datastreams over HTTP; returns the Datastream ids."""
    streams: list[int] = []
    async with aiohttp.ClientSession(base, headers=headers) as session:
        for index in range(THINGS):
            async with session.post(f"{API}/Things", data=orjson.dumps(thing_body(index))) as resp:
                if resp.status != 201:
                    raise BenchError(f"creating a Thing: HTTP {resp.status} {await resp.text()}")
                thing = resp.headers["Location"]
            async with session.get(f"{thing}/Datastreams?$select=id&$orderby=id") as resp:
                streams += [d["@iot.id"] for d in (await resp.json())["value"]]
    return streams


async def first_feature(dsn: str) -> int:
    """A FeatureOfInterest the hub made (with a stream's first Observation)."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        feature = await conn.fetchval("SELECT id FROM features_of_interest ORDER BY id LIMIT 1")
    finally:
        await conn.close()
    if feature is None:
        raise BenchError("the hub made no FeatureOfInterest for the first Observations")
    return int(feature)


async def load_big_stream(dsn: str, stream: int, feature: int, rows: int) -> float:
    """`rows` Observations of one stream (100 ms apart from the month's start), set-based; VACUUM
    ANALYZE; extents refreshed by the hub's own function. Returns seconds taken."""
    from hub.store.observations import refresh_extents

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        began = time.monotonic()
        await conn.execute(
            """INSERT INTO observations (phenomenon_time_start, phenomenon_time_end, result,
                                         datastream_id, feature_of_interest_id)
               SELECT t, t, to_jsonb(g), $1, $2
               FROM (SELECT date_trunc('month', now()) + g * interval '100 milliseconds' AS t, g
                     FROM generate_series(1, $3::bigint) g) s""",
            stream,
            feature,
            rows,
        )
        await conn.execute("VACUUM (ANALYZE) observations")
        await refresh_extents(conn, "datastreams", [stream])
        return time.monotonic() - began
    finally:
        await conn.close()


# ---- ceilings ------------------------------------------------------------------------------------


def observation_rows(streams: Sequence[int], feature: int, n: int, start: datetime) -> list[tuple[Any, ...]]:
    return [
        (
            start + timedelta(milliseconds=i),
            start + timedelta(milliseconds=i),
            orjson.dumps(i).decode(),
            streams[i % len(streams)],
            feature,
        )
        for i in range(n)
    ]


async def raw_copy(dsn: str, streams: Sequence[int], feature: int, n: int) -> float:
    """COPY n observation rows, 10k per batch (deleted afterwards): the database's ceiling (rows/s)."""
    return await copy_rows(dsn, observation_rows(streams, feature, n, datetime.now(UTC)))


async def single_inserts(dsn: str, stream: int, feature: int, connections: int, seconds: float) -> float:
    """Single-row INSERT + commit per row on `connections` connections for `seconds`: rows/s."""
    conns = [await asyncpg.connect(dsn, timeout=10) for _ in range(connections)]
    done = 0
    deadline = time.monotonic() + seconds
    sql = (
        "INSERT INTO observations (phenomenon_time_start, phenomenon_time_end, result, datastream_id, "
        "feature_of_interest_id) VALUES (now(), now(), '1', $1, $2) RETURNING id"
    )

    async def loop(conn: asyncpg.Connection) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            await conn.fetchval(sql, stream, feature)
            done += 1

    began = time.monotonic()
    await asyncio.gather(*(loop(c) for c in conns))
    rate = done / (time.monotonic() - began)
    for conn in conns:
        await conn.close()
    return rate


def naive_ceiling(dsn: str, port: int, streams: list[int], feature: int, n: int) -> float:
    """The naive pipeline on topics the hub does not subscribe to (its rows deleted afterwards)."""
    return naive_pipeline(
        dsn, port, "naive/+/Observations", n, feature, publisher, (port, "naive", streams, 0, n)
    )


async def last_id(dsn: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM observations"))
    finally:
        await conn.close()


async def delete_after(dsn: str, first: int) -> None:
    """Remove the ceilings' rows (ids above `first`): the hub's figures are of its own rows."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute("DELETE FROM observations WHERE id > $1", first)
    finally:
        await conn.close()


# ---- MQTT publisher ------------------------------------------------------------------------------


def publisher(port: int, tree: str, streams: list[int], start: int, n: int, window: int = 1000) -> None:
    """Publish n STA Observations at QoS 1 on <tree>/Datastreams(id)/Observations over the streams
    (harness.publish: a plain socket, a window of `window` messages, the next after their PUBACKs)."""
    topics = [f"{tree}/Datastreams({s})/Observations".encode() for s in streams]

    def message(i: int) -> tuple[bytes, bytes]:
        body = orjson.dumps({"phenomenonTime": iso(datetime.now(UTC)), "result": i})
        return topics[i % len(topics)], body

    publish(port, f"bench-pub-{tree}-{start}", message, start, n, window=window, timeout=IDLE_TIMEOUT)


async def newest_id(conn: asyncpg.Connection) -> int:
    """The highest Observation id: one index probe, so polling it costs the database nothing."""
    return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM observations"))


async def count_since(conn: asyncpg.Connection, after_id: int, streams: Sequence[int]) -> int:
    """The Observations of `streams` with an id above `after_id` (a range of the primary key)."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM observations WHERE id > $1 AND datastream_id = ANY($2::bigint[])",
            after_id,
            list(streams),
        )
    )


async def hub_ingest(ctx: Context, n: int, publishers: int = 2) -> tuple[float, float, float, float, float]:
    """Publish n messages to the hub's create topics; wait for their commits.
    Returns (obs/s first publish -> last commit or last notification, whichever is later; hub and
    broker CPU µs per obs, notifications included; other CPU share; obs/s to the last commit)."""
    conn = await asyncpg.connect(ctx.dsn, timeout=10)
    cpu = Cpu(ctx.hub_pid)
    try:
        base = await newest_id(conn)
        mpc = mp.get_context("spawn")
        per = n // publishers
        pubs = [
            mpc.Process(target=publisher, args=(ctx.port, "v1.1", ctx.streams, k * per, per))
            for k in range(publishers)
        ]
        before = cpu.sample()
        broker_before = ctx.broker_cpu()
        began = last = time.monotonic()
        for pub in pubs:
            pub.start()
        # Progress is the newest id (one index probe per poll: counting the streams' rows, one of
        # them 1M long, every 200 ms took a quarter of a core from the database under test); the
        # rows are counted once the ids say they may all be there (ids have gaps, never repeats).
        want = per * publishers
        seen = 0
        progress = (0, 0)
        while seen < want:
            await asyncio.sleep(0.2)
            top = await newest_id(conn) - base
            seen = await count_since(conn, base, ctx.streams) if top >= want else 0
            if (top, seen) != progress:  # a commit landed: the newest id or the count moved
                progress, last = (top, seen), time.monotonic()
            if time.monotonic() - last > IDLE_TIMEOUT or time.monotonic() - began > PHASE_TIMEOUT:
                seen = await count_since(conn, base, ctx.streams)
                ctx.notes.append(f"ingest stopped waiting at {seen:,} of {want:,} Observations")
                break
        # The notifications of the last batches go out after their commit: count their CPU, and
        # the rate through the last of them if that is later than the last commit.
        quiet = await busy_until(ctx.hub_pid)
        after = cpu.sample()
        broker = ctx.broker_cpu() - broker_before
        for pub in pubs:
            pub.join(30)
        hub_cpu, other = Cpu.used(before, after)
        per_obs = 1e6 / max(seen, 1)
        return (
            seen / (max(last, quiet) - began),
            hub_cpu * per_obs,
            broker * per_obs,
            other / (time.monotonic() - began),
            seen / (last - began),
        )
    finally:
        await conn.close()


# ---- HTTP load -----------------------------------------------------------------------------------

Request = Callable[[int], tuple[str, str, bytes | None]]  # i -> (method, path, body)


@dataclass
class Load:
    ok: int
    errors: list[str]
    wall: float
    latencies: list[float]
    hub_cpu: float
    other_cpu: float
    broker_cpu: float

    @property
    def rate(self) -> float:
        return self.ok / self.wall if self.wall else 0.0


async def http_load(
    ctx: Context,
    request: Request,
    expected: int,
    concurrency: int,
    *,
    count: int | None = None,
    seconds: float | None = None,
) -> Load:
    """Requests from `concurrency` workers until `count` are sent or `seconds` passed (and never past
    PHASE_TIMEOUT); one keep-alive connection per worker."""
    latencies: list[float] = []
    errors: list[str] = []
    issued = 0
    cpu = Cpu(ctx.hub_pid)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        ctx.base, connector=connector, timeout=timeout, headers=ctx.headers
    ) as session:
        before = cpu.sample()
        broker_before = ctx.broker_cpu()
        began = time.perf_counter()
        deadline = began + min(seconds or PHASE_TIMEOUT, PHASE_TIMEOUT)

        async def worker() -> None:
            nonlocal issued
            while time.perf_counter() < deadline and (count is None or issued < count):
                method, path, body = request(issued)
                issued += 1
                t0 = time.perf_counter()
                try:
                    async with session.request(method, path, data=body) as resp:
                        payload = await resp.read()
                        status = resp.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                if status == expected:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors.append(f"HTTP {status}: {payload[:200]!r}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - began
        hub_cpu, other = Cpu.used(before, cpu.sample())
        broker = ctx.broker_cpu() - broker_before
    return Load(len(latencies), errors, wall, latencies, hub_cpu, other / wall, broker)


# ---- SQL ceilings of the reads --------------------------------------------------------------------


class _Recorder:
    """Stands in for the pool connection read_page gets; keeps every statement it runs."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        self.statements.append((sql, args))
        rows: list[Any] = await self.conn.fetch(sql, *args)
        return rows

    async def fetchval(self, sql: str, *args: Any) -> Any:
        self.statements.append((sql, args))
        return await self.conn.fetchval(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        self.statements.append((sql, args))
        return await self.conn.fetchrow(sql, *args)


async def sql_ceiling(dsn: str, target: str, repeats: int) -> tuple[float, int]:
    """p50 ms of the statements the hub's compiler makes for GET `target`, run alone on one
    connection (prepared, rows decoded by asyncpg, nothing rendered); and how many statements."""
    from multidict import MultiDict

    from hub.config import Settings
    from hub.query.filter import Dialect
    from hub.query.parse import parse_query
    from hub.query.path import parse_path
    from hub.query.plan import plan_expands, plan_selection
    from hub.store.pool import init_connection
    from hub.store.read import read_page

    settings = Settings.model_validate({})
    tail, _, text = target.removeprefix(API + "/").partition("?")
    path = parse_path(tail)
    query = parse_query(
        MultiDict(parse_qsl(text, keep_blank_values=True)), settings.default_top, settings.max_top
    )
    entity_type = path.target.entity_type
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await init_connection(conn)
        recorder = _Recorder(conn)
        await read_page(
            recorder,
            path,
            query,
            Dialect(postgis=False),
            plan_selection(entity_type, query.select),
            plan_expands(entity_type, query.expand, settings.default_top),
        )  # type: ignore[arg-type]
        statements = recorder.statements
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for sql, args in statements:
                await conn.fetch(sql, *args)
            times.append(time.perf_counter() - t0)
        return pct(times[len(times) // 5 :], 50) * 1000, len(statements)
    finally:
        await conn.close()


# ---- the phases ----------------------------------------------------------------------------------


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


async def phase_ingest(ctx: Context, naive: float, copy: float) -> None:
    echoes0 = await metric(ctx.base, "twinhub_ingest_echoes_total")
    rate, us_per_obs, broker_us, other, committed = await hub_ingest(ctx, ctx.sizes.ingest)
    echoes = await metric(ctx.base, "twinhub_ingest_echoes_total") - echoes0
    ctx.rows.append(
        Row(
            f"MQTT ingest, QoS 1 STA JSON, {len(ctx.streams)} streams ({ctx.sizes.ingest:,} msgs)",
            f"{rate:,.0f} obs/s",
            f"naive {naive:,.0f} obs/s; raw COPY {copy:,.0f}",
            f"{rate / naive:.0%}",
            ">= 20,000 and >= 100 % of naive",
            verdict(rate >= 20_000 and rate >= naive),
            f"committed {committed:,.0f} obs/s, notified {rate:,.0f} (the lower counts); hub CPU "
            f"{us_per_obs:.0f} µs/obs, broker {broker_us:.0f}, notifications included; echoes "
            f"{echoes:,.0f}; other CPU {other:.0%}",
        )
    )


async def phase_posts(ctx: Context, ceiling1: float, ceiling16: float) -> None:
    streams = ctx.streams

    def post(i: int) -> tuple[str, str, bytes | None]:
        body = orjson.dumps({"phenomenonTime": iso(datetime.now(UTC)), "result": i})
        return "POST", f"{API}/Datastreams({streams[i % len(streams)]})/Observations", body

    for concurrency, ceiling in ((1, ceiling1), (16, ceiling16)):
        await http_load(ctx, post, 201, concurrency, seconds=1.0)  # warm-up
        load = await http_load(ctx, post, 201, concurrency, seconds=ctx.sizes.post_seconds)
        target = ">= 2,500/s" if concurrency == 16 else "-"
        ctx.rows.append(
            Row(
                f"POST Observation, c={concurrency}",
                f"{load.rate:,.0f}/s (p50 {pct(load.latencies, 50) * 1000:.1f} ms)",
                f"INSERT+commit, {concurrency} conn: {ceiling:,.0f}/s",
                f"{load.rate / ceiling:.0%}",
                target,
                verdict(load.rate >= 2500) if concurrency == 16 else "",
                f"hub CPU {load.hub_cpu / max(load.ok, 1) * 1e6:.0f} µs/req, "
                f"broker {load.broker_cpu / max(load.ok, 1) * 1e6:.0f}; errors {len(load.errors)}; "
                f"other CPU {load.other_cpu:.0%}"
                + (f"; first error {load.errors[0]}" if load.errors else ""),
            )
        )


async def phase_create_observations(ctx: Context, copy: float) -> None:
    start = datetime.now(UTC) + timedelta(hours=1)
    rows = 10_000

    def create(i: int) -> tuple[str, str, bytes | None]:
        first = start + timedelta(seconds=i * rows)
        body = [
            {
                "Datastream": {"@iot.id": ctx.streams[i % len(ctx.streams)]},
                "components": ["phenomenonTime", "result"],
                "dataArray": [[iso(first + timedelta(seconds=k)), k] for k in range(rows)],
            }
        ]
        return "POST", f"{API}/CreateObservations", orjson.dumps(body)

    bodies = [create(i) for i in range(ctx.sizes.creates + 1)]
    await http_load(ctx, lambda i: bodies[-1], 201, 1, count=1)  # warm-up
    await settle(ctx, "creates")
    # The answers come before the notifications: the change feed publishes each stored row after
    # the commit. CPU is counted until the hub is quiet again, and the rate a client can keep up
    # is the lower of the two: answered rows/s, and rows/s until the last notification went out.
    cpu = Cpu(ctx.hub_pid)
    before, broker_before, began = cpu.sample(), ctx.broker_cpu(), time.monotonic()
    load = await http_load(ctx, lambda i: bodies[i], 201, 1, count=ctx.sizes.creates)
    quiet = await busy_until(ctx.hub_pid)
    hub_cpu = cpu.sample()[0] - before[0]
    broker = ctx.broker_cpu() - broker_before
    stored = max(load.ok * rows, 1)
    answered = load.rate * rows
    announced = load.ok * rows / max(quiet - began, 1e-9)
    rate = min(answered, announced)
    ctx.rows.append(
        Row(
            "CreateObservations, dataArray 10,000 rows/request",
            f"{rate:,.0f} obs/s",
            f"raw COPY 10k/batch {copy:,.0f} rows/s",
            f"{rate / copy:.0%}",
            ">= 50,000 obs/s",
            verdict(rate >= 50_000),
            f"{ctx.sizes.creates} requests; answered {answered:,.0f} obs/s, notified {announced:,.0f} obs/s "
            f"(the lower counts); hub CPU {hub_cpu / stored * 1e6:.0f} µs/obs, broker "
            f"{broker / stored * 1e6:.0f}, notifications included; errors {len(load.errors)}"
            + (f"; first error {load.errors[0]}" if load.errors else ""),
        )
    )


async def busy_until(
    pid: int, step: float = 0.05, idle: float = 0.05, calm: int = 4, limit: float = 60.0
) -> float:
    """Wait until the process has used under `idle` of a core for `calm` steps in a row; the
    time.monotonic() its last busy step ended (the change feed's last notification, within a step)."""
    import psutil

    proc = psutil.Process(pid)
    last_busy = began = time.monotonic()
    quiet = 0
    used = sum(proc.cpu_times()[:2])
    while quiet < calm and time.monotonic() - began < limit:
        await asyncio.sleep(step)
        now_used = sum(proc.cpu_times()[:2])
        if now_used - used >= idle * step:
            last_busy, quiet = time.monotonic(), 0
        else:
            quiet += 1
        used = now_used
    return last_busy


async def read_row(
    ctx: Context, name: str, target: str, repeats: int, goal_ms: float | None, note: str = ""
) -> None:
    load = await http_load(
        ctx, lambda i: ("GET", target, None), 200, 1, count=max(5, repeats // 10)
    )  # warm-up
    load = await http_load(ctx, lambda i: ("GET", target, None), 200, 1, count=repeats)
    sql_ms, statements = await sql_ceiling(ctx.dsn, target, repeats)
    p50 = pct(load.latencies, 50) * 1000
    ctx.rows.append(
        Row(
            name,
            f"p50 {p50:.2f} ms, p95 {pct(load.latencies, 95) * 1000:.2f}",
            f"SQL p50 {sql_ms:.2f} ms ({statements} stmt)",
            f"{sql_ms / p50:.0%}" if p50 else "",
            f"<= {goal_ms:g} ms" if goal_ms else "keep",
            verdict(p50 <= goal_ms) if goal_ms else "",
            f"{repeats} requests, c=1; hub CPU {load.hub_cpu / max(load.ok, 1) * 1e6:.0f} µs/req; "
            f"other CPU {load.other_cpu:.0%}; errors {len(load.errors)}"
            + (f"; {note}" if note else "")
            + (f"; first error {load.errors[0]}" if load.errors else ""),
        )
    )


async def phase_reads(ctx: Context) -> None:
    sizes = ctx.sizes
    big = f"{API}/Datastreams({ctx.big_stream})/Observations"
    await read_row(
        ctx,
        f"top 100 desc of a {sizes.big_rows:,}-row stream",
        f"{big}?$top=100&$orderby=phenomenonTime desc",
        sizes.reads,
        2.0,
    )
    latest = "Observations($orderby=phenomenonTime desc;$top=1)"
    expand = f"{API}/Things?$expand=Locations,Datastreams($expand={latest})"
    await read_row(ctx, f"{THINGS} Things x 2 Datastreams, $expand latest", expand, sizes.reads, 10.0)
    link = f"{big}?$top=1000"
    async with aiohttp.ClientSession(ctx.base, headers=ctx.headers) as session:
        for _ in range(49):
            async with session.get(link) as resp:
                link = (await resp.json())["@iot.nextLink"]
    page50 = link[link.index(API) :]
    await read_row(ctx, "page 50 via nextLinks, $top=1000", page50, sizes.reads // 2, 10.0)
    total = await _count_all(ctx.dsn)
    await read_row(
        ctx,
        f"Observations?$count=true, {total:,} rows",
        f"{API}/Observations?$count=true",
        sizes.counts,
        None,
        "count_mode exact (default); estimate: instant",
    )


async def _count_all(dsn: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM observations"))
    finally:
        await conn.close()


async def settle(ctx: Context, name: str, idle: float = 0.05, limit: float = 60.0) -> None:
    """Wait until the hub is idle (under 5 % of a core for half a second): notifications of the
    previous phase may still be going out, and their CPU would be charged to this one."""
    import psutil

    hub = psutil.Process(ctx.hub_pid)
    began = time.monotonic()
    while time.monotonic() - began < limit:
        before = sum(hub.cpu_times()[:2])
        await asyncio.sleep(0.5)
        if sum(hub.cpu_times()[:2]) - before < idle * 0.5:
            return
    ctx.notes.append(f"{name}: the hub was still busy {limit:.0f} s after the previous phase")


async def profiled(ctx: Context, where: Path | None, name: str, phase: Callable[[], Awaitable[None]]) -> None:
    """Run a phase, under py-spy (raw stacks to where/<name>.txt, a summary in the notes) if asked;
    note the change notifications the hub dropped meanwhile (a full queue drops the oldest)."""
    await settle(ctx, name)
    dropped = await metric(ctx.base, DROPPED)
    try:
        await _profiled(ctx, where, name, phase)
    finally:
        dropped = await metric(ctx.base, DROPPED) - dropped
        ctx.notes.append(f"{name}: {dropped:,.0f} change notifications dropped by the hub")


async def _profiled(
    ctx: Context, where: Path | None, name: str, phase: Callable[[], Awaitable[None]]
) -> None:
    if where is None:
        await phase()
        return
    executable = Profiler.find()
    if executable is None:
        raise BenchError("--profile needs py-spy (pip install py-spy)")
    os.makedirs(where, exist_ok=True)
    profiler = Profiler(executable, ctx.hub_pid, where / f"{name}.txt")
    await profiler.start()
    try:
        await phase()
    finally:
        ctx.notes.append(f"profile of {name} (py-spy, hub process):\n{await profiler.stop()}")


# ---- the run -------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, tmp: Path) -> str:
    sizes = QUICK if args.quick else FULL
    check_loopback(args.dsn)
    started = time.monotonic()
    load_before = os.getloadavg()
    broker = Broker(tmp)
    hub: Serve | None = None
    log = tmp / "hub.log"
    try:
        dsn = await fresh_database(args.dsn, args.database)
        hub = Serve(dsn, broker.url, tmp, log)
        say("starting twinhub serve (default settings) ...")
        await hub.start()
        key = hub.make_key()
        headers = {"X-API-Key": key, "Content-Type": "application/json"}
        streams = await create_things(hub.base, headers)
        ctx = Context(
            hub.base, dsn, broker.port, key, streams, streams[0], 0, sizes, hub.pid, broker_pid=broker.pid
        )
        # One Observation per stream first: the hub makes each stream's FeatureOfInterest then.
        await hub_ingest(ctx, len(streams), publishers=1)
        ctx.feature = await first_feature(dsn)
        say("ceilings: raw COPY, naive pipeline, single-row INSERTs ...")
        first = await last_id(dsn)
        copy = await raw_copy(dsn, streams, ctx.feature, sizes.naive)
        naive = naive_ceiling(dsn, broker.port, streams, ctx.feature, sizes.naive)
        insert1 = await single_inserts(dsn, streams[1], ctx.feature, 1, 2.0)
        insert16 = await single_inserts(dsn, streams[1], ctx.feature, 16, 2.0)
        await delete_after(dsn, first)
        say(f"loading {sizes.big_rows:,} rows into Datastream {ctx.big_stream} ...")
        seconds = await load_big_stream(dsn, ctx.big_stream, ctx.feature, sizes.big_rows)
        ctx.notes.append(
            f"{sizes.big_rows:,}-row stream loaded set-based in {seconds:.1f} s (with VACUUM ANALYZE)"
        )
        phases: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("ingest", lambda: phase_ingest(ctx, naive, copy)),
            ("posts", lambda: phase_posts(ctx, insert1, insert16)),
            ("creates", lambda: phase_create_observations(ctx, copy)),
            ("reads", lambda: phase_reads(ctx)),
        ]
        for name, phase in phases:
            if args.only and name not in args.only:
                continue
            say(f"hub: {name} ...")
            await profiled(ctx, args.profile, name, phase)
        if args.tuned:
            hub.stop()
            tuned = dict(item.split("=", 1) for item in args.tuned)
            say(f"tuned hub ({', '.join(args.tuned)}): write phases again ...")
            hub = Serve(dsn, broker.url, tmp, log, port=hub.port, extra=tuned)
            await hub.start()
            ctx.hub_pid = hub.pid
            for name, phase in phases[:3]:
                if args.only and name not in args.only:
                    continue
                first = len(ctx.rows)
                await profiled(ctx, args.profile, f"{name}-tuned", phase)
                for row in ctx.rows[first:]:
                    row.measure += f" [tuned: {', '.join(args.tuned)}]"
    finally:
        if hub is not None:
            hub.stop()
        broker.stop()
        if not args.keep:
            await drop_database(args.dsn, args.database)
        if args.hub_log and log.exists():
            shutil.copyfile(log, args.hub_log)
    ctx.notes += log_warnings(log)
    return render(ctx, args, time.monotonic() - started, load_before)


def log_warnings(log: Path, shown: int = 5) -> list[str]:
    """The hub's warnings and errors (reconnects, dropped notifications), counted, the first quoted."""
    if not log.exists():
        return []
    lines = [
        line
        for line in log.read_text(errors="replace").splitlines()
        if " WARNING " in line or " ERROR " in line
    ]
    return [f"hub log: {len(lines)} warning/error lines", *(f"  `{line[:300]}`" for line in lines[:shown])]


def render(ctx: Context, args: argparse.Namespace, elapsed: float, load_before: tuple[float, ...]) -> str:
    load_after = os.getloadavg()
    lines = [
        f"# twinhub as deployed ({'quick' if args.quick else 'full'} run), "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "`twinhub serve`, default settings (only database URL, broker URL, HTTP host 127.0.0.1 and "
        "port given): "
        f"broker connected, notifications on, access log on. {os.cpu_count()} CPUs; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after; {elapsed:.0f} s in all. Private mosquitto "
        "(max_queued_messages 0), fresh database. Ceilings measured in this run on this machine.",
        "",
        "| measure | as deployed | ceiling (same run) | of ceiling | target | verdict | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.measure} | {r.hub} | {r.ceiling} | {r.ratio} | {r.target} | {r.verdict} | {r.note} |"
        for r in ctx.rows
    ]
    lines += [""] + [f"- {note}" for note in ctx.notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (~2 min): fewer rows and requests")
    parser.add_argument(
        "--dsn",
        default=os.environ.get("TWINHUB_BENCH_DSN")
        or os.environ.get("TWINHUB_TEST_DSN")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
        help="maintenance database of a local PostgreSQL; the bench makes and drops its own",
    )
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--database",
        default=DB_NAME,
        help=f"name of the bench's database (default {DB_NAME}); give runs side by side names of their own",
    )
    parser.add_argument("--hub-log", type=Path, help="copy the hub's log (access log included) here")
    parser.add_argument("--profile", type=Path, help="py-spy each hub phase; raw stacks into this directory")
    parser.add_argument(
        "--tuned",
        action="append",
        metavar="TWINHUB_X=VALUE",
        help="after the default run, restart the hub with this setting (repeatable); measure writes again",
    )
    parser.add_argument(
        "--only", type=lambda text: text.split(","), help="comma-separated phases: ingest,posts,creates,reads"
    )
    args = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="twinhub-bench-") as tmp:
            report = asyncio.run(run(args, Path(tmp)))
    except BenchError as exc:
        say(f"bench: {exc}")
        return 1
    print(report)
    if args.output:
        args.output.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
