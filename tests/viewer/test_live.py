# SPDX-License-Identifier: Apache-2.0
"""GET /live: server-sent events of committed changes, filtered by MQTT topic filters."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest
from viewer_data import STATIONS, thing_body

from hub.app import FEED
from hub.changes.live import Subscriber, matches
from hub.changes.relay import CHANNEL, LISTENER_NAME, encode
from hub.http.context import STATE
from hub.http.live import LIVE, end_streams
from hub.store.write import Change
from schemas.model import OBSERVATION

Json = dict[str, Any]
GUARD = 20.0  # seconds before a test that waits for an event gives up instead of hanging


async def make_things(client: Any, count: int = 2) -> None:
    for station in STATIONS[:count]:
        city, name, domain, lon, lat, quantity, symbol, unit, _ = station
        response = await client.post(
            "/v1.1/Things", json=thing_body(city, name, domain, lon, lat, quantity, symbol, unit)
        )
        assert response.status == 201, await response.text()


async def open_stream(client: Any, *topics: str, last_event_id: str | None = None) -> Any:
    """An open event stream, its opening comment read (so the subscription is registered)."""
    headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    response = await client.get("/live", params=[("topic", t) for t in topics], headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    async with asyncio.timeout(GUARD):
        assert (await response.content.readline()).startswith(b"retry: ")
        assert (await response.content.readline()).startswith(b": subscribed to ")
        assert await response.content.readline() == b"\n"
    return response


async def next_event(response: Any) -> tuple[str, Json]:
    """The next `data:` event (skipping comments): its event type and JSON data."""
    kind, _, data = await next_event_with_id(response)
    return kind, data


async def next_event_with_id(response: Any) -> tuple[str, str | None, Json]:
    """The next `data:` event (skipping comments): its event type, id and JSON data."""
    kind, event_id = "message", None
    async with asyncio.timeout(GUARD):
        while True:
            line = (await response.content.readline()).decode()
            if line.startswith("event: "):
                kind = line[7:].strip()
            elif line.startswith("id: "):
                event_id = line[4:].strip()
            elif line.startswith("data: "):
                return kind, event_id, json.loads(line[6:])


async def test_an_observation_posted_over_http_arrives(client: Any) -> None:
    await make_things(client)
    stream = await open_stream(client, "v1.1/Observations")
    posted = await client.post(
        "/v1.1/Datastreams(1)/Observations", json={"phenomenonTime": "2026-03-05T10:14:00Z", "result": 21.5}
    )
    assert posted.status == 201
    kind, event = await next_event(stream)
    assert kind == "message"
    assert event["topic"] == "v1.1/Observations"
    assert event["payload"]["result"] == 21.5
    assert event["payload"]["phenomenonTime"] == "2026-03-05T10:14:00Z"
    assert event["payload"]["@iot.id"] == (await posted.json())["@iot.id"]
    stream.close()


async def test_a_level_wildcard_tells_the_datastream_and_other_streams_are_filtered_out(client: Any) -> None:
    await make_things(client)
    await client.server.app[FEED].flush()  # their creation is announced before the stream opens
    stream = await open_stream(client, "v1.1/Datastreams(2)/Observations", "v1.1/Things")
    await client.post("/v1.1/Datastreams(1)/Observations", json={"result": 1})
    await client.post("/v1.1/Datastreams(2)/Observations", json={"result": 2})
    _, event = await next_event(stream)
    assert event["topic"] == "v1.1/Datastreams(2)/Observations"
    assert event["payload"]["result"] == 2
    stream.close()

    everything = await open_stream(client, "v1.1/+/Observations")
    await client.post("/v1.1/Datastreams(1)/Observations", json={"result": 3})
    topics = {(await next_event(everything))[1]["topic"] for _ in range(2)}
    assert topics == {"v1.1/Datastreams(1)/Observations", "v1.1/FeaturesOfInterest(1)/Observations"}
    everything.close()


async def test_a_created_thing_and_an_update_arrive_on_their_topics(client: Any) -> None:
    stream = await open_stream(client, "v1.1/Things", "v1.1/Things(1)/name")
    await make_things(client, 1)
    _, created = await next_event(stream)
    assert created["topic"] == "v1.1/Things"
    assert created["payload"]["properties"] == {"city": "Hamburg", "domain": "climate"}
    await client.patch("/v1.1/Things(1)", json={"name": "Rathausmarkt"})
    received = [(await next_event(stream))[1] for _ in range(2)]
    by_topic = {e["topic"]: e["payload"] for e in received}
    assert by_topic["v1.1/Things(1)/name"] == {"name": "Rathausmarkt"}
    assert by_topic["v1.1/Things"]["name"] == "Rathausmarkt"
    stream.close()


async def test_idle_streams_get_heartbeat_comments(client: Any) -> None:
    client.server.app[LIVE].heartbeat = 0.05
    stream = await open_stream(client, "v1.1/Observations")
    async with asyncio.timeout(GUARD):
        assert await stream.content.readline() == b": heartbeat\n"
    stream.close()


async def test_shutdown_ends_open_streams(client: Any) -> None:
    stream = await open_stream(client, "v1.1/Observations")
    await end_streams(client.server.app)
    async with asyncio.timeout(GUARD):
        rest = await stream.content.read()
    assert rest == b""  # the stream ended without another event
    assert not client.server.app[LIVE].subscribers


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("", "give at least one topic filter"),
        ("?topic=Observations", "must start with v1.1/"),
        ("?topic=v1.0/Observations", "must start with v1.1/"),
        ("?topic=v1.1/%23/Observations", "'#' must be a whole level and the last one"),
        ("?topic=v1.1/Datastreams(%2B)/Observations", "'+' must be a whole level"),
        ("?" + "&".join(["topic=v1.1/Things"] * 17), "at most 16 filters"),
    ],
)
async def test_bad_filters_are_a_400_naming_the_problem(client: Any, query: str, fragment: str) -> None:
    response = await client.get("/live" + query)
    assert response.status == 400
    body = await response.json()
    assert body["code"] == 400
    assert fragment in body["message"]


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("v1.1/Observations", "v1.1/Observations", True),
        ("v1.1/+/Observations", "v1.1/Datastreams(3)/Observations", True),
        ("v1.1/+/Observations", "v1.1/Observations", False),
        ("v1.1/#", "v1.1/Things(1)/name", True),
        ("v1.1/Things/#", "v1.1/Things", True),
        ("v1.1/Things", "v1.1/Things(1)", False),
        ("v1.1/+", "v1.1/Things(1)/name", False),
    ],
)
def test_mqtt_filter_matching(topic_filter: str, topic: str, expected: bool) -> None:
    assert matches(topic_filter, topic) is expected


def test_a_full_client_queue_drops_its_oldest_events_and_counts_them() -> None:
    subscriber = Subscriber(("v1.1/Observations",), limit=2)
    for n in range(5):
        subscriber.push((f"t-{n}", "v1.1/Observations", str(n).encode()))
    assert [payload for _, _, payload in subscriber.events] == [b"3", b"4"]
    assert subscriber.dropped == 3


async def test_a_thing_moved_to_another_location_sends_the_location_events(client: Any) -> None:
    """The MQTT notifications' Location events for moved Things reach /live too (one pipeline)."""
    await make_things(client, 1)
    harbour = {
        "name": "Harbour",
        "description": "Harbour",
        "encodingType": "application/geo+json",
        "location": {"type": "Point", "coordinates": [9.97, 53.54]},
    }
    created = await client.post("/v1.1/Locations", json=harbour)
    location = (await created.json())["@iot.id"]
    await client.server.app[FEED].flush()
    stream = await open_stream(client, "v1.1/Datastreams(1)/Thing/Locations", "v1.1/Things(1)/Locations")
    moved = await client.patch("/v1.1/Things(1)", json={"Locations": [{"@iot.id": location}]})
    assert moved.status == 200
    received = {(await next_event(stream))[1]["topic"]: None for _ in range(2)}
    assert set(received) == {"v1.1/Datastreams(1)/Thing/Locations", "v1.1/Things(1)/Locations"}
    stream.close()


async def test_a_client_back_with_last_event_id_gets_what_it_missed(client: Any) -> None:
    """EventSource reconnects with the id of its last event: the same process replays the rest."""
    await make_things(client, 1)
    await client.server.app[FEED].flush()
    first = await open_stream(client, "v1.1/Observations")
    await client.post("/v1.1/Datastreams(1)/Observations", json={"result": 1})
    _, seen, event = await next_event_with_id(first)
    assert event["payload"]["result"] == 1
    assert seen is not None
    first.close()  # the client is away ...
    await client.post("/v1.1/Datastreams(1)/Observations", json={"result": 2})
    await client.post("/v1.1/Datastreams(1)/Observations", json={"result": 3})
    await client.server.app[FEED].flush()
    back = await open_stream(client, "v1.1/Observations", last_event_id=seen)  # ... and back
    replayed = [(await next_event_with_id(back))[2]["payload"]["result"] for _ in range(2)]
    assert replayed == [2, 3]
    await client.post("/v1.1/Datastreams(1)/Observations", json={"result": 4})
    assert (await next_event(back))[1]["payload"]["result"] == 4
    back.close()


@pytest.mark.parametrize("last_event_id", ["0123abcd-1", "not-an-id", "x"])
async def test_an_id_this_process_cannot_resume_from_is_a_gap(client: Any, last_event_id: str) -> None:
    """Another process's id (behind a load balancer), or a foreign one: the client must reload."""
    stream = await open_stream(client, "v1.1/Observations", last_event_id=last_event_id)
    kind, event = await next_event(stream)
    assert kind == "dropped"
    assert event == {"count": 1}
    stream.close()


async def test_changes_of_other_processes_arrive_and_a_lost_listener_is_a_gap(client: Any) -> None:
    """What another process NOTIFYs reaches /live; a killed listening connection is reported as a
    gap to the streams and listened again, after which other processes' changes arrive again."""
    app = client.server.app
    await make_things(client, 1)
    posted = await client.post("/v1.1/Datastreams(1)/Observations", json={"result": 7})
    observation = (await posted.json())["@iot.id"]
    await app[FEED].flush()
    relay = app[FEED].relay
    assert relay is not None
    stream = await open_stream(client, "v1.1/Observations")
    other = encode([Change(OBSERVATION, observation, "update")], "another-process")[0]
    connection = await asyncpg.connect(app[STATE].settings.database_url)
    try:
        await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, other)
        kind, event = await next_event(stream)
        assert (kind, event["payload"]["@iot.id"]) == ("message", observation)

        ended = await connection.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 "
            "AND datname = current_database()",
            LISTENER_NAME,
        )
        assert ended == 1
        kind, _ = await next_event(stream)
        assert kind == "dropped"
        await asyncio.wait_for(relay.listening.wait(), GUARD)  # listening again
        await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, other)
        kind, event = await next_event(stream)
        assert (kind, event["payload"]["@iot.id"]) == ("message", observation)
    finally:
        await connection.close()
        stream.close()
