# SPDX-License-Identifier: Apache-2.0
"""Exactness: $apply answers served from rollups equal those computed from the raw Observations,
after random batches (late arrivals included), updates and deletes through HTTP (real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from helpers import create, datastream, populate, post, ref, send
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.query.apply_parse import parse_apply
from hub.query.apply_plan import plan_apply
from hub.query.apply_sql import compile_apply
from hub.query.filter import Dialect
from hub.query.path import parse_path

BASE = datetime(2026, 3, 27, 21, 0, tzinfo=UTC)  # spans Berlin's switch to summer time
MINUTES = 4 * 24 * 60
ALL = (
    "result with average as mean,result with min as lo,result with max as hi,result with sum as total,"
    "result with twinhub.first as open,result with twinhub.last as close,$count as n"
)
QUERIES = (
    f"compute(twinhub.bucket(phenomenonTime,'PT1H') as b)/groupby((b),aggregate({ALL}))",
    f"compute(twinhub.bucket(phenomenonTime,'PT3H') as b)/groupby((b),aggregate({ALL}))",
    f"compute(twinhub.bucket(phenomenonTime,'P1D') as b)/groupby((Datastream/@iot.id,b),aggregate({ALL}))",
    f"compute(twinhub.bucket(phenomenonTime,'P1D','Europe/Berlin') as b)/groupby((b),aggregate({ALL}))",
    f"compute(twinhub.bucket(phenomenonTime,'P1M','Europe/Berlin') as b)/groupby((b),aggregate({ALL}))",
    f"filter(phenomenonTime ge 2026-03-28T01:17:00Z and phenomenonTime le 2026-03-30T13:00:00Z)/"
    f"compute(twinhub.bucket(phenomenonTime,'PT6H') as b)/groupby((b),aggregate({ALL}))",
    f"filter(phenomenonTime gt 2026-03-28T00:00:00Z and Datastream/name eq 'Exact')/aggregate({ALL})",
)

values = st.one_of(
    st.integers(-1000, 1000),
    st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.1, 0.2, 0.3, 1e-7, 123456.789]),
)
points = st.tuples(st.integers(0, MINUTES), values)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.lists(points, min_size=1, max_size=25)),
        st.tuples(st.just("update"), st.integers(0, 10**6), points),
        st.tuples(st.just("move"), st.integers(0, 10**6), st.integers(0, MINUTES)),
        st.tuples(st.just("delete"), st.integers(0, 10**6)),
    ),
    min_size=1,
    max_size=8,
)


def at(minute: int) -> str:
    return (BASE + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")


async def run(client: Any, stream: int, steps: list[Any]) -> None:
    """Apply the random operations through HTTP, as clients would."""
    live: list[int] = []
    for step in steps:
        if step[0] == "insert":
            body = [{"Datastream": ref(stream), "components": ["phenomenonTime", "result"],
                     "dataArray": [[at(m), v] for m, v in step[1]]}]  # fmt: skip
            status, links, _ = await post(client, "CreateObservations", body)
            assert status == 201, links
            live += [int(link.rsplit("(", 1)[1].rstrip(")")) for link in links]
        elif live:
            target = live[step[1] % len(live)]
            if step[0] == "delete":
                status, answer, _ = await send(client, "DELETE", f"Observations({target})")
                live.remove(target)
            elif step[0] == "move":
                change = {"phenomenonTime": at(step[2])}
                status, answer, _ = await send(client, "PATCH", f"Observations({target})", change)
            else:
                change = {"phenomenonTime": at(step[2][0]), "result": step[2][1]}
                status, answer, _ = await send(client, "PATCH", f"Observations({target})", change)
            assert status == 200, answer


async def answer(
    conn: asyncpg.Connection, stream: int, text: str, rollups: bool
) -> tuple[str | None, list[Any]]:
    plan = plan_apply(parse_apply(text), rollups)
    compiled = compile_apply(
        plan, parse_path(f"Datastreams({stream})/Observations"), Dialect(False), 10000, 0, 10**6
    )
    records = await conn.fetch(compiled.sql.text, *compiled.sql.args)
    return compiled.source, [tuple(r)[1:] for r in records]  # [0]: rows read, which differs by design


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
async def test_rollup_answers_equal_raw_answers(client: Any, clean_db: str, steps: list[Any]) -> None:
    if (await client.get("/v1.1/Things(1)")).status != 200:
        await populate(client)
    stream = await create(client, "Datastreams", datastream("Exact"))
    await run(client, stream, steps)
    conn = await asyncpg.connect(clean_db)
    try:
        for text in QUERIES:
            source, served = await answer(conn, stream, text, rollups=True)
            raw_source, computed = await answer(conn, stream, text, rollups=False)
            assert source is not None, text  # both ways really ran
            assert raw_source is None, text
            assert served == computed, text
    finally:
        await conn.close()
