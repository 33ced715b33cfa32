# SPDX-License-Identifier: Apache-2.0
"""Conformance class A.3 "Filtering Extension" (OGC 18-088 §9.3; FROST statests c03filtering) over HTTP.

The SQL compiler has unit tests in tests/query; here every option goes through
the server and the returned entities are checked, not only statuses:
$filter on every entity type (functions, operators, lambdas, navigation, JSON
sub-paths, geo, time intervals), the URL shapes real clients send (STA-NOTES),
$expand with nested options and nested nextLinks, the Masterportal latest-value
expand, $select, $orderby, paging with keyset continuation, count_mode,
statement_timeout and the 400s of malformed options.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from helpers import (
    CELSIUS,
    PERCENT,
    ROOT,
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
    multi_datastream,
    observation,
    observed_property,
    point,
    populate,
    ref,
    send,
    sensor,
    thing,
    url,
    values,
)
from yarl import URL

from hub.app import build_app
from hub.http.context import STATE

CENTIMETRE: Json = {"name": "centimetre", "symbol": "cm", "definition": "http://unitsofmeasure.org/ucum#cm"}
COUNT_UNIT: Json = {"name": "count", "symbol": "1", "definition": "http://unitsofmeasure.org/ucum#1"}
MILLIMETRE: Json = {"name": "millimetre", "symbol": "mm", "definition": "http://unitsofmeasure.org/ucum#mm"}

# Polygons around the Locations (lon lat): Town hall (10.0 53.55), Harbour (9.97 53.54), Ring 1 (10.05 53.6).
AROUND_TOWN_HALL = "POLYGON((9.99 53.54, 10.01 53.54, 10.01 53.56, 9.99 53.56, 9.99 53.54))"
AROUND_HARBOUR = "POLYGON((9.96 53.53, 9.98 53.53, 9.98 53.55, 9.96 53.55, 9.96 53.53))"
AROUND_RING_1 = "POLYGON((10.04 53.59, 10.06 53.59, 10.06 53.61, 10.04 53.61, 10.04 53.59))"
AROUND_ALL = "POLYGON((9.9 53.5, 10.1 53.5, 10.1 53.7, 9.9 53.7, 9.9 53.5))"
HARBOUR_BASIN: Json = {
    "type": "Polygon",
    "coordinates": [[[9.96, 53.54], [9.97, 53.54], [9.97, 53.55], [9.96, 53.55], [9.96, 53.54]]],
}
RING_1_FEATURE: Json = {"type": "Feature", "geometry": point(10.05, 53.6), "properties": {"street": "Ring 1"}}

# Datastream 1's Observations by phenomenonTime (they were posted out of order): 2, 4, 1, 5, 3.
DS1_BY_TIME = [2, 4, 1, 5, 3]
# Datastream 5 has ties in phenomenonTime; by (time, id) ascending and descending.
DS5_ASC = [20, 15, 17, 19, 14, 18, 16]
DS5_DESC = [16, 18, 14, 19, 17, 15, 20]


def at(clock: str, day: str = "2021-05-15") -> str:
    return f"{day}T{clock}:00Z"


async def build_graph(hub: Any, recent: str) -> None:
    """The graph every read-only test of this module queries (ids known, see the `reader` fixture)."""
    assert await create(hub, "Sensors", sensor()) == 1
    assert await create(hub, "Sensors", sensor("Induction loop", encodingType="text/html")) == 2
    for n, name in enumerate(
        ("Air temperature", "Relative humidity", "Water level", "Vehicle count", "Precipitation"), 1
    ):
        assert await create(hub, "ObservedProperties", observed_property(name)) == n
    things = [
        thing(
            "Weather station",
            [location("Town hall", point(10.0, 53.55))],
            properties={"owner": "city", "topic": "weather", "height": 12},
        ),
        thing(
            "Harbour station",
            [location("Harbour", point(9.97, 53.54))],
            properties={"owner": "port", "topic": "water", "height": 3},
        ),
        thing(
            "Traffic counter",
            [location("Ring 1", RING_1_FEATURE)],
            properties={"owner": "city", "topic": "traffic"},
        ),
        thing("Spare box", [], properties={"owner": "private"}),
    ]
    for n, body in enumerate(things, 1):
        assert await create(hub, "Things", body) == n
    features = [
        feature_of_interest("Market square", point(10.01, 53.56)),
        feature_of_interest("Harbour basin", HARBOUR_BASIN),
        feature_of_interest("Ring 1 crossing", point(10.05, 53.6)),
    ]
    for n, body in enumerate(features, 1):
        assert await create(hub, "FeaturesOfInterest", body) == n
    weather = {"serviceName": "HH_STA_weather"}
    streams = [
        datastream(properties={**weather, "layerName": "temperature"}),
        datastream(
            "Humidity at the town hall",
            observed_property_id=2,
            unitOfMeasurement=PERCENT,
            properties={**weather, "layerName": "humidity"},
        ),
        datastream("Water level at the harbour", 2, 1, 3, unitOfMeasurement=CENTIMETRE),
        datastream("Vehicles per 15 minutes", 3, 2, 4, unitOfMeasurement=COUNT_UNIT),
        datastream("Rain at the harbour", 2, 1, 5, unitOfMeasurement=MILLIMETRE),
        datastream("Spare channel", 4, 2, 1),
    ]
    for n, body in enumerate(streams, 1):
        assert await create(hub, "Datastreams", body) == n
    assert await create(hub, "MultiDatastreams", multi_datastream()) == 1
    rows: list[tuple[int, Any, str, int, Json]] = [
        # (Datastream, result, phenomenonTime, FeatureOfInterest, more members)
        (1, 20.5, at("10:20"), 1, {}),  # 1
        (1, 19.0, at("10:00"), 1, {}),  # 2
        (1, 22.25, at("10:40"), 1, {"parameters": {"qualityFlag": "ok"}}),  # 3
        (1, 19.5, at("10:10"), 1, {"parameters": {"qualityFlag": "suspect"}}),  # 4
        (1, 21.0, at("10:30"), 1, {}),  # 5
        (2, 55, at("10:00"), 1, {}),  # 6
        (2, 60, at("10:20"), 1, {"resultTime": "2021-05-15T10:20:05Z"}),  # 7
        (3, 310, at("08:00", "2021-05-14"), 2, {}),  # 8
        (3, 305, recent, 2, {}),  # 9
        (3, "offline", at("09:00", "2021-05-14"), 2, {}),  # 10
        (4, 12, f"{at('10:00')}/{at('10:15')}", 3, {}),  # 11
        (4, 7, f"{at('10:15')}/{at('10:30')}", 3, {}),  # 12
        (4, {"cars": 5, "bikes": 3}, f"{at('10:30')}/{at('10:45')}", 3, {}),  # 13
        # Datastream 5: ties (t0 < t1 < t2 < t3), posted out of order
        (5, 3, at("00:10", "2021-05-16"), 2, {}),  # 14 t2
        (5, 1, at("00:00", "2021-05-16"), 2, {}),  # 15 t1
        (5, 5, at("00:20", "2021-05-16"), 2, {}),  # 16 t3
        (5, 2, at("00:00", "2021-05-16"), 2, {}),  # 17 t1
        (5, 4, at("00:10", "2021-05-16"), 2, {}),  # 18 t2
        (5, 6, at("00:00", "2021-05-16"), 2, {}),  # 19 t1
        (5, 7, at("23:50"), 2, {}),  # 20 t0
    ]
    for n, (stream, result, time, feature, more) in enumerate(rows, 1):
        body = observation(result, time, Datastream=ref(stream), FeatureOfInterest=ref(feature), **more)
        assert await create(hub, "Observations", body) == n
    multi = observation([20.1, 55], at("10:00"), MultiDatastream=ref(1), FeatureOfInterest=ref(1))
    assert await create(hub, "Observations", multi) == 21


@pytest.fixture(scope="module")
async def reader(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    """A hub of its own for the tests that only read, filled once.

    Sensors 1 PT100, 2 Induction loop; ObservedProperties 1 Air temperature, 2 Relative humidity,
    3 Water level, 4 Vehicle count, 5 Precipitation. Things (HistoricalLocations 1-3 follow Locations):
    1 Weather station at Location 1 Town hall, 2 Harbour station at 2 Harbour, 3 Traffic counter at
    3 Ring 1 (a GeoJSON Feature, Hamburg's convention), 4 Spare box without a Location.
    FeaturesOfInterest 1 Market square, 2 Harbour basin (a polygon), 3 Ring 1 crossing.
    Datastreams: 1 air temperature and 2 humidity on Thing 1, 3 water level and 5 rain on Thing 2,
    4 vehicles (interval times) on Thing 3, 6 spare channel on Thing 4 without Observations;
    MultiDatastream 1 on Thing 1. Observations 1-21 as listed in build_graph; 9 is an hour old.
    """
    async with hub_on_new_database(pg_dsn, tmp_path_factory.mktemp("filtering")) as hub:
        recent = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
        await build_graph(hub, recent.isoformat().replace("+00:00", "Z"))
        yield hub


@pytest.fixture(scope="module")
async def small(reader: Any) -> AsyncIterator[Any]:
    """The reader's data served by a second hub with max_top = 3."""
    settings = reader.server.app[STATE].settings.model_copy(update={"max_top": 3})
    async with TestClient(TestServer(build_app(settings))) as hub:
        yield hub


# ---- helpers ---------------------------------------------------------------------------------------


def ids_of(body: Json) -> list[int]:
    return [entity["@iot.id"] for entity in body["value"]]


def params(link: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(link).query)


async def get_raw(client: Any, target: str) -> tuple[int, Any]:
    """GET `target` (below /v1.1) byte for byte, as a client that builds its URLs by hand."""
    response = await client.session.get(URL(f"{client.make_url(ROOT)}/{target}", encoded=True))
    return response.status, json.loads(await response.text())


async def walk(client: Any, path: str) -> tuple[list[int], list[str]]:
    """Every id of every page, following @iot.nextLink from `path`; and the links followed."""
    body = await get_ok(client, path)
    seen, links = ids_of(body), []
    while "@iot.nextLink" in body:
        links.append(body["@iot.nextLink"])
        assert len(links) < 50, "nextLinks do not end"
        status, body = await follow(client, links[-1])
        assert status == 200, body
        seen.extend(ids_of(body))
    return seen, links


# ---- $filter on every entity type ------------------------------------------------------------------

FILTERS: list[tuple[str, list[int]]] = [
    # Things: string functions, JSON properties, in, precedence, lambdas, navigation, geo
    ("Things?$filter=name eq 'Weather station'", [1]),
    ("Things?$filter=startswith(name,'Harbour')", [2]),
    ("Things?$filter=endswith(name,'station')", [1, 2]),
    ("Things?$filter=substringof('counter',name)", [3]),
    ("Things?$filter=contains(description,'roof') and not contains(name,'station')", [3, 4]),
    ("Things?$filter=length(name) eq 9", [4]),
    ("Things?$filter=indexof(name,'station') eq 8", [1, 2]),
    ("Things?$filter=substring(name,8) eq 'station'", [1, 2]),
    ("Things?$filter=substring(name,0,7) eq 'Traffic'", [3]),
    ("Things?$filter=tolower(name) eq 'spare box'", [4]),
    ("Things?$filter=toupper(name) eq 'HARBOUR STATION'", [2]),
    ("Things?$filter=trim(concat('  ',name)) eq 'Spare box'", [4]),
    ("Things?$filter=concat(concat(name,': '),properties/topic) eq 'Harbour station: water'", [2]),
    ("Things?$filter=properties/owner eq 'city'", [1, 3]),
    ("Things?$filter=properties/height gt 5", [1]),
    ("Things?$filter=properties/height add 1 eq 4", [2]),
    ("Things?$filter=Things/name eq 'Spare box'", [4]),
    ("Things?$filter=id in (2, 4)", [2, 4]),
    ("Things?$filter=name in ('Spare box','Weather station')", [1, 4]),
    ("Things?$filter=@iot.id ge 3", [3, 4]),
    ("Things?$filter=id eq '2'", [2]),
    ("Things?$filter=properties/height eq 12.0", [1]),
    ("Things?$filter=not (properties/owner eq 'city')", [2, 4]),
    (
        "Things?$filter=name eq 'Spare box' or properties/owner eq 'city' and properties/topic eq 'traffic'",
        [3, 4],
    ),
    (
        "Things?$filter=(name eq 'Spare box' or properties/owner eq 'city')"
        " and properties/topic eq 'traffic'",
        [3],
    ),
    ("Things?$filter=Datastreams/any(d: d/ObservedProperty/name eq 'Water level')", [2]),
    ("Things?$filter=Locations/any()", [1, 2, 3]),
    ("Things?$filter=Locations/all(l: l/name eq 'Town hall')", [1, 4]),
    ("Things?$filter=MultiDatastreams/any()", [1]),
    ("Things?$filter=Datastreams/Observations/result gt 300", [2]),
    ("Things?$filter=Datastreams/unitOfMeasurement/symbol eq '%'", [1]),
    ("Things?$filter=Locations/location/geometry/type eq 'Point'", [3]),
    ("Things?$filter=HistoricalLocations/time gt now() sub duration'P1D'", [1, 2, 3]),
    # Locations: location/type, location/geometry/type, geo functions
    ("Locations?$filter=name eq 'Harbour'", [2]),
    ("Locations?$filter=location/type eq 'Point' or location/geometry/type eq 'Point'", [1, 2, 3]),
    ("Locations?$filter=location/type eq 'Feature'", [3]),
    ("Locations?$filter=Things/name eq 'Traffic counter'", [3]),
    ("Locations?$filter=Things/Datastreams/Sensor/name eq 'Induction loop'", [3]),
    # HistoricalLocations: times relative to now(), navigation
    ("HistoricalLocations?$filter=Thing/name eq 'Harbour station'", [2]),
    ("HistoricalLocations?$filter=time gt now() sub duration'P1D'", [1, 2, 3]),
    ("HistoricalLocations?$filter=time lt now() sub duration'P1D'", []),
    ("HistoricalLocations?$filter=Locations/name eq 'Ring 1'", [3]),
    ("HistoricalLocations?$filter=year(time) ge 2024", [1, 2, 3]),
    # Datastreams: JSON properties, unitOfMeasurement, navigation to one and many, lambdas, extents
    ("Datastreams?$filter=properties/serviceName eq 'HH_STA_weather'", [1, 2]),
    ("Datastreams?$filter=properties/layerName eq 'humidity'", [2]),
    ("Datastreams?$filter=unitOfMeasurement/symbol eq '°C'", [1, 6]),
    ("Datastreams?$filter=unitOfMeasurement/name eq 'percent'", [2]),
    ("Datastreams?$filter=Thing/name eq 'Harbour station'", [3, 5]),
    ("Datastreams?$filter=Thing/Locations/name eq 'Town hall'", [1, 2]),
    ("Datastreams?$filter=ObservedProperty/name eq 'Vehicle count'", [4]),
    ("Datastreams?$filter=Sensor/name eq 'Induction loop'", [4, 6]),
    ("Datastreams?$filter=Observations/any(o: o/result gt 300)", [3]),
    ("Datastreams?$filter=Observations/all(o: o/result gt 19.2)", [2, 6]),
    # Each to-many comparison is its own EXISTS; any() ties both to one member.
    ("Datastreams?$filter=Observations/result gt 22 and Observations/result lt 19.2", [1]),
    ("Datastreams?$filter=Observations/any(o: o/result gt 22 and o/result lt 19.2)", []),
    ("Datastreams?$filter=Observations/FeatureOfInterest/name eq 'Harbour basin'", [3, 5]),
    ("Datastreams?$filter=phenomenonTime ge 2021-05-15T00:00:00Z", [1, 2, 4, 5]),
    ("Datastreams?$filter=phenomenonTime eq null", [6]),
    # MultiDatastreams
    ("MultiDatastreams?$filter=ObservedProperties/name eq 'Relative humidity'", [1]),
    ("MultiDatastreams?$filter=Thing/name eq 'Harbour station'", []),
    ("MultiDatastreams?$filter=Observations/any(o: o/phenomenonTime eq 2021-05-15T10:00:00Z)", [1]),
    # Sensors
    ("Sensors?$filter=startswith(name,'PT')", [1]),
    ("Sensors?$filter=encodingType eq 'text/html'", [2]),
    ("Sensors?$filter=Datastreams/ObservedProperty/name eq 'Vehicle count'", [2]),
    ("Sensors?$filter=MultiDatastreams/any()", [1]),
    # ObservedProperties
    ("ObservedProperties?$filter=Datastreams/Thing/name eq 'Harbour station'", [3, 5]),
    ("ObservedProperties?$filter=endswith(definition,'water_level')", [3]),
    ("ObservedProperties?$filter=MultiDatastreams/any()", [1, 2]),
    ("ObservedProperties?$filter=Datastreams/all(d: d/Thing/name eq 'Weather station')", [2]),
    # Observations: JSON results and parameters, math, arithmetic, null, date functions, navigation
    ("Observations?$filter=result gt 300", [8, 9]),
    ("Observations?$filter=result eq 'offline'", [10]),
    ("Observations?$filter=result/cars eq 5", [13]),
    ("Observations?$filter=parameters/qualityFlag eq 'ok'", [3]),
    ("Observations?$filter=parameters/qualityFlag in ('ok','suspect')", [3, 4]),
    ("Observations?$filter=resultTime ne null", [7]),
    ("Observations?$filter=resultTime eq null and Datastream/id eq 2", [6]),
    ("Observations?$filter=Datastream/id eq 1 and round(result) eq 20", [4]),
    ("Observations?$filter=Datastream/id eq 1 and floor(result) eq 19", [2, 4]),
    ("Observations?$filter=Datastream/id eq 1 and ceiling(result) eq 21", [1, 5]),
    ("Observations?$filter=Datastream/id eq 1 and result add 1 gt 23", [3]),
    ("Observations?$filter=Datastream/id eq 1 and result mul 2 eq 41", [1]),
    ("Observations?$filter=Datastream/id eq 1 and result sub 0.5 eq 20", [1]),
    ("Observations?$filter=Datastream/id eq 1 and result div 2 eq 10.25", [1]),
    ("Observations?$filter=Datastream/id eq 1 and result mod 2 eq 1", [2, 5]),
    ("Observations?$filter=Datastream/id eq 1 and -result lt -22", [3]),
    ("Observations?$filter=Datastream/id eq 1 and (result add 1) mul 2 eq 43", [1]),
    (
        "Observations?$filter=year(phenomenonTime) eq 2021 and month(phenomenonTime) eq 5"
        " and day(phenomenonTime) eq 14",
        [8, 10],
    ),
    ("Observations?$filter=hour(phenomenonTime) eq 10 and minute(phenomenonTime) eq 20", [1, 7]),
    ("Observations?$filter=date(phenomenonTime) eq 2021-05-14", [8, 10]),
    ("Observations?$filter=time(phenomenonTime) eq 10:40:00", [3]),
    ("Observations?$filter=second(resultTime) eq 5", [7]),
    ("Observations?$filter=phenomenonTime gt now() sub duration'P1D'", [9]),
    ("Observations?$filter=phenomenonTime lt now() sub duration'PT30M' and result gt 300", [8, 9]),
    ("Observations?$filter=Datastream/Thing/name eq 'Harbour station' and result lt 10", list(range(14, 21))),
    ("Observations?$filter=Datastream/ObservedProperty/name eq 'Relative humidity'", [6, 7]),
    ("Observations?$filter=Datastream/unitOfMeasurement/symbol eq '%'", [6, 7]),
    ("Observations?$filter=FeatureOfInterest/name eq 'Ring 1 crossing'", [11, 12, 13]),
    ("Observations?$filter=MultiDatastream/id eq 1", [21]),
    ("Observations?$filter=Datastream/@iot.id eq 2", [6, 7]),
    # FeaturesOfInterest
    ("FeaturesOfInterest?$filter=feature/type eq 'Polygon'", [2]),
    ("FeaturesOfInterest?$filter=Observations/result gt 300", [2]),
    ("FeaturesOfInterest?$filter=Observations/Datastream/name eq 'Vehicles per 15 minutes'", [3]),
]


# Spatial filters as viewers send them (STA-NOTES): PostGIS where the server has it, else the
# built-in fallback (hub/query/builtin_geo.py), with the same answers; CI runs them on both.
GEO_FILTERS: list[Any] = [
    (f"Things?$filter=st_within(Locations/location, geography'{AROUND_TOWN_HALL}')", [1]),
    (f"Things?$filter=st_intersects(Locations/location, geography'{AROUND_RING_1}')", [3]),
    (f"Locations?$filter=st_intersects(location, geography'{AROUND_ALL}')", [1, 2, 3]),
    (f"Locations?$filter=geo.intersects(location, geography'{AROUND_HARBOUR}')", [2]),
    (f"Locations?$filter=st_within(location, geography'{AROUND_RING_1}')", [3]),
    (f"Locations?$filter=st_contains(geography'{AROUND_TOWN_HALL}', location)", [1]),
    ("Locations?$filter=st_equals(location, geography'POINT(9.97 53.54)')", [2]),
    ("Locations?$filter=geo.distance(location, geography'POINT(10 53.55)') lt 0.01", [1]),
    ("Locations?$filter=geo.distance(location, geography'POINT(10 53.55)') lt 0.05", [1, 2]),
    (f"Datastreams?$filter=st_intersects(Thing/Locations/location, geography'{AROUND_TOWN_HALL}')", [1, 2]),
    (f"Datastreams?$filter=st_within(Thing/Locations/location, geography'{AROUND_HARBOUR}')", [3, 5]),
    (f"Observations?$filter=st_within(FeatureOfInterest/feature, geography'{AROUND_RING_1}')", [11, 12, 13]),
    # Feature of interest 2 is a polygon: the built-in fallback tests stored points only.
    pytest.param(
        "FeaturesOfInterest?$filter=st_intersects(feature, geography'POINT(9.965 53.545)')",
        [2],
        marks=pytest.mark.postgis,
    ),
    ("FeaturesOfInterest?$filter=geo.distance(feature, geography'POINT(10.05 53.6)') lt 0.001", [3]),
]


@pytest.mark.parametrize(("path", "expected"), FILTERS)
async def test_filter(reader: Any, path: str, expected: list[int]) -> None:
    assert await ids(reader, path) == sorted(expected)


@pytest.mark.geo
@pytest.mark.parametrize(("path", "expected"), GEO_FILTERS)
async def test_geo_filter(reader: Any, path: str, expected: list[int]) -> None:
    assert await ids(reader, path) == sorted(expected)


# Datastream 4's interval phenomenonTimes: 11 [10:00, 10:15), 12 [10:15, 10:30), 13 [10:30, 10:45).
INTERVALS: list[tuple[str, list[int]]] = [
    ("phenomenonTime gt 2021-05-15T10:15:00Z", [13]),
    ("phenomenonTime ge 2021-05-15T10:15:00Z", [12, 13]),
    ("phenomenonTime lt 2021-05-15T10:30:00Z", [11, 12]),
    ("phenomenonTime le 2021-05-15T10:30:00Z", [11, 12]),
    ("phenomenonTime eq '2021-05-15T10:15:00Z/2021-05-15T10:30:00Z'", [12]),
    ("phenomenonTime ne '2021-05-15T10:15:00Z/2021-05-15T10:30:00Z'", [11, 13]),
    ("before(phenomenonTime, 2021-05-15T10:15:00Z)", [11]),
    ("after(phenomenonTime, 2021-05-15T10:15:00Z)", [13]),
    ("meets(phenomenonTime, 2021-05-15T10:30:00Z)", [12, 13]),
    ("during(phenomenonTime, '2021-05-15T10:00:00Z/2021-05-15T10:30:00Z')", [11, 12]),
    ("overlaps(phenomenonTime, '2021-05-15T10:20:00Z/2021-05-15T10:35:00Z')", [12, 13]),
    ("starts(phenomenonTime, 2021-05-15T10:15:00Z)", [12]),
    ("finishes(phenomenonTime, 2021-05-15T10:30:00Z)", [12]),
    ("hour(phenomenonTime) eq 10 and minute(phenomenonTime) eq 15", [12]),
]


@pytest.mark.parametrize(("condition", "expected"), INTERVALS)
async def test_filter_on_interval_phenomenon_times(reader: Any, condition: str, expected: list[int]) -> None:
    assert await ids(reader, f"Datastreams(4)/Observations?$filter={condition}") == expected


async def test_filter_on_a_navigation_collection_stays_below_its_parent(reader: Any) -> None:
    assert await ids(reader, "Things(2)/Datastreams?$filter=startswith(name,'Rain')") == [5]
    assert await ids(reader, "Things(1)/Datastreams?$filter=startswith(name,'Rain')") == []
    assert await ids(reader, "Datastreams(1)/Observations?$filter=result gt 21") == [3]


async def test_filter_and_expand_together_filter_only_the_root(reader: Any) -> None:
    body = await get_ok(reader, "Things?$filter=properties/owner eq 'city'&$expand=Datastreams($select=id)")
    assert {e["@iot.id"]: [d["@iot.id"] for d in e["Datastreams"]] for e in body["value"]} == {
        1: [1, 2],
        3: [4],
    }


# ---- URL shapes clients send -----------------------------------------------------------------------

# Sent byte for byte (no re-encoding by the test client).
URL_FORMS: list[tuple[str, str, list[int]]] = [
    ("plus for spaces", "Things?$filter=name+eq+'Weather+station'", [1]),
    ("%20 for spaces", "Things?$filter=name%20eq%20%27Weather%20station%27", [1]),
    ("%24filter", "Things?%24filter=name%20eq%20'Harbour%20station'", [2]),
    ("%24 everywhere", "Things?%24filter=id%20le%202&%24orderby=id%20desc&%24top=1", [2]),
    ("option names in any case", "Things?$FILTER=id%20le%202&$OrderBy=id%20DESC&$Top=5", [2, 1]),
    ("%2B is a plus", "Locations?$filter=encodingType%20eq%20'application/geo%2Bjson'", [1, 2, 3]),
    (
        "unencoded ' : /",
        "Observations?$filter=phenomenonTime%20ge%202021-05-15T10:30:00Z%20and%20Datastream/id%20eq%201",
        [3, 5],
    ),
    (
        "offset sent as an unencoded +",
        "Datastreams(1)/Observations?$filter=phenomenonTime+ge+2021-05-15T12:10:00+02:00"
        "+and+phenomenonTime+le+2021-05-15T10:30:00Z",
        [4, 1, 5],
    ),
    (
        "''' inside a string",
        "Things?$filter=name%20ne%20'Harbour''s%20station'%20and%20id%20le%202",
        [1, 2],
    ),
    (
        "newlines after the options (VC Map)",
        "Things?$top=1000%0A%20%20%20%20&$filter=Datastreams/ObservedProperty/name%20eq%20'Air%20temperature'"
        "%0A%20%20%20%20&$expand=Locations($top=1)%0A",
        [1, 4],
    ),
    (
        "newlines before the options (VC Map)",
        "Things?%0A%20%20$top=1000&%0A%20%20$filter=Datastreams/ObservedProperty/name%20eq%20'Air%20temperature'"
        "&%0A%20%20$expand=Locations($top=1)",
        [1, 4],
    ),
    (
        "newlines inside an expression",
        "Things?$filter=%0A%20%20name%20eq%20'Spare%20box'%0A%20%20or%0A%20%20id%20eq%201%0A",
        [1, 4],
    ),
]


@pytest.mark.parametrize(
    ("target", "expected"), [(t, e) for _, t, e in URL_FORMS], ids=[n for n, _, _ in URL_FORMS]
)
async def test_url_forms(reader: Any, target: str, expected: list[int]) -> None:
    status, body = await get_raw(reader, target)
    assert status == 200, body
    assert ids_of(body) == expected


@pytest.mark.geo
@pytest.mark.parametrize(
    "path",
    [
        f"FeaturesOfInterest?$filter=st_overlaps(feature, geography'{AROUND_HARBOUR}')",
        "Locations?$filter=st_crosses(location, geography'LINESTRING(9.9 53.5, 10.1 53.7)')",
        "Locations?$filter=geo.length(location) gt 0",
        f"Things?$filter=st_within(Locations/location, geography'MULTIPOLYGON((({AROUND_ALL[9:-2]})))')",
    ],
)
async def test_shapes_beyond_the_builtin_fallback_need_postgis(reader: Any, path: str) -> None:
    response = await reader.get(f"{ROOT}/{path}")
    status, body = response.status, await response.json()
    if reader.server.app[STATE].dialect.postgis:
        assert status == 200, body
    else:  # a valid request this server cannot answer: 501, naming what it lacks
        assert status == 501, body
        assert "PostGIS" in body["message"]
        assert body["message"].startswith("$filter: ")


@pytest.mark.geo
async def test_vc_map_request(reader: Any) -> None:
    target = (
        "Things?$top=1000%0A%20%20&$filter=Datastreams/ObservedProperty/name%20eq%20'Air%20temperature'"
        f"%20and%20st_within(Locations/location,%20geography'{AROUND_ALL.replace(' ', '%20')}')"
        "%0A%20%20&$expand=Locations($top=1)"
    )
    status, body = await get_raw(reader, target)
    assert status == 200, body
    assert ids_of(body) == [1]
    assert [loc["@iot.id"] for loc in body["value"][0]["Locations"]] == [1]


async def test_qgis_geometry_probe(reader: Any) -> None:
    probes = {
        "Locations": ("location/type eq 'Point' or location/geometry/type eq 'Point'", 3),
        "FeaturesOfInterest": ("feature/type eq 'Point' or feature/geometry/type eq 'Point'", 2),
        "Datastreams": ("observedArea/type eq 'Point' or observedArea/geometry/type eq 'Point'", None),
    }
    for entity_set, (condition, expected) in probes.items():
        body = await get_ok(reader, f"{entity_set}?$top=0&$count=true&$filter={condition}")
        assert body["value"] == []
        assert "@iot.nextLink" not in body
        assert isinstance(body["@iot.count"], int)
        if expected is not None:
            assert body["@iot.count"] == expected, entity_set


@pytest.mark.parametrize("word", ["asc", "ASC", "Asc", "desc", "DESC", "Desc"])
async def test_orderby_direction_in_any_case(reader: Any, word: str) -> None:
    # By name: Harbour station 2, Spare box 4, Traffic counter 3, Weather station 1.
    expected = [2, 4, 3, 1] if word.lower() == "asc" else [1, 3, 4, 2]
    for space in ("%20", "+"):
        status, body = await get_raw(reader, f"Things?$orderby=name{space}{word}")
        assert status == 200, body
        assert ids_of(body) == expected


async def test_iot_id_in_select_orderby_and_filter(reader: Any) -> None:
    body = await get_ok(reader, "Things?$select=@iot.id&$orderby=@iot.id desc&$filter=@iot.id le 3")
    assert body["value"] == [{"@iot.id": 3}, {"@iot.id": 2}, {"@iot.id": 1}]
    body = await get_ok(reader, "Things?$select=id,name&$filter=id eq 2")
    assert body["value"] == [{"@iot.id": 2, "name": "Harbour station"}]


async def test_iot_id_inside_expand(reader: Any) -> None:
    body = await get_ok(
        reader, "Things(1)?$expand=Datastreams($select=@iot.id;$orderby=@iot.id desc;$filter=@iot.id gt 0)"
    )
    assert body["Datastreams"] == [{"@iot.id": 2}, {"@iot.id": 1}]
    body = await get_ok(reader, "Things(1)?$select=id&$expand=Datastreams($select=id;$orderby=id desc)")
    assert body == {"@iot.id": 1, "Datastreams": [{"@iot.id": 2}, {"@iot.id": 1}]}


# ---- $expand ---------------------------------------------------------------------------------------


async def test_expand_with_nested_options(reader: Any) -> None:
    body = await get_ok(
        reader,
        "Things(1)?$expand=Datastreams($filter=Sensor/id eq 1;$select=name,unitOfMeasurement;"
        "$orderby=name desc;$top=1;$skip=1;$count=true;$expand=ObservedProperty($select=name))",
    )
    assert body["Datastreams@iot.count"] == 2
    assert "Datastreams@iot.nextLink" not in body  # skip 1 + top 1 = the two there are
    assert body["Datastreams"] == [
        {
            "name": "Air temperature at the town hall",
            "unitOfMeasurement": CELSIUS,
            "ObservedProperty": {"name": "Air temperature"},
        }
    ]


async def test_expand_path_form(reader: Any) -> None:
    body = await get_ok(reader, "Things(2)?$expand=Datastreams/Observations($top=1;$orderby=phenomenonTime)")
    assert [d["@iot.id"] for d in body["Datastreams"]] == [3, 5]
    assert [[o["@iot.id"] for o in d["Observations"]] for d in body["Datastreams"]] == [[8], [20]]
    # The implied Datastreams level is complete: no $select, every property and link.
    assert body["Datastreams"][0]["name"] == "Water level at the harbour"
    assert "Thing@iot.navigationLink" in body["Datastreams"][0]


async def test_expand_several_comma_separated(reader: Any) -> None:
    body = await get_ok(
        reader,
        "Things(1)?$expand=Locations,HistoricalLocations($select=id),Datastreams($select=id),"
        "MultiDatastreams($select=id)",
    )
    assert [e["@iot.id"] for e in body["Locations"]] == [1]
    assert body["Locations"][0]["name"] == "Town hall"
    assert body["HistoricalLocations"] == [{"@iot.id": 1}]
    assert body["Datastreams"] == [{"@iot.id": 1}, {"@iot.id": 2}]
    assert body["MultiDatastreams"] == [{"@iot.id": 1}]


@pytest.mark.parametrize(
    "expand",
    [
        "Datastreams($top=1),Datastreams/Observations($select=id)",
        "Datastreams/Observations($select=id),Datastreams($top=1)",
    ],
)
async def test_expand_merges_a_level_with_its_path_form(reader: Any, expand: str) -> None:
    body = await get_ok(reader, f"Things(1)?$expand={expand}")
    assert [d["@iot.id"] for d in body["Datastreams"]] == [1]
    assert "Datastreams@iot.nextLink" in body
    # expanded Observations come in time order, as the Datastream's own collection does
    assert body["Datastreams"][0]["Observations"] == [{"@iot.id": i} for i in (2, 4, 1, 5, 3)]


async def test_expand_merges_two_path_forms(reader: Any) -> None:
    body = await get_ok(
        reader, "Things(2)?$expand=Datastreams/Thing($select=name),Datastreams/Sensor($select=id)"
    )
    for stream in body["Datastreams"]:
        assert stream["Thing"] == {"name": "Harbour station"}
        assert stream["Sensor"] == {"@iot.id": 1}


async def test_expand_to_one(reader: Any) -> None:
    body = await get_ok(reader, "Observations?$filter=Datastream/id le 2&$expand=Datastream($select=name)")
    assert ids_of(body) == [1, 2, 3, 4, 5, 6, 7]
    names = [e["Datastream"] for e in body["value"]]
    assert (
        names
        == [{"name": "Air temperature at the town hall"}] * 5 + [{"name": "Humidity at the town hall"}] * 2
    )


async def test_expand_locations_under_things(reader: Any) -> None:
    body = await get_ok(reader, "Things?$expand=Locations")
    assert {e["@iot.id"]: [loc["@iot.id"] for loc in e["Locations"]] for e in body["value"]} == {
        1: [1],
        2: [2],
        3: [3],
        4: [],
    }
    feature = next(e for e in body["value"] if e["@iot.id"] == 3)["Locations"][0]
    assert feature["location"] == RING_1_FEATURE
    assert feature["@iot.selfLink"] == url(reader, "Locations(3)")


async def test_expand_thing_locations_under_datastreams(reader: Any) -> None:
    body = await get_ok(reader, "Datastreams?$expand=Thing/Locations($select=name)")
    things = {e["@iot.id"]: e["Thing"] for e in body["value"]}
    assert {k: v["@iot.id"] for k, v in things.items()} == {1: 1, 2: 1, 3: 2, 4: 3, 5: 2, 6: 4}
    assert things[3]["Locations"] == [{"name": "Harbour"}]
    assert things[6]["Locations"] == []
    assert things[1]["name"] == "Weather station"


async def test_expand_counts_and_next_links_per_parent(reader: Any) -> None:
    body = await get_ok(reader, "Things?$expand=Datastreams($count=true;$top=1;$select=id)")
    counts = {e["@iot.id"]: e["Datastreams@iot.count"] for e in body["value"]}
    assert counts == {1: 2, 2: 2, 3: 1, 4: 1}
    more = {e["@iot.id"] for e in body["value"] if "Datastreams@iot.nextLink" in e}
    assert more == {1, 2}
    firsts = {e["@iot.id"]: e["Datastreams"] for e in body["value"]}
    assert firsts == {1: [{"@iot.id": 1}], 2: [{"@iot.id": 3}], 3: [{"@iot.id": 4}], 4: [{"@iot.id": 6}]}


async def test_nested_next_link_uses_top_and_skip_and_keeps_the_options(reader: Any) -> None:
    body = await get_ok(
        reader,
        "Things(1)?$expand=Datastreams($top=1;$orderby=name desc;$select=name;$filter=Sensor/id eq 1)",
    )
    assert body["Datastreams"] == [{"name": "Humidity at the town hall"}]
    link = body["Datastreams@iot.nextLink"]
    assert link.startswith(url(reader, "Things(1)/Datastreams?"))
    query = params(link)
    assert query["$top"] == ["1"]
    assert query["$skip"] == ["1"]
    assert query["$orderby"] == ["name desc"]
    assert query["$select"] == ["name"]
    assert query["$filter"] == ["Sensor/id eq 1"]
    status, rest = await follow(reader, link)
    assert status == 200, rest
    assert rest["value"] == [{"name": "Air temperature at the town hall"}]
    assert "@iot.nextLink" not in rest


@pytest.mark.parametrize(
    "select",
    [
        "id,result,phenomenonTime",
        pytest.param("id,result"),
    ],
)
async def test_nested_next_links_walk_a_deeper_level(reader: Any, select: str) -> None:
    body = await get_ok(
        reader,
        "Things(1)?$expand=Datastreams($filter=id eq 1;$expand=Observations($orderby=phenomenonTime;"
        f"$top=2;$select={select}))",
    )
    stream = body["Datastreams"][0]
    fields = set(select.replace("id", "@iot.id", 1).split(","))
    assert [o["@iot.id"] for o in stream["Observations"]] == [2, 4]
    assert [o["result"] for o in stream["Observations"]] == [19.0, 19.5]
    link = stream["Observations@iot.nextLink"]
    assert link.startswith(url(reader, "Datastreams(1)/Observations?"))
    assert (params(link)["$top"], params(link)["$skip"]) == (["2"], ["2"])
    seen = [o["@iot.id"] for o in stream["Observations"]]
    while link:
        status, page = await follow(reader, link)
        assert status == 200, page
        for entity in page["value"]:
            assert set(entity) == fields
        seen.extend(ids_of(page))
        link = page.get("@iot.nextLink", "")
    assert seen == DS1_BY_TIME


LATEST = {1: [3], 2: [7], 3: [9], 4: [13], 5: [16], 6: []}


@pytest.mark.parametrize(
    "expand",
    [
        "Locations,Datastreams($expand=Observations($orderby=phenomenonTime desc;$top=1))",
        "Locations,Datastreams/Observations($orderby=phenomenonTime desc;$top=1)",
        "Locations,Datastreams($expand=Observations($top=1;$orderby=phenomenonTime DESC))",
    ],
)
async def test_masterportal_latest_value(reader: Any, expand: str) -> None:
    body = await get_ok(reader, f"Things?$expand={expand}")
    latest = {
        d["@iot.id"]: ids_of({"value": d["Observations"]}) for e in body["value"] for d in e["Datastreams"]
    }
    assert latest == LATEST
    things = {e["@iot.id"]: e for e in body["value"]}
    assert [loc["@iot.id"] for loc in things[1]["Locations"]] == [1]
    stream = things[1]["Datastreams"][0]
    assert stream["Observations"][0]["result"] == 22.25
    assert stream["Observations"][0]["phenomenonTime"] == at("10:40")
    # The nested nextLink leads to the next newest (Masterportal stops on $top=1&$skip=1).
    link = stream["Observations@iot.nextLink"]
    assert link.startswith(url(reader, "Datastreams(1)/Observations?"))
    assert (params(link)["$top"], params(link)["$skip"]) == (["1"], ["1"])
    status, rest = await follow(reader, link)
    assert status == 200, rest
    assert ids_of(rest) == [5]
    spare = things[4]["Datastreams"][0]
    assert spare["Observations"] == []
    assert "Observations@iot.nextLink" not in spare


@pytest.mark.geo
async def test_masterportal_viewport_request(reader: Any) -> None:
    body = await get_ok(
        reader,
        f"Things?$filter=st_intersects(Locations/location, geography'{AROUND_HARBOUR}')"
        "&$expand=Locations,Datastreams/Observations($orderby=phenomenonTime desc;$top=1)",
    )
    assert ids_of(body) == [2]
    harbour = body["value"][0]
    assert [loc["name"] for loc in harbour["Locations"]] == ["Harbour"]
    assert {d["@iot.id"]: [o["@iot.id"] for o in d["Observations"]] for d in harbour["Datastreams"]} == {
        3: LATEST[3],
        5: LATEST[5],
    }


async def test_masterportal_latest_value_follows_writes(client: Any) -> None:
    await populate(client)  # Observations 1 (10:00) and 2 (10:10) on Datastream 1
    shape = "Things?$expand=Locations,Datastreams($expand=Observations($orderby=phenomenonTime desc;$top=1))"
    multi = "MultiDatastreams?$expand=Observations($orderby=phenomenonTime desc;$top=1)"

    async def latest() -> int | None:
        body = await get_ok(client, shape)
        found = body["value"][0]["Datastreams"][0]["Observations"]
        plain = await ids(client, "Datastreams(1)/Observations?$orderby=phenomenonTime desc&$top=1")
        assert [o["@iot.id"] for o in found] == plain
        return found[0]["@iot.id"] if found else None

    assert await latest() == 2
    assert await create(client, "Observations", observation(3, at("10:30"), Datastream=ref(1))) == 3
    assert await create(client, "Observations", observation(4, at("10:20"), Datastream=ref(1))) == 4
    assert await latest() == 3
    assert await create(client, "Observations", observation(5, at("10:40"), Datastream=ref(1))) == 5
    assert await latest() == 5
    assert await create(client, "Observations", observation(6, at("09:00"), Datastream=ref(1))) == 6
    assert await latest() == 5
    status, _, _ = await send(client, "DELETE", "Observations(5)")
    assert status in (200, 204)
    assert await latest() == 3
    status, _, _ = await send(client, "PATCH", "Observations(6)", {"phenomenonTime": at("11:00")})
    assert status == 200
    assert await latest() == 6
    status, _, _ = await send(client, "DELETE", "Observations(6)")
    assert status in (200, 204)
    assert await latest() == 3
    # The MultiDatastream's latest, from nothing to one.
    body = await get_ok(client, multi)
    assert body["value"][0]["Observations"] == []
    posted = observation([20.1, 55], at("09:00"), MultiDatastream=ref(1))
    assert await create(client, "Observations", posted) == 7
    body = await get_ok(client, multi)
    assert [o["@iot.id"] for o in body["value"][0]["Observations"]] == [7]


# ---- $select ---------------------------------------------------------------------------------------

SELECTS: list[tuple[str, Any]] = [
    (
        "Things(1)?$select=name,properties",
        {"name": "Weather station", "properties": {"owner": "city", "topic": "weather", "height": 12}},
    ),
    ("Things(1)?$select=id", {"@iot.id": 1}),
    ("Things(1)?$select=@iot.id,@iot.selfLink", {"@iot.id": 1, "@iot.selfLink": "Things(1)"}),
    ("Things(1)?$select=properties/owner", {"properties": {"owner": "city"}}),
    ("Things(1)?$select=properties/owner,properties/height", {"properties": {"owner": "city", "height": 12}}),
    (
        "Things(1)?$select=Datastreams,Locations",
        {
            "Datastreams@iot.navigationLink": "Things(1)/Datastreams",
            "Locations@iot.navigationLink": "Things(1)/Locations",
        },
    ),
    (
        "Datastreams(1)?$select=properties/serviceName,unitOfMeasurement/symbol",
        {"properties": {"serviceName": "HH_STA_weather"}, "unitOfMeasurement": {"symbol": "°C"}},
    ),
    ("Observations(7)?$select=result,resultTime", {"result": 60, "resultTime": "2021-05-15T10:20:05Z"}),
    ("Observations(13)?$select=result/cars", {"result": {"cars": 5}}),
    (
        "Observations(1)?$select=Datastream,FeatureOfInterest",
        {
            "Datastream@iot.navigationLink": "Observations(1)/Datastream",
            "FeatureOfInterest@iot.navigationLink": "Observations(1)/FeatureOfInterest",
        },
    ),
]


def absolute(client: Any, expected: Any) -> Any:
    """Links in the expected bodies above are written relative to the service root."""
    if isinstance(expected, dict):
        return {
            k: url(client, v) if isinstance(v, str) and ("Link" in k) else absolute(client, v)
            for k, v in expected.items()
        }
    return expected


@pytest.mark.parametrize(("path", "expected"), SELECTS)
async def test_select(reader: Any, path: str, expected: Json) -> None:
    assert await get_ok(reader, path) == absolute(reader, expected)


async def test_select_on_a_collection_and_inside_expands(reader: Any) -> None:
    body = await get_ok(
        reader, "Things?$filter=id eq 1&$select=name&$expand=Datastreams($select=name,Thing;$orderby=id)"
    )
    assert body["value"] == [
        {
            "name": "Weather station",
            "Datastreams": [
                {
                    "name": "Air temperature at the town hall",
                    "Thing@iot.navigationLink": url(reader, "Datastreams(1)/Thing"),
                },
                {
                    "name": "Humidity at the town hall",
                    "Thing@iot.navigationLink": url(reader, "Datastreams(2)/Thing"),
                },
            ],
        }
    ]


async def test_grafana_select_of_time_and_result(reader: Any) -> None:
    body = await get_ok(
        reader,
        "Datastreams(1)/Observations?$filter=phenomenonTime ge 2021-05-15T10:10:00.000Z"
        " and phenomenonTime le 2021-05-15T10:30:00.000Z"
        "&$orderby=phenomenonTime asc&$select=phenomenonTime,result&$top=1000",
    )
    assert body == {
        "value": [
            {"phenomenonTime": at("10:10"), "result": 19.5},
            {"phenomenonTime": at("10:20"), "result": 20.5},
            {"phenomenonTime": at("10:30"), "result": 21.0},
        ]
    }


@pytest.mark.parametrize(
    ("path", "mentions"),
    [
        ("Things?$select=colour", ("$select", "colour")),
        ("Things?$select=name,Colour", ("$select", "Colour")),
        ("Things?$select=Observations", ("$select", "Observations")),
        ("Things?$expand=Datastreams($select=colour)", ("colour",)),
        ("Things?$expand=Datastreams/Observations($select=shade)", ("shade",)),
    ],
)
async def test_select_of_an_unknown_name_is_400(reader: Any, path: str, mentions: tuple[str, ...]) -> None:
    status, body = await get(reader, path)
    assert_error(status, body, 400, *mentions)


# ---- $orderby --------------------------------------------------------------------------------------

ORDERS: list[tuple[str, list[int]]] = [
    ("Things?$orderby=name", [2, 4, 3, 1]),
    ("Things?$orderby=properties/owner,name desc", [1, 3, 2, 4]),
    ("Things?$orderby=properties/owner desc,name", [4, 2, 3, 1]),
    ("Things?$orderby=properties/owner", [1, 3, 2, 4]),  # tie broken by id
    ("Things?$orderby=properties/owner desc", [4, 2, 3, 1]),  # ... in the last key's direction
    ("Things?$orderby=length(name) desc,id", [1, 2, 3, 4]),
    ("Datastreams(1)/Observations?$orderby=result desc", [3, 5, 1, 4, 2]),
    ("Datastreams(1)/Observations?$orderby=phenomenonTime", DS1_BY_TIME),
    ("Datastreams(1)/Observations?$orderby=phenomenonTime desc", DS1_BY_TIME[::-1]),
    ("Datastreams(5)/Observations?$orderby=phenomenonTime", DS5_ASC),
    ("Datastreams(5)/Observations?$orderby=phenomenonTime desc", DS5_DESC),
    ("Datastreams(5)/Observations?$orderby=phenomenonTime desc,result", [16, 14, 18, 15, 17, 19, 20]),
    ("Datastreams(5)/Observations?$orderby=phenomenonTime,result desc", [20, 19, 17, 15, 18, 14, 16]),
    (
        "Observations?$filter=Datastream/id le 2&$orderby=Datastream/name desc,phenomenonTime",
        [6, 7, *DS1_BY_TIME],
    ),
    ("Observations?$filter=Datastream/id le 2&$orderby=Datastream/name,result desc", [3, 5, 1, 4, 2, 7, 6]),
    (
        "Observations?$filter=Datastream/id le 2&$orderby=Datastream/Thing/name,Datastream/id desc,id",
        [6, 7, 1, 2, 3, 4, 5],
    ),
    # to-many (VC Map): the smallest member ascending, the largest descending; none sorts as NULL,
    # which OData puts first ascending and last descending (Datastream 6 has no Observations)
    ("Datastreams?$orderby=Observations/phenomenonTime", [6, 3, 1, 2, 4, 5]),
    ("Datastreams?$orderby=Observations/phenomenonTime desc", [3, 5, 1, 4, 2, 6]),
    ("Things?$orderby=Datastreams/name", [1, 2, 4, 3]),
]


@pytest.mark.parametrize(("path", "expected"), ORDERS)
async def test_orderby(reader: Any, path: str, expected: list[int]) -> None:
    assert await ids(reader, path) == expected


async def test_orderby_puts_null_first_ascending_and_last_descending(client: Any) -> None:
    """OData 4.0 Part 2 §5.1.1.1 ($orderby): null is smaller than every value. Observations 1 and 2
    have no resultTime; ties break by id in the direction of the last key."""
    await populate(client)
    late = observation(1, Datastream=ref(1), resultTime="2021-05-15T12:00:00Z")
    early = observation(2, Datastream=ref(1), resultTime="2021-05-15T11:00:00Z")
    assert [await create(client, "Observations", body) for body in (late, early)] == [3, 4]
    assert await ids(client, "Datastreams(1)/Observations?$orderby=resultTime") == [1, 2, 4, 3]
    assert await ids(client, "Datastreams(1)/Observations?$orderby=resultTime desc") == [3, 4, 2, 1]
    assert await ids(client, "Observations?$orderby=resultTime asc,phenomenonTime desc") == [2, 1, 4, 3]
    # the same order when the pages are followed one by one
    walked: list[int] = []
    link: str | None = url(client, "Observations?$orderby=resultTime desc&$top=1")
    while link:
        status, page = await follow(client, link)
        assert status == 200
        walked.extend(entity["@iot.id"] for entity in page["value"])
        link = page.get("@iot.nextLink")
    assert walked == [3, 4, 2, 1]


async def test_offset_date_times_are_accepted_in_every_form(reader: Any) -> None:
    """The literal forms with an offset keep working: Z, +hh:mm (also form-encoded), -hh:mm."""
    base = "Observations?$filter=phenomenonTime ge "
    expected = await ids(reader, base + "2021-05-15T10:00:00Z")
    assert await ids(reader, base + "2021-05-15T12:00:00%2B02:00") == expected
    assert await ids(reader, base + "2021-05-15T12:00:00+02:00") == expected  # '+' read as a space
    assert await ids(reader, base + "2021-05-15T05:00:00-05:00") == expected


# ---- paging ----------------------------------------------------------------------------------------

PAGES: list[tuple[str, list[int], int | None, bool]] = [
    # (query on Datastreams(1)/Observations, ids, @iot.count, nextLink?)
    # A Datastream's Observations come in time order by default (docs/query.md): 2, 4, 1, 5, 3.
    ("$top=2&$count=true", [2, 4], 5, True),
    ("$top=2&$skip=4&$count=true", [3], 5, False),
    ("$skip=2&$count=true", [1, 5, 3], 5, False),
    ("$top=0&$count=true", [], 5, False),
    ("$top=5&$count=false", [2, 4, 1, 5, 3], None, False),
    ("$top=4", [2, 4, 1, 5], None, True),
    ("$skip=9&$count=true", [], 5, False),
    ("$top=3&$skip=1&$orderby=phenomenonTime desc&$count=true", [5, 1, 4], 5, True),
    ("$top=1&$filter=result gt 21&$count=true", [3], 1, False),
    ("$top=1&$skip=1&$filter=result lt 21&$count=true&$orderby=result", [4], 3, True),
]


@pytest.mark.parametrize(("query", "expected", "total", "more"), PAGES)
async def test_top_skip_count(
    reader: Any, query: str, expected: list[int], total: int | None, more: bool
) -> None:
    body = await get_ok(reader, f"Datastreams(1)/Observations?{query}")
    assert ids_of(body) == expected
    assert body.get("@iot.count") == total
    assert ("@iot.nextLink" in body) is more


async def test_top_above_max_top_is_served_with_the_maximum_and_a_next_link(small: Any) -> None:
    for path in ("Things?$top=10", "Things"):
        body = await get_ok(small, path)
        assert ids_of(body) == [1, 2, 3], path
        link = body["@iot.nextLink"]
        assert link.startswith(url(small, "Things?"))
        assert params(link)["$top"] == ["3"]
        status, rest = await follow(small, link)
        assert status == 200
        assert ids_of(rest) == [4]
        assert "@iot.nextLink" not in rest
    seen, _ = await walk(small, "Observations?$top=100&$orderby=phenomenonTime desc")
    assert len(seen) == len(set(seen)) == 21


async def test_expand_top_above_max_top_is_clamped(small: Any) -> None:
    body = await get_ok(small, "Datastreams(1)?$expand=Observations($top=10;$select=id)")
    assert body["Observations"] == [{"@iot.id": i} for i in (2, 4, 1)]  # time order
    link = body["Observations@iot.nextLink"]
    assert (params(link)["$top"], params(link)["$skip"]) == (["3"], ["3"])


async def test_next_link_is_absolute_and_its_query_string_alone_reproduces_the_page(reader: Any) -> None:
    # Grafana: one plugin appends only the nextLink's query string to its own path.
    path = "Datastreams(1)/Observations"
    first = await get_ok(
        reader,
        f"{path}?$filter=phenomenonTime ge 2021-05-15T10:00:00Z and phenomenonTime le 2021-05-15T10:40:00Z"
        "&$orderby=phenomenonTime asc&$select=phenomenonTime,result&$top=2",
    )
    assert [e["phenomenonTime"] for e in first["value"]] == [at("10:00"), at("10:10")]
    link = first["@iot.nextLink"]
    assert link.startswith(url(reader, f"{path}?"))
    _, by_link = await follow(reader, link)
    by_query = await get_ok(reader, f"{path}?{urlsplit(link).query}")
    status, by_raw_query = await get_raw(reader, f"{path}?{urlsplit(link).query}")
    assert status == 200
    assert by_query == by_link == by_raw_query
    assert by_link["value"] == [
        {"phenomenonTime": at("10:20"), "result": 20.5},
        {"phenomenonTime": at("10:30"), "result": 21.0},
    ]


KEYSET_WALKS: list[tuple[str, list[int]]] = [
    ("Datastreams(1)/Observations?$orderby=phenomenonTime desc&$top=2", DS1_BY_TIME[::-1]),
    ("Datastreams(1)/Observations?$orderby=phenomenonTime asc&$top=2", DS1_BY_TIME),
    ("Datastreams(1)/Observations?$orderby=phenomenonTime desc&$top=2&$filter=result gt 19.2", [3, 5, 1, 4]),
    ("Datastreams(1)/Observations?$orderby=phenomenonTime desc&$top=2&$count=true&$skip=1", [5, 1, 4, 2]),
    ("Datastreams(5)/Observations?$orderby=phenomenonTime desc&$top=2", DS5_DESC),
    ("Datastreams(5)/Observations?$orderby=phenomenonTime desc&$top=1", DS5_DESC),
    ("Datastreams(5)/Observations?$orderby=phenomenonTime&$top=2", DS5_ASC),
    (
        "Datastreams(5)/Observations?$orderby=phenomenonTime desc&$top=2&$filter=result ge 2",
        [16, 18, 14, 19, 17, 20],
    ),
    ("Observations?$filter=Datastream/id eq 5&$orderby=phenomenonTime desc&$top=3", DS5_DESC),
    ("Observations?$orderby=@iot.id desc&$top=8", list(range(21, 0, -1))),
    ("Observations?$top=8", list(range(1, 22))),
    (
        "Observations?$orderby=phenomenonTime desc&$top=4&$filter=Datastream/Thing/id eq 2",
        [9, *DS5_DESC, 10, 8],
    ),
    # orderings without a keyset continue by $skip
    ("Datastreams?$orderby=Observations/phenomenonTime desc&$top=2", [3, 5, 1, 4, 2, 6]),
    ("Things?$orderby=properties/owner desc&$top=1", [4, 2, 3, 1]),
    ("Datastreams(5)/Observations?$orderby=phenomenonTime desc,result&$top=3", [16, 14, 18, 15, 17, 19, 20]),
]


@pytest.mark.parametrize(("path", "expected"), KEYSET_WALKS)
async def test_next_links_walk_every_entity_once_in_order(
    reader: Any, path: str, expected: list[int]
) -> None:
    seen, links = await walk(reader, path)
    assert seen == expected
    top = params(links[0])["$top"] if links else None
    for link in links:
        query = params(link)
        assert query["$top"] == top
        assert int(query["$skip"][0]) >= 1
        if "$filter" in path:
            assert "$filter" in query


async def test_keyset_links_carry_a_skiptoken(reader: Any) -> None:
    body = await get_ok(reader, "Datastreams(5)/Observations?$orderby=phenomenonTime desc&$top=2")
    link = body["@iot.nextLink"]
    assert params(link)["$skiptoken"]
    assert params(link)["$skip"] == ["2"]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: "garbage",
        lambda token: token.rsplit("~", 1)[0] + "~x",
        lambda token: "yesterday~" + token.rsplit("~", 1)[1],
        lambda token: "2021-13-45T99:00:00Z~" + token.rsplit("~", 1)[1],
    ],
    ids=["garbage", "bad-id", "bad-time", "impossible-time"],
)
async def test_tampered_skiptoken_is_400(reader: Any, tamper: Any) -> None:
    path = "Datastreams(1)/Observations?$orderby=phenomenonTime desc&$top=2"
    token = params((await get_ok(reader, path))["@iot.nextLink"])["$skiptoken"][0]
    status, body = await get(reader, f"{path}&$skip=2&$skiptoken={tamper(token)}")
    assert_error(status, body, 400, "$skiptoken")


async def test_tampered_skiptoken_on_the_id_order_is_400(reader: Any) -> None:
    status, body = await get(reader, "Observations?$top=2&$skip=2&$skiptoken=~two")
    assert_error(status, body, 400, "$skiptoken")


async def test_top_zero_with_count_has_a_count_and_no_next_link(reader: Any) -> None:
    body = await get_ok(reader, "Observations?$top=0&$count=true")
    assert body == {"@iot.count": 21, "value": []}
    body = await get_ok(reader, "Observations?$top=0&$count=true&$filter=result gt 300")
    assert body == {"@iot.count": 2, "value": []}


async def test_picker_request(reader: Any) -> None:
    # Grafana pickers: startswith + $count.
    body = await get_ok(reader, "Datastreams?$filter=startswith(name,'Air')&$count=true&$select=id,name")
    assert body == {"@iot.count": 1, "value": [{"@iot.id": 1, "name": "Air temperature at the town hall"}]}


# ---- count_mode and statement_timeout --------------------------------------------------------------

INSERT_OBSERVATIONS = """
INSERT INTO observations
    (phenomenon_time_start, phenomenon_time_end, result, datastream_id, feature_of_interest_id)
SELECT t, t, to_jsonb(n % 1000), 1, 1
FROM generate_series(1, $1::int) AS n,
    LATERAL (SELECT timestamptz '2020-01-01' + n * interval '1 minute') AS x(t)
"""


async def test_count_mode_estimate(pg_dsn: str, tmp_path: Path) -> None:
    async with hub_on_new_database(pg_dsn, tmp_path, count_mode="estimate") as hub:
        await populate(hub)  # Observations 1-2, FeatureOfInterest 1
        dsn = hub.server.app[STATE].settings.database_url
        conn = await asyncpg.connect(dsn)
        try:
            # Observations are partitioned: the statistics live on the partitions.
            partitions = await conn.fetch(
                "SELECT relid::regclass::text FROM pg_partition_tree('observations') WHERE isleaf"
            )
            for (partition,) in partitions:
                await conn.execute(f"ALTER TABLE {partition} SET (autovacuum_enabled = off)")
            # Never analysed: the estimate is unknown, so the count is exact.
            assert (await get_ok(hub, "Observations?$count=true&$top=0"))["@iot.count"] == 2
            await conn.execute(INSERT_OBSERVATIONS, 500)
            await conn.execute("ANALYZE observations")
            await conn.execute(INSERT_OBSERVATIONS, 100)  # not in the statistics
            estimate = await conn.fetchval(
                "SELECT sum(c.reltuples)::bigint FROM pg_partition_tree('observations') t"
                " JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf AND c.reltuples > 0"
            )
        finally:
            await conn.close()
        assert estimate == 502
        body = await get_ok(hub, "Observations?$count=true&$top=1")
        assert body["@iot.count"] == 502
        assert ids_of(body) == [1]
        # A filtered or navigated count stays exact.
        assert (await get_ok(hub, "Observations?$count=true&$top=0&$filter=id gt 0"))["@iot.count"] == 602
        assert (await get_ok(hub, "Datastreams(1)/Observations?$count=true&$top=0"))["@iot.count"] == 602
        assert (await get_ok(hub, "Things?$count=true"))["@iot.count"] == 1


async def test_statement_timeout_answers_503_with_a_message(pg_dsn: str, tmp_path: Path) -> None:
    # 1 ms does not let the hub start (its start-up queries are cut too), so: a small timeout and a
    # filter whose cost grows with the square of the rows (a correlated lambda no index can serve).
    async with hub_on_new_database(pg_dsn, tmp_path, statement_timeout_ms=100) as hub:
        await populate(hub)
        conn = await asyncpg.connect(hub.server.app[STATE].settings.database_url)
        try:
            await conn.execute(INSERT_OBSERVATIONS, 20000)
            await conn.execute("ANALYZE observations")
        finally:
            await conn.close()
        for path in (
            "Observations?$filter=Datastream/Observations/any(o: o/result gt result add 1000000)&$top=1",
            "Observations?$count=true&$filter=Datastream/Observations/any(o: o/result gt result add 1000000)",
        ):
            response = await hub.get(f"{ROOT}/{path}")
            assert response.status == 503, await response.text()
            assert response.content_type == "application/json"
            assert_error(503, await response.json(), 503, "timeout")
        # The connection is not left broken: cheap requests still answer.
        assert await ids(hub, "Things") == [1]
        assert (await get_ok(hub, "Datastreams(1)/Observations?$top=1&$orderby=id"))["value"][0][
            "@iot.id"
        ] == 1


# ---- malformed options -----------------------------------------------------------------------------

ERRORS: list[tuple[str, tuple[str, ...]]] = [
    # $filter: syntax, with the position
    ("Things?$filter=name eq", ("$filter", "position 7")),
    ("Things?$filter=name eq eq 'x'", ("$filter", "'eq'", "position 8")),
    ("Things?$filter=name eq 'x", ("$filter", "position")),
    ("Things?$filter=name eq 'x')", ("$filter", "position 11")),
    ("Things?$filter=(name eq 'x'", ("$filter", "position")),
    ("Things?$filter=name eq 'x' and", ("$filter", "position")),
    ("Things?$filter=Datastreams/any(d d/name eq 'x')", ("$filter", "position")),
    ("Things?$filter=", ("$filter",)),
    # $filter: names, functions, arity, types
    ("Things?$filter=colour eq 'red'", ("$filter", "colour")),
    ("Things?$filter=Datastreams/colour eq 'red'", ("$filter", "colour")),
    ("Things?$filter=foo(name) eq 1", ("$filter", "foo")),
    ("Things?$filter=startswith(name)", ("$filter", "startswith")),
    ("Things?$filter=length(name, name) eq 1", ("$filter", "length")),
    ("Things?$filter=now(1) gt 2021-01-01T00:00:00Z", ("$filter", "now")),
    ("Things?$filter=name gt 2020-01-01T00:00:00Z", ("$filter",)),
    ("Things?$filter=substring(name, 'a') eq 'b'", ("$filter", "substring")),
    ("Things?$filter=year(name) eq 2021", ("$filter", "year")),
    ("Things?$filter=geo.distance(name, geography'POINT(1 2)') lt 1", ("$filter", "geo.distance")),
    ("Things?$filter=name", ("$filter",)),
    ("Things?$filter=id add 'x' eq 1", ("$filter",)),
    # geography literals with bad WKT
    ("Locations?$filter=st_within(location, geography'POLYGON((1 2, 3))')", ("$filter",)),
    ("Locations?$filter=st_within(location, geography'POINT(1)')", ("$filter",)),
    ("Locations?$filter=st_within(location, geography'CIRCLE(1 2, 3)')", ("$filter",)),
    ("Locations?$filter=st_within(location, geography'POLYGON((0 0, 1 0, 1 1, 0 0)')", ("$filter",)),
    ("Locations?$filter=st_within(location, geography'')", ("$filter",)),
    ("Locations?$filter=st_relate(location, geography'POINT(1 2)', 'nonsense')", ("$filter", "st_relate")),
    # $orderby
    ("Things?$orderby=name sideways", ("$orderby", "sideways")),
    ("Things?$orderby=colour", ("$orderby", "colour")),
    ("Things?$orderby=name,", ("$orderby",)),
    ("Things?$orderby=geography'POINT(1 2)'", ("$orderby", "geometry")),
    # $select
    ("Things?$select=name,", ("$select",)),
    ("Things?$select=name eq 'x'", ("$select",)),
    # $expand
    ("Things?$expand=Datastreams(", ("$expand",)),
    ("Things?$expand=Colours", ("$expand", "Colours")),
    ("Things?$expand=Datastreams/Colours", ("Colours",)),
    ("Things?$expand=Datastreams($top=x)", ("$expand", "$top")),
    ("Things?$expand=Datastreams($filter=colour eq 1)", ("colour",)),
    ("Things?$expand=Datastreams($orderby=colour)", ("colour",)),
    ("Things?$expand=Datastreams($resultFormat=CSV)", ("$expand", "$resultFormat")),
    ("Things?$expand=Datastreams($foo=1)", ("$expand", "$foo")),
    ("Things?$expand=Datastreams($top=1;$top=2)", ("$expand", "$top")),
    # $top, $skip, $count, $resultFormat
    ("Things?$top=abc", ("$top", "abc")),
    ("Things?$top=-1", ("$top",)),
    ("Things?$skip=x", ("$skip", "x")),
    ("Things?$skip=1.5", ("$skip",)),
    ("Things?$count=yes", ("$count", "yes")),
    ("Things?$count=", ("$count",)),
    ("Things?$resultFormat=xml", ("$resultFormat", "xml")),
    # DateTimeOffset literals carry an offset (OData ABNF); a local time is not silently read as UTC
    (
        "Observations?$filter=phenomenonTime ge 2026-12-07T13:00:00",
        ("$filter", "'2026-12-07T13:00:00' has no offset", "2026-12-07T13:00:00Z"),
    ),
    ("Observations?$filter=resultTime lt 2026-12-07T13:00", ("$filter", "'2026-12-07T13:00' has no offset")),
    (
        "Observations?$filter=phenomenonTime ge '2026-12-07T13:00:00'",
        ("$filter", "'2026-12-07T13:00:00'", "no offset", "Z"),
    ),
    (
        "Observations?$filter=phenomenonTime lt '2026-12-07T13:00:00Z/2026-12-07T14:00:00'",
        ("$filter", "'2026-12-07T14:00:00'", "no offset"),
    ),
    ("Things?$filter=id eq 1&%24filter=id eq 2", ("$filter",)),
]


@pytest.mark.parametrize(("path", "mentions"), ERRORS)
async def test_malformed_option_is_400(reader: Any, path: str, mentions: tuple[str, ...]) -> None:
    status, body = await get(reader, path)
    assert_error(status, body, 400, *mentions)


async def test_filter_error_position_counts_in_the_decoded_text(reader: Any) -> None:
    status, body = await get_raw(reader, "Things?$filter=name%20eq%20eq%20'x'")
    assert_error(status, body, 400, "$filter", "position 8")
    status, body = await get_raw(reader, "Things?$filter=name+eq+eq+'x'")
    assert_error(status, body, 400, "$filter", "position 8")


async def test_values_of_the_reader_graph(reader: Any) -> None:
    # Guards the premises of the tables above: if the graph differs, fail here first.
    assert await ids(reader, "Things") == [1, 2, 3, 4]
    assert await ids(reader, "Locations") == [1, 2, 3]
    assert await ids(reader, "HistoricalLocations") == [1, 2, 3]
    assert [e["Thing@iot.navigationLink"] for e in await values(reader, "HistoricalLocations")] == [
        url(reader, f"HistoricalLocations({i})/Thing") for i in (1, 2, 3)
    ]
    assert await ids(reader, "HistoricalLocations?$filter=Thing/id eq 3") == [3]
    assert await ids(reader, "Observations") == list(range(1, 22))
    assert await ids(reader, "FeaturesOfInterest") == [1, 2, 3]


async def test_keyset_next_link_when_the_sort_key_is_not_selected(reader: Any) -> None:
    # Masterportal's live fallback with a $select, or any client that wants only the results.
    path = "Datastreams(1)/Observations?$orderby=phenomenonTime desc&$top=2&$select=result"
    status, body = await get(reader, path)
    assert status == 200, body
    assert body["value"] == [{"result": 22.25}, {"result": 21.0}]
    status, rest = await follow(reader, body["@iot.nextLink"])
    assert status == 200, rest
    assert rest["value"] == [{"result": 20.5}, {"result": 19.5}]


# Each query is walked with $top=1 and must give what it gives unpaged: the nextLink prints every
# literal and function back so that it reads the same (strings with &, +, #, %, ;, '' and unicode,
# durations, dates, times, negative numbers, geography, lambdas, in, nested expands).
LINK_ROUND_TRIPS = [
    "Things?$filter=name ne 'a&b+c#d%e;f''g °C' and id le 3",
    "Things?$filter=not (properties/owner eq 'city') or Locations/all(l: l/name eq 'Town hall')",
    "Things?$filter=id in (1, 2, 4)&$orderby=name desc&$select=id,name",
    "Things?$expand=Datastreams($filter=name ne 'x&y';$select=id;$orderby=id desc;$top=1)",
    "Things?$select=id&$expand=Locations($select=name),Datastreams/Observations($top=1;$select=id)",
    "Observations?$filter=phenomenonTime lt now() sub duration'PT25H30M'&$orderby=phenomenonTime desc",
    "Observations?$filter=date(phenomenonTime) eq 2021-05-15 and time(phenomenonTime) ge 10:15:00",
    "Observations?$filter=Datastream/id eq 1 and -result lt -20.4&$orderby=result",
    "Observations?$filter=result mul 2 ge 41 and result div 3 lt 10 and result mod 2 ne 0.1",
    pytest.param(
        f"Locations?$filter=st_intersects(location, geography'{AROUND_ALL}')", marks=pytest.mark.geo
    ),
    pytest.param(
        f"Things?$filter=geo.intersects(Locations/location, geography'{AROUND_ALL}')&$expand=Locations",
        marks=pytest.mark.geo,
    ),
    pytest.param(
        "Locations?$filter=geo.distance(location, geography'POINT(10 53.55)') lt 0.05&$orderby=name",
        marks=pytest.mark.geo,
    ),
    "Datastreams?$filter=Observations/any(o: o/result gt 19.2 and o/phenomenonTime lt 2021-05-16T00:00:00Z)",
    "Datastreams?$filter=unitOfMeasurement/symbol in ('°C', '%')&$orderby=Observations/phenomenonTime desc",
]


def encode(path: str) -> str:
    """`path` with each option value percent-encoded as a browser would (`'`, `:`, `/` left as they are);
    options are separated by `&$`, so values may contain a bare `&`."""
    entity_set, _, query = path.partition("?")
    options = ("$" + option if n else option for n, option in enumerate(query.split("&$")))
    pairs = (option.partition("=") for option in options)
    return entity_set + "?" + "&".join(f"{name}={quote(value, safe=SAFE)}" for name, _, value in pairs)


SAFE = "$()'/,:@;="


@pytest.mark.parametrize("path", LINK_ROUND_TRIPS)
async def test_next_links_reproduce_every_option(reader: Any, path: str) -> None:
    status, whole = await get_raw(reader, encode(path))
    assert status == 200, whole
    assert whole["value"], "the query should match something"
    assert "@iot.nextLink" not in whole
    status, page = await get_raw(reader, encode(f"{path}&$top=1"))
    assert status == 200, page
    pages = [page["value"]]
    while "@iot.nextLink" in page:
        assert len(pages) <= len(whole["value"]), "nextLinks do not end"
        status, page = await follow(reader, page["@iot.nextLink"])
        assert status == 200, page
        pages.append(page["value"])
    assert pages == [[entity] for entity in whole["value"]]


async def test_expand_options_tolerate_spaces(reader: Any) -> None:
    body = await get_ok(reader, "Things(1)?$expand=Datastreams( $select=id ; $orderby=id desc ; $top=1 )")
    assert body["Datastreams"] == [{"@iot.id": 2}]


async def test_expand_count_respects_the_expand_filter(reader: Any) -> None:
    body = await get_ok(
        reader, "Things(1)?$expand=Datastreams($filter=unitOfMeasurement/symbol eq '%';$count=true)"
    )
    assert body["Datastreams@iot.count"] == 1
    assert [d["@iot.id"] for d in body["Datastreams"]] == [2]


async def test_masterportal_latest_value_with_selects(reader: Any) -> None:
    body = await get_ok(
        reader,
        "Things?$select=name&$expand=Locations($select=location),Datastreams($select=name;"
        "$expand=Observations($orderby=phenomenonTime desc;$top=1;$select=result,phenomenonTime))",
    )
    things = {e["name"]: e for e in body["value"]}
    assert things["Traffic counter"]["Locations"] == [{"location": RING_1_FEATURE}]
    streams = {d["name"]: d for e in body["value"] for d in e["Datastreams"]}
    assert streams["Air temperature at the town hall"]["Observations"] == [
        {"result": 22.25, "phenomenonTime": at("10:40")}
    ]
    assert streams["Vehicles per 15 minutes"]["Observations"] == [
        {"result": {"cars": 5, "bikes": 3}, "phenomenonTime": f"{at('10:30')}/{at('10:45')}"}
    ]
    assert streams["Spare channel"]["Observations"] == []
    assert set(streams["Air temperature at the town hall"]) == {
        "name",
        "Observations",
        "Observations@iot.nextLink",
    }


async def test_latest_value_expand_agrees_with_the_plain_query(client: Any) -> None:
    await populate(client)  # Observations 1 (10:00) and 2 (10:10) on Datastream 1
    expand = "Datastreams(1)?$expand=Observations($orderby=phenomenonTime desc;$top=1)"
    plain = "Datastreams(1)/Observations?$orderby=phenomenonTime desc&$top=1"

    async def check(expected: int) -> None:
        nested, direct = await get_ok(client, expand), await get_ok(client, plain)
        assert [o["@iot.id"] for o in nested["Observations"]] == ids_of(direct) == [expected]
        assert ("Observations@iot.nextLink" in nested) == ("@iot.nextLink" in direct)

    await check(2)
    # The newest moves back in time: the one before it takes over.
    status, _, _ = await send(client, "PATCH", "Observations(2)", {"phenomenonTime": at("09:00")})
    assert status == 200
    await check(1)
    # A tie with the newest: the later id wins, as the id tiebreak of `phenomenonTime desc` says.
    assert await create(client, "Observations", observation(3, at("10:00"), Datastream=ref(1))) == 3
    await check(3)


async def test_latest_value_expand_has_a_next_link_when_the_others_share_its_time(client: Any) -> None:
    await populate(client)  # Observations 1 (10:00) and 2 (10:10) on Datastream 1
    assert await create(client, "Observations", observation(3, at("10:00"), Datastream=ref(1))) == 3
    status, _, _ = await send(client, "DELETE", "Observations(2)")
    assert status in (200, 204)
    # Two Observations remain, both at 10:00: the newest is 3, and 1 follows it.
    direct = await get_ok(client, "Datastreams(1)/Observations?$orderby=phenomenonTime desc&$top=1")
    assert ids_of(direct) == [3]
    assert "@iot.nextLink" in direct
    nested = await get_ok(client, "Datastreams(1)?$expand=Observations($orderby=phenomenonTime desc;$top=1)")
    assert [o["@iot.id"] for o in nested["Observations"]] == [3]
    status, rest = await follow(client, nested["Observations@iot.nextLink"])
    assert status == 200, rest
    assert ids_of(rest) == [1]
