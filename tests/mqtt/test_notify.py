# SPDX-License-Identifier: Apache-2.0
"""MQTT notifications (OGC 18-088 §14.1): the topic table, the queue, and end to end over a real broker.

The integration tests need the mosquitto broker of the dev machine (TWINHUB_TEST_MQTT, default
127.0.0.1:1883) and publish under a unique prefix per test, so they never meet other traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import asyncpg
import orjson
import paho.mqtt.client as mqtt
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from hub.app import FEED
from hub.changes.feed import ChangeFeed
from hub.changes.notice import Notice, base_url_of
from hub.changes.topics import members, plan, related_queries, selected, topics_for
from hub.config import Settings
from hub.mqtt.notify import Notifier, _selected_payloads, version_prefixes
from hub.store.write import Change
from schemas.model import (
    ALL_TYPES,
    DATASTREAM,
    ENTITY_TYPES,
    HISTORICAL_LOCATION,
    LOCATION,
    OBSERVATION,
    SENSOR,
    THING,
    EntityType,
)

BROKER = os.environ.get("TWINHUB_TEST_MQTT", "127.0.0.1:1883")
BASE_URL = "http://hub.example/sta"
WAIT = 10.0  # seconds any single expected message may take

# ---- the topic table (pure) ---------------------------------------------------------------------

OBS = {"id": 42, "datastream_id": 7, "multi_datastream_id": None, "feature_of_interest_id": 3}
OBS_LATEST = {**OBS, "Datastream@latest": [7]}
OBS_IN_MULTI = {**OBS, "datastream_id": None, "multi_datastream_id": 5, "MultiDatastream@latest": [5]}
DS = {"id": 7, "thing_id": 1, "sensor_id": 2, "observed_property_id": 4}
LOC = {
    "id": 2,
    "Things": [1],
    "Things/Datastreams": [7, 8],
    "Things/MultiDatastreams": [5],
    "HistoricalLocations": [9],
}
THING_ROW = {"id": 1, "name": "Station", "description": "On the roof", "properties": None, "Locations": [2]}
HL = {"id": 9, "thing_id": 1, "Locations": [2]}
OBS_SET = [("v1.1/Observations", False), ("v1.1/Observations(42)", False)]
LOC_COLLECTIONS = [
    ("v1.1/Things(1)/Locations", False),
    ("v1.1/Datastreams(7)/Thing/Locations", False),
    ("v1.1/Datastreams(8)/Thing/Locations", False),
    ("v1.1/MultiDatastreams(5)/Thing/Locations", False),
]  # not HistoricalLocations(9)/Locations: see UNPUBLISHED

TOPIC_TABLE: list[tuple[str, EntityType, dict[str, Any], str, list[tuple[str, bool]]]] = [
    (
        "latest-observation-retained",
        OBSERVATION,
        OBS_LATEST,
        "create",
        [
            *OBS_SET,
            ("v1.1/Datastreams(7)/Observations", True),
            ("v1.1/FeaturesOfInterest(3)/Observations", False),
        ],
    ),
    (
        "older-observation-not-retained",
        OBSERVATION,
        OBS,
        "create",
        [
            *OBS_SET,
            ("v1.1/Datastreams(7)/Observations", False),
            ("v1.1/FeaturesOfInterest(3)/Observations", False),
        ],
    ),
    (
        "observation-of-multidatastream",
        OBSERVATION,
        OBS_IN_MULTI,
        "create",
        [
            *OBS_SET,
            ("v1.1/MultiDatastreams(5)/Observations", True),
            ("v1.1/FeaturesOfInterest(3)/Observations", False),
        ],
    ),
    (
        "datastream-in-its-parents",
        DATASTREAM,
        DS,
        "create",
        [
            ("v1.1/Datastreams", False),
            ("v1.1/Datastreams(7)", False),
            ("v1.1/Things(1)/Datastreams", False),
            ("v1.1/Sensors(2)/Datastreams", False),
            ("v1.1/ObservedProperties(4)/Datastreams", False),
        ],
    ),
    (
        "location-with-two-hop",
        LOCATION,
        LOC,
        "create",
        [("v1.1/Locations", False), ("v1.1/Locations(2)", False), *LOC_COLLECTIONS],
    ),
    ("location-linked-collections-only", LOCATION, LOC, "link", LOC_COLLECTIONS),
    (
        "historical-location",
        HISTORICAL_LOCATION,
        HL,
        "create",
        [
            ("v1.1/HistoricalLocations", False),
            ("v1.1/HistoricalLocations(9)", False),
            ("v1.1/Things(1)/HistoricalLocations", False),
            ("v1.1/Locations(2)/HistoricalLocations", False),
        ],
    ),
    (
        "thing-update-present-properties",
        THING,
        THING_ROW,
        "update",
        [
            ("v1.1/Things", False),
            ("v1.1/Things(1)", False),
            ("v1.1/Locations(2)/Things", False),
            ("v1.1/Things(1)/name", False),
            ("v1.1/Things(1)/description", False),
        ],
    ),
    ("sensor-no-parents", SENSOR, {"id": 1}, "create", [("v1.1/Sensors", False), ("v1.1/Sensors(1)", False)]),
    ("delete-publishes-nothing", THING, THING_ROW, "delete", []),
]


@pytest.mark.parametrize(
    ("entity_type", "row", "operation", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in TOPIC_TABLE],
)
def test_topics_for(
    entity_type: EntityType, row: dict[str, Any], operation: str, expected: list[tuple[str, bool]]
) -> None:
    assert topics_for(entity_type, row, operation, "v1.1") == expected


def test_observation_update_publishes_null_rendered_properties() -> None:
    row = {
        **OBS,
        "phenomenon_time_start": None,
        "phenomenon_time_end": None,
        "result": 1.5,
        "result_time": None,
    }
    row |= {"result_quality": None, "valid_time_start": None, "valid_time_end": None, "parameters": None}
    props = [
        t for t, _ in topics_for(OBSERVATION, row, "update", "v1.1") if t.startswith("v1.1/Observations(42)/")
    ]
    assert props == ["v1.1/Observations(42)/resultTime", "v1.1/Observations(42)/result"]


def test_topics_under_a_prefix() -> None:
    topics = topics_for(DATASTREAM, DS, "create", "test-1/v1.0")
    assert topics[0] == ("test-1/v1.0/Datastreams", False)
    assert ("test-1/v1.0/Things(1)/Datastreams", False) in topics


@pytest.mark.parametrize("name", sorted(ENTITY_TYPES))
@pytest.mark.parametrize("latest", [False, True])
def test_a_creates_plan_is_its_topics(name: str, latest: bool) -> None:
    """plan's straight path for a create (types whose collections are named by one id column) gives
    what topics_for gives, with and without the related ids and the latest flag."""
    entity_type = ENTITY_TYPES[name]
    full: dict[str, Any] = {"id": 5}
    for nav in entity_type.navigation:
        full[nav.column or nav.name] = [3, 4] if nav.many else 3
        full[f"{nav.name}@latest"] = [3] if latest else None
    for row in ({"id": 5}, full):
        expected = [(topic, retain, None) for topic, retain in topics_for(entity_type, row, "create", "v1.1")]
        assert plan(entity_type, row, frozenset({"create"}), "v1.1") == expected


_scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text()
)
_json_values = (
    _scalars
    | st.lists(_scalars, max_size=3)
    | st.dictionaries(st.text(max_size=5), _scalars | st.lists(_scalars, max_size=2), max_size=3)
)
_names = st.sampled_from(["id", "@iot.id", "result", "phenomenonTime", "é", 'a"b'])


@settings(deadline=None)  # no timing in tests: a loaded machine must not fail it
@given(
    st.dictionaries(_names.map(lambda n: "@iot.id" if n == "id" else n), _json_values),
    st.lists(st.lists(_names, min_size=1, max_size=4), min_size=1, max_size=3),
)
def test_selected_payloads_are_what_dumping_the_selected_entity_writes(
    entity: dict[str, Any], forms: list[list[str]]
) -> None:
    """Duplicate names, both id spellings, absent members and names JSON escapes included."""
    payloads = _selected_payloads(entity, [("", members(names)) for names in forms])
    assert payloads == [orjson.dumps(selected(entity, names)) for names in forms]


def test_related_queries_are_per_key_not_per_row() -> None:
    # Every key topics_for reads for a type is loaded by one statement over an id array.
    for entity_type in ALL_TYPES:
        for _, sql in related_queries(entity_type):
            assert "ANY($1)" in sql
    assert [key for key, _ in related_queries(LOCATION)] == [
        "Things",
        "Things/Datastreams",
        "Things/MultiDatastreams",
    ]
    assert [key for key, _ in related_queries(OBSERVATION)] == ["Datastream@latest", "MultiDatastream@latest"]


def test_base_url_and_versions() -> None:
    assert (
        base_url_of(Settings.model_validate({"base_url": "https://x.example/sta/"}))
        == "https://x.example/sta"
    )
    assert (
        base_url_of(Settings.model_validate({"http_host": "::1", "http_port": 9000})) == "http://[::1]:9000"
    )
    assert version_prefixes() == ("v1.1",)
    assert version_prefixes(publish_v10=True) == ("v1.1", "v1.0")


# ---- the queue ------------------------------------------------------------------------------------


def test_full_queue_drops_oldest_and_skips_deletes() -> None:
    notifier = Notifier(lambda t, p, q, r: None, BASE_URL)
    feed = ChangeFeed(cast(asyncpg.Pool, None), max_queue=2)
    feed.sinks.append(notifier)
    feed.on_commit([Change(THING, i, "create") for i in (1, 2, 3)] + [Change(THING, 4, "delete")])
    assert feed.dropped == 1
    assert notifier.gaps == 1  # the sinks hear of the loss
    assert [change.entity_id for change, _ in feed._queue] == [2, 3]


def test_publications_go_out_in_order_and_a_refusing_client_is_counted() -> None:
    """Per Notice: its topics with the entity (or the property), then each entity topic's $select
    forms; what the client refuses is counted as failed, not raised into the feed."""
    t = datetime(2030, 1, 1, tzinfo=UTC)
    empty = dict.fromkeys(
        ("result_time", "result_quality", "valid_time_start", "valid_time_end", "parameters")
    )
    row = {**OBS, **empty, "phenomenon_time_start": t, "phenomenon_time_end": t, "result": 1.5}
    notices = [
        Notice(OBSERVATION, row, frozenset({"update"})),
        Notice(OBSERVATION, {**row, "id": 43}, frozenset({"create"})),
    ]
    sent: list[tuple[str, bytes, bool]] = []
    notifier = Notifier(lambda *a: None, BASE_URL, 0, selects=("result,phenomenonTime",),
                        publish_many=lambda items, qos: sent.extend(items))  # fmt: skip
    notifier.deliver(notices)
    expected = []
    for notice in notices:
        publications = notice.publications("v1.1")
        expected += [
            (topic, notice.body(prop, BASE_URL, "v1.1"), retain) for topic, retain, prop in publications
        ]
        expected += [
            (
                f"{topic}?$select=result,phenomenonTime",
                orjson.dumps({"result": 1.5, "phenomenonTime": "2030-01-01T00:00:00Z"}),
                retain,
            )
            for topic, retain, prop in publications
            if prop is None
        ]
    assert sent == expected
    assert notifier.published == len(expected)

    def refuse(items: Any, qos: int) -> None:
        raise ConnectionError("gone")

    failing = Notifier(lambda *a: None, BASE_URL, 0, selects=("result,phenomenonTime",), publish_many=refuse)
    failing.deliver(notices)
    assert (failing.failed, failing.published) == (len(expected), 0)


def test_bad_qos_is_refused() -> None:
    with pytest.raises(ValueError, match="qos"):
        Notifier(lambda t, p, q, r: None, BASE_URL, qos=3)


# ---- end to end: HTTP write -> commit -> change feed -> Notifier -> mosquitto -> subscriber ------


def _broker() -> tuple[str, int]:
    host, _, port = BROKER.rpartition(":")
    return host, int(port)


@dataclass
class Received:
    """Messages one paho subscriber got, readable from the event loop."""

    messages: list[mqtt.MQTTMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(message)

    def on(self, topic: str) -> list[mqtt.MQTTMessage]:
        with self.lock:
            return [m for m in self.messages if m.topic == topic]

    async def wait(self, topic: str, match: Callable[[Any], bool] = lambda body: True) -> Any:
        """The decoded payload of the first message on `topic` that `match`es, within WAIT seconds."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for message in self.on(topic):
                body = orjson.loads(message.payload)
                if match(body):
                    return body
            await asyncio.sleep(0.02)
        seen = sorted({m.topic for m in self.messages})
        raise AssertionError(f"no matching message on {topic} within {WAIT}s; topics seen: {seen}")


@contextlib.contextmanager
def paho_client(received: Received | None = None, subscribe: str | None = None) -> Iterator[mqtt.Client]:
    """A connected paho client (subscribed, and the SUBACK seen, when asked)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"twinhub-test-{uuid.uuid4().hex[:8]}")
    subscribed = threading.Event()
    if received is not None:
        client.on_message = received.on_message
    client.on_subscribe = lambda *args: subscribed.set()
    host, port = _broker()
    try:
        client.connect(host, port)
    except OSError as error:
        pytest.skip(f"no MQTT broker at {BROKER}: {error}")
    client.loop_start()
    try:
        if subscribe is not None:
            client.subscribe(subscribe, qos=1)
            assert subscribed.wait(WAIT), f"no SUBACK for {subscribe}"
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def settings(db_dsn: str, tmp_path: Path) -> Settings:
    """A configured base URL, so HTTP GET and the notifications render the same links."""
    values = {"database_url": db_dsn, "data_dir": tmp_path / "data", "migrate_on_start": False}
    return Settings.model_validate(values | {"base_url": BASE_URL, "auth_anonymous_write": True})


@dataclass
class Hub:
    client: Any
    prefix: str
    received: Received
    notifier: Notifier

    async def send(self, method: str, path: str, body: Any) -> Any:
        headers = {"Content-Type": "application/json"}
        response = await self.client.request(
            method, f"/v1.1/{path}", data=orjson.dumps(body), headers=headers
        )
        assert response.status in (200, 201), (method, path, response.status, await response.text())
        return await response.json()

    async def get(self, path: str) -> Any:
        response = await self.client.get(f"/v1.1/{path}")
        assert response.status == 200, (path, response.status)
        return await response.json()

    def topic(self, path: str) -> str:
        return f"{self.prefix}/{path}"


@pytest_asyncio.fixture
async def hub(client: Any) -> AsyncIterator[Hub]:
    """The test app's change feed with a Notifier sink, publishing under a unique prefix."""
    prefix = f"test-{uuid.uuid4().hex[:12]}/v1.1"
    received = Received()
    retained: set[str] = set()
    with paho_client(received, subscribe=f"{prefix}/#") as subscriber, paho_client() as publisher:

        def publish(topic: str, payload: bytes, qos: int, retain: bool) -> None:
            if retain:
                retained.add(topic)
            publisher.publish(topic, payload, qos=qos, retain=retain)

        feed = client.server.app[FEED]
        notifier = Notifier(publish, BASE_URL, version_prefixes=(prefix,))
        feed.sinks.append(notifier)
        try:
            yield Hub(client, prefix, received, notifier)
        finally:
            await feed.flush()
            feed.sinks.remove(notifier)
            for topic in retained:  # an empty retained payload deletes the retained message
                publisher.publish(topic, b"", qos=1, retain=True).wait_for_publish(WAIT)
            assert subscriber.is_connected()


async def _populate(hub: Hub) -> None:
    """Thing 1 at Location 1, Sensor 1, ObservedProperty 1, Datastream 1."""
    location: dict[str, Any] = {"name": "Roof", "description": "Roof", "encodingType": "application/geo+json"}
    location["location"] = {"type": "Point", "coordinates": [10.0, 53.5]}
    await hub.send("POST", "Things", {"name": "Station", "description": "Station", "Locations": [location]})
    sensor = {"name": "PT100", "description": "PT100", "encodingType": "text/html", "metadata": "x"}
    await hub.send("POST", "Sensors", sensor)
    await hub.send("POST", "ObservedProperties", {"name": "T", "definition": "urn:t", "description": "T"})
    unit = {"name": "degree Celsius", "symbol": "°C", "definition": "ucum:Cel"}
    datastream = {
        "name": "T",
        "description": "T",
        "unitOfMeasurement": unit,
        "observationType": "om:Measurement",
    }
    links = {"Thing": {"@iot.id": 1}, "Sensor": {"@iot.id": 1}, "ObservedProperty": {"@iot.id": 1}}
    await hub.send("POST", "Datastreams", datastream | links)


def _observation(result: float, time: str) -> dict[str, Any]:
    return {"result": result, "phenomenonTime": time, "Datastream": {"@iot.id": 1}}


def _late_retained(topic: str) -> Any:
    """What a subscriber arriving now gets at once on `topic`: the retained message's payload."""
    received = Received()
    with paho_client(received, subscribe=topic):
        deadline = time.monotonic() + WAIT
        while not received.on(topic) and time.monotonic() < deadline:
            time.sleep(0.02)
    messages = received.on(topic)
    assert messages, f"no retained message on {topic}"
    assert messages[0].retain
    return orjson.loads(messages[0].payload)


async def test_post_observation_publishes_set_entity_and_collections(hub: Hub) -> None:
    await _populate(hub)
    await hub.send("POST", "Observations", _observation(21.5, "2024-05-01T10:00:00Z"))
    expected = await hub.get("Observations(1)")
    assert expected["@iot.selfLink"] == f"{BASE_URL}/v1.1/Observations(1)"
    for path in (
        "Observations",
        "Observations(1)",
        "Datastreams(1)/Observations",
        "FeaturesOfInterest(1)/Observations",
    ):
        assert await hub.received.wait(hub.topic(path)) == expected, path
    latest = await asyncio.to_thread(_late_retained, hub.topic("Datastreams(1)/Observations"))
    assert latest == expected


async def test_older_observation_does_not_replace_the_retained_latest(hub: Hub) -> None:
    await _populate(hub)
    await hub.send("POST", "Observations", _observation(21.5, "2024-05-01T10:00:00Z"))
    await hub.send("POST", "Observations", _observation(19.0, "2024-05-01T09:00:00Z"))  # late arrival
    collection = hub.topic("Datastreams(1)/Observations")
    older = await hub.received.wait(collection, lambda body: body["@iot.id"] == 2)
    assert older["result"] == 19.0  # still published, but not retained
    assert (await asyncio.to_thread(_late_retained, collection))["@iot.id"] == 1
    await hub.send("POST", "Observations", _observation(23.0, "2024-05-01T11:00:00Z"))
    await hub.received.wait(collection, lambda body: body["@iot.id"] == 3)
    assert (await asyncio.to_thread(_late_retained, collection))["@iot.id"] == 3


async def test_patch_thing_name_publishes_entity_and_property(hub: Hub) -> None:
    await _populate(hub)
    await hub.send("PATCH", "Things(1)", {"name": "Renamed"})
    entity = await hub.received.wait(hub.topic("Things(1)"), lambda body: body["name"] == "Renamed")
    assert entity == await hub.get("Things(1)")
    assert await hub.received.wait(hub.topic("Things(1)/name")) == {"name": "Renamed"}
    assert await hub.received.wait(hub.topic("Things(1)/description")) == {"description": "Station"}
    assert not hub.received.on(hub.topic("Things(1)/properties"))  # the Thing has none


async def test_thing_moving_to_a_new_location_publishes_two_hop_topic(hub: Hub) -> None:
    await _populate(hub)
    geometry = {"type": "Point", "coordinates": [11.0, 54.0]}
    body = {"name": "Harbour", "description": "Harbour", "encodingType": "application/geo+json"}
    await hub.send("POST", "Locations", body | {"location": geometry})
    await hub.send("PATCH", "Things(1)", {"Locations": [{"@iot.id": 2}]})
    expected = await hub.get("Locations(2)")

    def is_harbour(location: Any) -> bool:
        return bool(location["@iot.id"] == 2)

    assert await hub.received.wait(hub.topic("Datastreams(1)/Thing/Locations"), is_harbour) == expected
    assert await hub.received.wait(hub.topic("Things(1)/Locations"), is_harbour) == expected
    # The Location itself did not change: not re-announced on its own topic by the move.
    await hub.received.wait(hub.topic("Things(1)/HistoricalLocations"), lambda b: b["@iot.id"] == 2)
    assert len(hub.received.on(hub.topic("Locations(2)"))) == 1  # only its creation


async def test_delete_publishes_nothing(hub: Hub) -> None:
    sensor = {"name": "S", "description": "S", "encodingType": "text/html", "metadata": "x"}
    await hub.send("POST", "Sensors", sensor)
    await hub.received.wait(hub.topic("Sensors(1)"))
    response = await hub.client.delete("/v1.1/Sensors(1)")
    assert response.status == 200
    await hub.send("POST", "Sensors", sensor)
    await hub.received.wait(hub.topic("Sensors(2)"))  # processed after the delete
    assert len(hub.received.on(hub.topic("Sensors(1)"))) == 1
    assert hub.notifier.failed == 0


class _SlowSink:
    """A sink whose backlog drains only when released."""

    every_process = False

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.delivered = 0

    def active(self) -> bool:
        return True

    def deliver(self, notices: Any) -> None:
        self.delivered += 1

    def gap(self) -> None:
        raise AssertionError("no change may be lost here")

    async def drained(self) -> None:
        await self.release.wait()


async def test_writers_wait_while_the_feed_is_far_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backpressure: past ROOM_HIGH queued changes room() waits until ROOM_LOW are left; the feed
    waits for its sinks' drained() after each batch, so nothing is dropped meanwhile."""
    from hub.changes import feed as feed_module

    async def no_rows(pool: Any, groups: Any) -> tuple[list[Notice], list[Notice]]:
        return [], []

    monkeypatch.setattr(feed_module, "load_notices", no_rows)
    monkeypatch.setattr(feed_module, "ROOM_HIGH", 10)
    monkeypatch.setattr(feed_module, "ROOM_LOW", 2)
    feed = ChangeFeed(cast(asyncpg.Pool, None), max_batch=5)
    sink = _SlowSink()
    feed.sinks.append(sink)
    await asyncio.wait_for(feed.room(), 1)  # not running: never waits
    feed.start()
    try:
        feed.on_commit([Change(THING, i, "create") for i in range(30)])
        await asyncio.sleep(0.02)  # the feed took a batch and waits for the sink
        assert len(feed._queue) == 25  # one batch of 5 taken, 25 wait: more than ROOM_HIGH
        writer = asyncio.create_task(feed.room())
        await asyncio.sleep(0.02)
        assert not writer.done()
        sink.release.set()
        await asyncio.wait_for(writer, 5)
        assert len(feed._queue) <= 2
        await feed.flush()
    finally:
        await feed.close()
    assert feed.dropped == 0
    assert sink.delivered == 0  # no rows were loaded: nothing to deliver
