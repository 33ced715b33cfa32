# SPDX-License-Identifier: Apache-2.0
"""What the viewer's chart requests cost: one year of per-minute Observations in one Datastream.

Loads 525,600 Observations (one per minute for a year, ending now) into its own database
`twinhub_bench_viewer`, starts the hub in a separate process, and times the requests the viewer
makes (viewer/src/sta.js) against downloading the same range raw page by page, the way a naive
client would. Every answer is checked (rows, buckets) so that a failed request cannot look fast.

    .venv/bin/python -m bench.viewer [--dsn postgresql://postgres@127.0.0.1:5432/postgres] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import asyncpg
import orjson

from bench import core
from bench.core import BenchError, Hub, say

DB_NAME = "twinhub_bench_viewer"
ROWS = 365 * 24 * 60  # one per minute for a year
BUCKETS = 150  # as viewer/src/sta.js
RAW_LIMIT = 3000  # as viewer/src/sta.js

_LOAD_SQL = """
INSERT INTO observations (phenomenon_time_start, phenomenon_time_end, result,
                          datastream_id, feature_of_interest_id)
SELECT t, t, to_jsonb(round((10 + 8 * sin(g / 229.18) + random())::numeric, 2)), $1, $2
FROM (SELECT $3::timestamptz + g * interval '1 minute' AS t, g FROM generate_series(0, $4::bigint - 1) g) s
"""


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _query(params: dict[str, object]) -> str:
    return "&".join(f"{name}={quote(str(value), safe='')}" for name, value in params.items())


def _in_range(start: datetime, end: datetime) -> str:
    return f"phenomenonTime ge {_iso(start)} and phenomenonTime lt {_iso(end)}"


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[dict[str, object], int]:
    async with session.get(url) as response:
        body = await response.read()
        if response.status != 200:
            raise BenchError(f"GET {url}: {response.status} {body[:200]!r}")
    return orjson.loads(body), len(body)


async def raw_pages(
    session: aiohttp.ClientSession, sta: str, stream: int, start: datetime, end: datetime
) -> tuple[int, int]:
    """Every Observation of the range, 10,000 per page (the naive client); (rows, bytes)."""
    params = {"$filter": _in_range(start, end), "$select": "phenomenonTime,result", "$top": 10000}
    url: str | None = f"{sta}/Datastreams({stream})/Observations?{_query(params)}"
    rows = size = 0
    while url:
        page, length = await _get(session, url)
        rows += len(page["value"])  # type: ignore[arg-type]
        size += length
        url = page.get("@iot.nextLink")  # type: ignore[assignment]
    return rows, size


async def viewer_series(
    session: aiohttp.ClientSession, sta: str, stream: int, start: datetime, end: datetime
) -> tuple[int, int]:
    """The viewer's way: count probe, then dataArray (few) or one $batch of min/max per bucket (many)."""
    path = f"Datastreams({stream})/Observations"
    probe, size = await _get(
        session, f"{sta}/{path}?{_query({'$filter': _in_range(start, end), '$count': 'true', '$top': 0})}"
    )
    count = int(probe["@iot.count"])  # type: ignore[call-overload]
    if count <= RAW_LIMIT:
        params = {
            "$filter": _in_range(start, end),
            "$orderby": "phenomenonTime asc",
            "$select": "phenomenonTime,result",
            "$resultFormat": "dataArray",
            "$top": RAW_LIMIT,
        }
        page, length = await _get(session, f"{sta}/{path}?{_query(params)}")
        rows = len(page["value"][0]["dataArray"]) if page["value"] else 0  # type: ignore[index]
        if rows != count:
            raise BenchError(f"dataArray: {rows} rows, the count said {count}")
        return rows, size + length
    width = (end - start) / BUCKETS
    requests = []
    for i in range(BUCKETS):
        a, b = start + i * width, start + (i + 1) * width
        for order in ("asc", "desc"):
            params = {
                "$filter": f"{_in_range(a, b)} and result ne null",
                "$orderby": f"result {order}",
                "$select": "result",
                "$top": 1,
            }
            requests.append({"id": f"{i}-{order}", "method": "get", "url": f"{path}?{_query(params)}"})
    async with session.post(
        f"{sta}/$batch",
        data=orjson.dumps({"requests": requests}),
        headers={"Content-Type": "application/json"},
    ) as response:
        body = await response.read()
    answers = orjson.loads(body)["responses"]
    filled = sum(1 for r in answers if r["status"] == 200 and r["body"]["value"])
    if filled < len(requests) * 0.9:
        raise BenchError(f"$batch: only {filled} of {len(requests)} sub-requests found a value")
    return filled, size + len(body)


async def measure(label: str, repeat: int, call: Callable[[], Awaitable[tuple[int, int]]]) -> str:
    await call()  # warm
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows, size = await call()
        times.append((time.perf_counter() - t0) * 1000)
    line = f"| {label} | {rows:,} | {size / 1024:,.0f} KiB | {statistics.median(times):,.0f} ms |"
    say(line)
    return line


async def benchmark(args: argparse.Namespace, workdir: Path) -> list[str]:
    core.check_loopback(args.dsn)
    dsn = urlunsplit(urlsplit(args.dsn)._replace(path=f"/{DB_NAME}"))
    admin = await asyncpg.connect(args.dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {DB_NAME}")
    finally:
        await admin.close()
    hub = Hub(dsn, args.port or _free_port(), "WARNING", workdir / "hub.log")
    try:
        await hub.start()
        sta = f"{hub.base}/v1.1"
        stream = (await core.make_thing(hub.base, "viewer bench", 1))[0]
        feature = await core.make_feature(hub.base)
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        start = end - timedelta(minutes=ROWS)
        from hub.store.observations import refresh_extents

        conn = await asyncpg.connect(dsn)
        try:
            t0 = time.perf_counter()
            await conn.execute(_LOAD_SQL, stream, feature, start, ROWS)
            await conn.execute("VACUUM (ANALYZE) observations")
            await refresh_extents(conn, "datastreams", [stream])
            say(f"loaded {ROWS:,} Observations in {time.perf_counter() - t0:.1f} s")
        finally:
            await conn.close()
        lines = ["| request | rows/values | transferred | median time |", "|---|---|---|---|"]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
            for label, days in (("6 hours", 0.25), ("24 hours", 1), ("30 days", 30), ("1 year", 365)):
                a = end - timedelta(days=days)
                lines.append(
                    await measure(
                        f"viewer, {label}",
                        args.repeat,
                        lambda a=a: viewer_series(session, sta, stream, a, end),
                    )
                )
                lines.append(
                    await measure(
                        f"raw pages, {label}",
                        args.repeat,
                        lambda a=a: raw_pages(session, sta, stream, a, end),
                    )
                )
        return lines
    finally:
        hub.stop()
        if not args.keep:
            admin = await asyncpg.connect(args.dsn)
            try:
                await admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
            finally:
                await admin.close()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    with tempfile.TemporaryDirectory(prefix="twinhub-bench-viewer-") as workdir:
        try:
            lines = asyncio.run(benchmark(args, Path(workdir)))
        except BenchError as exc:
            say(f"bench.viewer: {exc}")
            return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
