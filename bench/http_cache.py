# SPDX-License-Identifier: Apache-2.0
"""What a 304 saves: requests/s and median latency of viewer-style reads answered in full (200),
revalidated (304), and gzipped, against a running hub.

    .venv/bin/python -m bench.http_cache http://127.0.0.1:8080 [--things 500] [--duration 5]

Seeds --things Things (each with a Location and a Datastream with 10 Observations) when the hub
has fewer, so run it against a scratch database. Prints one row per case.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import aiohttp

OBSERVATION_TYPE = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"


def _thing(index: int) -> dict[str, Any]:
    return {
        "name": f"Station {index}",
        "description": "benchmark station",
        "properties": {"city": "Hamburg", "index": index},
        "Locations": [
            {
                "name": f"Place {index}",
                "description": "roof",
                "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [9.9 + index / 1e4, 53.5]},
            }
        ],
        "Datastreams": [
            {
                "name": f"Temperature {index}",
                "description": "air",
                "unitOfMeasurement": {"name": "degree Celsius", "symbol": "Cel", "definition": "ucum:Cel"},
                "observationType": OBSERVATION_TYPE,
                "Sensor": {"name": "PT100", "description": "t", "encodingType": "text/html", "metadata": "m"},
                "ObservedProperty": {"name": "Temperature", "definition": "qudt:T", "description": "t"},
                "Observations": [
                    {"phenomenonTime": f"2026-03-05T10:{m:02d}:00Z", "result": m} for m in range(10)
                ],
            }
        ],
    }


async def _seed(session: aiohttp.ClientSession, root: str, things: int) -> None:
    async with session.get(f"{root}/Things?$count=true&$top=0") as response:
        have = (await response.json())["@iot.count"]
    for index in range(have, things):
        async with session.post(f"{root}/Things", json=_thing(index)) as response:
            response.raise_for_status()


async def _run(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], duration: float, workers: int
) -> tuple[float, float, int, int]:
    latencies: list[float] = []
    statuses: set[int] = set()
    size = 0
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal size
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.get(url, headers=headers, auto_decompress=False) as response:
                body = await response.read()
                statuses.add(response.status)
            latencies.append(time.perf_counter() - started)
            size = len(body)

    await asyncio.gather(*(worker() for _ in range(workers)))
    assert len(statuses) == 1, statuses
    return len(latencies) / duration, statistics.median(latencies) * 1000, statuses.pop(), size


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hub", help="the hub's base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--things", type=int, default=500)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    root = f"{args.hub.rstrip('/')}/v1.1"
    cases = (
        ("metadata", f"{root}/Things?$expand=Locations&$top=100"),
        ("observations", f"{root}/Things?$expand=Datastreams/Observations($top=1)&$top=100"),
    )
    connector = aiohttp.TCPConnector(limit=args.workers)
    async with aiohttp.ClientSession(connector=connector) as session:
        await _seed(session, root, args.things)
        print(f"{'read':<14}{'answer':<22}{'req/s':>8}{'p50 ms':>9}{'bytes':>9}")
        for kind, url in cases:
            async with session.get(url) as response:
                etag = response.headers["ETag"]
            variants = (
                ("200 identity", {"Accept-Encoding": "identity"}),
                ("200 gzip", {"Accept-Encoding": "gzip"}),
                ("304 If-None-Match", {"Accept-Encoding": "gzip", "If-None-Match": etag}),
            )
            for label, headers in variants:
                rate, p50, status, size = await _run(session, url, headers, args.duration, args.workers)
                print(f"{kind:<14}{label:<22}{rate:>8.0f}{p50:>9.1f}{size:>9}  (status {status})")


if __name__ == "__main__":
    asyncio.run(main())
