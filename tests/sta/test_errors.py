# SPDX-License-Identifier: Apache-2.0
"""Every error status with a malformed input (OGC 18-088 §9, §10; STA-NOTES 3-5).

Each answer is JSON with `code` equal to the status and a `message` naming the
field or path at fault (stapy json-decodes every response). No request may
ever answer 500. Requests that must fail run against one hub shared by the
module; each test checks that nothing was created or changed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from helpers import (
    ENTITY_SETS,
    T0,
    Json,
    assert_error,
    count,
    create,
    datastream,
    feature_of_interest,
    get,
    get_ok,
    hub_on_new_database,
    location,
    multi_datastream,
    observation,
    observed_property,
    populate,
    ref,
    send,
    sensor,
    thing,
)

from hub.app import build_app
from hub.config import Settings

ROOT = "/v1.1"


@pytest.fixture(scope="module")
async def hub(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    """One hub for the module: the standard graph plus Thing 2 without a Location and Datastream 2 on it."""
    async with hub_on_new_database(pg_dsn, tmp_path_factory.mktemp("errors")) as client:
        await populate(client)
        assert await create(client, "Things", thing("Nowhere", [])) == 2
        assert await create(client, "Datastreams", datastream("Nowhere temperature", thing_id=2)) == 2
        yield client


async def totals(client: Any) -> dict[str, int]:
    return {entity_set: await count(client, entity_set) for entity_set in ENTITY_SETS}


async def send_raw(
    client: Any, method: str, path: str, data: bytes | None, content_type: str | None = "application/json"
) -> tuple[int, Any, Any]:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.request(method, f"{ROOT}/{path}", data=data, headers=headers)
    text = await response.text()
    assert response.content_type == "application/json", (response.status, text)
    return response.status, await response.json(), response.headers


def without(body: Json, *keys: str) -> Json:
    return {k: v for k, v in body.items() if k not in keys}


# ---- 400: request bodies ---------------------------------------------------------------------------

# (id, path, body, words the message must contain)
BAD_BODIES: list[tuple[str, str, Any, tuple[str, ...]]] = [
    # not an object
    ("array body", "Things", [thing()], ("Thing", "object")),
    ("string body", "Things", "Thing", ("Thing",)),
    # missing required properties
    ("Thing.name missing", "Things", without(thing(), "name"), ("Thing.name",)),
    ("Thing.description missing", "Things", without(thing(), "description"), ("description",)),
    ("Location.location missing", "Locations", without(location(), "location"), ("location",)),
    ("Location.encodingType missing", "Locations", without(location(), "encodingType"), ("encodingType",)),
    ("Sensor.metadata missing", "Sensors", without(sensor(), "metadata"), ("metadata",)),
    (
        "ObservedProperty.definition missing",
        "ObservedProperties",
        without(observed_property(), "definition"),
        ("definition",),
    ),
    (
        "Datastream.unitOfMeasurement missing",
        "Datastreams",
        without(datastream(), "unitOfMeasurement"),
        ("unitOfMeasurement",),
    ),
    (
        "Datastream.observationType missing",
        "Datastreams",
        without(datastream(), "observationType"),
        ("observationType",),
    ),
    (
        "MultiDatastream.multiObservationDataTypes missing",
        "MultiDatastreams",
        without(multi_datastream(), "multiObservationDataTypes"),
        ("multiObservationDataTypes",),
    ),
    (
        "FeatureOfInterest.feature missing",
        "FeaturesOfInterest",
        without(feature_of_interest(), "feature"),
        ("feature",),
    ),
    (
        "Observation.result missing",
        "Observations",
        without(observation(1, T0, Datastream=ref(1)), "result"),
        ("result",),
    ),
    (
        "HistoricalLocation.time missing",
        "HistoricalLocations",
        {"Thing": ref(1), "Locations": [ref(1)]},
        ("time",),
    ),
    # required links missing
    ("Datastream.Thing missing", "Datastreams", without(datastream(), "Thing"), ("Thing",)),
    ("Datastream.Sensor missing", "Datastreams", without(datastream(), "Sensor"), ("Sensor",)),
    (
        "Datastream.ObservedProperty missing",
        "Datastreams",
        without(datastream(), "ObservedProperty"),
        ("ObservedProperty",),
    ),
    (
        "MultiDatastream.Sensor missing",
        "MultiDatastreams",
        without(multi_datastream(), "Sensor"),
        ("Sensor",),
    ),
    (
        "HistoricalLocation.Thing missing",
        "HistoricalLocations",
        {"time": T0, "Locations": [ref(1)]},
        ("Thing",),
    ),
    ("Observation without a Datastream", "Observations", observation(1, T0), ("Datastream",)),
    (
        "Observation with two streams",
        "Observations",
        observation(1, T0, Datastream=ref(1), MultiDatastream=ref(1)),
        ("Datastream",),
    ),
    # wrong types
    ("Thing.name a number", "Things", {**thing(), "name": 5}, ("Thing.name", "string")),
    ("Thing.properties a string", "Things", thing(properties="tall"), ("properties",)),
    ("Thing.Locations an object", "Things", thing(Locations=location()), ("Locations", "array")),
    ("Sensor.encodingType null", "Sensors", sensor(encodingType=None), ("encodingType",)),
    (
        "Datastream.unitOfMeasurement a string",
        "Datastreams",
        datastream(unitOfMeasurement="°C"),
        ("unitOfMeasurement",),
    ),
    (
        "Datastream.unitOfMeasurement.symbol a number",
        "Datastreams",
        datastream(unitOfMeasurement={"name": "x", "symbol": 5, "definition": "y"}),
        ("symbol",),
    ),
    (
        "MultiDatastream.unitOfMeasurements an object",
        "MultiDatastreams",
        multi_datastream(unitOfMeasurements={"name": "x"}),
        ("unitOfMeasurements",),
    ),
    (
        "Observation.parameters an array",
        "Observations",
        observation(1, T0, Datastream=ref(1), parameters=[1]),
        ("parameters",),
    ),
    ("unknown property", "Things", thing(colour="red"), ("colour",)),
    ("@iot.id not a number", "Datastreams", datastream(Thing={"@iot.id": "one"}), ("@iot.id",)),
    ("@iot.id a boolean", "Datastreams", datastream(Thing={"@iot.id": True}), ("@iot.id",)),
    # bad times
    (
        "phenomenonTime not a time",
        "Observations",
        observation(1, "yesterday", Datastream=ref(1)),
        ("phenomenonTime",),
    ),
    (
        "phenomenonTime a number",
        "Observations",
        {**observation(1, T0, Datastream=ref(1)), "phenomenonTime": 1621072800},
        ("phenomenonTime",),
    ),
    (
        "phenomenonTime out of range",
        "Observations",
        observation(1, "2021-13-45T00:00:00Z", Datastream=ref(1)),
        ("phenomenonTime",),
    ),
    (
        "phenomenonTime reversed interval",
        "Observations",
        observation(1, "2021-05-15T11:00:00Z/2021-05-15T10:00:00Z", Datastream=ref(1)),
        ("phenomenonTime",),
    ),
    (
        "phenomenonTime half interval",
        "Observations",
        observation(1, "2021-05-15T10:00:00Z/", Datastream=ref(1)),
        ("phenomenonTime",),
    ),
    (
        "resultTime an interval",
        "Observations",
        observation(1, T0, Datastream=ref(1), resultTime="2021-05-15T10:00:00Z/2021-05-15T11:00:00Z"),
        ("resultTime",),
    ),
    (
        "validTime not a time",
        "Observations",
        observation(1, T0, Datastream=ref(1), validTime="always"),
        ("validTime",),
    ),
    (
        "HistoricalLocation.time a date",
        "HistoricalLocations",
        {"time": "2021-05-15", "Thing": ref(1), "Locations": [ref(1)]},
        ("time",),
    ),
    # bad GeoJSON
    (
        "Point without coordinates",
        "Locations",
        location(geometry={"type": "Point"}),
        ("location", "coordinates"),
    ),
    (
        "Point with strings",
        "Locations",
        location(geometry={"type": "Point", "coordinates": ["10", "53"]}),
        ("location",),
    ),
    (
        "Point with one number",
        "Locations",
        location(geometry={"type": "Point", "coordinates": [10]}),
        ("location",),
    ),
    (
        "unknown geometry type",
        "Locations",
        location(geometry={"type": "Circle", "coordinates": [10, 53]}),
        ("location", "Circle"),
    ),
    (
        "open polygon ring",
        "Locations",
        location(geometry={"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}),
        ("location",),
    ),
    (
        "Feature without geometry",
        "Locations",
        location(geometry={"type": "Feature", "properties": {}}),
        ("location", "geometry"),
    ),
    ("location a string", "Locations", {**location(), "location": "POINT(10 53)"}, ("location",)),
    (
        "FeatureOfInterest.feature without type",
        "FeaturesOfInterest",
        feature_of_interest(geometry={"coordinates": [10, 53]}),
        ("feature",),
    ),
    # links to missing entities
    ("Datastream.Thing missing entity", "Datastreams", datastream(thing_id=99), ("Thing", "99")),
    ("Datastream.Sensor missing entity", "Datastreams", datastream(sensor_id=99), ("Sensor", "99")),
    ("Thing.Locations missing entity", "Things", thing(locations=[ref(99)]), ("Location", "99")),
    (
        "MultiDatastream.ObservedProperties missing entity",
        "MultiDatastreams",
        multi_datastream(observed_property_ids=(1, 99)),
        ("ObservedProperty", "99"),
    ),
    (
        "Observation.Datastream missing entity",
        "Observations",
        observation(1, T0, Datastream=ref(99)),
        ("99",),
    ),
    (
        "Observation.MultiDatastream missing entity",
        "Observations",
        observation([1, 2], T0, MultiDatastream=ref(99)),
        ("99",),
    ),
    (
        "Observation.FeatureOfInterest missing entity",
        "Observations",
        observation(1, T0, Datastream=ref(1), FeatureOfInterest=ref(99)),
        ("99",),
    ),
    (
        "HistoricalLocation.Thing missing entity",
        "HistoricalLocations",
        {"time": T0, "Thing": ref(99), "Locations": [ref(1)]},
        ("Thing", "99"),
    ),
    # no FeatureOfInterest to be had: the Thing of Datastream 2 has no Location
    (
        "Observation without FOI or Location",
        "Observations",
        observation(1, T0, Datastream=ref(2)),
        ("FeatureOfInterest",),
    ),
    (
        "navigated Observation without FOI or Location",
        "Datastreams(2)/Observations",
        observation(1, T0),
        ("FeatureOfInterest",),
    ),
    # MultiDatastream arity
    (
        "MultiDatastream result not an array",
        "Observations",
        observation(5, T0, MultiDatastream=ref(1)),
        ("result",),
    ),
    (
        "MultiDatastream units too few",
        "MultiDatastreams",
        multi_datastream(unitOfMeasurements=[{"name": "x", "symbol": "x", "definition": "x"}]),
        ("unitOfMeasurements",),
    ),
    # deep insert of a nested entity that is broken
    ("nested Location broken", "Things", thing(locations=[without(location(), "location")]), ("location",)),
    ("nested Sensor broken", "Datastreams", datastream(Sensor=without(sensor(), "metadata")), ("metadata",)),
]


# Server bugs found by these tests; the lead removes each entry with the fix.


@pytest.mark.parametrize(
    ("path", "body", "mentions"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_BODIES],
)
async def test_bad_body_is_400(hub: Any, path: str, body: Any, mentions: tuple[str, ...]) -> None:
    before = await totals(hub)
    status, payload, _ = await send(hub, "POST", path, body)
    assert_error(status, payload, 400, *mentions)
    assert await totals(hub) == before


@pytest.mark.parametrize(
    ("data", "mentions"),
    [
        (b'{"name": "Weather station", ', ("JSON",)),
        (b"{'name': 'single quotes'}", ("JSON",)),
        (b'{"name": "x"} trailing', ("JSON",)),
        (b"", ("empty",)),
        (b"   \n", ("empty",)),
        (b'{"name": NaN}', ("JSON",)),
        (b"\xff\xfe{}", ("JSON",)),
    ],
)
async def test_invalid_json_is_400(hub: Any, data: bytes, mentions: tuple[str, ...]) -> None:
    before = await count(hub, "Things")
    status, payload, _ = await send_raw(hub, "POST", "Things", data)
    assert_error(status, payload, 400, *mentions)
    assert await count(hub, "Things") == before


@pytest.mark.parametrize(
    ("path", "body", "mentions"),
    [
        ("Things(1)", {"colour": "red"}, ("colour",)),
        ("Things(1)", {"name": None}, ("name",)),
        ("Things(1)", {"Locations": [ref(99)]}, ("99",)),
        ("Things(1)", {"Locations": ref(1)}, ("Locations", "array")),
        ("Datastreams(1)", {"Sensor": ref(99)}, ("Sensor", "99")),
        ("Datastreams(1)", {"unitOfMeasurement": "°C"}, ("unitOfMeasurement",)),
        ("Observations(1)", {"phenomenonTime": "soon"}, ("phenomenonTime",)),
        ("Observations(1)", {"result": None, "resultTime": "late"}, ("resultTime",)),
        ("Locations(1)", {"location": {"type": "Point", "coordinates": []}}, ("location",)),
        ("Things(1)", [{"op": "replace", "path": "/name", "value": "x"}], ("Thing",)),
    ],
)
async def test_bad_patch_is_400_and_changes_nothing(
    hub: Any, path: str, body: Any, mentions: tuple[str, ...]
) -> None:
    before = await get_ok(hub, path)
    status, payload, _ = await send(hub, "PATCH", path, body)
    assert_error(status, payload, 400, *mentions)
    assert await get_ok(hub, path) == before


@pytest.mark.parametrize(
    ("operations", "mentions"),
    [
        ({"op": "replace", "path": "/name", "value": "x"}, ("array",)),
        ([{"op": "frobnicate", "path": "/name"}], ("frobnicate",)),
        ([{"op": "replace", "value": "x"}], ("path",)),
        ([{"op": "replace", "path": "/name"}], ("value",)),
        ([{"op": "replace", "path": "name", "value": "x"}], ("name",)),
        ([{"op": "remove", "path": "/name"}], ("name",)),
        ([{"op": "add", "path": "/colour", "value": "red"}], ("colour",)),
        ([{"op": "replace", "path": "/name", "value": 5}], ("name",)),
        (["replace"], ("replace",)),
    ],
)
async def test_bad_json_patch_is_400(hub: Any, operations: Any, mentions: tuple[str, ...]) -> None:
    before = await get_ok(hub, "Things(1)")
    status, payload, _ = await send(
        hub, "PATCH", "Things(1)", operations, content_type="application/json-patch+json"
    )
    assert_error(status, payload, 400, *mentions)
    assert await get_ok(hub, "Things(1)") == before


@pytest.mark.parametrize(
    ("query", "mentions"),
    [
        ("$top=abc", ("$top", "abc")),
        ("$top=-1", ("$top", "-1")),
        ("$top=1.5", ("$top",)),
        ("$top=", ("$top",)),
        ("$skip=x", ("$skip", "x")),
        ("$skip=-3", ("$skip",)),
        ("$count=maybe", ("$count", "maybe")),
        ("$foo=1", ("$foo",)),
        ("$skip=99999999999999999999", ("$skip",)),
    ],
)
async def test_bad_query_option_is_400(hub: Any, query: str, mentions: tuple[str, ...]) -> None:
    status, body = await get(hub, f"Things?{query}")
    assert_error(status, body, 400, *mentions)


async def test_non_system_query_parameters_are_ignored(hub: Any) -> None:
    # Parameters without a $ are the client's business (cache busters, API keys).
    assert await get_ok(hub, "Things?_=12345&apikey=x") == await get_ok(hub, "Things")


# ---- 404 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "mentions"),
    [
        ("GET", "Things(99)", None, ("99",)),
        ("GET", "Things(99)/Datastreams", None, ("99",)),
        ("GET", "Datastreams(99)/Thing/Locations", None, ("99",)),
        ("GET", "Things(1)/Datastreams(2)", None, ("Datastreams(2)",)),
        ("GET", "Foos", None, ("Foos",)),
        ("GET", "things", None, ("things",)),
        ("GET", "Things(1)/colour", None, ("colour",)),
        ("GET", "Things(x)", None, ("x",)),
        ("GET", "Things(99999999999999999999999)", None, ("99999999999999999999999",)),
        ("GET", "Things(1)/name/$value/extra", None, ()),
        ("PATCH", "Things(99)", {"name": "x"}, ("99",)),
        ("PATCH", "Things(2)/Datastreams(1)", {"name": "x"}, ("Datastreams(1)",)),
        ("PUT", "Things(99)", thing(locations=[]), ("99",)),
        ("DELETE", "Things(99)", None, ("99",)),
        ("DELETE", "Things(2)/Datastreams(1)", None, ("Datastreams(1)",)),
        ("DELETE", "Things(1)/Locations(99)/$ref", None, ("99",)),
        ("POST", "Things(99)/Datastreams", datastream(thing_id=None), ("99",)),
        ("POST", "Things(99)/Locations/$ref", ref(1), ("99",)),
        ("POST", "Foos", {}, ("Foos",)),
    ],
)
async def test_not_found_is_404(
    hub: Any, method: str, path: str, body: Any, mentions: tuple[str, ...]
) -> None:
    before = await totals(hub)
    status, payload, _ = await send(hub, method, path, body)
    assert_error(status, payload, 404, *mentions)
    assert await totals(hub) == before


# ---- 405 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"),
    [
        ("POST", "Things(1)", thing(), "GET"),
        ("POST", "Datastreams(1)/Thing", thing(), "GET"),
        ("POST", "Things(1)/name", {"name": "x"}, "GET"),
        ("PATCH", "Things", {"name": "x"}, "POST"),
        ("PUT", "Things", thing(), "POST"),
        ("DELETE", "Things", None, "POST"),
        ("PATCH", "Things(1)/name", {"name": "x"}, "GET"),
        ("DELETE", "Things(1)/Datastreams", None, "GET"),
        ("OPTIONS", "Things", None, "GET"),
    ],
)
async def test_method_not_allowed_is_405_with_allow(
    hub: Any, method: str, path: str, body: Any, allowed: str
) -> None:
    before = await totals(hub)
    response = await hub.request(method, f"{ROOT}/{path}", json=body)
    payload = await response.json()
    # The message names the refused method, except where the router itself refuses it (OPTIONS).
    assert_error(response.status, payload, 405, *([method] if method != "OPTIONS" else []))
    allow = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed in allow
    assert method not in allow
    assert await totals(hub) == before


# ---- 409 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type", "mentions"),
    [
        ("DELETE", "Datastreams(1)/Thing/$ref", None, "application/json", ("Thing",)),
        ("DELETE", "Datastreams(1)/Sensor/$ref", None, "application/json", ("Sensor",)),
        ("DELETE", "Observations(1)/Datastream/$ref", None, "application/json", ("Datastream",)),
        (
            "POST",
            "MultiDatastreams(1)/ObservedProperties/$ref",
            ref(2),
            "application/json",
            ("ObservedProperties",),
        ),
        (
            "PATCH",
            "Things(1)",
            [{"op": "test", "path": "/name", "value": "not the name"}],
            "application/json-patch+json",
            ("/name",),
        ),
    ],
)
async def test_conflict_is_409_and_changes_nothing(
    hub: Any, method: str, path: str, body: Any, content_type: str, mentions: tuple[str, ...]
) -> None:
    before = await totals(hub)
    links = await get_ok(hub, "Datastreams(1)/Thing/$ref")
    status, payload, _ = await send(hub, method, path, body, content_type=content_type)
    assert_error(status, payload, 409, *mentions)
    assert await totals(hub) == before
    assert await get_ok(hub, "Datastreams(1)/Thing/$ref") == links


# ---- 413 -------------------------------------------------------------------------------------------


async def test_body_over_the_limit_is_413(clean_db: str, settings: Settings) -> None:
    small = settings.model_copy(update={"max_body_bytes": 1000})
    async with TestClient(TestServer(build_app(small))) as client:
        status, payload, _ = await send(client, "POST", "Things", thing(description="x" * 2000, locations=[]))
        assert_error(status, payload, 413)
        assert await count(client, "Things") == 0
        # Just under the limit still works.
        status, payload, _ = await send(client, "POST", "Things", thing(description="x" * 500, locations=[]))
        assert status == 201, payload


# ---- 415 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        ("POST", "Things", "text/plain"),
        ("POST", "Things", "application/xml"),
        ("POST", "Things", "application/x-www-form-urlencoded"),
        ("PATCH", "Things(1)", "text/plain"),
        ("PUT", "Things(1)", "text/plain"),
        ("POST", "Things(1)/Locations/$ref", "text/plain"),
    ],
)
async def test_unsupported_media_type_is_415(hub: Any, method: str, path: str, content_type: str) -> None:
    before = await totals(hub)
    thing_before = await get_ok(hub, "Things(1)")
    status, payload, _ = await send(hub, method, path, thing(locations=[]), content_type=content_type)
    assert_error(status, payload, 415, content_type.split("/")[0])
    assert await totals(hub) == before
    assert await get_ok(hub, "Things(1)") == thing_before


async def test_json_with_a_charset_is_accepted(client: Any) -> None:
    status, payload, _ = await send(
        client, "POST", "Things", thing(), content_type="application/json; charset=utf-8"
    )
    assert status == 201, payload


# ---- formerly 501: batch, dataArray and the query language now work ---------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "mentions"),
    [
        ("POST", "$batch", {}, ("requests",)),
        ("POST", "$batch", {"requests": [{"method": "get", "url": "Things"}]}, ("id",)),
        ("POST", "CreateObservations", {}, ("array",)),
        ("POST", "CreateObservations", [{"components": ["result"], "dataArray": [[1]]}], ("Datastream",)),
    ],
)
async def test_malformed_batch_or_create_observations_is_400(
    hub: Any, method: str, path: str, body: Any, mentions: tuple[str, ...]
) -> None:
    before = await totals(hub)
    status, payload, _ = await send(hub, method, path, body)
    assert_error(status, payload, 400, *mentions)
    assert await totals(hub) == before


@pytest.mark.parametrize("path", ["$batch", "CreateObservations"])
async def test_get_on_an_action_is_405(hub: Any, path: str) -> None:
    response = await hub.get(f"{ROOT}/{path}")
    assert_error(response.status, await response.json(), 405, "POST")
    assert response.headers["Allow"] == "POST"


async def test_batch_with_a_wrong_multipart_type_says_which_forms_work(hub: Any) -> None:
    """multipart/mixed is the OData 4.0 batch (tests/sta/test_c04_batch_multipart.py): without a
    boundary it is a 400 naming it; another multipart type is a 415 naming both forms."""
    status, payload, _ = await send(hub, "POST", "$batch", {"requests": []}, content_type="multipart/mixed")
    assert_error(status, payload, 400, "$batch", "boundary")
    form = "multipart/form-data; boundary=x"
    status, payload, _ = await send(hub, "POST", "$batch", {"requests": []}, content_type=form)
    assert_error(status, payload, 415, "multipart/mixed", "application/json", "multipart/form-data")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("$filter=name eq 'Weather station'", [{"@iot.id": 1, "name": "Weather station"}]),
        ("$filter=name eq 'nothing'", []),
        (
            "$filter=id le 2&$select=id,name&$orderby=name desc",
            [{"@iot.id": 1, "name": "Weather station"}, {"@iot.id": 2, "name": "Nowhere"}],
        ),
    ],
)
async def test_query_options_are_served(hub: Any, query: str, expected: list[Json]) -> None:
    body = await get_ok(hub, f"Things?{query}")
    picked = [{k: v for k, v in entity.items() if k in ("@iot.id", "name")} for entity in body["value"]]
    assert picked == expected


async def test_expand_is_served(hub: Any) -> None:
    body = await get_ok(hub, "Things(1)?$expand=Datastreams($select=name)")
    assert body["Datastreams"] == [{"name": "Air temperature at the town hall"}]


# ---- never a 500 -----------------------------------------------------------------------------------

OBSERVATION_1 = observation(1, T0, Datastream=ref(1))
BARE_THING = thing("x", [])
# (method, path, JSON value or raw bytes)
ODD_REQUESTS: list[tuple[str, str, Any]] = [
    ("GET", "Things(1)/Locations/$ref/$ref", None),
    ("GET", "Things(1)/$value", None),
    ("GET", "Things(1)//Locations", None),
    ("GET", "Things(-1)", None),
    ("GET", "Things('1')", None),
    ("GET", "Things(1)/Datastreams(1)/Thing/Datastreams(1)/Observations?$top=99999999999999999999", None),
    ("GET", "Observations?$skip=99999999999999999999", None),
    ("GET", "Things?$top=1&$top=2", None),
    ("GET", "$batch", None),
    ("POST", "Observations", b'{"result": 1e400, "Datastream": {"@iot.id": 1}}'),
    ("POST", "Observations", b'{"result": Infinity, "Datastream": {"@iot.id": 1}}'),
    ("POST", "Observations", {**OBSERVATION_1, "phenomenonTime": "9999-12-31T23:59:59-14:00"}),
    ("POST", "Observations", {**OBSERVATION_1, "phenomenonTime": "0001-01-01T00:00:00+14:00"}),
    ("POST", "Observations", {**OBSERVATION_1, "phenomenonTime": "2021-05-15T10:00:00Z/P1000000Y"}),
    ("POST", "Observations", {**OBSERVATION_1, "Datastream": ref(99999999999999999999)}),
    ("POST", "Observations", {**OBSERVATION_1, "Datastream": ref(-1)}),
    ("POST", "Observations", {**OBSERVATION_1, "Datastream": {"@iot.selfLink": "Sensors(1)"}}),
    ("POST", "Observations", {**OBSERVATION_1, "Datastream": 1}),
    ("POST", "Observations", {**OBSERVATION_1, "Datastream": None}),
    ("POST", "Observations", {**OBSERVATION_1, "result": "a\x00b"}),
    ("POST", "Things", {**BARE_THING, "name": "a\x00b"}),
    ("POST", "Things", {**BARE_THING, "properties": {"a\x00": 1}}),
    ("POST", "Things", {**BARE_THING, "Locations": [None]}),
    ("POST", "Things", {**BARE_THING, "Datastreams": [ref(1)]}),
    ("POST", "Things", {**BARE_THING, "HistoricalLocations": [{"time": T0}]}),
    ("POST", "Things", {**BARE_THING, "MultiDatastreams": "none"}),
    (
        "POST",
        "Locations",
        b'{"name": "x", "description": "y", "encodingType": "e", "location": '
        b'{"type": "Point", "coordinates": [1e400, 2]}}',
    ),
    ("POST", "Locations", location(geometry={"type": "Point", "coordinates": [200, 100]})),
    ("POST", "Things(1)/Locations/$ref", ref(99999999999999999999)),
    ("POST", "Things(1)/Locations/$ref", []),
    ("POST", "Datastreams(1)/Thing", {}),
    ("PATCH", "Observations(1)", {"Datastream": None}),
    ("PATCH", "Observations(1)", {"MultiDatastream": ref(1)}),
    ("PATCH", "Datastreams(1)", {"Observations": [ref(99)]}),
    ("PATCH", "Datastreams(1)", {"Thing": None}),
    ("PATCH", "MultiDatastreams(1)", {"ObservedProperties": [ref(1)]}),
    ("PATCH", "Things(1)", {"Locations": [{"name": "new"}]}),
    ("PATCH", "Things(1)", {"HistoricalLocations": [ref(1), ref(1)]}),
    ("PUT", "Datastreams(1)/Thing/$ref", ref(99)),
    ("PUT", "Things(1)/Locations/$ref", ref(1)),
    ("DELETE", "Things(1)/Locations/$ref", None),
    ("DELETE", "Things(1)/Locations/$ref?$id=nonsense", None),
    ("DELETE", "Things(1)/name", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ODD_REQUESTS)
async def test_odd_requests_never_answer_500(hub: Any, method: str, path: str, body: Any) -> None:
    # These run last on the module's hub: whatever they change, no later test depends on it.
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    response = await hub.request(method, f"{ROOT}/{path}", data=data, headers=headers)
    text = await response.text()
    assert response.status != 500, text
    assert response.status in (200, 201, 204, 501) or 400 <= response.status < 500, (response.status, text)
    if response.status >= 400:
        payload = await response.json()
        assert_error(response.status, payload, response.status)


async def test_nul_character_is_named_not_refused_by_the_database(client: Any) -> None:
    response = await client.post("/v1.1/Things", json={"name": "a\u0000b", "description": "y"})
    assert response.status == 400
    body = await response.json()
    assert body["code"] == 400
    assert "NUL" in body["message"]
    # an escaped backslash followed by u0000 is ordinary text
    response = await client.post("/v1.1/Things", json={"name": "a\\u0000b", "description": "y"})
    assert response.status == 201
