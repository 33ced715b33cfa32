# SPDX-License-Identifier: Apache-2.0
"""JSON $batch (OGC 18-088 §12 in the OData 4.01 JSON form, as FROST): order, $-references,
atomicity groups, dependsOn and per-request statuses."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import (
    ENTITY_SETS,
    Json,
    assert_error,
    count,
    datastream,
    get_ok,
    observation,
    observed_property,
    populate,
    post,
    ref,
    sensor,
    thing,
    url,
)


async def batch(client: Any, requests: list[Json]) -> list[Json]:
    """POST a JSON batch, asserting 200; its responses by position."""
    status, body, _ = await post(client, "$batch", {"requests": requests})
    assert status == 200, body
    responses = body["responses"]
    assert [r["id"] for r in responses] == [r["id"] for r in requests]
    return list(responses)


async def totals(client: Any) -> dict[str, int]:
    return {entity_set: await count(client, entity_set) for entity_set in ENTITY_SETS}


async def test_sequence_with_references_to_created_entities(client: Any) -> None:
    await populate(client)
    stream = datastream("Batch stream", sensor_id=None, observed_property_id=None, thing_id=None)
    stream |= {"Sensor": {"@iot.id": "$sensor"}, "ObservedProperty": {"@iot.id": "$op"}}
    responses = await batch(
        client,
        [
            {"id": "sensor", "method": "post", "url": "Sensors", "body": sensor("Batch sensor")},
            {
                "id": "op",
                "method": "post",
                "url": "/v1.1/ObservedProperties",
                "body": observed_property("Wind"),
            },
            {"id": "ds", "method": "post", "url": "Things(1)/Datastreams", "body": stream},
            {"id": "obs", "method": "post", "url": "$ds/Observations", "body": observation(3.5)},
            {
                "id": "read",
                "method": "get",
                "url": "$ds?$expand=Sensor($select=name),Observations($select=result)",
            },
        ],
    )
    assert [r["status"] for r in responses] == [201, 201, 201, 201, 200]
    assert responses[0]["headers"]["location"] == url(client, "Sensors(2)")
    assert responses[0]["body"]["name"] == "Batch sensor"
    assert responses[2]["headers"]["location"] == url(client, "Datastreams(2)")
    assert responses[3]["body"]["@iot.id"] == 3
    read = responses[4]["body"]
    assert read["name"] == "Batch stream"
    assert read["Sensor"] == {"name": "Batch sensor"}
    assert read["Observations"] == [{"result": 3.5}]
    stored = await get_ok(client, "Datastreams(2)?$expand=ObservedProperty($select=name),Thing($select=id)")
    assert stored["ObservedProperty"] == {"name": "Wind"}
    assert stored["Thing"] == {"@iot.id": 1}


async def test_atomicity_group_commits_nothing_when_one_member_fails(client: Any) -> None:
    await populate(client)
    before = await totals(client)
    responses = await batch(
        client,
        [
            {"id": "1", "atomicityGroup": "g", "method": "post", "url": "Things", "body": thing("A")},
            {
                "id": "2",
                "atomicityGroup": "g",
                "method": "patch",
                "url": "Things(1)",
                "body": {"name": "renamed"},
            },
            {
                "id": "3",
                "atomicityGroup": "g",
                "method": "post",
                "url": "$1/Datastreams",
                "body": {"name": "broken"},
            },
            {"id": "4", "atomicityGroup": "g", "method": "post", "url": "Sensors", "body": sensor()},
            {"id": "5", "method": "get", "url": "Things(1)"},
        ],
    )
    assert [r["status"] for r in responses] == [424, 424, 400, 424, 200]
    assert "rolled back" in responses[0]["body"]["message"]
    assert responses[2]["body"]["code"] == 400
    assert responses[4]["body"]["name"] == "Weather station"
    assert await totals(client) == before


async def test_atomicity_group_commits_all_members_together(client: Any) -> None:
    await populate(client)
    responses = await batch(
        client,
        [
            {
                "id": "t",
                "atomicityGroup": "g",
                "method": "post",
                "url": "Things",
                "body": thing("Batch thing"),
            },
            {
                "id": "d",
                "atomicityGroup": "g",
                "method": "post",
                "url": "Datastreams",
                "body": datastream("Batch stream", thing_id=None) | {"Thing": {"@iot.id": "$t"}},
            },
            {
                "id": "p",
                "atomicityGroup": "g",
                "method": "patch",
                "url": "Things(1)",
                "body": {"name": "renamed"},
            },
        ],
    )
    assert [r["status"] for r in responses] == [201, 201, 200]
    assert responses[2]["body"]["name"] == "renamed"
    assert (await get_ok(client, "Datastreams(2)/Thing"))["name"] == "Batch thing"
    assert (await get_ok(client, "Things(1)"))["name"] == "renamed"


async def test_requests_outside_a_group_commit_on_their_own(client: Any) -> None:
    await populate(client)
    responses = await batch(
        client,
        [
            {"id": "1", "method": "post", "url": "Sensors", "body": sensor("Kept")},
            {"id": "2", "method": "post", "url": "Sensors", "body": {"name": "no description"}},
            {"id": "3", "method": "get", "url": "Things(99)"},
            {"id": "4", "method": "delete", "url": "Observations(2)"},
            {"id": "5", "method": "put", "url": "Things", "body": thing()},
            {"id": "6", "method": "get", "url": "Nonsense"},
            {"id": "7", "method": "post", "url": "Observations", "body": observation(1, Datastream=ref(99))},
        ],
    )
    assert [r["status"] for r in responses] == [201, 400, 404, 200, 405, 404, 400]
    assert "body" not in responses[3]
    assert responses[4]["headers"]["allow"]
    for response in responses[1:3] + responses[4:]:
        assert response["body"]["code"] == response["status"]
        assert response["body"]["message"]
    assert (await get_ok(client, "Sensors(2)"))["name"] == "Kept"
    assert await count(client, "Observations") == 1


async def test_depends_on_a_failed_request_is_424(client: Any) -> None:
    await populate(client)
    responses = await batch(
        client,
        [
            {"id": "bad", "method": "post", "url": "Things", "body": {"description": "no name"}},
            {"id": "after", "method": "post", "url": "Sensors", "body": sensor(), "dependsOn": ["bad"]},
            {"id": "free", "method": "get", "url": "Sensors/$ref"},
        ],
    )
    assert [r["status"] for r in responses] == [400, 424, 200]
    assert "bad" in responses[1]["body"]["message"]
    assert responses[2]["body"] == {"value": [{"@iot.selfLink": url(client, "Sensors(1)")}]}
    assert await count(client, "Sensors") == 1


async def test_absolute_urls_csv_and_json_patch_inside_a_batch(client: Any) -> None:
    await populate(client)
    responses = await batch(
        client,
        [
            {"id": "1", "method": "get", "url": url(client, "Things(1)/name")},
            {"id": "2", "method": "get", "url": "Sensors?$resultFormat=CSV&$select=name"},
            {
                "id": "3",
                "method": "patch",
                "url": "Things(1)",
                "headers": {"Content-Type": "application/json-patch+json"},
                "body": [{"op": "replace", "path": "/name", "value": "patched"}],
            },
            {"id": "4", "method": "get", "url": "CreateObservations"},
        ],
    )
    assert responses[0] == {"id": "1", "status": 200, "body": {"name": "Weather station"}}
    assert responses[1]["headers"]["content-type"] == "text/csv"
    assert responses[1]["body"] == "name\r\nPT100\r\n"
    assert (responses[2]["status"], responses[2]["body"]["name"]) == (200, "patched")
    assert responses[3]["status"] == 405


async def test_create_observations_inside_a_batch(client: Any) -> None:
    await populate(client)
    rows = {"Datastream": ref(1), "components": ["result"], "dataArray": [[5], [], [6]]}
    bad_rows = {"Datastream": ref(99), "components": ["result"], "dataArray": [[5]]}
    responses = await batch(
        client,
        [
            {"id": "1", "atomicityGroup": "g", "method": "post", "url": "CreateObservations", "body": [rows]},
            {
                "id": "2",
                "atomicityGroup": "g",
                "method": "post",
                "url": "CreateObservations",
                "body": [bad_rows],
            },
        ],
    )
    assert responses[0]["status"] == 201
    assert responses[0]["body"] == [url(client, "Observations(3)"), "error", url(client, "Observations(4)")]
    assert responses[1] == {"id": "2", "status": 201, "body": ["error"]}
    assert [o["result"] for o in (await get_ok(client, "Observations?$orderby=id"))["value"]] == [
        20.5,
        21.0,
        5,
        6,
    ]


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ([], ("requests",)),
        ({"requests": {}}, ("requests",)),
        ({"requests": [{"id": "1", "method": "get"}]}, ("url",)),
        ({"requests": [{"id": "1", "method": "get", "url": "Things"}] * 2}, ("twice",)),
        ({"requests": [{"id": "1", "method": "get", "url": "Things", "dependsOn": ["2"]}]}, ("dependsOn",)),
        (
            {
                "requests": [
                    {"id": "1", "method": "get", "url": "Things", "atomicityGroup": "g"},
                    {"id": "2", "method": "get", "url": "Things"},
                    {"id": "3", "method": "get", "url": "Things", "atomicityGroup": "g"},
                ]
            },
            ("adjacent",),
        ),
    ],
)
async def test_bad_batch_body_is_400(client: Any, body: Any, mentions: tuple[str, ...]) -> None:
    status, payload, _ = await post(client, "$batch", body)
    assert_error(status, payload, 400, *mentions)


async def test_nested_batch_is_refused_per_request(client: Any) -> None:
    responses = await batch(
        client, [{"id": "1", "method": "post", "url": "$batch", "body": {"requests": []}}]
    )
    assert responses[0]["status"] == 400
    assert "$batch" in responses[0]["body"]["message"]
