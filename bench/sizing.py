# SPDX-License-Identifier: Apache-2.0
"""Sizing inputs for docs/scale.md, measured against `twinhub serve` as a user starts it.

    .venv/bin/python -m bench.sizing [--n 50000] [--duration 10] [--concurrency 8] [--output FILE]

One run: a private mosquitto on a free port (max_queued_messages 0), a fresh database with 1,000
Datastreams, `twinhub serve` with the broker connected and default settings but the access log off
and anonymous writes (bench/harness.py). Then
1. ingest: `--n` native STA Observations over MQTT at QoS 1 (after one per Datastream as warm-up):
   Observations/s committed, and per CPU-second of the hub process ("per core");
2. storage: bytes per Observation on disk (heap, indexes, TOAST of every Observation partition),
   and WAL bytes per Observation during ingest (cluster-wide: other sessions' writes included);
3. viewer reads: `--duration` s of GETs at `--concurrency` (latest 100 Observations of a
   Datastream; a Datastream with its newest Observation): requests/s and per hub CPU-second;
4. ceilings of the same run: COPY of the same rows (10k per batch) and the read's SQL straight
   through asyncpg at the same concurrency, with no hub in between.
Prints a markdown report (and writes it to `--output`). Figures from a busy, shared machine are
floors: the report gives the machine's load next to them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil

from bench.harness import Broker, Serve, database_name, drop_database, postgres_cpu, process_cpu
from bench.ingest import STREAMS, observation_count, publisher, raw_copy, setup_database

DEFAULT_DSN = os.environ.get("TWINHUB_BENCH_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
LATEST_SQL = """SELECT id, phenomenon_time_start, result FROM observations WHERE datastream_id = $1
                ORDER BY phenomenon_time_start DESC LIMIT 100"""
_SIZE_SQL = """
SELECT sum(pg_relation_size(relid)) AS heap,
       sum(pg_indexes_size(relid)) AS indexes,
       sum(pg_total_relation_size(relid) - pg_relation_size(relid) - pg_indexes_size(relid)) AS other
FROM pg_partition_tree('observations') WHERE isleaf
"""


_WAL_RECORD = re.compile(r"len \(rec/tot\):\s*\d+/\s*(\d+), tx:\s*(\d+),")


def wal_of_database(dsn_data_dir: str, bin_dir: str, start: str, end: str, db_oid: int) -> int | None:
    """WAL bytes between two LSNs that touch `db_oid`, with their transactions' commit records
    (pg_waldump over the server's pg_wal; None where it cannot be read, e.g. not the server's host)."""
    waldump = Path(bin_dir) / "pg_waldump"
    wal_dir = Path(dsn_data_dir) / "pg_wal"
    if not waldump.exists() or not os.access(wal_dir, os.R_OK):
        return None
    command = [str(waldump), "-p", str(wal_dir), "-s", start, "-e", end]
    ours, total, commits = f"rel 1663/{db_oid}/", 0, {}
    txids: set[str] = set()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as dump:
        assert dump.stdout is not None
        for line in dump.stdout:
            match = _WAL_RECORD.search(line)
            if match is None:
                continue
            size, txid = int(match.group(1)), match.group(2)
            if ours in line or f"db {db_oid} " in line:
                total += size
                txids.add(txid)
            elif line.startswith("rmgr: Transaction") and "COMMIT" in line:
                commits[txid] = commits.get(txid, 0) + size
    if dump.returncode != 0:
        return None
    return total + sum(size for txid, size in commits.items() if txid in txids)


async def _scalar(dsn: str, sql: str) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _server_facts(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        major = await conn.fetchval("SELECT current_setting('server_version_num')::int / 10000")
        return {
            "data_directory": await conn.fetchval("SHOW data_directory"),
            "oid": await conn.fetchval("SELECT oid FROM pg_database WHERE datname = current_database()"),
            "bin": f"/usr/lib/postgresql/{major}/bin",  # Debian's layout; elsewhere no own-WAL figure
        }
    finally:
        await conn.close()


async def _wait_count(dsn: str, target: int, within: float = 600) -> float:
    deadline = time.monotonic() + within
    while (count := await observation_count(dsn)) < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {count} of {target} Observations committed in {within:.0f} s")
        await asyncio.sleep(0.05)
    return time.monotonic()


async def ingest(dsn: str, broker: int, hub_pid: int, n: int) -> dict[str, float]:
    """Publish n Observations after a warm-up; rate, CPU per Observation, WAL per Observation."""
    warm = threading.Thread(target=publisher, args=(broker, 0, STREAMS, 0.0))
    warm.start()
    await asyncio.to_thread(warm.join)
    await _wait_count(dsn, STREAMS)
    database = database_name(dsn)
    # A temporary slot keeps the WAL of the phase until pg_waldump has read it (other sessions'
    # CREATE/DROP DATABASE force checkpoints that would recycle it).
    keeper = await asyncpg.connect(dsn)
    await keeper.execute(
        "SELECT pg_create_physical_replication_slot($1, true, true)", f"sizing_{os.getpid()}"
    )
    wal_before = await _scalar(dsn, "SELECT pg_current_wal_lsn()::text")
    cpu_hub, cpu_pg, began = process_cpu(hub_pid), postgres_cpu(database), time.monotonic()
    psutil.cpu_times_percent(interval=None)  # starts the machine-wide busy measurement
    thread = threading.Thread(target=publisher, args=(broker, STREAMS, n, 0.0))
    thread.start()
    ended = await _wait_count(dsn, STREAMS + n)
    await asyncio.to_thread(thread.join)
    wall = ended - began
    hub_cpu, pg_cpu = process_cpu(hub_pid) - cpu_hub, postgres_cpu(database) - cpu_pg
    wal_after = await _scalar(dsn, "SELECT pg_current_wal_lsn()::text")
    wal = await _scalar(dsn, f"SELECT pg_wal_lsn_diff('{wal_after}', '{wal_before}')::bigint")
    facts = await _server_facts(dsn)
    own = await asyncio.to_thread(
        wal_of_database, facts["data_directory"], facts["bin"], wal_before, wal_after, facts["oid"]
    )
    busy = 100 - psutil.cpu_times_percent(interval=None).idle
    return {
        "obs_per_s": n / wall,
        "hub_cores": hub_cpu / wall,
        "pg_cores": pg_cpu / wall,
        "obs_per_hub_cpu_s": n / hub_cpu,
        "obs_per_cpu_s": n / (hub_cpu + pg_cpu),
        "wal_bytes_per_obs": wal / n,
        "own_wal_bytes_per_obs": float("nan") if own is None else own / n,
        "machine_busy_pct": busy,
    }


async def storage(dsn: str) -> dict[str, float]:
    """Bytes per stored Observation: heap, indexes, TOAST and maps of every partition."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM ANALYZE observations")
        rows = await conn.fetchval("SELECT count(*) FROM observations")
        size = await conn.fetchrow(_SIZE_SQL)
    finally:
        await conn.close()
    return {
        "rows": rows,
        "heap": size["heap"] / rows,
        "indexes": size["indexes"] / rows,
        "other": size["other"] / rows,
        "total": (size["heap"] + size["indexes"] + size["other"]) / rows,
    }


async def reads(base: str, hub_pid: int, database: str, seconds: float, concurrency: int) -> dict[str, float]:
    """GETs a viewer makes, for `seconds` at `concurrency`: requests/s, p50, per hub CPU-second."""
    paths = (
        "/v1.1/Datastreams({id})/Observations?$top=100&$orderby=phenomenonTime%20desc",
        "/v1.1/Datastreams({id})?$expand=Observations($top=1;$orderby=phenomenonTime%20desc)",
    )
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.monotonic() < stop_at:
            path = random.choice(paths).format(id=random.randint(1, STREAMS))
            sent = time.perf_counter()
            async with session.get(base + path) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
                    continue
            latencies.append(time.perf_counter() - sent)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        cpu, pg, began = process_cpu(hub_pid), postgres_cpu(database), time.monotonic()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        wall, hub_cpu, pg_cpu = (
            time.monotonic() - began,
            process_cpu(hub_pid) - cpu,
            postgres_cpu(database) - pg,
        )
    latencies.sort()
    return {
        "req_per_s": len(latencies) / wall,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "hub_cores": hub_cpu / wall,
        "req_per_hub_cpu_s": len(latencies) / hub_cpu,
        "pg_cores": pg_cpu / wall,
        "req_per_cpu_s": len(latencies) / (hub_cpu + pg_cpu),
        "errors": errors,
    }


async def sql_ceiling(dsn: str, seconds: float, concurrency: int) -> float:
    """The latest-100 query straight through asyncpg at the same concurrency: queries/s."""
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    done = 0
    stop_at = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < stop_at:
            await pool.fetch(LATEST_SQL, random.randint(1, STREAMS))
            done += 1

    began = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.monotonic() - began
    await pool.close()
    return done / wall


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    """The markdown report: every figure next to the ceiling measured in the same run."""
    ing, disk, get = results["ingest"], results["storage"], results["reads"]
    load = os.getloadavg()
    sizes = "{heap:.0f} / {indexes:.0f} / {other:.0f} / {total:.0f} B".format(**disk)
    rows = [
        ("ingest, native STA JSON over MQTT QoS 1", f"{ing['obs_per_s']:,.0f} obs/s",
         f"COPY 10k/batch: {results['copy']:,.0f} rows/s"),
        ("hub CPU during ingest", f"{ing['hub_cores']:.2f} cores", ""),
        ("PostgreSQL CPU during ingest (this database's backends + background)",
         f"{ing['pg_cores']:.2f} cores", ""),
        ("Observations per CPU-second of the hub", f"{ing['obs_per_hub_cpu_s']:,.0f}", ""),
        ("Observations per CPU-second, hub + PostgreSQL", f"{ing['obs_per_cpu_s']:,.0f}", ""),
        ("WAL per Observation: this database's records (pg_waldump) / the whole cluster's meanwhile",
         f"{ing['own_wal_bytes_per_obs']:,.0f} / {ing['wal_bytes_per_obs']:,.0f} B", ""),
        ("machine busy during ingest", f"{ing['machine_busy_pct']:.0f} %", ""),
        (f"disk per Observation: heap / indexes / TOAST+maps / total ({disk['rows']:,} rows)", sizes, ""),
        (f"viewer GETs at concurrency {args.concurrency} (latest 100; a Datastream with its newest)",
         f"{get['req_per_s']:,.0f} req/s, p50 {get['p50_ms']:.1f} ms, {get['errors']} errors",
         f"the latest-100 SQL via asyncpg: {results['sql']:,.0f} q/s"),
        ("hub CPU during reads", f"{get['hub_cores']:.2f} cores", ""),
        ("PostgreSQL CPU during reads", f"{get['pg_cores']:.2f} cores", ""),
        ("viewer requests per CPU-second of the hub", f"{get['req_per_hub_cpu_s']:,.0f}", ""),
        ("viewer requests per CPU-second, hub + PostgreSQL", f"{get['req_per_cpu_s']:,.0f}", ""),
    ]  # fmt: skip
    table = "\n".join(f"| {what} | {value} | {ceiling} |" for what, value, ceiling in rows)
    return f"""# Sizing inputs ({time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})

`python -m bench.sizing --n {args.n} --duration {args.duration} --concurrency {args.concurrency}`;
`twinhub serve` with a private mosquitto, {STREAMS} Datastreams; {os.cpu_count()} cores, load average
{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end (a shared machine: other work ran meanwhile).

| measured | value | ceiling in the same run |
|---|--:|--:|
{table}
"""


# The settings this bench has always run the hub with beside the defaults: no access log (WARNING),
# anonymous writes; a client id of its own on the private broker.
SETTINGS = {"TWINHUB_LOG_LEVEL": "WARNING", "TWINHUB_AUTH_ANONYMOUS_WRITE": "true"}


async def run(args: argparse.Namespace, home: Path, broker: Broker) -> str:
    """Every phase against one hub on a fresh database; the report."""
    dsn = await setup_database(args.dsn)
    extra = {**SETTINGS, "TWINHUB_MQTT_CLIENT_ID": f"sizing-{os.getpid()}"}
    hub = Serve(dsn, broker.url, home, home / "hub.log", extra=extra)
    results: dict[str, Any] = {}
    try:
        await hub.start()
        await asyncio.sleep(1.0)  # the ingest subscription follows the HTTP start
        results["ingest"] = await ingest(dsn, broker.port, hub.pid, args.n)
        results["storage"] = await storage(dsn)
        database = database_name(dsn)
        results["reads"] = await reads(hub.base, hub.pid, database, args.duration, args.concurrency)
        results["sql"] = await sql_ceiling(dsn, args.duration, args.concurrency)
        hub.stop()
        results["copy"] = await raw_copy(dsn, args.n)
    finally:
        hub.stop()
        await drop_database(args.dsn, database_name(dsn))
    return render(results, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="maintenance database of a local PostgreSQL")
    parser.add_argument("--n", type=int, default=50_000, help="Observations to ingest")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each read phase")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent readers")
    parser.add_argument("--output", type=Path, help="also write the report here")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="twinhub-sizing-"))
    broker = Broker(home, unlimited_inflight=True)
    try:
        report = asyncio.run(run(args, home, broker))
    finally:
        broker.stop()
    shutil.rmtree(home)  # kept after a failure: the hub's log is in it
    print(report)
    if args.output:
        args.output.write_text(report)


if __name__ == "__main__":
    main()
