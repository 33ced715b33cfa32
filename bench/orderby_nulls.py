# SPDX-License-Identifier: Apache-2.0
"""$orderby with OData's null placement on a 1M-row stream: EXPLAIN ANALYZE of the SQL the hub compiles.

OData puts null first ascending and last descending (PostgreSQL's default is the opposite), so
nullable keys now carry `ASC NULLS FIRST` / `DESC NULLS LAST`; keys that are never NULL
(phenomenonTime of an Observation, ids) carry no NULLS clause, so the (datastream_id,
phenomenon_time_start, id) index still serves them. This prints, per ordering, the execution time
(median of --runs) and the plan's top node for: the SQL compiled now, the SQL the old rule gave
(ASC NULLS LAST / DESC NULLS FIRST everywhere), and a naive rule that adds the OData clause to every
key; the ceiling is a hand-written index probe of the same page.

    .venv/bin/python -m bench.orderby_nulls [--rows 1000000] [--runs 5] [--dsn postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
from datetime import UTC, datetime

import asyncpg

from hub.query.compile import compile_read
from hub.query.parse import parse_query
from hub.query.path import parse_path
from hub.query.sqlexpr import Dialect
from hub.store.migrate import apply_migrations
from hub.store.pool import init_connection
from hub.store.write import Writer
from schemas.model import DATASTREAM, FEATURE_OF_INTEREST

DB_NAME = "twinhub_bench_nulls"
ORDERINGS = (
    "phenomenonTime desc",
    "phenomenonTime asc",
    "phenomenonTime desc,resultTime",
    "resultTime desc",
    "resultTime asc",
)
CEILING = (
    "SELECT e.id FROM observations e WHERE e.datastream_id = $1 "
    "ORDER BY e.phenomenon_time_start DESC, e.id DESC LIMIT 101"
)


_NEVER_NULL_KEY = re.compile(r"phenomenon_time_start( ASC| DESC)?(?! NULLS)(?=,| ORDER| LIMIT)")


def _with_clause(sql: str, ascending: str, descending: str) -> str:
    """`sql` with NULLS clauses on the phenomenon_time_start key of its ORDER BY too."""
    head, order, tail = sql.rpartition(" ORDER BY ")
    tail = _NEVER_NULL_KEY.sub(
        lambda m: f"phenomenon_time_start {descending if m[1] == ' DESC' else ascending}", tail
    )
    return head + order + tail


def _old(sql: str) -> str:
    """The same SQL under the old rule: ASC NULLS LAST, DESC NULLS FIRST (PostgreSQL's defaults)."""
    sql = sql.replace(" ASC NULLS FIRST", " ASC NULLS LAST").replace(" DESC NULLS LAST", " DESC NULLS FIRST")
    return _with_clause(sql, "ASC NULLS LAST", "DESC NULLS FIRST")


def _naive(sql: str) -> str:
    """OData's clause on every key, the never-null phenomenonTime too."""
    return _with_clause(sql, "ASC NULLS FIRST", "DESC NULLS LAST")


async def _load(dsn: str, rows: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
        await init_connection(conn)
        async with conn.transaction():
            writer = Writer(conn, datetime.now(UTC))
            unit = {"name": "degree Celsius", "symbol": "degC", "definition": "ucum:Cel"}
            stream = {
                "name": "bench", "description": "d", "unitOfMeasurement": unit,
                "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                "Thing": {"name": "t", "description": "d"},
                "Sensor": {"name": "s", "description": "d", "encodingType": "text/plain", "metadata": "m"},
                "ObservedProperty": {"name": "p", "definition": "x", "description": "d"},
            }  # fmt: skip
            await writer.create(DATASTREAM, stream)
            point = {"type": "Point", "coordinates": [10.0, 53.5]}
            feature = {
                "name": "f",
                "description": "d",
                "encodingType": "application/geo+json",
                "feature": point,
            }
            await writer.create(FEATURE_OF_INTEREST, feature)
        # One a minute from 2025-01-01; every tenth without resultTime.
        await conn.execute(
            """INSERT INTO observations (phenomenon_time_start, phenomenon_time_end, result_time, result,
                                         datastream_id, feature_of_interest_id)
               SELECT t, t, CASE WHEN n % 10 = 0 THEN NULL ELSE t + interval '5 seconds' END,
                      to_jsonb(random()), 1, 1
               FROM generate_series(1, $1) n,
                    LATERAL (SELECT '2025-01-01'::timestamptz + n * interval '1 minute') x(t)""",
            rows,
        )
        await conn.execute("VACUUM (ANALYZE) observations")
    finally:
        await conn.close()


async def _explain(
    conn: asyncpg.Connection, sql: str, args: tuple[object, ...], runs: int
) -> tuple[float, str]:
    times, top = [], ""
    for _ in range(runs):
        plan = [r[0] for r in await conn.fetch("EXPLAIN (ANALYZE, COSTS OFF) " + sql, *args)]
        times.append(float(re.search(r"Execution Time: ([0-9.]+)", plan[-1])[1]))  # type: ignore[index]
        # The node under the Limit: Merge Append / Index Scan (the index serves the order) or a Sort.
        child = plan[1].strip().removeprefix("->").strip() if len(plan) > 1 else plan[0]
        top = child.split(" (")[0]
    return statistics.median(times), top


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    admin = await asyncpg.connect(options.dsn)
    await admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
    await admin.execute(f"CREATE DATABASE {DB_NAME}")
    dsn = re.sub(r"/[^/]*$", f"/{DB_NAME}", options.dsn)
    try:
        await _load(dsn, options.rows)
        conn = await asyncpg.connect(dsn)
        await init_connection(conn)
        dialect = Dialect(postgis=False)
        path = parse_path("Datastreams(1)/Observations")
        print(
            f"{options.rows:,} Observations in one Datastream; $top=100; median of {options.runs} runs (ms)"
        )
        ceiling, plan = await _explain(conn, CEILING, (1,), options.runs)
        print(f"ceiling (hand-written index probe): {ceiling:.3f} ms  {plan}")
        print("| $orderby | now | plan | old rule | plan | naive rule | plan |")
        print("|---|---|---|---|---|---|---|")
        for ordering in ORDERINGS:
            query = parse_query({"$orderby": ordering}, 100, 10_000)
            page = compile_read(path, query, dialect).page
            cells = []
            for variant in (page.text, _old(page.text), _naive(page.text)):
                ms, top = await _explain(conn, variant, page.args, options.runs)
                cells += [f"{ms:.3f}", top]
            print(f"| {ordering} | " + " | ".join(cells) + " |")
        await conn.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
