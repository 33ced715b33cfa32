# SPDX-License-Identifier: Apache-2.0
"""Conformance class "Create Observations via MQTT" (OGC 18-088 §14.2; FROST statests c07, ETS
Capability7): the bodies the suites publish, through a whole hub (HTTP and MQTT) on a private
mosquitto, checked over HTTP; a wrong body is dead-lettered with its reason, never lost in silence."""

from __future__ import annotations

import random
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from helpers import count, create, datastream, feature_of_interest, get_ok, populate, ref

from hub.app import MQTT, build_app

sys.path.insert(0, str(Path(__file__).parent.parent / "mqtt"))  # the private broker of tests/mqtt
from mqtt_helpers import Broker, Collector, hub_settings, publish_all, wait_for

SUITE_TIME = "2015-03-01T02:40:00+02:00"


@pytest_asyncio.fixture
async def hub(clean_db: str, broker: Broker, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    """A whole hub (HTTP and MQTT) with the standard graph: Datastream 1, FeatureOfInterest 1."""
    settings = hub_settings(clean_db, broker, tmp_path, ingest_batch_ms=20)
    async with TestClient(TestServer(build_app(settings))) as client:
        await wait_for(client.server.app[MQTT].client_ready)
        await populate(client)
        yield client


def suite_observation(**links: Any) -> dict[str, Any]:
    """The Observation FROST's and the OGC suite's Capability 7 tests publish (a random long result,
    kept below 2^53 here so that it also filters exactly as a double)."""
    return {
        "phenomenonTime": SUITE_TIME,
        "validTime": "2016-01-01T01:01:01.000Z/2016-01-01T23:59:59.000Z",
        "result": random.randrange(2**40, 2**52),
        "parameters": {"param1": "some value1", "param2": "some value2"},
        **links,
    }


async def arrived(client: TestClient[Any, Any], result: Any, within: float = 10) -> dict[str, Any]:
    """The Observation with `result`, expanded, once it is readable over HTTP (at most `within` s)."""
    query = "$expand=Datastream($select=id),FeatureOfInterest&$filter=result eq " + str(result)
    found: list[dict[str, Any]] = []

    async def stored() -> bool:
        found[:] = (await get_ok(client, f"Observations?{query}"))["value"]
        return bool(found)

    await wait_for(stored, within=within)
    assert len(found) == 1
    return found[0]


async def test_create_on_observations_with_the_datastream_in_the_body(
    hub: TestClient[Any, Any], broker: Broker
) -> None:
    body = suite_observation(Datastream=ref(1), FeatureOfInterest=ref(1))
    publish_all(broker.port, [("v1.1/Observations", orjson.dumps(body))])
    stored = await arrived(hub, body["result"])
    assert stored["Datastream"] == {"@iot.id": 1}
    assert stored["FeatureOfInterest"]["@iot.id"] == 1
    assert stored["phenomenonTime"] == "2015-03-01T00:40:00Z"
    assert stored["validTime"] == "2016-01-01T01:01:01Z/2016-01-01T23:59:59Z"
    assert stored["parameters"] == body["parameters"]


async def test_create_with_a_deep_inserted_feature_of_interest(
    hub: TestClient[Any, Any], broker: Broker
) -> None:
    feature = feature_of_interest("Weather station 7")
    messages = [
        ("v1.1/Observations", orjson.dumps(suite_observation(Datastream=ref(1), FeatureOfInterest=feature))),
        ("v1.1/Datastreams(1)/Observations", orjson.dumps(suite_observation(FeatureOfInterest=feature))),
    ]
    publish_all(broker.port, messages)
    for _, payload in messages:
        stored = await arrived(hub, orjson.loads(payload)["result"])
        assert stored["Datastream"] == {"@iot.id": 1}
        assert stored["FeatureOfInterest"]["name"] == "Weather station 7"
        assert stored["FeatureOfInterest"]["feature"] == feature["feature"]
    assert await count(hub, "FeaturesOfInterest") == 3  # the generated one, and one per message


async def test_create_with_a_deep_inserted_datastream_and_feature(
    hub: TestClient[Any, Any], broker: Broker
) -> None:
    """Capability 7's checkCreateObservationWithDeepInsert: a new Datastream with a new Thing,
    Sensor and ObservedProperty, and a new FeatureOfInterest, all in one message."""
    stream = datastream("test datastream", thing_id=None, sensor_id=None, observed_property_id=None)
    stream |= {
        "Thing": {"name": "Test Thing", "description": "This is a Test Thing"},
        "ObservedProperty": {
            "name": "Luminous Flux",
            "definition": "http://qudt.org/flux",
            "description": "flux",
        },
        "Sensor": {
            "name": "Acme Fluxomatic 1000",
            "description": "Acme Fluxomatic",
            "encodingType": "http://schema.org/description",
            "metadata": "Light flux sensor",
        },
    }
    body = suite_observation(Datastream=stream, FeatureOfInterest=feature_of_interest("A weather station."))
    announced = Collector(broker.port, "v1.1/Datastreams")  # new entities are notified like HTTP creates
    try:
        publish_all(broker.port, [("v1.1/Observations", orjson.dumps(body))])
        stored = await arrived(hub, body["result"])
        await wait_for(lambda: announced.messages, within=10)
    finally:
        announced.close()
    assert [payload["name"] for _, payload in announced.messages] == ["test datastream"]
    created = await get_ok(
        hub, f"Datastreams({stored['Datastream']['@iot.id']})?$expand=Thing,Sensor,ObservedProperty"
    )
    assert created["name"] == "test datastream"
    assert created["Thing"]["name"] == "Test Thing"
    assert created["Sensor"]["name"] == "Acme Fluxomatic 1000"
    assert created["ObservedProperty"]["name"] == "Luminous Flux"
    assert stored["FeatureOfInterest"]["name"] == "A weather station."


@pytest.mark.parametrize(
    ("links", "reason"),
    [
        ({"Datastream": ref(1), "FeatureOfInterest": {"name": "no feature"}}, "FeatureOfInterest"),
        (
            {"Datastream": datastream("orphan", thing_id=999), "FeatureOfInterest": ref(1)},
            "Thing 999 does not exist",
        ),
        ({"Datastream": {"name": "half"}, "FeatureOfInterest": ref(1)}, "Datastream"),
        ({"FeatureOfInterest": feature_of_interest()}, "exactly one Datastream or MultiDatastream"),
    ],
    ids=["feature without geometry", "datastream of a missing thing", "datastream incomplete", "no stream"],
)
async def test_a_wrong_deep_insert_is_dead_lettered_with_its_reason_and_the_batch_goes_on(
    hub: TestClient[Any, Any], broker: Broker, links: dict[str, Any], reason: str
) -> None:
    dead = Collector(broker.port, "twinhub/errors/#")
    try:
        bad, good = suite_observation(**links), suite_observation(Datastream=ref(1))
        publish_all(broker.port, [("v1.1/Observations", orjson.dumps(m)) for m in (bad, good)])
        await arrived(hub, good["result"])
        await wait_for(lambda: dead.messages, within=10)
    finally:
        dead.close()
    [(topic, letter)] = dead.messages
    assert topic == "twinhub/errors/v1.1/Observations"
    assert letter["cause"] == "invalid"
    assert reason in letter["reason"]
    assert orjson.loads(letter["payload"])["result"] == bad["result"]
    assert await count(hub, "Observations") == 3  # populate's two and the good one
    assert await count(hub, "Datastreams") == 1  # nothing of the refused message was kept
    assert await count(hub, "Things") == 1


async def test_http_and_mqtt_creates_of_the_same_body_agree(
    hub: TestClient[Any, Any], broker: Broker
) -> None:
    body = suite_observation(Datastream=ref(1), FeatureOfInterest=feature_of_interest("Same"))
    over_http = await create(hub, "Observations", body)
    publish_all(broker.port, [("v1.1/Observations", orjson.dumps(body))])

    async def both() -> bool:
        return await count(hub, f"Observations?$filter=result eq {body['result']}") == 2

    await wait_for(both, within=10)
    query = f"Observations?$filter=result eq {body['result']}&$expand=FeatureOfInterest($select=name,feature)"
    first, second = (await get_ok(hub, query))["value"]
    assert over_http in (first["@iot.id"], second["@iot.id"])
    for key in ("phenomenonTime", "validTime", "parameters", "result", "FeatureOfInterest"):
        assert first[key] == second[key], key
