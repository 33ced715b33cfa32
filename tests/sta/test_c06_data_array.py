# SPDX-License-Identifier: Apache-2.0
"""The dataArray extension (OGC 18-088 §14): $resultFormat=dataArray and POST CreateObservations."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import (
    T0,
    Json,
    assert_error,
    count,
    create,
    datastream,
    feature_of_interest,
    follow,
    get,
    get_ok,
    observation,
    populate,
    post,
    ref,
    thing,
    url,
)

from hub.app import FEED

DEFAULT_COMPONENTS = [
    "id",
    "phenomenonTime",
    "resultTime",
    "result",
    "resultQuality",
    "validTime",
    "parameters",
]
T1 = "2021-05-15T10:10:00Z"
FOI = "FeatureOfInterest/id"


async def _streams(client: Any) -> None:
    """The standard graph plus Datastream 2 with Observation 3, and Observation 4 on MultiDatastream 1."""
    await populate(client)
    assert await create(client, "Datastreams", datastream("Second stream")) == 2
    assert await create(client, "Observations", observation(7, T0, Datastream=ref(2))) == 3
    assert await create(client, "Observations", observation([1.5, 60], T0, MultiDatastream=ref(1))) == 4


# ---- GET $resultFormat=dataArray -----------------------------------------------------------------


async def test_data_array_groups_by_datastream_with_default_components(client: Any) -> None:
    await _streams(client)
    body = await get_ok(client, "Observations?$resultFormat=dataArray&$count=true")
    assert body["@iot.count"] == 4
    assert "@iot.nextLink" not in body
    groups = body["value"]
    assert [next(iter(group)) for group in groups] == [
        "Datastream@iot.navigationLink",
        "Datastream@iot.navigationLink",
        "MultiDatastream@iot.navigationLink",
    ]
    assert groups[0]["Datastream@iot.navigationLink"] == url(client, "Datastreams(1)")
    assert groups[1]["Datastream@iot.navigationLink"] == url(client, "Datastreams(2)")
    assert groups[2]["MultiDatastream@iot.navigationLink"] == url(client, "MultiDatastreams(1)")
    for group in groups:
        assert group["components"] == DEFAULT_COMPONENTS
        assert group["dataArray@iot.count"] == len(group["dataArray"])
    assert groups[0]["dataArray"] == [
        [1, T0, None, 20.5, None, None, None],
        [2, T1, None, 21.0, None, None, None],
    ]
    assert groups[1]["dataArray"] == [[3, T0, None, 7, None, None, None]]
    assert groups[2]["dataArray"] == [[4, T0, None, [1.5, 60], None, None, None]]


async def test_data_array_components_follow_select(client: Any) -> None:
    await _streams(client)
    body = await get_ok(
        client, "Datastreams(1)/Observations?$resultFormat=dataArray&$select=result,phenomenonTime,id"
    )
    assert body == {
        "value": [
            {
                "Datastream@iot.navigationLink": url(client, "Datastreams(1)"),
                "components": ["result", "phenomenonTime", "id"],
                "dataArray@iot.count": 2,
                "dataArray": [[20.5, T0, 1], [21.0, T1, 2]],
            }
        ]
    }


async def test_data_array_pages_with_a_top_level_next_link(client: Any) -> None:
    await _streams(client)
    body = await get_ok(client, "Observations?$resultFormat=dataArray&$top=3&$count=true&$select=id")
    assert body["@iot.count"] == 4
    assert [row for group in body["value"] for row in group["dataArray"]] == [[1], [2], [3]]
    link = body["@iot.nextLink"]
    assert "$resultFormat=dataArray" in link
    status, following = await follow(client, link)
    assert status == 200, following
    assert following["value"] == [
        {
            "MultiDatastream@iot.navigationLink": url(client, "MultiDatastreams(1)"),
            "components": ["id"],
            "dataArray@iot.count": 1,
            "dataArray": [[4]],
        }
    ]
    assert "@iot.nextLink" not in following


async def test_data_array_of_an_empty_collection(client: Any) -> None:
    await populate(client)
    assert await get_ok(
        client, "Datastreams(1)/Observations?$resultFormat=dataArray&$filter=result gt 100"
    ) == {"value": []}


@pytest.mark.parametrize(
    "path", ["Things?$resultFormat=dataArray", "Observations(1)?$resultFormat=dataArray"]
)
async def test_data_array_outside_observation_collections_is_400(client: Any, path: str) -> None:
    await populate(client)
    status, body = await get(client, path)
    assert_error(status, body, 400, "resultFormat")


# ---- POST CreateObservations ---------------------------------------------------------------------


async def test_create_observations_answers_self_links_in_input_order(client: Any) -> None:
    await populate(client)
    foi = await create(client, "FeaturesOfInterest", feature_of_interest())
    request = [
        {
            "Datastream": ref(1),
            "components": ["phenomenonTime", "result", "FeatureOfInterest/id", "parameters"],
            "dataArray@iot.count": 2,
            "dataArray": [
                ["2021-06-01T00:00:00Z", 1.5, foi, {"flag": "ok"}],
                ["2021-06-01T00:10:00+02:00", 2.5, foi, None],
            ],
        },
        {
            "MultiDatastream": ref(1),
            "components": ["result", "phenomenonTime", "resultTime"],
            "dataArray": [[[20, 55], "2021-06-01T00:00:00Z/2021-06-01T01:00:00Z", "2021-06-01T01:00:05Z"]],
        },
    ]
    status, links, _ = await post(client, "CreateObservations", request)
    assert status == 201, links
    assert links == [url(client, f"Observations({i})") for i in (3, 4, 5)]
    first = await get_ok(client, "Observations(3)?$expand=FeatureOfInterest($select=id)")
    assert (first["result"], first["phenomenonTime"], first["parameters"]) == (
        1.5,
        "2021-06-01T00:00:00Z",
        {"flag": "ok"},
    )
    assert first["FeatureOfInterest"] == {"@iot.id": foi}
    second = await get_ok(client, "Observations(4)")
    assert (second["result"], second["phenomenonTime"]) == (2.5, "2021-05-31T22:10:00Z")
    multi = await get_ok(client, "Observations(5)?$expand=MultiDatastream($select=id)")
    assert multi["result"] == [20, 55]
    assert multi["phenomenonTime"] == "2021-06-01T00:00:00Z/2021-06-01T01:00:00Z"
    assert multi["resultTime"] == "2021-06-01T01:00:05Z"
    assert multi["MultiDatastream"] == {"@iot.id": 1}
    # The stream's extents follow the batch.
    stream = await get_ok(client, "Datastreams(1)")
    assert stream["phenomenonTime"] == "2021-05-15T10:00:00Z/2021-06-01T00:00:00Z"


async def test_invalid_rows_answer_error_and_valid_rows_are_stored(client: Any) -> None:
    await populate(client)
    request = [
        {
            "Datastream": ref(1),
            "components": ["phenomenonTime", "result", "FeatureOfInterest/id"],
            "dataArray": [
                ["2021-06-01T00:00:00Z", 10, 1],
                ["2021-06-01T00:01:00Z", 11, "probablyNotAValidId"],
                ["2021-06-01T00:02:00Z", 12, 999],
                ["not a time", 13, 1],
                ["2021-06-01T00:04:00Z", 14],
                ["2021-06-01T00:05:00Z", 15, 1],
            ],
        },
        {"Datastream": ref(99), "components": ["result"], "dataArray": [[1]]},
        {"MultiDatastream": ref(1), "components": ["result"], "dataArray": [[1], [[1, 2]]]},
    ]
    status, links, _ = await post(client, "CreateObservations", request)
    assert status == 201, links
    assert links == [
        url(client, "Observations(3)"),
        "error",
        "error",
        "error",
        "error",
        url(client, "Observations(4)"),
        "error",
        "error",
        url(client, "Observations(5)"),
    ]
    assert await count(client, "Observations") == 5
    results = [entity["result"] for entity in (await get_ok(client, "Observations?$orderby=id"))["value"]]
    assert results == [20.5, 21.0, 10, 15, [1, 2]]


async def test_rows_without_feature_share_the_generated_feature(client: Any) -> None:
    await populate(client)
    request = [{"Datastream": ref(1), "components": ["result"], "dataArray": [[1], [2]]}]
    status, links, _ = await post(client, "CreateObservations", request)
    assert status == 201, links
    features = [(await get_ok(client, f"Observations({i})/FeatureOfInterest"))["@iot.id"] for i in (1, 3, 4)]
    assert features == [1, 1, 1]


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"Datastream": ref(1), "components": ["result"], "dataArray": [[1]]}, ("array",)),
        ([{"components": ["result"], "dataArray": [[1]]}], ("Datastream",)),
        (
            [{"Datastream": ref(1), "MultiDatastream": ref(1), "components": ["result"], "dataArray": []}],
            ("one",),
        ),
        ([{"Datastream": ref(1), "components": ["result", "colour"], "dataArray": [[1, 2]]}], ("colour",)),
        ([{"Datastream": ref(1), "components": "result", "dataArray": [[1]]}], ("components",)),
        ([{"Datastream": ref(1), "components": ["result"], "dataArray": {"0": [1]}}], ("dataArray",)),
        (
            [{"Datastream": ref(1), "components": ["result", "result"], "dataArray": [[1, 1]]}],
            ("duplicates",),
        ),
        ([[1]], ("object",)),
    ],
)
async def test_malformed_request_is_400_and_stores_nothing(
    client: Any, body: Any, mentions: tuple[str, ...]
) -> None:
    await populate(client)
    status, payload, _ = await post(client, "CreateObservations", body)
    assert_error(status, payload, 400, *mentions)
    assert await count(client, "Observations") == 2


async def test_create_observations_works_under_v1_0(client: Any) -> None:
    await populate(client)
    request: list[Json] = [{"Datastream": ref(1), "components": ["result"], "dataArray": [[3]]}]
    response = await client.post("/v1.0/CreateObservations", json=request)
    assert response.status == 201
    assert await response.json() == [url(client, "Observations(3)", "/v1.0")]


async def test_groups_with_different_components_store_every_value(client: Any) -> None:
    await populate(client)
    foi = await create(client, "FeaturesOfInterest", feature_of_interest())
    assert await create(client, "Datastreams", datastream("Second stream")) == 2
    request = [
        {
            "Datastream": ref(1),
            "components": ["result", "phenomenonTime", "resultTime", "validTime", "resultQuality"],
            "dataArray": [
                ["a", "2021-06-01T00:00:00Z", "2021-06-01T00:00:05Z", "2021-06-01T00:00:00Z/PT1H", {"q": 1}],
                [None, "2021-06-01T00:10:00.250+00:00", None, "2021-06-01T00:00:00Z", None],
            ],
        },
        {
            "Datastream": {"@iot.selfLink": url(client, "Datastreams(2)")},
            "components": ["parameters", FOI, "result"],
            "dataArray": [[{"depth": 2}, foi, 7], [None, str(foi), 8]],
        },
        {"MultiDatastream": ref(1), "components": ["result"], "dataArray": [[[1, 2]]]},
    ]
    status, links, _ = await post(client, "CreateObservations", request)
    assert status == 201, links
    assert links == [url(client, f"Observations({i})") for i in range(3, 8)]
    keys = ("result", "phenomenonTime", "resultTime", "validTime", "resultQuality", "parameters")
    stored = [
        await get_ok(client, f"Observations({i})?$expand=FeatureOfInterest($select=id)") for i in range(3, 8)
    ]
    assert [tuple(entity.get(k) for k in keys) for entity in stored] == [
        ("a", "2021-06-01T00:00:00Z", "2021-06-01T00:00:05Z",
         "2021-06-01T00:00:00Z/2021-06-01T01:00:00Z", {"q": 1}, None),
        (None, "2021-06-01T00:10:00.250Z", None, "2021-06-01T00:00:00Z/2021-06-01T00:00:00Z", None, None),
        (7, stored[2]["phenomenonTime"], None, None, None, {"depth": 2}),
        (8, stored[3]["phenomenonTime"], None, None, None, None),
        ([1, 2], stored[4]["phenomenonTime"], None, None, None, None),
    ]  # fmt: skip
    assert [entity["FeatureOfInterest"]["@iot.id"] for entity in stored] == [1, 1, foi, foi, 1]
    stream = await get_ok(client, "Datastreams(1)")
    assert stream["phenomenonTime"] == "2021-05-15T10:00:00Z/2021-06-01T00:10:00.250Z"
    assert stream["resultTime"] == "2021-06-01T00:00:05Z/2021-06-01T00:00:05Z"


async def test_rows_without_phenomenon_time_get_the_time_of_arrival(client: Any) -> None:
    await populate(client)
    before = (await get_ok(client, "Datastreams(1)"))["phenomenonTime"]
    status, links, _ = await post(
        client,
        "CreateObservations",
        [{"Datastream": ref(1), "components": ["result"], "dataArray": [[1], [2]]}],
    )
    assert status == 201, links
    times = [(await get_ok(client, f"Observations({i})"))["phenomenonTime"] for i in (3, 4)]
    assert times[0] == times[1] > "2026"
    assert (await get_ok(client, "Datastreams(1)"))["phenomenonTime"] == f"{before.split('/')[0]}/{times[0]}"


async def test_link_failures_per_row(client: Any) -> None:
    """Rows whose links fail answer "error": no Location to derive a feature from, a missing
    feature, a MultiDatastream result of the wrong arity; the other rows are stored."""
    await populate(client)
    assert await create(client, "Things", thing("Bare", locations=[])) == 2
    assert await create(client, "Datastreams", datastream("Homeless", thing_id=2)) == 2
    request = [
        {"Datastream": ref(2), "components": ["result"], "dataArray": [[1], [2]]},
        {"Datastream": ref(2), "components": ["result", FOI], "dataArray": [[3, 1], [4, None], [5, 77]]},
        {
            "MultiDatastream": ref(1),
            "components": ["result"],
            "dataArray": [[[1]], [[1, 2]], [None], [[1, 2, 3]]],
        },
    ]
    status, links, _ = await post(client, "CreateObservations", request)
    assert status == 201, links
    expected = ["error", "error", url(client, "Observations(3)"), "error", "error"]
    assert links == [*expected, "error", url(client, "Observations(4)"), "error", "error"]
    assert await count(client, "Observations") == 4


@pytest.mark.parametrize(
    "stream",
    [
        {"@iot.id": 2**63},  # no bigint holds it: no such Datastream
        datastream("Made inline"),  # a deep insert: CreateObservations adds rows to existing streams only
        {"@iot.id": 99},
    ],
)
async def test_a_stream_that_is_no_existing_one_fails_its_rows(client: Any, stream: Json) -> None:
    await populate(client)
    request = [
        {"Datastream": stream, "components": ["result"], "dataArray": [[1], [2]]},
        {"Datastream": ref(1), "components": ["result", FOI], "dataArray": [[3, 2**63], [4, 1]]},
    ]
    status, links, _ = await post(client, "CreateObservations", request)
    assert status == 201, links
    assert links == ["error", "error", "error", url(client, "Observations(3)")]
    assert await count(client, "Datastreams") == 1


async def test_every_stored_row_is_announced_once_committed(client: Any) -> None:
    await populate(client)
    feed = client.server.app[FEED]
    await feed.flush()
    sink = _Recorder()
    feed.sinks.append(sink)
    try:
        request = [{"Datastream": ref(1), "components": ["result"], "dataArray": [[1], ["x", 2], [3]]}]
        status, links, _ = await post(client, "CreateObservations", request)
        assert status == 201, links
        await feed.flush()
    finally:
        feed.sinks.remove(sink)
    assert links == [url(client, "Observations(3)"), "error", url(client, "Observations(4)")]
    assert sink.announced == [("Observation", 3, {"create"}), ("Observation", 4, {"create"})]


class _Recorder:
    """A change-feed sink that keeps what it is given."""

    every_process = False

    def __init__(self) -> None:
        self.announced: list[tuple[str, int, set[str]]] = []

    def active(self) -> bool:
        return True

    def deliver(self, notices: Any) -> None:
        self.announced += [(n.entity_type.name, n.entity_id, set(n.operations)) for n in notices]

    def gap(self) -> None:
        raise AssertionError("no change may be lost here")

    async def drained(self) -> None:
        pass
