# SPDX-License-Identifier: Apache-2.0
"""Conformance class A.1 "Sensing Core" (OGC 18-088 §8, §9.2; FROST statests c01sensingcore).

The service root, reading every entity type, resource paths (navigation,
properties, $value, $ref), paging with $top/$skip/$count and @iot.nextLink,
404s, absolute links behind a proxy, and exact round trips of times, results
and GeoJSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from helpers import (
    CELSIUS,
    ENTITY_SETS,
    T0,
    Json,
    assert_error,
    create,
    datastream,
    feature_of_interest,
    follow,
    get,
    get_ok,
    hub_on_new_database,
    ids,
    location,
    observation,
    observed_property,
    point,
    populate,
    post,
    ref,
    sensor,
    thing,
    url,
)

REQ = "http://www.opengis.net/spec/iot_sensing/1.1/req/"
INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


@pytest.fixture(scope="module")
async def scratch(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    """A hub of its own with the standard graph, for tests that only add entities and then look only at
    what they added (round trips), so they need not empty the tables each time."""
    async with hub_on_new_database(pg_dsn, tmp_path_factory.mktemp("scratch")) as hub:
        await populate(hub)
        yield hub


@pytest.fixture(scope="module")
async def reader(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    """A hub of its own for the tests that only read, filled once: the standard graph plus a second
    branch that paths must not leak into -- Thing 2 at Location 2 (HistoricalLocation 2), Datastream 2
    on Thing 2, Observation 3 on it (FeatureOfInterest 2, generated from Location 2) -- and Things 3-5
    without Locations, for paging over five Things."""
    async with hub_on_new_database(pg_dsn, tmp_path_factory.mktemp("reader")) as hub:
        await populate(hub)
        harbour = thing("Harbour station", [location("Harbour", point(9.97, 53.54))])
        assert await create(hub, "Things", harbour) == 2
        assert await create(hub, "Datastreams", datastream("Harbour temperature", thing_id=2)) == 2
        assert await create(hub, "Observations", observation(15.0, T0, Datastream=ref(2))) == 3
        for n in (3, 4, 5):
            assert await create(hub, "Things", thing(f"Thing {n}", locations=[])) == n
        yield hub


# ---- service root ---------------------------------------------------------------------------------


async def test_service_root_lists_all_entity_sets_with_absolute_urls(reader: Any) -> None:
    response = await reader.get("/v1.1")
    assert response.status == 200
    assert response.content_type == "application/json"
    body = await response.json()
    sets = {entry["name"]: entry["url"] for entry in body["value"]}
    assert sorted(sets) == sorted(ENTITY_SETS)
    assert len(body["value"]) == len(ENTITY_SETS)
    for name, link in sets.items():
        assert link == url(reader, name)
        status, collection = await follow(reader, link)
        assert status == 200
        assert collection["value"], name
        assert collection["value"][0]["@iot.selfLink"] == url(reader, f"{name}(1)")


async def test_service_root_with_trailing_slash(reader: Any) -> None:
    body = await get_ok(reader, "")
    assert {entry["name"] for entry in body["value"]} == set(ENTITY_SETS)


async def test_service_root_conformance_lists_implemented_classes(reader: Any) -> None:
    body = await get_ok(reader, "")
    conformance = body["serverSettings"]["conformance"]
    assert isinstance(conformance, list)
    assert len(conformance) == len(set(conformance))
    for uri in conformance:
        assert uri.startswith(REQ), uri
    for implemented in (
        "datamodel",
        "resource-path/resource-path-to-entities",
        "create-update-delete",
        "create-update-delete/update-entity-put",
        "create-update-delete/update-entity-jsonpatch",
        "create-update-delete/historical-location-auto-creation",
        "multi-datastream",
        "request-data",
        "data-array/data-array",
        "batch-request/batch-request",
    ):
        assert REQ + implemented in conformance


# A class is listed only when it works (STA-NOTES 6): each request succeeds and its class is claimed.
@pytest.mark.parametrize(
    ("requirement_class", "method", "path", "body", "status"),
    [
        ("request-data", "GET", "Things?$filter=name eq 'x'", None, 200),
        ("request-data", "GET", "Things?$orderby=name", None, 200),
        ("batch-request", "POST", "$batch", {"requests": []}, 200),
        ("data-array", "POST", "CreateObservations", [], 201),
        ("data-array", "GET", "Observations?$resultFormat=dataArray", None, 200),
    ],
)
async def test_conformance_lists_a_class_exactly_when_it_works(
    reader: Any, requirement_class: str, method: str, path: str, body: Any, status: int
) -> None:
    document = await get_ok(reader, "")
    claimed = [
        uri for uri in document["serverSettings"]["conformance"] if uri.startswith(REQ + requirement_class)
    ]
    response = await reader.request(method, f"/v1.1/{path}", json=body)
    assert response.status == status, (response.status, await response.text())
    assert claimed, f"{path} works but {requirement_class} is not listed"


async def test_unknown_path_below_the_root_is_404(reader: Any) -> None:
    status, body = await get(reader, "Foos")
    assert_error(status, body, 404, "Foos")


# ---- every entity type -------------------------------------------------------------------------

# set -> (properties that must be present, navigation properties with a navigationLink)
ENTITY_TABLE: dict[str, tuple[set[str], set[str]]] = {
    "Things": (
        {"name", "description", "properties"},
        {"Locations", "HistoricalLocations", "Datastreams", "MultiDatastreams"},
    ),
    "Locations": ({"name", "description", "encodingType", "location"}, {"Things", "HistoricalLocations"}),
    "HistoricalLocations": ({"time"}, {"Thing", "Locations"}),
    "Datastreams": (
        {"name", "description", "unitOfMeasurement", "observationType", "phenomenonTime"},
        {"Thing", "Sensor", "ObservedProperty", "Observations"},
    ),
    "MultiDatastreams": (
        {"name", "description", "unitOfMeasurements", "observationType", "multiObservationDataTypes"},
        {"Thing", "Sensor", "ObservedProperties", "Observations"},
    ),
    "Sensors": ({"name", "description", "encodingType", "metadata"}, {"Datastreams", "MultiDatastreams"}),
    "ObservedProperties": ({"name", "definition", "description"}, {"Datastreams", "MultiDatastreams"}),
    "Observations": ({"phenomenonTime", "resultTime", "result"}, {"Datastream", "FeatureOfInterest"}),
    "FeaturesOfInterest": ({"name", "description", "encodingType", "feature"}, {"Observations"}),
}


TO_ONE_NAVIGATION = {
    "Thing",
    "Sensor",
    "ObservedProperty",
    "Datastream",
    "MultiDatastream",
    "FeatureOfInterest",
}


def check_entity(client: Any, entity_set: str, entity: Json) -> None:
    """@iot.id, @iot.selfLink and every navigationLink present and absolute; the mandatory properties."""
    properties, navigation = ENTITY_TABLE[entity_set]
    entity_id = entity["@iot.id"]
    assert isinstance(entity_id, int)
    assert not isinstance(entity_id, bool)
    self_link = entity["@iot.selfLink"]
    assert self_link == url(client, f"{entity_set}({entity_id})")
    links = {
        k.removesuffix("@iot.navigationLink"): v
        for k, v in entity.items()
        if k.endswith("@iot.navigationLink")
    }
    assert set(links) == navigation
    for name, link in links.items():
        assert link == f"{self_link}/{name}"
    assert properties <= set(entity), properties - set(entity)


@pytest.mark.parametrize("entity_set", ENTITY_SETS)
async def test_collection_lists_entities_with_links(reader: Any, entity_set: str) -> None:
    body = await get_ok(reader, entity_set)
    assert set(body) == {"value"}
    assert body["value"], entity_set
    for entity in body["value"]:
        check_entity(reader, entity_set, entity)
    assert [e["@iot.id"] for e in body["value"]] == sorted({e["@iot.id"] for e in body["value"]})


@pytest.mark.parametrize("entity_set", ENTITY_SETS)
async def test_entity_by_id_equals_its_collection_entry(reader: Any, entity_set: str) -> None:
    first = (await get_ok(reader, entity_set))["value"][0]
    entity = await get_ok(reader, f"{entity_set}({first['@iot.id']})")
    check_entity(reader, entity_set, entity)
    assert entity == first


@pytest.mark.parametrize("entity_set", ENTITY_SETS)
async def test_every_navigation_link_resolves(reader: Any, entity_set: str) -> None:
    entity = await get_ok(reader, f"{entity_set}(1)")
    _, navigation = ENTITY_TABLE[entity_set]
    for name in navigation:
        status, body = await follow(reader, entity[f"{name}@iot.navigationLink"])
        assert status == 200, (name, body)
        if name in TO_ONE_NAVIGATION:
            assert body["@iot.selfLink"].startswith(url(reader, "")), name
        else:
            assert isinstance(body["value"], list), name


async def test_observation_of_a_multi_datastream_links_to_it(scratch: Any) -> None:
    status, body, _ = await post(scratch, "Observations", observation([20.1, 55], T0, MultiDatastream=ref(1)))
    assert status == 201, body
    entity = await get_ok(scratch, f"Observations({body['@iot.id']})")
    links = {k for k in entity if k.endswith("@iot.navigationLink")}
    assert links == {"MultiDatastream@iot.navigationLink", "FeatureOfInterest@iot.navigationLink"}
    assert entity["result"] == [20.1, 55]
    stream = await get_ok(scratch, f"Observations({body['@iot.id']})/MultiDatastream")
    assert stream["@iot.id"] == 1


# ---- navigation ------------------------------------------------------------------------------------

TO_ONE = [
    ("Datastreams(1)/Thing", "Things(1)"),
    ("Datastreams(2)/Thing", "Things(2)"),
    ("Datastreams(1)/Sensor", "Sensors(1)"),
    ("Datastreams(1)/ObservedProperty", "ObservedProperties(1)"),
    ("MultiDatastreams(1)/Thing", "Things(1)"),
    ("MultiDatastreams(1)/Sensor", "Sensors(1)"),
    ("HistoricalLocations(2)/Thing", "Things(2)"),
    ("Observations(1)/Datastream", "Datastreams(1)"),
    ("Observations(3)/FeatureOfInterest", "FeaturesOfInterest(2)"),
    # multi-hop
    ("Observations(1)/Datastream/Thing", "Things(1)"),
    ("Observations(3)/Datastream/Thing", "Things(2)"),
    ("Things(1)/Datastreams(1)/Sensor", "Sensors(1)"),
    ("Locations(1)/Things(1)/Datastreams(1)/Observations(2)", "Observations(2)"),
    ("Things(2)/Locations(2)", "Locations(2)"),
]


@pytest.mark.parametrize(("path", "canonical"), TO_ONE)
async def test_navigation_to_one(reader: Any, path: str, canonical: str) -> None:
    entity = await get_ok(reader, path)
    # The selfLink of an entity reached by navigation is its canonical address, not the path.
    assert entity["@iot.selfLink"] == url(reader, canonical)
    assert entity == await get_ok(reader, canonical)


TO_MANY = [
    ("Things(1)/Locations", [1]),
    ("Things(2)/Locations", [2]),
    ("Things(1)/HistoricalLocations", [1]),
    ("Things(1)/Datastreams", [1]),
    ("Things(2)/Datastreams", [2]),
    ("Things(1)/MultiDatastreams", [1]),
    ("Things(2)/MultiDatastreams", []),
    ("Locations(2)/Things", [2]),
    ("Locations(1)/HistoricalLocations", [1]),
    ("HistoricalLocations(1)/Locations", [1]),
    ("Sensors(1)/Datastreams", [1, 2]),
    ("Sensors(1)/MultiDatastreams", [1]),
    ("ObservedProperties(1)/Datastreams", [1, 2]),
    ("ObservedProperties(2)/Datastreams", []),
    ("ObservedProperties(2)/MultiDatastreams", [1]),
    ("MultiDatastreams(1)/ObservedProperties", [1, 2]),
    ("MultiDatastreams(1)/Observations", []),
    ("Datastreams(1)/Observations", [1, 2]),
    ("Datastreams(2)/Observations", [3]),
    ("FeaturesOfInterest(1)/Observations", [1, 2]),
    ("FeaturesOfInterest(2)/Observations", [3]),
    # multi-hop
    ("Datastreams(1)/Thing/Locations", [1]),
    ("Datastreams(2)/Thing/Locations", [2]),
    ("Things(1)/Datastreams(1)/Observations", [1, 2]),
    ("Observations(3)/Datastream/Thing/Locations", [2]),
    ("Locations(1)/Things(1)/Datastreams", [1]),
    ("Sensors(1)/Datastreams(2)/Observations", [3]),
]


@pytest.mark.parametrize(("path", "expected"), TO_MANY)
async def test_navigation_to_many(reader: Any, path: str, expected: list[int]) -> None:
    body = await get_ok(reader, path)
    assert [e["@iot.id"] for e in body["value"]] == expected
    for entity in body["value"]:
        check_entity(reader, path.rsplit("/", 1)[-1], entity)


# ---- properties and $value -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("Things(1)/name", {"name": "Weather station"}),
        ("Things(1)/properties", {"properties": {"owner": "city"}}),
        ("Locations(1)/location", {"location": point()}),
        ("Datastreams(1)/unitOfMeasurement", {"unitOfMeasurement": CELSIUS}),
        ("Observations(1)/result", {"result": 20.5}),
        ("Observations(1)/phenomenonTime", {"phenomenonTime": T0}),
        ("Datastreams(2)/Thing/name", {"name": "Harbour station"}),
        ("Observations(3)/FeatureOfInterest/feature", {"feature": point(9.97, 53.54)}),
    ],
)
async def test_property(reader: Any, path: str, expected: Json) -> None:
    response = await reader.get(f"/v1.1/{path}")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == expected


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("Things(1)/name/$value", "Weather station"),
        ("Datastreams(2)/Thing/name/$value", "Harbour station"),
        ("Observations(1)/result/$value", "20.5"),
        ("Observations(1)/phenomenonTime/$value", T0),
    ],
)
async def test_property_value_is_plain_text(reader: Any, path: str, text: str) -> None:
    response = await reader.get(f"/v1.1/{path}")
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert await response.text() == text


@pytest.mark.parametrize(
    "path",
    [
        "Observations(1)/resultTime",  # no resultTime given
        "Observations(1)/resultTime/$value",
        "Observations(1)/validTime",
        "Observations(1)/parameters",
    ],
)
async def test_null_property_is_204_no_content(reader: Any, path: str) -> None:
    """OData 4.0 Part 1 §11.2.4.1: a single-valued property whose value is null answers 204."""
    response = await reader.get(f"/v1.1/{path}")
    assert response.status == 204, await response.text()
    assert await response.read() == b""


async def test_null_extent_of_a_stream_without_observations_is_204(reader: Any) -> None:
    response = await reader.get("/v1.1/MultiDatastreams(1)/phenomenonTime")
    assert response.status == 204


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("Datastreams(1)/unitOfMeasurement/symbol", {"symbol": CELSIUS["symbol"]}),
        ("Datastreams(1)/unitOfMeasurement/name", {"name": CELSIUS["name"]}),
        ("Things(1)/properties/owner", {"owner": "city"}),
        ("Datastreams(2)/Thing/properties/owner", {"owner": "city"}),
        ("Locations(1)/location/coordinates", {"coordinates": point()["coordinates"]}),
    ],
)
async def test_member_of_a_complex_property(reader: Any, path: str, expected: Json) -> None:
    """OData 4.0 Part 2 §4.6: members of complex and JSON properties are path segments."""
    assert await get_ok(reader, path) == expected


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("Datastreams(1)/unitOfMeasurement/symbol/$value", CELSIUS["symbol"]),
        ("Things(1)/properties/owner/$value", "city"),
        ("Locations(1)/location/coordinates/$value", json.dumps(point()["coordinates"]).replace(" ", "")),
    ],
)
async def test_member_value_is_plain_text(reader: Any, path: str, text: str) -> None:
    response = await reader.get(f"/v1.1/{path}")
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert await response.text() == text


async def test_nested_member_and_null_member(scratch: Any) -> None:
    owner = {"name": "Harbour authority", "phone": None}
    thing_id = await create(scratch, "Things", thing("Crane", locations=[], properties={"owner": owner}))
    assert await get_ok(scratch, f"Things({thing_id})/properties/owner/name") == {"name": owner["name"]}
    response = await scratch.get(f"/v1.1/Things({thing_id})/properties/owner/name/$value")
    assert await response.text() == owner["name"]
    for path in ("properties/owner/phone", "properties/owner/phone/$value"):
        response = await scratch.get(f"/v1.1/Things({thing_id})/{path}")
        assert response.status == 204, path


@pytest.mark.parametrize(
    ("path", "mention"),
    [
        ("Things(1)/properties/nobody", "Thing.properties has no member 'nobody'"),
        ("Things(1)/properties/owner/name", "has no member 'name'"),  # owner is a string
        ("Datastreams(1)/unitOfMeasurement/colour", "has no member 'colour'"),
        ("Things(1)/name/first", "nothing but $value may follow property 'name'"),
        ("Things(99)/properties/owner", "Things(99)"),
    ],
)
async def test_member_that_does_not_exist_is_404(reader: Any, path: str, mention: str) -> None:
    status, body = await get(reader, path)
    assert_error(status, body, 404, mention)


# ---- $ref ------------------------------------------------------------------------------------------


async def test_ref_on_a_collection(reader: Any) -> None:
    body = await get_ok(reader, "Things/$ref")
    assert body == {"value": [{"@iot.selfLink": url(reader, f"Things({i})")} for i in range(1, 6)]}


async def test_ref_on_a_navigation_collection(reader: Any) -> None:
    body = await get_ok(reader, "Datastreams(1)/Observations/$ref")
    assert body == {"value": [{"@iot.selfLink": url(reader, f"Observations({i})")} for i in (1, 2)]}


async def test_ref_on_a_to_one_navigation_is_bare(reader: Any) -> None:
    # STA-NOTES 12: a bare {"@iot.selfLink": ...}, not wrapped in a value array.
    assert await get_ok(reader, "Datastreams(2)/Thing/$ref") == {"@iot.selfLink": url(reader, "Things(2)")}


async def test_ref_on_an_entity_is_bare(reader: Any) -> None:
    assert await get_ok(reader, "Things(1)/Locations(1)/$ref") == {
        "@iot.selfLink": url(reader, "Locations(1)")
    }


async def test_ref_collection_pages_with_next_link(reader: Any) -> None:
    body = await get_ok(reader, "Observations/$ref?$top=2&$count=true")
    assert body["@iot.count"] == 3
    assert body["value"] == [{"@iot.selfLink": url(reader, f"Observations({i})")} for i in (1, 2)]
    status, rest = await follow(reader, body["@iot.nextLink"])
    assert status == 200
    assert rest["value"] == [{"@iot.selfLink": url(reader, "Observations(3)")}]
    assert "@iot.nextLink" not in rest


# ---- paging: $top, $skip, $count, @iot.nextLink ----------------------------------------------------


def query_of(link: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(link).query)


@pytest.mark.parametrize(
    ("query", "expected", "more"),
    [
        ("", [1, 2, 3, 4, 5], False),
        ("$top=2", [1, 2], True),
        ("$top=1", [1], True),
        ("$top=2&$skip=2", [3, 4], True),
        ("$top=2&$skip=3", [4, 5], False),
        ("$skip=4", [5], False),
        ("$top=5", [1, 2, 3, 4, 5], False),
        ("$top=4", [1, 2, 3, 4], True),
        ("$top=50", [1, 2, 3, 4, 5], False),
        ("$skip=5", [], False),
        ("$skip=50&$top=3", [], False),
    ],
)
async def test_top_and_skip(reader: Any, query: str, expected: list[int], more: bool) -> None:
    body = await get_ok(reader, f"Things?{query}")
    assert [e["@iot.id"] for e in body["value"]] == expected
    assert ("@iot.nextLink" in body) is more
    assert "@iot.count" not in body
    if more:
        link = body["@iot.nextLink"]
        assert link.startswith(url(reader, "Things?"))
        params = query_of(link)
        # Literal $top and $skip (Masterportal stops on them): the next window.
        assert params["$top"] == [str(len(expected))]
        assert params["$skip"] == [str(expected[-1])]


async def test_next_links_walk_the_whole_collection(reader: Any) -> None:
    body = await get_ok(reader, "Things?$top=1")
    seen = [e["@iot.id"] for e in body["value"]]
    links = 0
    while "@iot.nextLink" in body:
        links += 1
        status, body = await follow(reader, body["@iot.nextLink"])
        assert status == 200
        seen.extend(e["@iot.id"] for e in body["value"])
        assert links < 10, "nextLinks do not end"
    assert seen == [1, 2, 3, 4, 5]
    assert links == 4


async def test_next_link_query_string_alone_reproduces_the_page(reader: Any) -> None:
    # A Grafana plugin appends only the nextLink's query string to its own path.
    first = await get_ok(reader, "Things?$top=2&$count=true")
    link = first["@iot.nextLink"]
    _, by_link = await follow(reader, link)
    by_query = await get_ok(reader, f"Things?{urlsplit(link).query}")
    assert by_query == by_link
    assert [e["@iot.id"] for e in by_link["value"]] == [3, 4]


@pytest.mark.parametrize(("option", "present"), [("$count=true", True), ("$count=false", False), ("", False)])
async def test_count(reader: Any, option: str, present: bool) -> None:
    body = await get_ok(reader, f"Things?$top=2&{option}")
    assert ("@iot.count" in body) is present
    if present:
        assert body["@iot.count"] == 5
        # The count survives paging: the nextLink keeps $count=true.
        _, second = await follow(reader, body["@iot.nextLink"])
        assert second["@iot.count"] == 5
    assert len(body["value"]) == 2


async def test_count_of_a_navigation_collection(reader: Any) -> None:
    body = await get_ok(reader, "Datastreams(1)/Observations?$count=true")
    assert body["@iot.count"] == 2
    assert [e["@iot.id"] for e in body["value"]] == [1, 2]


async def test_count_with_top_zero(reader: Any) -> None:
    body = await get_ok(reader, "Things?$top=0&$count=true")
    assert body["@iot.count"] == 5
    assert body["value"] == []


async def test_top_zero_gives_no_self_repeating_next_link(reader: Any) -> None:
    body = await get_ok(reader, "Things?$top=0")
    if "@iot.nextLink" in body:
        _, again = await follow(reader, body["@iot.nextLink"])
        assert again != body, "the nextLink of $top=0 leads to the same page forever"


async def test_next_link_of_a_navigation_collection(reader: Any) -> None:
    body = await get_ok(reader, "Datastreams(1)/Observations?$top=1")
    assert [e["@iot.id"] for e in body["value"]] == [1]
    link = body["@iot.nextLink"]
    assert link.startswith(url(reader, "Datastreams(1)/Observations?"))
    _, rest = await follow(reader, link)
    assert [e["@iot.id"] for e in rest["value"]] == [2]
    assert "@iot.nextLink" not in rest


async def test_form_encoded_query_options(reader: Any) -> None:
    # %24top is $top; clients form-encode query strings.
    body = await get_ok(reader, "Things?%24top=2&%24skip=1&%24count=true")
    assert [e["@iot.id"] for e in body["value"]] == [2, 3]
    assert body["@iot.count"] == 5


# ---- 404 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("entity_set", ENTITY_SETS)
async def test_missing_entity_is_404(reader: Any, entity_set: str) -> None:
    status, body = await get(reader, f"{entity_set}(99)")
    assert_error(status, body, 404, "99")


@pytest.mark.parametrize(
    "path",
    [
        "Things(99)/Datastreams",
        "Things(99)/Locations/$ref",
        "Things(99)/name",
        "Things(99)/name/$value",
        "Datastreams(99)/Thing",
        "Datastreams(99)/Thing/Locations",
        "Things(99)/Datastreams(1)/Observations",
        "Things(1)/Datastreams(2)",  # both exist, but are not linked
        "Things(1)/Datastreams(2)/Observations",
        "Things(2)/Locations(1)/$ref",
        "Foos",
        "Foos(1)",
        "Things(1)/Foo",
        "Things(1)/Observations",  # no such navigation property
    ],
)
async def test_missing_parent_or_unknown_segment_is_404(reader: Any, path: str) -> None:
    status, body = await get(reader, path)
    assert_error(status, body, 404)


async def test_empty_collection_under_an_existing_parent_is_200(reader: Any) -> None:
    assert await get_ok(reader, "Things(2)/MultiDatastreams") == {"value": []}


# ---- versions and proxies --------------------------------------------------------------------------


async def test_v1_0_serves_the_same_model_with_its_own_links(reader: Any) -> None:
    response = await reader.get("/v1.0")
    assert response.status == 200
    root = await response.json()
    assert {e["url"] for e in root["value"]} == {url(reader, s, "/v1.0") for s in ENTITY_SETS}
    response = await reader.get("/v1.0/Things(1)")
    assert response.status == 200
    entity = await response.json()
    assert entity["@iot.selfLink"] == url(reader, "Things(1)", "/v1.0")
    assert entity["Datastreams@iot.navigationLink"] == url(reader, "Things(1)/Datastreams", "/v1.0")
    response = await reader.get("/v1.0/Things?$top=1")
    assert (await response.json())["@iot.nextLink"].startswith(url(reader, "Things?", "/v1.0"))


async def test_v1_0_create_answers_a_v1_0_location(client: Any) -> None:
    response = await client.post("/v1.0/Sensors", json=sensor())
    assert response.status == 201
    assert response.headers["Location"] == url(client, "Sensors(1)", "/v1.0")
    assert (await response.json())["@iot.selfLink"] == url(client, "Sensors(1)", "/v1.0")


@pytest.mark.parametrize(
    ("headers", "base"),
    [
        ({"X-Forwarded-Proto": "https", "X-Forwarded-Host": "sta.example.org"}, "https://sta.example.org"),
        (
            {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "sta.example.org", "X-Forwarded-Port": "8443"},
            "https://sta.example.org:8443",
        ),
        (
            {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "sta.example.org", "X-Forwarded-Port": "443"},
            "https://sta.example.org",
        ),
        (
            {
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "sta.example.org",
                "X-Forwarded-Prefix": "/iot/",
            },
            "https://sta.example.org/iot",
        ),
        (
            {"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "sta.example.org, proxy.local"},
            "https://sta.example.org",
        ),
    ],
)
async def test_forwarded_headers_change_every_link(reader: Any, headers: dict[str, str], base: str) -> None:
    root = f"{base}/v1.1"
    status, body = await get(reader, "", headers)
    assert status == 200
    assert {e["url"] for e in body["value"]} == {f"{root}/{s}" for s in ENTITY_SETS}
    status, body = await get(reader, "Things?$top=1", headers)
    assert status == 200
    entity = body["value"][0]
    assert entity["@iot.selfLink"] == f"{root}/Things(1)"
    assert entity["Locations@iot.navigationLink"] == f"{root}/Things(1)/Locations"
    assert body["@iot.nextLink"].startswith(f"{root}/Things?")
    status, body = await get(reader, "Datastreams(1)/Thing/$ref", headers)
    assert body == {"@iot.selfLink": f"{root}/Things(1)"}


async def test_forwarded_headers_change_the_location_of_a_created_entity(client: Any) -> None:
    headers = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "sta.example.org",
        "X-Forwarded-Prefix": "/iot",
    }
    status, created, location_header = await post(client, "Things", thing("Proxied", []), headers)
    assert status == 201
    assert location_header == created["@iot.selfLink"] == "https://sta.example.org/iot/v1.1/Things(1)"


# ---- times -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("posted", "rendered"),
    [
        ("2021-05-15T10:15:20Z", "2021-05-15T10:15:20Z"),
        ("2021-05-15T10:15:20.123Z", "2021-05-15T10:15:20.123Z"),
        ("2021-05-15T12:15:20+02:00", "2021-05-15T10:15:20Z"),
        ("2021-05-15T10:15:20+00:00", "2021-05-15T10:15:20Z"),
        ("2021-05-15T10:00:00Z/2021-05-15T11:00:00Z", "2021-05-15T10:00:00Z/2021-05-15T11:00:00Z"),
        ("2021-05-15T12:00:00+02:00/2021-05-15T11:00:00Z", "2021-05-15T10:00:00Z/2021-05-15T11:00:00Z"),
    ],
)
async def test_phenomenon_time_instant_and_interval(scratch: Any, posted: str, rendered: str) -> None:
    status, body, _ = await post(scratch, "Observations", observation(1, posted, Datastream=ref(1)))
    assert status == 201, body
    assert body["phenomenonTime"] == rendered
    assert (await get_ok(scratch, f"Observations({body['@iot.id']})"))["phenomenonTime"] == rendered


async def test_result_time_null_is_rendered_as_null(scratch: Any) -> None:
    status, body, _ = await post(scratch, "Observations", observation(1, T0, Datastream=ref(1)))
    assert status == 201
    assert "resultTime" in body
    assert body["resultTime"] is None
    entity = await get_ok(scratch, f"Observations({body['@iot.id']})")
    assert "resultTime" in entity
    assert entity["resultTime"] is None


async def test_result_time_and_valid_time_round_trip(scratch: Any) -> None:
    posted = observation(
        1,
        T0,
        Datastream=ref(1),
        resultTime="2021-05-15T10:00:05.5Z",
        validTime="2021-05-15T10:00:00Z/2021-05-16T10:00:00Z",
    )
    status, body, _ = await post(scratch, "Observations", posted)
    assert status == 201, body
    entity = await get_ok(scratch, f"Observations({body['@iot.id']})")
    assert entity["resultTime"] == "2021-05-15T10:00:05.500Z"
    assert entity["validTime"] == "2021-05-15T10:00:00Z/2021-05-16T10:00:00Z"


async def test_missing_phenomenon_time_is_the_time_of_creation(scratch: Any) -> None:
    before = datetime.now(UTC)
    status, body, _ = await post(scratch, "Observations", observation(1, None, Datastream=ref(1)))
    assert status == 201, body
    assert INSTANT.fullmatch(body["phenomenonTime"]), body["phenomenonTime"]
    stamped = datetime.fromisoformat(body["phenomenonTime"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=5) <= stamped <= datetime.now(UTC) + timedelta(seconds=5)


async def test_historical_location_time_is_an_instant(reader: Any) -> None:
    entity = await get_ok(reader, "HistoricalLocations(1)")
    assert INSTANT.fullmatch(entity["time"]), entity["time"]


# ---- results of every JSON type --------------------------------------------------------------------


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON, with JSON types kept apart (1 != 1.0 != true)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


RESULTS = [
    42,
    0,
    -7,
    2**53 + 1,
    21.5,
    -0.001,
    1.0,
    1.5e-7,
    "21.5",
    "",
    'Grad Celsius °, ünïcödé, "quoted", \\ backslash',
    True,
    False,
    None,
    {"temperature": 21.5, "flags": ["ok"], "nested": {"null": None, "bool": False}},
    {},
    [1, "two", 3.5, None, True, {"x": [1]}],
    [],
    [[1, 2], [3, 4]],
]


@pytest.mark.parametrize(
    "result",
    [pytest.param(r, id=json.dumps(r)[:30]) for r in RESULTS],
)
async def test_result_of_every_json_type_round_trips(scratch: Any, result: Any) -> None:
    status, body, _ = await post(scratch, "Observations", observation(result, T0, Datastream=ref(1)))
    assert status == 201, body
    assert "result" in body
    assert same_json(body["result"], result), body["result"]
    entity = await get_ok(scratch, f"Observations({body['@iot.id']})")
    assert same_json(entity["result"], result), entity["result"]
    response = await scratch.get(f"/v1.1/Observations({body['@iot.id']})/result")
    if result is None:  # OData: a null property answers 204 No Content
        assert response.status == 204
        return
    assert same_json(await response.json(), {"result": result})


async def test_parameters_and_result_quality_round_trip(scratch: Any) -> None:
    parameters = {"qualityFlag": "ok", "height": 2.5, "tags": ["a", None]}
    quality = [{"DQ_Status": "passed"}, 0.95]
    posted = observation(1, T0, Datastream=ref(1), parameters=parameters, resultQuality=quality)
    status, body, _ = await post(scratch, "Observations", posted)
    assert status == 201, body
    entity = await get_ok(scratch, f"Observations({body['@iot.id']})")
    assert same_json(entity["parameters"], parameters)
    assert same_json(entity["resultQuality"], quality)


# ---- GeoJSON ---------------------------------------------------------------------------------------

GEOMETRIES: list[Json] = [
    point(),
    {"type": "Point", "coordinates": [10, 53]},
    {"type": "Point", "coordinates": [10.0, 53.5, 12.25]},
    {"type": "LineString", "coordinates": [[10.0, 53.5], [10.1, 53.6]]},
    {"type": "Polygon", "coordinates": [[[10.0, 53.5], [10.1, 53.5], [10.1, 53.6], [10.0, 53.5]]]},
    {"type": "MultiPoint", "coordinates": [[10.0, 53.5], [10.1, 53.6]]},
    {
        "type": "GeometryCollection",
        "geometries": [point(), {"type": "LineString", "coordinates": [[1.0, 2.0], [3.0, 4.0]]}],
    },
    {"type": "Feature", "geometry": point(), "properties": {"street": "Rathausmarkt 1"}},
    {"type": "Feature", "geometry": point(), "properties": None},
    {
        "type": "Feature",
        "id": "loc-1",
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
        "properties": {"nested": {"a": [1, 2]}},
    },
]


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=[f"{g['type']}-{n}" for n, g in enumerate(GEOMETRIES)])
async def test_location_geojson_round_trips_exactly(scratch: Any, geometry: Json) -> None:
    status, body, _ = await post(scratch, "Locations", location(geometry=geometry))
    assert status == 201, body
    assert same_json(body["location"], geometry)
    entity = await get_ok(scratch, f"Locations({body['@iot.id']})")
    assert same_json(entity["location"], geometry)


@pytest.mark.parametrize(
    "geometry",
    [GEOMETRIES[0], *GEOMETRIES[-3:]],
    ids=["Point", "Feature", "Feature-null-props", "Feature-id"],
)
async def test_feature_of_interest_geojson_round_trips_exactly(scratch: Any, geometry: Json) -> None:
    status, body, _ = await post(scratch, "FeaturesOfInterest", feature_of_interest(geometry=geometry))
    assert status == 201, body
    entity = await get_ok(scratch, f"FeaturesOfInterest({body['@iot.id']})")
    assert same_json(entity["feature"], geometry)


async def test_generated_feature_of_interest_copies_a_feature_location(client: Any) -> None:
    # Hamburg stores Locations as GeoJSON Features; the generated FeatureOfInterest keeps it.
    feature = {"type": "Feature", "geometry": point(9.99, 53.55), "properties": {"name": "Jungfernstieg"}}
    await create(client, "Things", thing(locations=[location("Jungfernstieg", feature)]))
    await create(client, "Sensors", sensor())
    await create(client, "ObservedProperties", observed_property())
    await create(client, "Datastreams", datastream())
    await create(client, "Observations", observation(1, T0, Datastream=ref(1)))
    generated = await get_ok(client, "Observations(1)/FeatureOfInterest")
    assert same_json(generated["feature"], feature)
    assert await ids(client, "FeaturesOfInterest") == [1]
