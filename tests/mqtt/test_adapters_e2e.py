# SPDX-License-Identifier: Apache-2.0
"""End to end: a device's own payload published to the broker shows up, provisioned and
unit-annotated, in the HTTP API (issue 5: SenML, TTN, Shelly and the traffic counter)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from mqtt_helpers import Broker, hub_settings, publish_all, wait_for

from hub.app import MQTT, build_app

SAMPLES = Path(__file__).parent.parent / "ingest_adapters" / "samples"


@pytest_asyncio.fixture
async def hub(clean_db: str, broker: Broker, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    settings = hub_settings(clean_db, broker, tmp_path, ingest_batch_ms=20)
    async with TestClient(TestServer(build_app(settings))) as client:
        service = client.server.app[MQTT]
        await wait_for(service.client_ready)
        yield client


async def _streams(client: TestClient[Any, Any]) -> dict[str, dict[str, Any]]:
    """Datastream name -> Datastream with its Thing, ObservedProperty and Observations."""
    query = "$expand=Thing,ObservedProperty,Observations($orderby=phenomenonTime asc)&$top=200"
    response = await client.get(f"/v1.1/Datastreams?{query}")
    assert response.status == 200
    return {d["name"]: d for d in (await response.json())["value"]}


# (sample file, topic, adapter, some Datastreams: name part -> (UCUM symbol, first results in time order))
CASES = [
    (
        "senml_pack.json",
        "senml/urn:dev:mac:0024befffe804ff1",
        "senml",
        {"CO2": ("[ppm]", [612, 655]), "Active power": ("W", [1432.5])},
    ),
    (
        "ttn_v3_uplink.json",
        "v3/twinhub-climate@ttn/devices/lht65n-courtyard-03/up",
        "ttn",
        {"Air temperature": ("Cel", [21.62]), "Relative humidity": ("%", [48.7])},
    ),
    (
        "shelly_gen2_plugs_notifystatus.json",
        "shellyplusplugs-e86beae1e3c4/events/rpc",
        "shelly",
        {"Active power": ("W", [1843.6]), "Voltage": ("V", [229.8])},
    ),
    (
        "telraam_traffic_report.json",
        "telraam/9000004263/traffic",
        "telraam",
        {"Cars": ("/h", [397.06])},
    ),
]


@pytest.mark.parametrize(("sample", "topic", "adapter", "expected"), CASES, ids=[c[2] for c in CASES])
async def test_device_payload_becomes_sensorthings_entities(
    hub: TestClient[Any, Any], broker: Broker, sample: str, topic: str, adapter: str, expected: dict[str, Any]
) -> None:
    publish_all(broker.port, [(topic, (SAMPLES / sample).read_bytes())])

    async def arrived() -> bool:
        streams = await _streams(hub)
        return all(
            any(part in name and s["Observations"] for name, s in streams.items()) for part in expected
        )

    await wait_for(arrived, within=10)
    streams = await _streams(hub)
    for part, (symbol, results) in expected.items():
        # Several streams of one quantity (phases, left/right) are told apart by their stream name.
        matches = [
            s
            for name, s in streams.items()
            if part in name and [o["result"] for o in s["Observations"]][: len(results)] == results
        ]
        assert matches, f"no Datastream '{part}' with results {results}: {sorted(streams)}"
        stream = matches[0]
        assert stream["unitOfMeasurement"]["symbol"] == symbol
        assert stream["Thing"]["properties"]["adapter"] == adapter
        assert stream["ObservedProperty"]["definition"].startswith("http://qudt.org/vocab/quantitykind/")


async def test_same_device_again_reuses_its_entities(hub: TestClient[Any, Any], broker: Broker) -> None:
    payload = (SAMPLES / "shelly_gen2_plugs_notifystatus.json").read_bytes()
    publish_all(broker.port, [("shellyplusplugs-e86beae1e3c4/events/rpc", payload)])

    async def count(path: str) -> int:
        response = await hub.get(f"/v1.1/{path}?$count=true&$top=0")
        return int((await response.json())["@iot.count"])

    await wait_for(lambda: _positive(count("Observations")), within=10)
    first = (await count("Things"), await count("Datastreams"), await count("Observations"))
    publish_all(broker.port, [("shellyplusplugs-e86beae1e3c4/events/rpc", payload)])
    await wait_for(lambda: _more(count("Observations"), first[2]), within=10)
    assert (await count("Things"), await count("Datastreams")) == first[:2]


async def _positive(value: Any) -> bool:
    return int(await value) > 0


async def _more(value: Any, than: int) -> bool:
    return int(await value) > than


async def test_unreadable_payload_goes_to_the_dead_letter_topic(
    hub: TestClient[Any, Any], broker: Broker
) -> None:
    from mqtt_helpers import Collector

    collector = Collector(broker.port, "twinhub/errors/#")
    try:
        publish_all(broker.port, [("v3/app@ttn/devices/x/up", b'{"end_device_ids": {}}')])
        await wait_for(lambda: collector.messages, within=10)
        topic, letter = collector.messages[0]
        assert topic == "twinhub/errors/v3/app@ttn/devices/x/up"
        assert letter["reason"].startswith("ttn: ")
    finally:
        collector.close()


async def test_service_root_lists_the_mqtt_classes_with_the_broker(
    hub: TestClient[Any, Any], broker: Broker
) -> None:
    body = await (await hub.get("/v1.1")).json()
    settings = body["serverSettings"]
    for uri in (
        "http://www.opengis.net/spec/iot_sensing/1.1/req/create-observations-via-mqtt/observations-creation",
        "http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates",
    ):
        assert uri in settings["conformance"]
        assert settings[uri]["endpoints"] == [broker.url]


async def test_ready_reports_the_broker_and_ingest(hub: TestClient[Any, Any]) -> None:
    response = await hub.get("/ready")
    assert response.status == 200
    checks = (await response.json())["checks"]
    assert checks["database"] is True
    assert checks["broker"] is True
    assert checks["ingest_stalled"] is False


async def test_service_root_advertises_the_public_broker_urls(
    clean_db: str, broker: Broker, tmp_path: Path
) -> None:
    public = ("wss://twin.example.org/mqtt", "mqtts://twin.example.org:8883")
    settings = hub_settings(clean_db, broker, tmp_path, mqtt_public_urls=",".join(public))
    async with TestClient(TestServer(build_app(settings))) as client:
        body = await (await client.get("/v1.1")).json()
    uri = "http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates"
    assert body["serverSettings"][uri]["endpoints"] == list(public)
