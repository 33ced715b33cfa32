# SPDX-License-Identifier: Apache-2.0
"""GET /live also carries what the MQTT ingest of the same process commits (issue 6's viewer)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from mqtt_helpers import Broker, hub_settings, publish_all, wait_for

from hub.app import MQTT, build_app

SAMPLES = Path(__file__).parent.parent / "ingest_adapters" / "samples"
GUARD = 30.0  # seconds before the test gives up waiting instead of hanging


@pytest_asyncio.fixture
async def hub(clean_db: str, broker: Broker, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    settings = hub_settings(clean_db, broker, tmp_path, ingest_batch_ms=20)
    async with TestClient(TestServer(build_app(settings))) as client:
        await wait_for(client.server.app[MQTT].client_ready)
        yield client


async def events(stream: Any, until: int) -> list[dict[str, Any]]:
    """The next `until` data events of an open event stream."""
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(GUARD):
        while len(found) < until:
            line = (await stream.content.readline()).decode()
            if line.startswith("data: "):
                found.append(json.loads(line[6:]))
    return found


async def test_observations_ingested_over_mqtt_reach_the_event_stream(
    hub: TestClient[Any, Any], broker: Broker
) -> None:
    stream = await hub.get("/live", params={"topic": "v1.1/+/Observations"})
    assert stream.status == 200
    async with asyncio.timeout(GUARD):
        while await stream.content.readline() != b"\n":  # the opening comment: subscribed
            pass

    # A device in its own format: the Shelly adapter provisions its Datastreams and stores readings.
    payload = (SAMPLES / "shelly_gen2_plugs_notifystatus.json").read_bytes()
    publish_all(broker.port, [("shellyplusplugs-e86beae1e3c4/events/rpc", payload)])
    received = await events(stream, 1)
    assert received[0]["topic"].startswith("v1.1/")
    assert received[0]["topic"].endswith("/Observations")
    assert "result" in received[0]["payload"]

    # STA JSON over MQTT to a Datastream of a Thing with a Location (its FeatureOfInterest).
    thing = {
        "name": "Rathausmarkt",
        "description": "climate station",
        "properties": {"city": "Hamburg", "domain": "climate"},
        "Locations": [
            {
                "name": "Rathausmarkt",
                "description": "town hall square",
                "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [9.9925, 53.5503]},
            }
        ],
        "Datastreams": [
            {
                "name": "Air temperature",
                "description": "2 m above ground",
                "unitOfMeasurement": {"name": "degree Celsius", "symbol": "Cel", "definition": "ucum:Cel"},
                "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                "Sensor": {"name": "SHT31", "description": "-", "encodingType": "text/html", "metadata": "-"},
                "ObservedProperty": {"name": "Air temperature", "description": "-", "definition": "t"},
            }
        ],
    }
    assert (await hub.post("/v1.1/Things", json=thing)).status == 201
    streams = await (await hub.get("/v1.1/Datastreams?$select=id&$filter=name eq 'Air temperature'")).json()
    target = streams["value"][0]["@iot.id"]
    body = json.dumps({"phenomenonTime": "2026-03-05T10:14:00Z", "result": 12.5}).encode()
    publish_all(broker.port, [(f"v1.1/Datastreams({target})/Observations", body)])
    topics: set[str] = set()
    async with asyncio.timeout(GUARD):
        while f"v1.1/Datastreams({target})/Observations" not in topics:
            (event,) = await events(stream, 1)
            if event["payload"].get("result") == 12.5:
                topics.add(event["topic"])
    stream.close()
