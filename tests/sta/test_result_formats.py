# SPDX-License-Identifier: Apache-2.0
"""$resultFormat=CSV and $resultFormat=GeoJSON on collections (FROST's formats)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from helpers import (
    T0,
    assert_error,
    create,
    get,
    location,
    point,
    populate,
    sensor,
    thing,
    url,
)

POLYGON = {"type": "Polygon", "coordinates": [[[10, 53], [11, 53], [11, 54], [10, 53]]]}


async def fetch(client: Any, path: str) -> tuple[str, str]:
    """GET, asserting 200; (media type, text)."""
    response = await client.get(f"/v1.1/{path}")
    text = await response.text()
    assert response.status == 200, text
    return response.content_type, text


def table(text: str) -> list[list[str]]:
    assert text.endswith("\r\n"), text
    return list(csv.reader(io.StringIO(text)))


# ---- CSV -----------------------------------------------------------------------------------------


async def test_csv_of_things_has_a_header_and_one_row_per_entity(client: Any) -> None:
    await populate(client)
    await create(client, "Things", thing("Second, with comma", [], properties={"a": [1, "x"]}))
    media_type, text = await fetch(client, "Things?$resultFormat=CSV")
    assert media_type == "text/csv"
    assert table(text) == [
        ["@iot.id", "@iot.selfLink", "name", "description", "properties"],
        ["1", url(client, "Things(1)"), "Weather station", "Weather station on the roof", '{"owner":"city"}'],
        [
            "2",
            url(client, "Things(2)"),
            "Second, with comma",
            "Second, with comma on the roof",
            '{"a":[1,"x"]}',
        ],
    ]
    assert '"Second, with comma"' in text


async def test_csv_columns_follow_select_and_nulls_are_empty(client: Any) -> None:
    await populate(client)
    _, text = await fetch(
        client, "Observations?$resultFormat=csv&$select=result,id,resultTime,phenomenonTime"
    )
    assert table(text) == [
        ["result", "@iot.id", "resultTime", "phenomenonTime"],
        ["20.5", "1", "", T0],
        ["21.0", "2", "", "2021-05-15T10:10:00Z"],
    ]


async def test_csv_writes_expanded_entities_as_json(client: Any) -> None:
    await populate(client)
    _, text = await fetch(client, "Datastreams?$resultFormat=CSV&$select=name&$expand=Sensor($select=name)")
    assert table(text) == [["name", "Sensor"], ["Air temperature at the town hall", '{"name":"PT100"}']]


async def test_csv_of_an_empty_collection_is_the_header(client: Any) -> None:
    _, text = await fetch(client, "Sensors?$resultFormat=CSV&$select=id,name")
    assert text == "@iot.id,name\r\n"


# ---- GeoJSON -------------------------------------------------------------------------------------


async def test_geojson_of_locations(client: Any) -> None:
    await populate(client)
    feature = {"type": "Feature", "geometry": POLYGON, "properties": {"district": "Mitte"}}
    await create(client, "Locations", location("District", feature))
    media_type, text = await fetch(client, "Locations?$resultFormat=GeoJSON&$select=id,name")
    assert media_type == "application/geo+json"
    assert json.loads(text) == {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": 1,
                "geometry": point(),
                "properties": {"@iot.id": 1, "name": "Town hall"},
            },
            {
                "type": "Feature",
                "id": 2,
                "geometry": POLYGON,
                "properties": {"@iot.id": 2, "name": "District"},
            },
        ],
    }


async def test_geojson_of_things_takes_their_first_location(client: Any) -> None:
    await populate(client)
    await create(client, "Things", thing("Homeless", []))
    _, text = await fetch(client, "Things?$resultFormat=GeoJSON")
    features = json.loads(text)["features"]
    assert [f["geometry"] for f in features] == [point(), None]
    assert features[0]["properties"]["name"] == "Weather station"
    assert "Locations" not in features[0]["properties"]  # expanded only for the geometry
    _, text = await fetch(client, "Things?$resultFormat=GeoJSON&$expand=Locations($select=name)&$top=1")
    body = json.loads(text)
    assert body["features"][0]["geometry"] is None  # the client's own expand has no location selected
    assert body["features"][0]["properties"]["Locations"] == [{"name": "Town hall"}]


async def test_geojson_of_observations_uses_their_feature_of_interest(client: Any) -> None:
    await populate(client)
    _, text = await fetch(client, "Observations?$resultFormat=GeoJSON&$select=result")
    body = json.loads(text)
    assert [(f["geometry"], f["properties"]) for f in body["features"]] == [
        (point(), {"result": 20.5}),
        (point(), {"result": 21.0}),
    ]


async def test_geojson_of_entities_without_geometry(client: Any) -> None:
    await populate(client)
    await create(client, "Sensors", sensor("Second"))
    _, text = await fetch(client, "Sensors?$resultFormat=GeoJSON&$select=name")
    assert json.loads(text)["features"] == [
        {"type": "Feature", "geometry": None, "properties": {"name": "PT100"}},
        {"type": "Feature", "geometry": None, "properties": {"name": "Second"}},
    ]


@pytest.mark.parametrize(
    "path",
    [
        "Things(1)?$resultFormat=CSV",
        "Things(1)/name?$resultFormat=GeoJSON",
        "Things/$ref?$resultFormat=CSV",
    ],
)
async def test_result_format_needs_a_collection(client: Any, path: str) -> None:
    await populate(client)
    status, body = await get(client, path)
    assert_error(status, body, 400, "collections")


async def test_unknown_result_format_is_400(client: Any) -> None:
    status, body = await get(client, "Things?$resultFormat=XML")
    assert_error(status, body, 400, "$resultFormat")


# ---- paging: no silent truncation ----------------------------------------------------------------


def next_of(response: Any) -> str | None:
    """The target of a `Link: <…>; rel="next"` header (RFC 8288), if any."""
    header = response.headers.get("Link")
    if header is None:
        return None
    target, _, params = header.partition(";")
    assert params.strip() == 'rel="next"', header
    assert target.startswith("<"), header
    assert target.endswith(">"), header
    return str(target[1:-1])


async def observations_at(client: Any, how_many: int) -> list[int]:
    """`how_many` Observations on Datastream 1 (after populate's two), one minute apart; their ids."""
    rows = [[f"2021-05-16T{n // 60:02d}:{n % 60:02d}:00Z", n] for n in range(how_many)]
    body = [{"Datastream": {"@iot.id": 1}, "components": ["phenomenonTime", "result"], "dataArray": rows}]
    response = await client.post("/v1.1/CreateObservations", json=body)
    assert response.status == 201, await response.text()
    links = await response.json()
    return [int(link.rsplit("(", 1)[1].rstrip(")")) for link in links]


@pytest.mark.parametrize(
    "query",
    [
        "Observations?$resultFormat=CSV",  # default $top, order by id
        "Observations?$resultFormat=CSV&$top=7&$orderby=phenomenonTime desc",  # keyset continuation
        "Datastreams(1)/Observations?$resultFormat=CSV&$top=9&$select=id,result&$orderby=result",
    ],
)
async def test_csv_pages_continue_through_a_link_header_to_every_row_once(client: Any, query: str) -> None:
    """A CSV export is never cut short in silence: every page but the last names the next one in
    a `Link: <…>; rel="next"` header, and following them yields every row exactly once."""
    await populate(client)
    expected = [1, 2, *await observations_at(client, 230)]
    seen: list[int] = []
    link: str | None = url(client, query)
    pages = 0
    while link is not None:
        response = await client.session.get(link)
        assert response.status == 200
        assert response.content_type == "text/csv"
        header, *rows = table(await response.text())
        seen.extend(int(row[header.index("@iot.id")]) for row in rows)
        link = next_of(response)
        pages += 1
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen)) == 232
    assert pages > 1


async def test_geojson_pages_carry_a_next_link_member_and_header(client: Any) -> None:
    await populate(client)
    expected = [1, 2, *await observations_at(client, 120)]
    seen: list[int] = []
    link: str | None = url(client, "Observations?$resultFormat=GeoJSON&$count=true&$top=50")
    while link is not None:
        response = await client.session.get(link)
        assert response.status == 200
        collection = json.loads(await response.text())
        assert collection["type"] == "FeatureCollection"
        assert collection["@iot.count"] == 122
        seen.extend(feature["id"] for feature in collection["features"])
        assert collection.get("@iot.nextLink") == next_of(response)
        link = collection.get("@iot.nextLink")
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen))


async def test_last_page_has_no_next_link(client: Any) -> None:
    await populate(client)
    response = await client.get("/v1.1/Things?$resultFormat=CSV")
    assert response.status == 200
    assert "Link" not in response.headers
    response = await client.get("/v1.1/Things?$resultFormat=GeoJSON")
    assert "@iot.nextLink" not in json.loads(await response.text())
