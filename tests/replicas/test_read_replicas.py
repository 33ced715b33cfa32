# SPDX-License-Identifier: Apache-2.0
"""Reads on a real hot standby: served there, skipped while it lags or is away, used again after."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from standby import MAX_LAG, Standby

from hub.http.reads import CONSISTENCY, DATABASE

THING = {"name": "Rathausmarkt", "description": "a station"}


def _path(location: str) -> str:
    """The path of an absolute Location, for the test client."""
    return urlsplit(location).path


async def eventually(check: Callable[[], Awaitable[bool]], client: Any, within: float = 60.0) -> None:
    """Poll `check` until it holds; fail after `within` seconds, showing the standby's state."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(
                f"the condition did not hold in {within:.0f} s; the standby: {await _replica(client)}"
            )
        await asyncio.sleep(0.05)


async def _replica(client: Any) -> dict[str, Any]:
    ready = await (await client.get("/ready")).json()
    assert ready["checks"]["database"] is True
    report: dict[str, Any] = ready["checks"]["replicas"][0]
    return report


def _metric(text: str, name: str, labels: str) -> float:
    match = re.search(rf"^{name}\{{{labels}\}} (\S+)$", text, re.MULTILINE)
    assert match, f"{name}{{{labels}}} is not in /metrics"
    return float(match.group(1))


async def _served_by(client: Any, url: str, server: str, status: int = 200) -> bool:
    response = await client.get(url)
    return bool(response.status == status and response.headers.get(DATABASE) == server)


async def test_reads_are_served_by_the_standby_and_writes_by_the_primary(
    replica_client: Any, standby: Standby
) -> None:
    client = replica_client
    assert await standby.execute("SELECT pg_is_in_recovery()") is True
    created = await client.post("/v1.1/Things", json=THING)
    assert created.status == 201
    assert DATABASE not in created.headers  # a write's answer comes from the primary's transaction
    thing = _path(created.headers["Location"])
    await eventually(lambda: _served_by(client, thing, "replica1"), client)
    body = await (await client.get(thing)).json()
    assert body["name"] == "Rathausmarkt"
    # The hub's own check saw pg_is_in_recovery() on that server and measured its lag.
    replica = await _replica(client)
    assert replica["state"] == "ok"
    assert replica["in_recovery"] is True
    assert replica["replay_paused"] is False
    assert 0 <= replica["lag_seconds"] <= MAX_LAG
    assert replica["reads"] >= 1
    metrics = await (await client.get("/metrics")).text()
    assert _metric(metrics, "twinhub_db_reads_total", 'server="replica1"') >= 1
    assert _metric(metrics, "twinhub_db_replica_usable", 'replica="replica1"') == 1
    assert _metric(metrics, "twinhub_db_replica_lag_seconds", 'replica="replica1"') <= MAX_LAG
    # Read-your-writes on request; collections too; 304s come from the same server as the data.
    asked = await client.get(thing, headers={CONSISTENCY: "primary"})
    assert asked.status == 200
    assert asked.headers[DATABASE] == "primary"
    things = await client.get("/v1.1/Things")
    assert things.headers[DATABASE] == "replica1"
    assert (await things.json())["value"][0]["name"] == "Rathausmarkt"
    again = await client.get("/v1.1/Things", headers={"If-None-Match": things.headers["ETag"]})
    assert again.status == 304
    assert again.headers[DATABASE] == "replica1"


async def test_a_batch_of_reads_goes_to_the_standby_and_a_batch_with_writes_to_the_primary(
    replica_client: Any, standby: Standby
) -> None:
    client = replica_client
    created = await client.post("/v1.1/Things", json=THING)
    thing = _path(created.headers["Location"])
    await eventually(lambda: _served_by(client, thing, "replica1"), client)
    reads = {
        "requests": [
            {"id": "1", "method": "get", "url": "Things"},
            {"id": "2", "method": "get", "url": "Sensors"},
        ]
    }
    answer = await client.post("/v1.1/$batch", json=reads)
    assert answer.status == 200
    assert answer.headers[DATABASE] == "replica1"
    assert [r["status"] for r in (await answer.json())["responses"]] == [200, 200]
    writes = {
        "requests": [
            {"id": "1", "method": "post", "url": "Things", "body": {"name": "n", "description": "d"}},
            {"id": "2", "method": "get", "url": "$1"},
        ]
    }
    answer = await client.post("/v1.1/$batch", json=writes)
    responses = (await answer.json())["responses"]
    assert DATABASE not in answer.headers
    assert [r["status"] for r in responses] == [201, 200]
    assert responses[1]["body"]["name"] == "n"  # read on the primary, in the batch's own connection


async def test_a_paused_standby_is_skipped_once_it_lags_and_used_again_after(
    replica_client: Any, standby: Standby
) -> None:
    client = replica_client
    await eventually(lambda: _served_by(client, "/v1.1/Things", "replica1"), client)
    await standby.execute("SELECT pg_wal_replay_pause()")
    try:
        paused_at = time.monotonic()
        created = await client.post("/v1.1/Things", json=THING)
        thing = _path(created.headers["Location"])
        first = await client.get(thing)
        if time.monotonic() - paused_at < MAX_LAG - 0.5:  # the standby may still serve: stale, then
            assert (first.status, first.headers.get(DATABASE)) in ((404, "replica1"), (200, "primary"))
        await eventually(lambda: _served_by(client, thing, "primary"), client)
        replica = await _replica(client)
        assert replica["state"] == "lagging"
        assert replica["replay_paused"] is True
        assert replica["lag_seconds"] > MAX_LAG
        assert replica["lag_bytes"] > 0
    finally:
        await standby.execute("SELECT pg_wal_replay_resume()")
    await eventually(lambda: _served_by(client, thing, "replica1"), client)
    assert (await _replica(client))["state"] == "ok"


async def test_a_stopped_standby_costs_no_request_and_is_used_again_when_back(
    replica_client: Any, standby: Standby
) -> None:
    client = replica_client
    thing = _path((await client.post("/v1.1/Things", json=THING)).headers["Location"])
    await eventually(lambda: _served_by(client, thing, "replica1"), client)
    answers: list[tuple[int, str]] = []
    stop = asyncio.Event()

    async def read_on() -> None:
        while not stop.is_set():
            response = await client.get(thing)
            await response.read()
            answers.append((response.status, response.headers.get(DATABASE, "")))

    readers = [asyncio.create_task(read_on()) for _ in range(4)]
    try:
        await asyncio.sleep(0.3)
        await asyncio.to_thread(standby.stop, "fast")  # disconnects every client, mid-read too
        await eventually(lambda: _served_by(client, thing, "primary"), client)
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        await asyncio.gather(*readers)
    assert {status for status, _ in answers} == {200}, "a read failed while the standby went away"
    assert answers[0][1] == "replica1"
    assert answers[-1][1] == "primary"
    assert (await _replica(client))["state"] == "unreachable"
    await asyncio.to_thread(standby.start)
    await eventually(lambda: _served_by(client, thing, "replica1"), client)
    assert (await _replica(client))["state"] == "ok"
