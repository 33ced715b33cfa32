# SPDX-License-Identifier: Apache-2.0
"""/live carries the commits of every hub process on the database, not only its own (issue 14).

Two `twinhub serve` processes share one database and no broker: an Observation posted to the one
appears on the other's event stream (relayed by PostgreSQL LISTEN/NOTIFY) within a second. The
relay's payloads stay under PostgreSQL's 8000-byte NOTIFY limit however large the batch.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hub_process import request, serving
from viewer_data import STATIONS, thing_body

from hub.changes.relay import PAYLOAD_LIMIT, decode, encode
from hub.store.write import Change
from schemas.model import OBSERVATION, THING

WITHIN = 1.0  # seconds from the POST to the event on the other process (the promise)
GUARD = 20.0  # seconds before the test gives up waiting instead of hanging


async def next_observation(stream: aiohttp.ClientResponse, observation_id: int) -> dict[str, Any]:
    """The next event on `stream` that carries the Observation `observation_id`."""
    async with asyncio.timeout(GUARD):
        while True:
            line = (await stream.content.readline()).decode()
            if line.startswith("data: "):
                event: dict[str, Any] = json.loads(line[6:])
                if event["payload"].get("@iot.id") == observation_id:
                    return event


async def test_an_observation_committed_by_one_process_reaches_live_on_the_other(
    fresh_dsn: str, tmp_path: Path
) -> None:
    with serving(fresh_dsn, tmp_path / "a") as writer, serving(fresh_dsn, tmp_path / "b") as viewer:
        city, name, domain, lon, lat, quantity, symbol, unit, _ = STATIONS[0]
        body = thing_body(city, name, domain, lon, lat, quantity, symbol, unit)
        thing = await asyncio.to_thread(request, "POST", f"{writer}/v1.1/Things", body)
        streams = await asyncio.to_thread(
            request, "GET", f"{writer}/v1.1/Things({thing['@iot.id']})/Datastreams"
        )
        datastream = streams["value"][0]["@iot.id"]
        async with aiohttp.ClientSession() as session:
            live = f"{viewer}/live?topic=v1.1/%2B/Observations"
            async with session.get(live, timeout=aiohttp.ClientTimeout(total=None)) as stream:
                assert stream.status == 200
                async with asyncio.timeout(GUARD):
                    while await stream.content.readline() != b"\n":  # the opening comment
                        pass
                for value in (21.5, 22.0, 22.5):
                    started = time.monotonic()
                    posted = await asyncio.to_thread(
                        request,
                        "POST",
                        f"{writer}/v1.1/Datastreams({datastream})/Observations",
                        {"result": value},
                    )
                    event = await next_observation(stream, posted["@iot.id"])
                    took = time.monotonic() - started
                    assert event["payload"]["result"] == value
                    assert event["topic"] in (
                        f"v1.1/Datastreams({datastream})/Observations",
                        "v1.1/FeaturesOfInterest(1)/Observations",
                    )
                    # rendered by the viewer's process, as its GET would: its own links
                    assert event["payload"]["@iot.selfLink"].startswith(f"{viewer}/v1.1/")
                    assert took < WITHIN, f"the other process's Observation took {took:.2f} s"


def test_relay_payloads_carry_ids_only_and_stay_under_the_notify_limit() -> None:
    changes = [Change(OBSERVATION, 10**15 + n, "create") for n in range(2000)] + [Change(THING, 7, "update")]
    payloads = encode(changes, "origin-1")
    assert len(payloads) > 1
    assert all(len(p.encode()) < PAYLOAD_LIMIT <= 8000 for p in payloads)
    heard: list[Change] = []
    for payload in payloads:
        origin, part = decode(payload)
        assert origin == "origin-1"
        heard.extend(part)
    assert heard == changes


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ('{"c": []}', "no origin"),
        ('{"o": "x", "c": [["Thing", "create"]]}', "is not [type, operation, id]"),
        ('{"o": "x", "c": [["Spaceship", "create", 1]]}', "unknown entity type 'Spaceship'"),
    ],
)
def test_a_foreign_payload_is_refused_by_name(payload: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        decode(payload)
