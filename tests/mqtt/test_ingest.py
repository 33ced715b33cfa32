# SPDX-License-Identifier: Apache-2.0
"""Create over MQTT (STA §14.2) through the real pipeline: private mosquitto, real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import asyncpg
import orjson
import pytest
import pytest_asyncio
from mqtt_helpers import (
    Broker,
    Collector,
    connect,
    count,
    hub_settings,
    make_entities,
    observation,
    publish_all,
    results,
    wait_for,
)
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub.ingest.dispatch import Message, PendingObservation
from hub.ingest.resolve import write_batch
from hub.mqtt.client import NOTIFICATION_MARK
from hub.mqtt.service import IngestService
from hub.store.write import Change


class Hub:
    """An in-process IngestService and the Changes it announced."""

    def __init__(self, service: IngestService) -> None:
        self.service = service
        self.changes: list[Change] = []


@pytest_asyncio.fixture
async def hub(clean_db: str, pool: asyncpg.Pool, broker: Broker, tmp_path: Path) -> AsyncIterator[Hub]:
    settings = hub_settings(clean_db, broker, tmp_path, ingest_batch_ms=20)
    changes: list[Change] = []
    service = IngestService(settings, pool, lambda batch: changes.extend(batch))
    service.start()
    await wait_for(service.client_ready)
    started = Hub(service)
    started.changes = changes
    try:
        yield started
    finally:
        await service.stop()


async def _stored(dsn: str) -> dict[str, asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        sql = "SELECT result::text AS result, datastream_id, multi_datastream_id, feature_of_interest_id"
        return {r["result"]: r for r in await conn.fetch(sql + " FROM observations")}
    finally:
        await conn.close()


async def test_create_via_each_sta_topic(hub: Hub, clean_db: str, broker: Broker) -> None:
    e = await make_entities(clean_db)
    ds, feature = e.datastreams[0], e.feature
    messages = [
        ("v1.1/Observations", observation(1, ds)),
        ("v1.0/Observations", observation(2, ds)),
        (f"v1.1/Datastreams({ds})/Observations", observation(3)),
        (f"v1.0/Datastreams({ds})/Observations", observation(4)),
        (f"v1.1/FeaturesOfInterest({feature})/Observations", observation(6, ds)),
        # A MultiDatastream needs an array result with one value per ObservedProperty.
        (
            "v1.1/Observations",
            orjson.dumps({"result": 7, "MultiDatastream": {"@iot.id": e.multi_datastream}}),
        ),
    ]
    publish_all(broker.port, messages)
    await wait_for(lambda: hub.service.stats.acknowledged >= len(messages))
    stored = await _stored(clean_db)
    assert set(stored) == {"1", "2", "3", "4", "6"}
    assert stored["6"]["feature_of_interest_id"] == feature
    assert stored["3"]["datastream_id"] == ds
    assert {r["feature_of_interest_id"] for r in stored.values()} == {feature + 1, feature}  # derived once
    assert dict(hub.service.stats.dead_lettered) == {"invalid": 1}
    assert len(hub.changes) == 5
    assert {c.operation for c in hub.changes} == {"create"}


async def test_create_via_multidatastream_topic(hub: Hub, clean_db: str, broker: Broker) -> None:
    e = await make_entities(clean_db)
    topic = f"v1.1/MultiDatastreams({e.multi_datastream})/Observations"
    publish_all(broker.port, [(topic, orjson.dumps({"result": [5, 6]}))])
    await wait_for(lambda: hub.service.stats.acknowledged >= 1)
    stored = await _stored(clean_db)
    assert set(stored) == {"[5, 6]"}
    assert stored["[5, 6]"]["multi_datastream_id"] == e.multi_datastream


def _bad_messages(ds: int) -> Sequence[tuple[str, bytes, str]]:
    """(topic, payload, expected cause) of one malformed message per cause."""
    return [
        ("v1.1/Observations", b"{not json", "bad_json"),
        ("v1.1/Observations", observation(0, 999_999), "unknown_datastream"),
        (f"v1.1/Datastreams({ds})/Observations", b'{"result": 1, "phenomenonTime": "yesterday"}', "invalid"),
        (f"v1.1/Datastreams({ds})/Observations", b'{"phenomenonTime": "2024-01-01T00:00:00Z"}', "invalid"),
        (f"v1.1/Datastreams({ds})/Observations", b'{"result": 1, "colour": "red"}', "invalid"),
        ("v1.1/Things(1)/Observations", observation(0), "invalid"),
        (f"v1.1/Datastreams({ds})/Observations", b'{"result": "' + b"x" * 70_000 + b'"}', "oversized"),
        (
            f"v1.1/Datastreams({ds})/Observations",
            orjson.dumps({"result": 1, "FeatureOfInterest": {"@iot.id": 424242}}),
            "unknown_feature",
        ),
    ]


async def test_mixed_stream_keeps_good_and_dead_letters_bad(
    clean_db: str, pool: asyncpg.Pool, broker: Broker, tmp_path: Path
) -> None:
    e = await make_entities(clean_db)
    ds = e.datastreams[0]
    settings = hub_settings(clean_db, broker, tmp_path, max_body_bytes=65_536, ingest_batch_size=50)
    service = IngestService(settings, pool, lambda changes: None)
    dead = Collector(broker.port, "twinhub/errors/#")
    service.start()
    try:
        await wait_for(service.client_ready)
        bad = _bad_messages(ds)
        messages: list[tuple[str, bytes]] = []
        for seq in range(1, 301):
            messages.append((f"v1.1/Datastreams({ds})/Observations", observation(seq)))
            if seq % 30 == 0:
                topic, payload, _ = bad[(seq // 30) % len(bad)]
                messages.append((topic, payload))
        publish_all(broker.port, messages)
        await wait_for(lambda: service.stats.acknowledged >= len(messages))
        await wait_for(lambda: len(dead.messages) >= 10)
    finally:
        await service.stop()
        dead.close()
    assert await results(clean_db) == list(range(1, 301))
    causes = [body["cause"] for _, body in dead.messages]
    expected = [bad[(seq // 30) % len(bad)][2] for seq in range(30, 301, 30)]
    assert sorted(causes) == sorted(expected)
    assert sum(service.stats.dead_lettered.values()) == 10
    for topic, body in dead.messages:
        assert topic == "twinhub/errors/" + body["topic"]
        assert body["reason"]


async def test_notifications_on_create_topics_are_not_created_again(
    hub: Hub, clean_db: str, broker: Broker
) -> None:
    e = await make_entities(clean_db)
    topic = f"v1.1/Datastreams({e.datastreams[0]})/Observations"
    echo = {"@iot.id": 1, "@iot.selfLink": "http://x/v1.1/Observations(1)", "result": 1}
    # The hub's own connection publishes (as the Notifier will): No Local keeps it from coming back.
    hub.service.publish(topic, orjson.dumps({"result": 2}), 1, False)
    publish_all(broker.port, [(topic, orjson.dumps(echo)), (topic, observation(3))])
    await wait_for(lambda: hub.service.stats.acknowledged >= 2)
    assert await results(clean_db) == [3]
    assert hub.service.stats.echoes == 1


async def test_messages_marked_as_notifications_are_echoes_unparsed(
    hub: Hub, clean_db: str, broker: Broker
) -> None:
    """The mark (MQTT 5 user property) is what counts, not the body: even a valid create body
    published with it (as a replica's notification would be) is dropped, counted as an echo."""
    e = await make_entities(clean_db)
    topic = f"v1.1/Datastreams({e.datastreams[0]})/Observations"
    marked = Properties(PacketTypes.PUBLISH)
    marked.UserProperty = [NOTIFICATION_MARK]
    other = Properties(PacketTypes.PUBLISH)
    other.UserProperty = [("twinhub", "something-else")]
    client = connect(broker.port)
    try:
        for payload, props in ((observation(1), marked), (b"not json", marked), (observation(2), other)):
            client.publish(topic, payload, qos=1, properties=props).wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()
    await wait_for(lambda: hub.service.stats.acknowledged >= 3)
    assert await results(clean_db) == [2]
    assert hub.service.stats.echoes == 2
    assert not hub.service.stats.dead_lettered


async def test_with_a_share_group_the_hubs_own_notifications_come_back_as_echoes(
    clean_db: str, pool: asyncpg.Pool, broker: Broker, tmp_path: Path
) -> None:
    """No Local is not allowed on a shared subscription: the mark keeps them out."""
    settings = hub_settings(clean_db, broker, tmp_path, ingest_batch_ms=20, mqtt_share_group="g")
    service = IngestService(settings, pool, lambda batch: None)
    service.start()
    try:
        await wait_for(service.client_ready)
        e = await make_entities(clean_db)
        topic = f"v1.1/Datastreams({e.datastreams[0]})/Observations"
        service.publish(topic, observation(5), 1, False)  # as the Notifier publishes
        publish_all(broker.port, [(topic, observation(6))])
        await wait_for(lambda: service.stats.acknowledged >= 2)
        assert await results(clean_db) == [6]
        assert service.stats.echoes == 1
    finally:
        await service.stop()


async def test_duplicates_are_stored_twice_by_default(hub: Hub, clean_db: str, broker: Broker) -> None:
    """Default: no dedup. The same payload published twice (or redelivered) is two Observations."""
    e = await make_entities(clean_db)
    payload = orjson.dumps({"result": 9, "phenomenonTime": "2024-01-01T00:00:00Z"})
    topic = f"v1.1/Datastreams({e.datastreams[0]})/Observations"
    publish_all(broker.port, [(topic, payload), (topic, payload)])
    await wait_for(lambda: hub.service.stats.acknowledged >= 2)
    assert await count(clean_db) == 2


async def test_a_deduplicating_datastream_stores_a_redelivered_observation_once(
    hub: Hub, clean_db: str, broker: Broker
) -> None:
    """Opt-in: {"twinhub:deduplicate": true} in a Datastream's properties drops an Observation whose
    phenomenonTime that Datastream already has (in the store or earlier in the batch)."""
    e = await make_entities(clean_db)
    stream = e.datastreams[0]
    conn = await asyncpg.connect(clean_db)
    try:
        await conn.execute(
            """UPDATE datastreams SET properties = '{"twinhub:deduplicate": true}' WHERE id = $1""", stream
        )
    finally:
        await conn.close()
    topic = f"v1.1/Datastreams({stream})/Observations"
    first = orjson.dumps({"result": 9, "phenomenonTime": "2024-01-01T00:00:00Z"})
    other = orjson.dumps({"result": 10, "phenomenonTime": "2024-01-01T00:05:00Z"})
    publish_all(broker.port, [(topic, first), (topic, first), (topic, other)])
    await wait_for(lambda: hub.service.stats.acknowledged >= 3)
    publish_all(broker.port, [(topic, first)])  # a later redelivery, in another batch
    await wait_for(lambda: hub.service.stats.acknowledged >= 4)
    assert sorted(await results(clean_db)) == [9, 10]
    assert not hub.service.stats.dead_lettered  # duplicates are acknowledged, not rejected


@pytest.mark.parametrize("protocol", ["3.1.1"])
async def test_mqtt_311(
    protocol: str, clean_db: str, pool: asyncpg.Pool, broker: Broker, tmp_path: Path
) -> None:
    e = await make_entities(clean_db)
    settings = hub_settings(clean_db, broker, tmp_path, mqtt_protocol=protocol)
    service = IngestService(settings, pool, lambda changes: None)
    service.start()
    try:
        await wait_for(service.client_ready)
        topic = f"v1.1/Datastreams({e.datastreams[0]})/Observations"
        publish_all(broker.port, [(topic, observation(i)) for i in range(100)])
        await wait_for(lambda: service.stats.committed >= 100)
    finally:
        await service.stop()
    assert await results(clean_db) == list(range(100))


async def test_a_batch_caches_plans_only_within_its_own_transaction(
    clean_db: str, pool: asyncpg.Pool
) -> None:
    """The batch lets PostgreSQL keep its foreign-key checks' plans (SET LOCAL); the pooled
    connection goes back to planning every statement afresh, as HTTP reads need."""
    e = await make_entities(clean_db)
    message = Message(f"v1.1/Datastreams({e.datastreams[0]})/Observations", b"", 1, 1, 0.0)
    pending = PendingObservation(7, None, datastream_id=e.datastreams[0])
    async with pool.acquire() as conn:
        before = await conn.fetchval("SELECT current_setting('plan_cache_mode')")
        outcome = await write_batch(conn, [(message, [pending])])
        after = await conn.fetchval("SELECT current_setting('plan_cache_mode')")
    assert [len(stored) for _, stored in outcome.stored] == [1]
    assert before == after == "force_custom_plan"
    assert await results(clean_db) == [7]
