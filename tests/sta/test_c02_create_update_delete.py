# SPDX-License-Identifier: Apache-2.0
"""Conformance class A.2 "Create-Update-Delete" (OGC 18-088 §10; FROST statests c02cud).

Create (201 + Location), deep insert, links to existing entities, navigated
POSTs, the side effects the standard asks for (HistoricalLocations, generated
FeaturesOfInterest, Datastream extents), MultiDatastream arity, PATCH, PUT,
JSON Patch, DELETE with its cascades, and $ref links.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import (
    ENTITY_SETS,
    OM_MEASUREMENT,
    PERCENT,
    T0,
    Graph,
    Json,
    assert_error,
    count,
    create,
    datastream,
    feature_of_interest,
    get,
    get_ok,
    ids,
    location,
    multi_datastream,
    observation,
    observed_property,
    point,
    populate,
    post,
    ref,
    send,
    sensor,
    thing,
    url,
)

JSON_PATCH = "application/json-patch+json"


@pytest.fixture
async def graph(client: Any) -> Graph:
    """The standard graph of helpers.populate."""
    return await populate(client)


async def counts(client: Any, *entity_sets: str) -> dict[str, int]:
    return {entity_set: await count(client, entity_set) for entity_set in entity_sets}


# ---- create ----------------------------------------------------------------------------------------

CREATE_CASES: list[tuple[str, Json]] = [
    ("Things", thing("New station", [])),
    ("Locations", location("Harbour", point(9.97, 53.54))),
    ("HistoricalLocations", {"time": "2020-01-01T00:00:00Z", "Thing": ref(1), "Locations": [ref(1)]}),
    ("Sensors", sensor("DHT22")),
    ("ObservedProperties", observed_property("Wind speed")),
    ("Datastreams", datastream("Second temperature")),
    ("MultiDatastreams", multi_datastream("Second weather")),
    ("Observations", observation(3.5, T0, Datastream=ref(1))),
    ("FeaturesOfInterest", feature_of_interest("Park")),
]


@pytest.mark.parametrize(("entity_set", "body"), CREATE_CASES, ids=[c[0] for c in CREATE_CASES])
async def test_create_answers_201_with_location(
    client: Any, graph: Graph, entity_set: str, body: Json
) -> None:
    status, created, location_header = await post(client, entity_set, body)
    assert status == 201, created
    new_id = created["@iot.id"]
    assert location_header == created["@iot.selfLink"] == url(client, f"{entity_set}({new_id})")
    for key, value in body.items():
        if key[0].islower():  # properties, not navigation properties
            assert created[key] == value, key
    assert await get_ok(client, f"{entity_set}({new_id})") == created


async def test_create_response_headers_for_clients(client: Any) -> None:
    # frost-sta-client and stapy read the id from Location; aio-sensorthings falls back to the body
    # only with Content-Length and application/json.
    response = await client.post("/v1.1/Things", json=thing())
    assert response.status == 201
    assert response.content_type == "application/json"
    assert int(response.headers["Content-Length"]) == len(await response.read())
    assert response.headers["Location"].endswith("/v1.1/Things(1)")
    assert (await response.json())["@iot.id"] == 1


async def test_created_historical_location_links_thing_and_locations(client: Any, graph: Graph) -> None:
    body = {"time": "2020-01-01T00:00:00Z", "Thing": ref(1), "Locations": [ref(1)]}
    new_id = await create(client, "HistoricalLocations", body)
    assert (await get_ok(client, f"HistoricalLocations({new_id})/Thing"))["@iot.id"] == 1
    assert await ids(client, f"HistoricalLocations({new_id})/Locations") == [1]


# ---- deep insert -----------------------------------------------------------------------------------


async def test_deep_insert_thing_with_locations_and_datastreams(client: Any) -> None:
    body = thing(
        "Deep station",
        [location("Deep place")],
        Datastreams=[
            datastream(
                "Deep temperature",
                thing_id=None,
                sensor_id=None,
                observed_property_id=None,
                Sensor=sensor("Deep sensor"),
                ObservedProperty=observed_property("Deep property"),
            ),
            datastream(
                "Deep humidity",
                thing_id=None,
                sensor_id=None,
                observed_property_id=None,
                unitOfMeasurement=PERCENT,
                Sensor=sensor("Second deep sensor"),
                ObservedProperty=observed_property("Deep humidity"),
            ),
        ],
    )
    status, created, _ = await post(client, "Things", body)
    assert status == 201, created
    thing_id = created["@iot.id"]
    locations = await get_ok(client, f"Things({thing_id})/Locations")
    assert [e["name"] for e in locations["value"]] == ["Deep place"]
    streams = (await get_ok(client, f"Things({thing_id})/Datastreams"))["value"]
    assert sorted(e["name"] for e in streams) == ["Deep humidity", "Deep temperature"]
    expected = {
        "Deep temperature": ("Deep sensor", "Deep property"),
        "Deep humidity": ("Second deep sensor", "Deep humidity"),
    }
    for stream in streams:
        stream_sensor = await get_ok(client, f"Datastreams({stream['@iot.id']})/Sensor")
        prop = await get_ok(client, f"Datastreams({stream['@iot.id']})/ObservedProperty")
        assert (stream_sensor["name"], prop["name"]) == expected[stream["name"]]
    assert await counts(client, "Things", "Locations", "Sensors", "ObservedProperties", "Datastreams") == {
        "Things": 1,
        "Locations": 1,
        "Sensors": 2,
        "ObservedProperties": 2,
        "Datastreams": 2,
    }
    # Creating a Thing with a Location records where it was (STA-NOTES 14).
    assert len(await ids(client, f"Things({thing_id})/HistoricalLocations")) == 1


async def test_deep_insert_datastream_with_new_thing(client: Any, graph: Graph) -> None:
    body = datastream("Roaming", thing_id=None, Thing=thing("New thing", [location("New place")]))
    status, created, _ = await post(client, "Datastreams", body)
    assert status == 201, created
    new_thing = await get_ok(client, f"Datastreams({created['@iot.id']})/Thing")
    assert new_thing["name"] == "New thing"
    assert new_thing["@iot.id"] == 2
    place = await get_ok(client, f"Datastreams({created['@iot.id']})/Thing/Locations")
    assert [e["name"] for e in place["value"]] == ["New place"]
    assert await count(client, "Things") == 2


async def test_deep_insert_observation_with_new_feature_of_interest(client: Any, graph: Graph) -> None:
    body = observation(7, T0, Datastream=ref(1), FeatureOfInterest=feature_of_interest("Park"))
    status, created, _ = await post(client, "Observations", body)
    assert status == 201, created
    feature = await get_ok(client, f"Observations({created['@iot.id']})/FeatureOfInterest")
    assert feature["name"] == "Park"
    assert feature["@iot.id"] == 2
    assert await count(client, "FeaturesOfInterest") == 2


async def test_deep_insert_multi_datastream_with_new_observed_properties(client: Any, graph: Graph) -> None:
    body = multi_datastream(
        "Deep weather",
        observed_property_ids=(),
        ObservedProperties=[observed_property("Pressure"), observed_property("Wind")],
    )
    status, created, _ = await post(client, "MultiDatastreams", body)
    assert status == 201, created
    props = await get_ok(client, f"MultiDatastreams({created['@iot.id']})/ObservedProperties")
    # The order of ObservedProperties gives each result element its meaning.
    assert [e["name"] for e in props["value"]] == ["Pressure", "Wind"]


async def test_failed_deep_insert_creates_nothing(client: Any) -> None:
    broken = datastream("Broken", thing_id=None, sensor_id=None, observed_property_id=None)
    del broken["unitOfMeasurement"]
    body = thing("Half", [location("Half place")], Datastreams=[broken])
    status, payload, _ = await post(client, "Things", body)
    assert_error(status, payload, 400, "unitOfMeasurement")
    assert await counts(client, "Things", "Locations", "HistoricalLocations") == {
        "Things": 0,
        "Locations": 0,
        "HistoricalLocations": 0,
    }


# ---- links to existing entities --------------------------------------------------------------------


async def test_link_to_existing_entities_by_id(client: Any, graph: Graph) -> None:
    body = thing("Neighbour", [ref(1)], Datastreams=[datastream("Neighbour temperature", thing_id=None)])
    new_id = await create(client, "Things", body)
    assert await ids(client, f"Things({new_id})/Locations") == [1]
    assert await ids(client, "Locations(1)/Things") == [1, new_id]
    stream = (await get_ok(client, f"Things({new_id})/Datastreams"))["value"][0]
    assert (await get_ok(client, f"Datastreams({stream['@iot.id']})/Sensor"))["@iot.id"] == 1
    assert await counts(client, "Locations", "Sensors", "ObservedProperties") == {
        "Locations": 1,
        "Sensors": 1,
        "ObservedProperties": 2,
    }


async def test_nested_object_with_id_and_other_properties_is_a_reference(client: Any, graph: Graph) -> None:
    # frost-sta-client embeds the whole Thing (with its Locations) when it creates a Datastream.
    embedded_thing = await get_ok(client, "Things(1)")
    embedded_thing["name"] = "must not be created or changed"
    embedded_thing["Locations"] = [location("must not be created")]
    body = datastream("Linked", thing_id=None, Thing=embedded_thing)
    status, created, _ = await post(client, "Datastreams", body)
    assert status == 201, created
    assert (await get_ok(client, f"Datastreams({created['@iot.id']})/Thing"))["@iot.id"] == 1
    assert (await get_ok(client, "Things(1)"))["name"] == "Weather station"
    assert await counts(client, "Things", "Locations") == {"Things": 1, "Locations": 1}


async def test_post_to_a_navigation_collection_links_the_parent(client: Any, graph: Graph) -> None:
    body = datastream("Through the Thing", thing_id=None)
    status, created, location_header = await post(client, "Things(1)/Datastreams", body)
    assert status == 201, created
    assert location_header == url(client, f"Datastreams({created['@iot.id']})")
    assert (await get_ok(client, f"Datastreams({created['@iot.id']})/Thing"))["@iot.id"] == 1
    assert created["@iot.id"] in await ids(client, "Things(1)/Datastreams")


async def test_post_observation_to_a_datastream(client: Any, graph: Graph) -> None:
    status, created, location_header = await post(client, "Datastreams(1)/Observations", observation(9.5))
    assert status == 201, created
    assert location_header == url(client, "Observations(3)")
    assert (await get_ok(client, "Observations(3)/Datastream"))["@iot.id"] == 1
    assert sorted(await ids(client, "Datastreams(1)/Observations")) == [1, 2, 3]


async def test_post_location_to_a_thing_links_it(client: Any, graph: Graph) -> None:
    status, created, _ = await post(client, "Things(1)/Locations", location("Second place"))
    assert status == 201, created
    assert created["@iot.id"] in await ids(client, "Things(1)/Locations")


async def test_location_created_with_a_thing_links_it_and_records_history(client: Any, graph: Graph) -> None:
    new_id = await create(client, "Locations", location("Second place", Things=[ref(1)]))
    assert await ids(client, f"Locations({new_id})/Things") == [1]
    history = await ids(client, "Things(1)/HistoricalLocations")
    assert len(history) == 2
    assert await ids(client, f"HistoricalLocations({max(history)})/Locations") == [new_id]


async def test_post_to_the_navigation_collection_of_a_missing_parent_is_404(
    client: Any, graph: Graph
) -> None:
    status, payload, _ = await post(client, "Things(99)/Datastreams", datastream(thing_id=None))
    assert_error(status, payload, 404, "99")
    assert await count(client, "Datastreams") == 1


# ---- HistoricalLocations ---------------------------------------------------------------------------


async def test_thing_created_with_a_location_gets_a_historical_location(client: Any, graph: Graph) -> None:
    history = (await get_ok(client, "Things(1)/HistoricalLocations"))["value"]
    assert [h["@iot.id"] for h in history] == [1]
    assert await ids(client, "HistoricalLocations(1)/Locations") == [1]


async def test_thing_created_without_a_location_gets_no_historical_location(client: Any) -> None:
    new_id = await create(client, "Things", thing("Nowhere", []))
    assert await ids(client, f"Things({new_id})/HistoricalLocations") == []


async def test_patch_with_new_locations_replaces_them_and_records_history(client: Any, graph: Graph) -> None:
    second = await create(client, "Locations", location("Second place", point(9.9, 53.5)))
    status, patched, _ = await send(client, "PATCH", "Things(1)", {"Locations": [ref(second)]})
    assert status == 200, patched
    assert await ids(client, "Things(1)/Locations") == [second]
    history = await ids(client, "Things(1)/HistoricalLocations")
    assert len(history) == 2
    newest = max(history)
    assert await ids(client, f"HistoricalLocations({newest})/Locations") == [second]
    # The old Location still exists; only the link was replaced.
    assert await count(client, "Locations") == 2


async def test_ref_post_links_a_location_and_records_history(client: Any, graph: Graph) -> None:
    second = await create(client, "Locations", location("Second place", point(9.9, 53.5)))
    status, payload, _ = await post(client, "Things(1)/Locations/$ref", ref(second))
    assert status in (200, 204), payload
    assert second in await ids(client, "Things(1)/Locations")
    history = await ids(client, "Things(1)/HistoricalLocations")
    assert len(history) == 2
    assert second in await ids(client, f"HistoricalLocations({max(history)})/Locations")


# ---- generated FeaturesOfInterest ------------------------------------------------------------------


async def test_feature_of_interest_is_generated_from_the_location_and_reused(
    client: Any, graph: Graph
) -> None:
    assert await ids(client, "FeaturesOfInterest") == [1]
    feature = await get_ok(client, "FeaturesOfInterest(1)")
    assert feature["feature"] == (await get_ok(client, "Locations(1)"))["location"]
    for observation_id in (1, 2):
        assert (await get_ok(client, f"Observations({observation_id})/FeatureOfInterest"))["@iot.id"] == 1
    await create(client, "Observations", observation(22, "2021-05-15T10:20:00Z", Datastream=ref(1)))
    assert await ids(client, "FeaturesOfInterest") == [1]
    assert await ids(client, "FeaturesOfInterest(1)/Observations") == [1, 2, 3]


async def test_feature_of_interest_follows_the_thing_to_its_new_location(client: Any, graph: Graph) -> None:
    second = await create(client, "Locations", location("Second place", point(9.9, 53.5)))
    status, _, _ = await send(client, "PATCH", "Things(1)", {"Locations": [ref(second)]})
    assert status == 200
    new_id = await create(client, "Observations", observation(22, "2021-05-15T10:20:00Z", Datastream=ref(1)))
    feature = await get_ok(client, f"Observations({new_id})/FeatureOfInterest")
    assert feature["@iot.id"] == 2
    assert feature["feature"] == point(9.9, 53.5)


# ---- Datastream extents ----------------------------------------------------------------------------


async def test_datastream_extents_follow_its_observations(client: Any, graph: Graph) -> None:
    stream = await create(client, "Datastreams", datastream("Extents"))
    assert "phenomenonTime" not in await get_ok(client, f"Datastreams({stream})")
    posts = [
        observation(1, "2021-05-15T10:10:00Z", resultTime="2021-05-15T10:10:01Z"),
        observation(2, "2021-05-15T10:00:00Z", resultTime="2021-05-15T10:00:01Z"),  # earlier, posted later
        observation(3, "2021-05-15T10:20:00Z/2021-05-15T10:30:00Z", resultTime="2021-05-15T10:30:01Z"),
    ]
    created = [await create(client, f"Datastreams({stream})/Observations", body) for body in posts]
    entity = await get_ok(client, f"Datastreams({stream})")
    assert entity["phenomenonTime"] == "2021-05-15T10:00:00Z/2021-05-15T10:30:00Z"
    assert entity["resultTime"] == "2021-05-15T10:00:01Z/2021-05-15T10:30:01Z"
    # Deleting the latest Observation shrinks the extents.
    status, _, _ = await send(client, "DELETE", f"Observations({created[2]})")
    assert status == 200
    entity = await get_ok(client, f"Datastreams({stream})")
    assert entity["phenomenonTime"] == "2021-05-15T10:00:00Z/2021-05-15T10:10:00Z"
    assert entity["resultTime"] == "2021-05-15T10:00:01Z/2021-05-15T10:10:01Z"
    # Moving an Observation in time moves the extents.
    status, _, _ = await send(
        client, "PATCH", f"Observations({created[1]})", {"phenomenonTime": T0[:11] + "11:00:00Z"}
    )
    assert status == 200
    entity = await get_ok(client, f"Datastreams({stream})")
    assert entity["phenomenonTime"] == "2021-05-15T10:10:00Z/2021-05-15T11:00:00Z"
    for observation_id in created[:2]:
        await send(client, "DELETE", f"Observations({observation_id})")
    entity = await get_ok(client, f"Datastreams({stream})")
    assert entity.get("phenomenonTime") is None
    assert entity.get("resultTime") is None


async def test_moving_an_observation_updates_both_datastreams(client: Any, graph: Graph) -> None:
    second = await create(client, "Datastreams", datastream("Second"))
    # Observation 2 (10:10) is the latest of Datastream 1; move it to the second Datastream.
    status, payload, _ = await send(client, "PATCH", "Observations(2)", {"Datastream": ref(second)})
    assert status == 200, payload
    assert await ids(client, "Datastreams(1)/Observations") == [1]
    assert await ids(client, f"Datastreams({second})/Observations") == [2]
    assert (await get_ok(client, f"Datastreams({second})"))["phenomenonTime"] == (
        "2021-05-15T10:10:00Z/2021-05-15T10:10:00Z"
    )
    assert (await get_ok(client, "Datastreams(1)"))["phenomenonTime"] == f"{T0}/{T0}"


async def test_datastream_with_server_computed_properties_is_accepted(client: Any, graph: Graph) -> None:
    # aio-sensorthings copies these from another server (STA-NOTES): accept and ignore them.
    body = datastream(
        "Copied",
        phenomenonTime="2000-01-01T00:00:00Z/2000-01-02T00:00:00Z",
        resultTime="2000-01-01T00:00:00Z/2000-01-02T00:00:00Z",
        observedArea={"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
    )
    status, created, _ = await post(client, "Datastreams", body)
    assert status == 201, created
    for computed in ("phenomenonTime", "resultTime", "observedArea"):
        assert created.get(computed) is None, computed
    await create(client, f"Datastreams({created['@iot.id']})/Observations", observation(1, T0))
    entity = await get_ok(client, f"Datastreams({created['@iot.id']})")
    assert entity["phenomenonTime"] == f"{T0}/{T0}"


async def test_multi_datastream_with_server_computed_properties_is_accepted(
    client: Any, graph: Graph
) -> None:
    body = multi_datastream("Copied", phenomenonTime="2000-01-01T00:00:00Z/2000-01-02T00:00:00Z")
    status, created, _ = await post(client, "MultiDatastreams", body)
    assert status == 201, created
    assert created.get("phenomenonTime") is None


# ---- MultiDatastreams ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"unitOfMeasurements": [PERCENT]}, "unitOfMeasurements"),
        ({"multiObservationDataTypes": [OM_MEASUREMENT] * 3}, "multiObservationDataTypes"),
        ({"ObservedProperties": [ref(1)]}, "ObservedProperties"),
        ({"ObservedProperties": []}, "ObservedProperties"),
        (
            {"unitOfMeasurements": [], "multiObservationDataTypes": [], "ObservedProperties": []},
            "ObservedProperties",
        ),
    ],
)
async def test_multi_datastream_arrays_must_match(
    client: Any, graph: Graph, changes: Json, field: str
) -> None:
    status, payload, _ = await post(client, "MultiDatastreams", multi_datastream("Mismatch", **changes))
    assert_error(status, payload, 400, field)
    assert await count(client, "MultiDatastreams") == 1


@pytest.mark.parametrize(
    ("changes", "mentions"),
    [
        ({"observationType": OM_MEASUREMENT}, ("MultiDatastream.observationType", "OM_ComplexObservation")),
        ({"observationType": ""}, ("MultiDatastream.observationType", "OM_ComplexObservation")),
        ({"multiObservationDataTypes": [OM_MEASUREMENT, 5]}, ("multiObservationDataTypes[1]", "URI string")),
        ({"multiObservationDataTypes": [None, OM_MEASUREMENT]}, ("multiObservationDataTypes[0]",)),
    ],
)
async def test_multi_datastream_observation_type_is_complex(
    client: Any, graph: Graph, changes: Json, mentions: tuple[str, ...]
) -> None:
    """OGC 18-088 §10.2 (req/multi-datastream/properties): observationType is fixed to
    OM_ComplexObservation, and multiObservationDataTypes holds observationType URIs."""
    status, payload, _ = await post(client, "MultiDatastreams", multi_datastream("Wrong type", **changes))
    assert_error(status, payload, 400, *mentions)
    assert await count(client, "MultiDatastreams") == 1
    status, payload, _ = await send(client, "PATCH", "MultiDatastreams(1)", changes)
    assert_error(status, payload, 400, *mentions)
    assert (await get_ok(client, "MultiDatastreams(1)"))["observationType"].endswith("OM_ComplexObservation")


async def test_multi_datastream_observation_round_trips(client: Any, graph: Graph) -> None:
    status, created, _ = await post(
        client, "Observations", observation([20.5, 61], T0, MultiDatastream=ref(1))
    )
    assert status == 201, created
    assert created["result"] == [20.5, 61]
    assert await ids(client, "MultiDatastreams(1)/Observations") == [created["@iot.id"]]
    assert (await get_ok(client, "MultiDatastreams(1)"))["phenomenonTime"] == f"{T0}/{T0}"


async def test_multi_datastream_unit_with_nulls_round_trips(client: Any, graph: Graph) -> None:
    # STA-NOTES 13: a dimensionless member has a unit whose fields are JSON null.
    no_unit = {"name": None, "symbol": None, "definition": None}
    body = multi_datastream("With a count", unitOfMeasurements=[no_unit, PERCENT])
    status, created, _ = await post(client, "MultiDatastreams", body)
    assert status == 201, created
    entity = await get_ok(client, f"MultiDatastreams({created['@iot.id']})")
    assert entity["unitOfMeasurements"] == [no_unit, PERCENT]


async def test_post_observation_to_a_multi_datastream(client: Any, graph: Graph) -> None:
    status, created, _ = await post(client, "MultiDatastreams(1)/Observations", observation([1, 2]))
    assert status == 201, created
    assert (await get_ok(client, f"Observations({created['@iot.id']})/MultiDatastream"))["@iot.id"] == 1


@pytest.mark.parametrize("result", [[20.5], [20.5, 61, 3], 20.5, "20.5,61", None, {"a": 1}])
async def test_multi_datastream_observation_result_must_have_one_element_per_property(
    client: Any, graph: Graph, result: Any
) -> None:
    status, payload, _ = await post(client, "Observations", observation(result, T0, MultiDatastream=ref(1)))
    assert_error(status, payload, 400, "result")
    assert await ids(client, "MultiDatastreams(1)/Observations") == []


# ---- PATCH -----------------------------------------------------------------------------------------


async def test_patch_merges_properties(client: Any, graph: Graph) -> None:
    status, patched, _ = await send(client, "PATCH", "Things(1)", {"description": "Moved to the roof"})
    assert status == 200, patched
    assert patched["description"] == "Moved to the roof"
    assert patched["name"] == "Weather station"
    assert patched["properties"] == {"owner": "city"}
    assert await get_ok(client, "Things(1)") == patched


async def test_patch_replaces_the_properties_object(client: Any, graph: Graph) -> None:
    status, patched, _ = await send(client, "PATCH", "Things(1)", {"properties": {"height": 12}})
    assert status == 200, patched
    assert patched["properties"] == {"height": 12}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("Things(1)", {"colour": "red"}, "colour"),
        ("Things(1)", {"name": None}, "name"),
        ("Things(1)", {"name": 5}, "name"),
        ("Observations(1)", {"phenomenonTime": "soon"}, "phenomenonTime"),
        ("Locations(1)", {"location": {"type": "Point"}}, "location"),
    ],
)
async def test_patch_with_a_bad_property_is_400_and_changes_nothing(
    client: Any, graph: Graph, path: str, body: Json, field: str
) -> None:
    before = await get_ok(client, path)
    status, payload, _ = await send(client, "PATCH", path, body)
    assert_error(status, payload, 400, field)
    assert await get_ok(client, path) == before


@pytest.mark.parametrize(
    ("path", "body", "check", "expected"),
    [
        ("Datastreams(1)", {"Sensor": ref(2)}, "Datastreams(1)/Sensor", 2),
        ("Datastreams(1)", {"ObservedProperty": ref(2)}, "Datastreams(1)/ObservedProperty", 2),
        ("Observations(1)", {"FeatureOfInterest": ref(2)}, "Observations(1)/FeatureOfInterest", 2),
    ],
)
async def test_patch_relinks_to_one_navigation(
    client: Any, graph: Graph, path: str, body: Json, check: str, expected: int
) -> None:
    await create(client, "Sensors", sensor("Second sensor"))
    await create(client, "FeaturesOfInterest", feature_of_interest("Second feature"))
    status, payload, _ = await send(client, "PATCH", path, body)
    assert status == 200, payload
    assert (await get_ok(client, check))["@iot.id"] == expected


async def test_patch_of_an_observation_result(client: Any, graph: Graph) -> None:
    status, patched, _ = await send(client, "PATCH", "Observations(1)", {"result": {"value": 3}})
    assert status == 200, patched
    assert (await get_ok(client, "Observations(1)"))["result"] == {"value": 3}


async def test_patch_of_a_missing_entity_is_404(client: Any, graph: Graph) -> None:
    status, payload, _ = await send(client, "PATCH", "Things(99)", {"name": "x"})
    assert_error(status, payload, 404, "99")


# ---- PUT -------------------------------------------------------------------------------------------


async def test_put_replaces_and_drops_left_out_optional_properties(client: Any, graph: Graph) -> None:
    status, replaced, _ = await send(client, "PUT", "Things(1)", {"name": "Renamed", "description": "New"})
    assert status == 200, replaced
    entity = await get_ok(client, "Things(1)")
    assert entity == replaced
    assert entity["name"] == "Renamed"
    assert "properties" not in entity or entity["properties"] is None
    # Links are not properties: the Thing keeps its Location and Datastreams.
    assert await ids(client, "Things(1)/Locations") == [1]
    assert await ids(client, "Things(1)/Datastreams") == [1]


async def test_put_with_the_body_frost_client_sends(client: Any, graph: Graph) -> None:
    # frost-sta-client PUTs the whole entity back, with @iot.id and links.
    body = await get_ok(client, "Datastreams(1)")
    body["name"] = "Renamed stream"
    status, replaced, _ = await send(client, "PUT", "Datastreams(1)", body)
    assert status == 200, replaced
    assert replaced["name"] == "Renamed stream"
    assert (await get_ok(client, "Datastreams(1)/Thing"))["@iot.id"] == 1


async def test_put_without_a_required_property_is_400(client: Any, graph: Graph) -> None:
    status, payload, _ = await send(client, "PUT", "Things(1)", {"name": "Renamed"})
    assert_error(status, payload, 400, "description")
    assert (await get_ok(client, "Things(1)"))["name"] == "Weather station"


# ---- JSON Patch ------------------------------------------------------------------------------------


async def test_json_patch_add_replace_remove_test(client: Any, graph: Graph) -> None:
    operations = [
        {"op": "test", "path": "/name", "value": "Weather station"},
        {"op": "replace", "path": "/name", "value": "Patched"},
        {"op": "add", "path": "/properties/height", "value": 12},
        {"op": "remove", "path": "/properties/owner"},
    ]
    status, patched, _ = await send(client, "PATCH", "Things(1)", operations, content_type=JSON_PATCH)
    assert status == 200, patched
    assert patched["name"] == "Patched"
    assert patched["properties"] == {"height": 12}
    assert await get_ok(client, "Things(1)") == patched


async def test_json_patch_on_a_nested_result(client: Any, graph: Graph) -> None:
    await send(client, "PATCH", "Observations(1)", {"result": {"values": [1, 2]}})
    operations = [{"op": "add", "path": "/result/values/-", "value": 3}]
    status, patched, _ = await send(client, "PATCH", "Observations(1)", operations, content_type=JSON_PATCH)
    assert status == 200, patched
    assert patched["result"] == {"values": [1, 2, 3]}


async def test_json_patch_with_a_failing_test_changes_nothing(client: Any, graph: Graph) -> None:
    operations = [
        {"op": "replace", "path": "/name", "value": "Patched"},
        {"op": "test", "path": "/description", "value": "not the description"},
    ]
    status, payload, _ = await send(client, "PATCH", "Things(1)", operations, content_type=JSON_PATCH)
    assert status in (400, 409), payload
    assert_error(status, payload, status, "/description")
    assert (await get_ok(client, "Things(1)"))["name"] == "Weather station"


async def test_json_patch_removing_a_required_property_is_400(client: Any, graph: Graph) -> None:
    operations = [{"op": "remove", "path": "/name"}]
    status, payload, _ = await send(client, "PATCH", "Things(1)", operations, content_type=JSON_PATCH)
    assert_error(status, payload, 400, "name")
    assert (await get_ok(client, "Things(1)"))["name"] == "Weather station"


# ---- DELETE and cascades ---------------------------------------------------------------------------

ALL = ENTITY_SETS
# Standard graph: 1 Thing, 1 Location, 1 HL, 1 DS, 1 MDS, 1 Sensor, 2 OPs, 2 Observations, 1 FOI.
BEFORE = dict(zip(ALL, (1, 1, 1, 1, 1, 1, 2, 2, 1), strict=True))


@pytest.mark.parametrize(
    ("path", "gone"),
    [
        (
            "Things(1)",
            {
                "Things": 0,
                "HistoricalLocations": 0,
                "Datastreams": 0,
                "MultiDatastreams": 0,
                "Observations": 0,
            },
        ),
        ("Datastreams(1)", {"Datastreams": 0, "Observations": 0}),
        ("Sensors(1)", {"Sensors": 0, "Datastreams": 0, "MultiDatastreams": 0, "Observations": 0}),
        (
            "ObservedProperties(1)",
            {"ObservedProperties": 1, "Datastreams": 0, "MultiDatastreams": 0, "Observations": 0},
        ),
        ("ObservedProperties(2)", {"ObservedProperties": 1, "MultiDatastreams": 0}),
        ("FeaturesOfInterest(1)", {"FeaturesOfInterest": 0, "Observations": 0}),
        ("Locations(1)", {"Locations": 0, "HistoricalLocations": 0}),
        ("HistoricalLocations(1)", {"HistoricalLocations": 0}),
        ("Observations(1)", {"Observations": 1}),
        ("MultiDatastreams(1)", {"MultiDatastreams": 0}),
    ],
)
async def test_delete_cascades(client: Any, graph: Graph, path: str, gone: dict[str, int]) -> None:
    assert await counts(client, *ALL) == BEFORE
    status, payload, _ = await send(client, "DELETE", path)
    assert status == 200, payload
    status, missing = await get(client, path)
    assert_error(status, missing, 404)
    assert await counts(client, *ALL) == {**BEFORE, **gone}


async def test_delete_location_keeps_historical_locations_with_another_location(
    client: Any, graph: Graph
) -> None:
    second = await create(client, "Locations", location("Second place"))
    shared = await create(
        client, "HistoricalLocations", {"time": T0, "Thing": ref(1), "Locations": [ref(1), ref(second)]}
    )
    status, _, _ = await send(client, "DELETE", "Locations(1)")
    assert status == 200
    assert await ids(client, "HistoricalLocations") == [shared]
    assert await ids(client, f"HistoricalLocations({shared})/Locations") == [second]
    assert await ids(client, "Things") == [1]


async def test_delete_answers_200_and_a_second_delete_404(client: Any, graph: Graph) -> None:
    status, payload, _ = await send(client, "DELETE", "Observations(2)")
    assert status == 200
    assert payload is None or payload == {}
    status, payload, _ = await send(client, "DELETE", "Observations(2)")
    assert_error(status, payload, 404, "2")


async def test_delete_through_a_navigation_path(client: Any, graph: Graph) -> None:
    status, _, _ = await send(client, "DELETE", "Datastreams(1)/Observations(2)")
    assert status == 200
    assert await ids(client, "Observations") == [1]


# ---- $ref --------------------------------------------------------------------------------------------


async def test_ref_delete_removes_only_the_link(client: Any, graph: Graph) -> None:
    status, payload, _ = await send(client, "DELETE", "Things(1)/Locations(1)/$ref")
    assert status in (200, 204), payload
    assert await ids(client, "Things(1)/Locations") == []
    assert await ids(client, "Locations") == [1]
    assert await ids(client, "Things") == [1]


async def test_ref_post_then_delete(client: Any, graph: Graph) -> None:
    other = await create(client, "Things", thing("Other", []))
    status, _, _ = await post(client, f"Things({other})/Locations/$ref", ref(1))
    assert status in (200, 204)
    assert await ids(client, "Locations(1)/Things") == [1, other]
    status, _, _ = await send(client, "DELETE", f"Things({other})/Locations(1)/$ref")
    assert status in (200, 204)
    assert await ids(client, "Locations(1)/Things") == [1]


async def test_ref_post_of_a_missing_entity_is_400(client: Any, graph: Graph) -> None:
    status, payload, _ = await post(client, "Things(1)/Locations/$ref", ref(99))
    assert_error(status, payload, 400, "99")


async def test_ref_delete_of_a_required_link_is_409(client: Any, graph: Graph) -> None:
    status, payload, _ = await send(client, "DELETE", "Datastreams(1)/Thing/$ref")
    assert_error(status, payload, 409, "Thing")
    assert (await get_ok(client, "Datastreams(1)/Thing"))["@iot.id"] == 1


async def test_ref_put_relinks_a_to_one_navigation(client: Any, graph: Graph) -> None:
    other = await create(client, "Things", thing("Other", []))
    status, payload, _ = await send(client, "PUT", "Datastreams(1)/Thing/$ref", ref(other))
    assert status in (200, 204), payload
    assert (await get_ok(client, "Datastreams(1)/Thing"))["@iot.id"] == other
    assert await ids(client, f"Things({other})/Datastreams") == [1]


async def test_deleting_a_feature_shrinks_the_extents_of_its_streams(client: Any, graph: Graph) -> None:
    other = await create(client, "FeaturesOfInterest", feature_of_interest("Harbour"))
    late = observation(22.0, "2021-05-15T12:00:00Z", Datastream=ref(1), FeatureOfInterest=ref(other))
    await create(client, "Observations", late)
    assert (await get_ok(client, "Datastreams(1)"))["phenomenonTime"] == f"{T0}/2021-05-15T12:00:00Z"
    status, _, _ = await send(client, "DELETE", f"FeaturesOfInterest({other})")
    assert status == 200
    # The cascade took the 12:00 Observation; the stream's extent ends at the last one left.
    assert (await get_ok(client, "Datastreams(1)"))["phenomenonTime"] == f"{T0}/2021-05-15T10:10:00Z"
    assert await ids(client, "Datastreams(1)/Observations?$orderby=id") == [1, 2]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("MultiDatastreams(1)/ObservedProperties", observed_property("Wind speed")),
        ("ObservedProperties(1)/MultiDatastreams/$ref", {"@iot.id": 1}),
    ],
)
async def test_a_multi_datastreams_observed_properties_cannot_grow_later(
    client: Any, graph: Graph, path: str, body: Json
) -> None:
    before = await ids(client, "MultiDatastreams(1)/ObservedProperties")
    status, payload, _ = await post(client, path, body)
    assert_error(status, payload, 409, "fixed at creation")
    assert await ids(client, "MultiDatastreams(1)/ObservedProperties") == before
    assert await count(client, "ObservedProperties") == 2
