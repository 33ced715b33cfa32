# SPDX-License-Identifier: Apache-2.0
"""Bulk import benchmark: `twinhub import` rows/s into an empty partition, next to a raw COPY.

    .venv/bin/python bench/import.py [--n 1000000] [--streams 100] [--format csv] [--dsn postgresql://...]

Creates a fresh database (dropped at the end), 100 Datastreams on one Thing with a Location, and
writes N Observations to a temporary CSV (or JSON lines) file: one per stream per minute from
2031-03-01, so every row falls into one monthly partition that does not exist yet. Then measures,
in the same run:
1. raw COPY: the same rows, already parsed, COPYed with asyncpg into an empty table with the
   Observation table's columns and indexes (no foreign keys, no parsing): what PostgreSQL alone does;
2. import: hub.backfill.run.import_files on the file (parse, validate, create the partition, COPY
   per 50,000-row chunk, refresh the extents), wall time from start to commit.
A CHECKPOINT runs before each phase (so neither pays for the other's dirty buffers). It prints
rows/s of both and the machine's load average (other work on the machine lowers both).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.backfill.run import import_files
from hub.store.bulk import COPY_COLUMNS
from hub.store.migrate import apply_migrations

T0 = datetime(2031, 3, 1, tzinfo=UTC)
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def setup_database(maintenance: str, streams: int) -> tuple[str, str, list[int], int]:
    name = f"twinhub_bench_import_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(maintenance)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    dsn = maintenance.rsplit("/", 1)[0] + "/" + name
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
        await conn.execute("""
            INSERT INTO things (name, description) VALUES ('t', 'd');
            INSERT INTO locations (name, description, encoding_type, location)
                VALUES ('l', 'd', 'application/geo+json', '{"type":"Point","coordinates":[8,50]}');
            INSERT INTO thing_locations VALUES (1, 1);
            INSERT INTO sensors (name, description, encoding_type, metadata) VALUES ('s', 'd', 't', '"m"');
            INSERT INTO observed_properties (name, definition, description) VALUES ('p', 'd', 'd');""")
        ids = [
            await conn.fetchval(
                "INSERT INTO datastreams (name, description, unit_of_measurement, observation_type, "
                "thing_id, sensor_id, observed_property_id) VALUES ($1, 'd', '{}', 'm', 1, 1, 1) "
                "RETURNING id",
                f"d{i}",
            )
            for i in range(streams)
        ]
        feature = await conn.fetchval(
            "INSERT INTO features_of_interest (name, description, encoding_type, feature, location_id) "
            "SELECT name, description, encoding_type, location, id FROM locations RETURNING id"
        )
    finally:
        await conn.close()
    return name, dsn, ids, feature


def write_file(path: Path, n: int, streams: list[int], fmt: str) -> list[tuple[int, datetime, float]]:
    rows = []
    for i in range(n):
        minute, stream = divmod(i, len(streams))
        rows.append((streams[stream], T0 + timedelta(minutes=minute), round((i % 1000) / 10, 1)))
    with path.open("w", encoding="utf-8") as out:
        if fmt == "csv":
            out.write("datastream,phenomenonTime,result\n")
            out.writelines(f"{s},{t.isoformat()},{v}\n" for s, t, v in rows)
        else:
            out.writelines(
                orjson.dumps({"datastream": s, "phenomenonTime": t.isoformat(), "result": v}).decode() + "\n"
                for s, t, v in rows
            )
    return rows


async def raw_copy(dsn: str, rows: list[tuple[int, datetime, float]], feature: int) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE raw_copy (LIKE observations INCLUDING ALL)")
        records = [(t, t, None, orjson.dumps(v).decode(), None, s, feature) for s, t, v in rows]
        started = time.perf_counter()
        for i in range(0, len(records), 50_000):
            await conn.copy_records_to_table(
                "raw_copy", records=records[i : i + 50_000], columns=COPY_COLUMNS
            )
        return len(records) / (time.perf_counter() - started)
    finally:
        await conn.close()


async def checkpoint(dsn: str) -> None:
    """Write out dirty buffers now, so that neither phase pays for the other's (needs superuser)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> None:
    name, dsn, streams, feature = await setup_database(args.dsn, args.streams)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"observations.{'csv' if args.format == 'csv' else 'jsonl'}"
            rows = write_file(path, args.n, streams, args.format)
            size = path.stat().st_size
            load_before = os.getloadavg()[0]
            await checkpoint(dsn)
            copy_rate = await raw_copy(dsn, rows, feature)
            await checkpoint(dsn)
            started = time.perf_counter()
            result = await import_files(dsn, [path], progress_out=io.StringIO())
            seconds = time.perf_counter() - started
            load_after = os.getloadavg()[0]
        if result.imported != args.n or result.bad:
            raise SystemExit(f"import went wrong: {result}")
        conn = await asyncpg.connect(dsn)
        try:
            partitions = await conn.fetchval("SELECT count(*) FROM observations_20310301")
        finally:
            await conn.close()
        print(f"rows: {args.n:,} ({args.format}, {size / 1e6:.0f} MB), Datastreams: {args.streams}")
        print(f"raw COPY (parsed rows, empty table with the same indexes): {copy_rate:,.0f} rows/s")
        print(f"twinhub import into an empty partition: {args.n / seconds:,.0f} rows/s ({seconds:.1f} s)")
        print(f"rows in the new partition observations_20310301: {partitions:,}")
        print(
            f"load average (1 min) before / after: {load_before:.2f} / {load_after:.2f} "
            f"on {os.cpu_count()} cores"
        )
    finally:
        conn = await asyncpg.connect(args.dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1_000_000, help="rows to import")
    parser.add_argument("--streams", type=int, default=100, help="Datastreams the rows are spread over")
    parser.add_argument("--format", choices=("csv", "json"), default="csv")
    parser.add_argument("--dsn", default=os.environ.get("TWINHUB_BENCH_DSN", DEFAULT_DSN))
    asyncio.run(main(parser.parse_args()))
