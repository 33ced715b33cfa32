# SPDX-License-Identifier: Apache-2.0
"""Concurrent Observation POSTs share group-commit batches (hub/ingest/group_commit.py).

A batch is inserted with its links in one statement; when a link is missing or a feature has yet
to be derived, the batch takes the checked way, which answers each request on its own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from helpers import (
    T0,
    Graph,
    assert_error,
    count,
    create,
    datastream,
    feature_of_interest,
    get_ok,
    location,
    observation,
    populate,
    post,
    ref,
    thing,
)

from hub.changes.relay import CHANNEL, PAYLOAD_LIMIT, Relay, decode
from hub.store.observations import ObservationRow, insert_deriving
from hub.store.write import Change
from schemas.model import OBSERVATION


@pytest.fixture
async def graph(client: Any) -> Graph:
    """The standard graph of helpers.populate."""
    return await populate(client)


async def test_concurrent_posts_get_their_own_rows_and_derived_features(client: Any, graph: Graph) -> None:
    other_thing = await create(client, "Things", thing("Second station", [location("Harbour")]))
    other_stream = await create(client, "Datastreams", datastream(thing_id=other_thing))
    # Its Location's feature is made by the first Observation that needs it.
    status, first, _ = await post(client, f"Datastreams({other_stream})/Observations", observation(0))
    assert status == 201, first
    other_feature = (await get_ok(client, f"Observations({first['@iot.id']})/FeatureOfInterest"))["@iot.id"]
    assert other_feature != graph.feature_of_interest

    streams = [graph.datastream if i % 2 else other_stream for i in range(30)]
    answers = await asyncio.gather(
        *(post(client, f"Datastreams({s})/Observations", observation(i)) for i, s in enumerate(streams))
    )
    assert [status for status, _, _ in answers] == [201] * 30
    created = [body["@iot.id"] for _, body, _ in answers]
    assert len(set(created)) == 30
    for i, (stream, observation_id) in enumerate(zip(streams, created, strict=True)):
        stored = await get_ok(client, f"Observations({observation_id})?$expand=Datastream,FeatureOfInterest")
        assert stored["result"] == i
        assert stored["Datastream"]["@iot.id"] == stream
        want = graph.feature_of_interest if stream == graph.datastream else other_feature
        assert stored["FeatureOfInterest"]["@iot.id"] == want


async def test_a_missing_link_fails_only_its_own_request_of_a_batch(client: Any, graph: Graph) -> None:
    requests = []
    for i in range(8):
        requests.append(post(client, "Datastreams(1)/Observations", observation(i)))
        requests.append(post(client, "Datastreams(99)/Observations", observation(i)))
        requests.append(
            post(client, "Observations", observation(i, Datastream=ref(1), FeatureOfInterest=ref(98)))
        )
        requests.append(post(client, "Observations", observation(i, Datastream=ref(97))))
    answers = await asyncio.gather(*requests)
    for i in range(0, len(answers), 4):
        good, missing_parent, missing_feature, missing_stream = answers[i : i + 4]
        assert good[0] == 201, good
        assert_error(missing_parent[0], missing_parent[1], 404, "99")
        assert_error(missing_feature[0], missing_feature[1], 400, "98")
        assert_error(missing_stream[0], missing_stream[1], 400, "97")
    assert await count(client, "Observations") == 2 + 8


async def test_the_first_observation_after_a_move_gets_the_new_locations_feature(
    client: Any, graph: Graph
) -> None:
    status, _, _ = await post(client, "Things(1)/Locations", location("Second place"))
    assert status == 201
    status, moved, _ = await post(client, "Datastreams(1)/Observations", observation(1.5, T0))
    assert status == 201, moved
    # The feature had to be made first: the batch went the checked way, and drew no id in vain.
    assert moved["@iot.id"] == 3
    feature = (await get_ok(client, "Observations(3)/FeatureOfInterest"))["@iot.id"]
    assert feature != graph.feature_of_interest
    status, again, _ = await post(client, "Datastreams(1)/Observations", observation(2.5, T0))
    assert status == 201, again
    assert again["@iot.id"] == 4
    assert (await get_ok(client, "Observations(4)/FeatureOfInterest"))["@iot.id"] == feature


async def test_a_given_feature_is_kept(client: Any, graph: Graph) -> None:
    other = await create(client, "FeaturesOfInterest", feature_of_interest("Pier"))
    status, created, _ = await post(
        client, "Observations", observation(3.5, Datastream=ref(1), FeatureOfInterest=ref(other))
    )
    assert status == 201, created
    assert (await get_ok(client, f"Observations({created['@iot.id']})/FeatureOfInterest"))["@iot.id"] == other


# ---- the change relay's notification, sent by the insert itself ----------------------------------


def test_an_id_notice_stays_under_the_notify_limit_with_the_longest_ids() -> None:
    notice = Relay(None, "", lambda changes: None, lambda: None).id_notice(OBSERVATION, "create")
    longest = notice.before + str(-(2**63)) + notice.after
    payload = notice.head + ",".join([longest] * notice.per_notification) + notice.tail
    assert len(payload.encode()) < PAYLOAD_LIMIT
    assert notice.per_notification > 100


async def test_the_insert_sends_the_relays_notifications_and_the_relay_does_not(
    client: Any, graph: Graph, clean_db: str
) -> None:
    relay = Relay(None, clean_db, lambda changes: None, lambda: None)  # no pool: send must not need it
    notice = relay.id_notice(OBSERVATION, "create")
    payloads: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(clean_db)
    writer = await asyncpg.connect(clean_db)
    try:
        await listener.add_listener(CHANNEL, lambda *args: payloads.put_nowait(args[-1]))
        when = datetime(2021, 5, 15, 11, tzinfo=UTC)
        rows = [ObservationRow(when, when, n, 0, datastream_id=graph.datastream) for n in range(400)]
        stored = await insert_deriving(writer, rows, [True] * len(rows), notice)
        assert [s.row.result for s in stored] == list(range(400))
        assert all(s.notified and s.row.feature_of_interest_id == graph.feature_of_interest for s in stored)
        heard: list[int] = []
        while len(heard) < len(stored):
            origin, changes = decode(await asyncio.wait_for(payloads.get(), 30))
            assert origin == relay.origin
            assert {(c.entity_type, c.operation) for c in changes} == {(OBSERVATION, "create")}
            heard.extend(c.entity_id for c in changes)
        assert heard == [s.id for s in stored]
        await relay.send([Change(OBSERVATION, s.id, "create", s) for s in stored])
        assert relay.sent == relay.failed == 0
        # A derived feature is only guessed by the caller: a wrong guess (0 above) is corrected, a
        # right one keeps the row as it was given.
        guessed = [ObservationRow(when, when, 1, graph.feature_of_interest, datastream_id=graph.datastream)]
        again = await insert_deriving(writer, guessed, [True])
        assert again[0].row is guessed[0]
    finally:
        await listener.close()
        await writer.close()


async def test_posting_to_observations_with_a_datastream_link_is_the_same_observation(
    client: Any, graph: Graph
) -> None:
    linked = observation(4.5, "2021-05-15T11:00:00Z", Datastream=ref(1))
    status, by_link, _ = await post(client, "Observations", linked)
    assert status == 201, by_link
    status, by_path, _ = await post(
        client, "Datastreams(1)/Observations", observation(4.5, "2021-05-15T11:00:00Z")
    )
    assert status == 201, by_path
    assert {k: v for k, v in by_link.items() if "@iot" not in k} == {
        k: v for k, v in by_path.items() if "@iot" not in k
    }
    for created in (by_link, by_path):
        expanded = (
            f"Observations({created['@iot.id']})?$expand=Datastream($select=id),FeatureOfInterest($select=id)"
        )
        stored = await get_ok(client, expanded)
        assert (stored["Datastream"]["@iot.id"], stored["FeatureOfInterest"]["@iot.id"]) == (1, 1)
    bad_time = observation(4.5, "not a time", Datastream=ref(1))
    status, refused, _ = await post(client, "Observations", bad_time)
    assert_error(status, refused, 400, "phenomenonTime")
    status, refused, _ = await post(client, "Observations", observation(4.5, Datastream={"@iot.id": -1}))
    assert_error(status, refused, 400, "@iot.id")
