# SPDX-License-Identifier: Apache-2.0
"""Conformance class "Receive updates via MQTT" (OGC 18-088 §14.1; FROST statests c08): subscriptions
with `$select`, through a whole hub on a private mosquitto (docs/mqtt-subscriptions.md, "$select topics")."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from helpers import create, observation, populate, ref, send

from hub.app import MQTT, build_app

sys.path.insert(0, str(Path(__file__).parent.parent / "mqtt"))  # the private broker of tests/mqtt
from mqtt_helpers import Broker, Collector, hub_settings, wait_for

TIME = "2026-12-07T13:00:00Z"


@pytest_asyncio.fixture
async def hub_factory(clean_db: str, broker: Broker, tmp_path: Path) -> AsyncIterator[Any]:
    """Start a whole hub (HTTP and MQTT) with settings changes; the standard graph is created."""
    clients: list[TestClient[Any, Any]] = []

    async def start(**changes: Any) -> TestClient[Any, Any]:
        settings = hub_settings(clean_db, broker, tmp_path, ingest_batch_ms=20, **changes)
        client = TestClient(TestServer(build_app(settings)))
        await client.start_server()
        clients.append(client)
        await wait_for(client.server.app[MQTT].client_ready)
        await populate(client)
        return client

    yield start
    for client in clients:
        await client.close()


@pytest.mark.parametrize("scope", ["streams", "all"])
async def test_select_result_and_phenomenon_time_by_default(
    hub_factory: Any, broker: Broker, scope: str
) -> None:
    """The issue's subscription: `v1.1/Datastreams(1)/Observations?$select=result,phenomenonTime`
    receives just those two properties when an Observation is created, in either order; the
    Observation's other topics carry the forms with mqtt_select_scope "all" only."""
    hub = await hub_factory(mqtt_select_scope=scope)
    topics = [
        "v1.1/Datastreams(1)/Observations?$select=result,phenomenonTime",
        "v1.1/Datastreams(1)/Observations?$select=phenomenonTime,result",
        "v1.1/Observations?$select=result,phenomenonTime",
        "v1.1/FeaturesOfInterest(1)/Observations?$select=result,phenomenonTime",
    ]
    everywhere = scope == "all"
    expected = topics if everywhere else topics[:2]
    collectors = [Collector(broker.port, topic) for topic in topics]
    plain = Collector(broker.port, "v1.1/Observations")
    try:
        created = await create(hub, "Observations", observation(42.5, TIME, Datastream=ref(1)))
        await wait_for(lambda: all(mine(c) for c in collectors[: len(expected)]) and mine(plain), within=10)
        for topic, collector in zip(topics, collectors, strict=True):
            if topic not in expected:  # the plain topic's notification came: these would have, too
                assert collector.messages == []
                continue
            # populate's Observations may arrive too (their notifications, the retained latest)
            assert {received for received, _ in collector.messages} == {topic}
            assert all(set(payload) == {"result", "phenomenonTime"} for _, payload in collector.messages)
            assert mine(collector) == [{"result": 42.5, "phenomenonTime": TIME}]
        assert list(mine(collectors[1])[0]) == ["phenomenonTime", "result"]
    finally:
        for collector in (*collectors, plain):
            collector.close()
    assert created == 3


def mine(collector: Collector, time: str = TIME) -> list[Any]:
    """The payloads received for Observations at `time` (the test's own)."""
    return [payload for _, payload in collector.messages if payload.get("phenomenonTime", time) == time]


async def test_the_latest_observation_is_retained_on_its_select_topic(
    hub_factory: Any, broker: Broker
) -> None:
    hub = await hub_factory()
    topic = "v1.1/Datastreams(1)/Observations?$select=result,phenomenonTime"
    live = Collector(broker.port, topic)
    try:
        await create(hub, "Observations", observation(7, TIME, Datastream=ref(1)))
        await wait_for(lambda: mine(live), within=10)  # published by now, after populate's
    finally:
        live.close()
    late = Collector(broker.port, topic)  # subscribes after the publication: gets the retained one
    try:
        await wait_for(lambda: late.messages, within=10)
        assert late.messages == [(topic, {"result": 7, "phenomenonTime": TIME})]
    finally:
        late.close()


async def test_configured_select_forms_and_nothing_else(hub_factory: Any, broker: Broker) -> None:
    """A form is published only when configured; it applies to every entity type that has its names."""
    hub = await hub_factory(mqtt_select_topics=("result", "id,name"))
    wanted = Collector(broker.port, "v1.1/Datastreams(1)/Observations?$select=result")
    named = Collector(broker.port, "v1.1/Things(1)?$select=id,name")
    default = Collector(broker.port, "v1.1/Datastreams(1)/Observations?$select=result,phenomenonTime")
    try:
        await create(hub, "Observations", observation(8, TIME, Datastream=ref(1)))
        status, _, _ = await send(hub, "PATCH", "Things(1)", {"name": "Renamed station"})
        assert status == 200
        await wait_for(lambda: {"result": 8} in [p for _, p in wanted.messages] and named.messages, within=10)
        assert all(list(payload) == ["result"] for _, payload in wanted.messages)
        assert named.messages[-1][1] == {"@iot.id": 1, "name": "Renamed station"}
        assert default.messages == []  # not configured here
    finally:
        for collector in (wanted, named, default):
            collector.close()


def test_select_topics_setting_is_checked_and_split() -> None:
    from hub.config import ConfigError, load_settings

    env = {"TWINHUB_MQTT_SELECT_TOPICS": "result, phenomenonTime;name"}
    assert load_settings(environ=env).mqtt_select_topics == ("result,phenomenonTime", "name")
    assert load_settings(environ={"TWINHUB_MQTT_SELECT_TOPICS": ";"}).mqtt_select_topics == ()
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"TWINHUB_MQTT_SELECT_TOPICS": "result,colour"})
    assert "colour" in str(info.value)
    assert load_settings(environ={}).mqtt_select_scope == "streams"
    assert load_settings(environ={"TWINHUB_MQTT_SELECT_SCOPE": "all"}).mqtt_select_scope == "all"
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"TWINHUB_MQTT_SELECT_SCOPE": "everywhere"})
    assert "TWINHUB_MQTT_SELECT_SCOPE" in str(info.value)
    assert "everywhere" in str(info.value)
