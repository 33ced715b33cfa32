# SPDX-License-Identifier: Apache-2.0
"""Builders of valid STA entity bodies and small HTTP helpers for the integration tests (tests/sta and
the other suites that speak STA over HTTP).

Every builder returns a fresh dict that the hub accepts as-is; keyword arguments
override or add members. `populate` creates the standard graph most tests start
from (ids restart at 1 in every test, so the ids below are known).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dbutil import migrated_database

from hub.config import Settings

Json = dict[str, Any]

ROOT = "/v1.1"
GEOJSON = "application/geo+json"
OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
OM_COMPLEX = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_ComplexObservation"
CELSIUS: Json = {
    "name": "degree Celsius",
    "symbol": "°C",
    "definition": "http://unitsofmeasure.org/ucum.html#para-30",
}
PERCENT: Json = {
    "name": "percent",
    "symbol": "%",
    "definition": "http://unitsofmeasure.org/ucum.html#para-29",
}
T0 = "2021-05-15T10:00:00Z"

# Every entity set of the core and the MultiDatastream extension, in the order of the service root.
ENTITY_SETS = (
    "Things",
    "Locations",
    "HistoricalLocations",
    "Datastreams",
    "MultiDatastreams",
    "Sensors",
    "ObservedProperties",
    "Observations",
    "FeaturesOfInterest",
)


def ref(entity_id: int) -> Json:
    """A link to an existing entity."""
    return {"@iot.id": entity_id}


def point(lon: float = 10.0, lat: float = 53.55) -> Json:
    """A GeoJSON Point geometry."""
    return {"type": "Point", "coordinates": [lon, lat]}


def location(name: str = "Town hall", geometry: Json | None = None, **extra: Any) -> Json:
    """A Location body."""
    return {
        "name": name,
        "description": f"{name}, where the sensors are",
        "encodingType": GEOJSON,
        "location": geometry if geometry is not None else point(),
        **extra,
    }


def thing(name: str = "Weather station", locations: list[Json] | None = None, **extra: Any) -> Json:
    """A Thing body with one new Location (pass locations=[] for none)."""
    body: Json = {"name": name, "description": f"{name} on the roof", "properties": {"owner": "city"}}
    body["Locations"] = [location()] if locations is None else locations
    if not body["Locations"]:
        del body["Locations"]
    body.update(extra)
    return body


def sensor(name: str = "PT100", **extra: Any) -> Json:
    """A Sensor body."""
    return {
        "name": name,
        "description": f"{name} thermometer",
        "encodingType": "application/pdf",
        "metadata": "https://example.org/datasheets/pt100.pdf",
        **extra,
    }


def observed_property(name: str = "Air temperature", **extra: Any) -> Json:
    """An ObservedProperty body."""
    slug = name.lower().replace(" ", "_")
    return {
        "name": name,
        "definition": f"http://vocab.example.org/{slug}",
        "description": f"The {name.lower()}",
        **extra,
    }


def datastream(
    name: str = "Air temperature at the town hall",
    thing_id: int | None = 1,
    sensor_id: int | None = 1,
    observed_property_id: int | None = 1,
    **extra: Any,
) -> Json:
    """A Datastream body linked by id (None leaves a link out, e.g. for a nested insert); `extra`
    adds or overrides members, e.g. Sensor=sensor() for a new Sensor."""
    body: Json = {
        "name": name,
        "description": f"{name}, every 10 minutes",
        "unitOfMeasurement": CELSIUS,
        "observationType": OM_MEASUREMENT,
    }
    links = (("Thing", thing_id), ("Sensor", sensor_id), ("ObservedProperty", observed_property_id))
    for nav, entity_id in links:
        if entity_id is not None:
            body[nav] = ref(entity_id)
    body.update(extra)
    return body


def multi_datastream(
    name: str = "Weather at the town hall",
    thing_id: int | None = 1,
    sensor_id: int | None = 1,
    observed_property_ids: tuple[int, ...] = (1, 2),
    **extra: Any,
) -> Json:
    """A MultiDatastream body with two ObservedProperties (default: ObservedProperties 1 and 2)."""
    body: Json = {
        "name": name,
        "description": f"{name}: temperature and humidity",
        "unitOfMeasurements": [CELSIUS, PERCENT],
        "observationType": OM_COMPLEX,
        "multiObservationDataTypes": [OM_MEASUREMENT, OM_MEASUREMENT],
        "ObservedProperties": [ref(i) for i in observed_property_ids],
    }
    for nav, entity_id in (("Thing", thing_id), ("Sensor", sensor_id)):
        if entity_id is not None:
            body[nav] = ref(entity_id)
    body.update(extra)
    return body


def deep_thing(name: str = "Weather station", observations: list[Json] | None = None) -> Json:
    """A Thing with a new Location and a new Datastream (with a new Sensor and ObservedProperty) in one
    deep insert; `observations` are created in the Datastream too."""
    stream = datastream(
        thing_id=None,
        sensor_id=None,
        observed_property_id=None,
        Sensor=sensor(),
        ObservedProperty=observed_property(),
    )
    if observations is not None:
        stream["Observations"] = observations
    return thing(name, Datastreams=[stream])


def feature_of_interest(name: str = "Market square", geometry: Json | None = None, **extra: Any) -> Json:
    """A FeatureOfInterest body."""
    return {
        "name": name,
        "description": f"The air above the {name.lower()}",
        "encodingType": GEOJSON,
        "feature": geometry if geometry is not None else point(10.01, 53.56),
        **extra,
    }


def observation(result: Any = 21.5, phenomenon_time: str | None = T0, **links: Any) -> Json:
    """An Observation body; pass Datastream=ref(1), MultiDatastream=..., FeatureOfInterest=... as needed."""
    body: Json = {"result": result}
    if phenomenon_time is not None:
        body["phenomenonTime"] = phenomenon_time
    body.update(links)
    return body


# ---- HTTP ---------------------------------------------------------------------------------------


def url(client: Any, path: str, root: str = ROOT) -> str:
    """The absolute URL the hub should print for `path` below the service root."""
    return str(client.make_url(f"{root}/{path}" if path else root))


async def post(
    client: Any, path: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any, str | None]:
    """POST JSON to `path` below /v1.1; returns (status, decoded body or None, Location header)."""
    return await send(client, "POST", path, body, headers)


async def send(
    client: Any,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> tuple[int, Any, str | None]:
    """Send `body` as JSON with `method`; returns (status, decoded body or None, Location header)."""
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": content_type} if data is not None else {}
    all_headers.update(headers or {})
    response = await client.request(method, f"{ROOT}/{path}", data=data, headers=all_headers)
    text = await response.text()
    payload = json.loads(text) if text.strip() else None
    return response.status, payload, response.headers.get("Location")


async def get(client: Any, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """GET `path` below /v1.1 (query string included); returns (status, decoded JSON body)."""
    response = await client.get(f"{ROOT}/{path}", headers=headers or {})
    return response.status, json.loads(await response.text())


async def get_ok(client: Any, path: str) -> Any:
    """GET `path`, asserting 200; the decoded body."""
    status, body = await get(client, path)
    assert status == 200, (path, status, body)
    return body


async def follow(client: Any, link: str) -> tuple[int, Any]:
    """GET an absolute link exactly as the hub gave it, after checking it points at the hub."""
    parts = urlsplit(link)
    server = urlsplit(str(client.make_url("/")))
    assert (parts.scheme, parts.netloc) == (server.scheme, server.netloc), link
    response = await client.session.get(link)
    return response.status, json.loads(await response.text())


async def create(client: Any, path: str, body: Json) -> int:
    """POST `body`, asserting 201; the new entity's id."""
    status, payload, _ = await post(client, path, body)
    assert status == 201, (path, status, payload)
    entity_id = payload["@iot.id"]
    assert isinstance(entity_id, int)
    return entity_id


async def values(client: Any, path: str) -> list[Json]:
    """The `value` array of a collection GET (asserting 200)."""
    body = await get_ok(client, path)
    return list(body["value"])


async def ids(client: Any, path: str) -> list[int]:
    """The @iot.ids of a collection GET (asserting 200)."""
    return [entity["@iot.id"] for entity in await values(client, path)]


async def count(client: Any, path: str) -> int:
    """@iot.count of a collection."""
    separator = "&" if "?" in path else "?"
    body = await get_ok(client, f"{path}{separator}$count=true&$top=0")
    return int(body["@iot.count"])


def assert_error(status: int, body: Any, expected: int, *mentions: str) -> None:
    """An error answer: the status, a JSON body with that code, and a message naming what is wrong."""
    assert status == expected, (status, body)
    assert isinstance(body, dict), body
    assert body.get("code") == expected, body
    message = body.get("message")
    assert isinstance(message, str), body
    assert message.strip(), body
    for mention in mentions:
        assert mention.lower() in message.lower(), (mention, message)


@dataclass(frozen=True)
class Graph:
    """Ids of the standard graph made by `populate` (all 1 unless stated)."""

    thing: int = 1
    location: int = 1
    historical_location: int = 1
    sensor: int = 1
    observed_properties: tuple[int, int] = (1, 2)
    datastream: int = 1
    multi_datastream: int = 1
    observations: tuple[int, int] = (1, 2)  # both in Datastream 1
    feature_of_interest: int = 1


async def populate(client: Any) -> Graph:
    """Thing 1 at Location 1 (-> HistoricalLocation 1), Sensor 1, ObservedProperties 1-2, Datastream 1,
    MultiDatastream 1 (no Observations), Observations 1-2 on the Datastream; FeatureOfInterest 1 is
    generated from Location 1."""
    assert await create(client, "Things", thing()) == 1
    assert await create(client, "Sensors", sensor()) == 1
    assert await create(client, "ObservedProperties", observed_property()) == 1
    assert await create(client, "ObservedProperties", observed_property("Relative humidity")) == 2
    assert await create(client, "Datastreams", datastream()) == 1
    assert await create(client, "MultiDatastreams", multi_datastream()) == 1
    assert await create(client, "Observations", observation(20.5, T0, Datastream=ref(1))) == 1
    second = observation(21.0, "2021-05-15T10:10:00Z", Datastream=ref(1))
    assert await create(client, "Observations", second) == 2
    return Graph()


@contextlib.asynccontextmanager
async def hub_on_new_database(pg_dsn: str, data_dir: Path, **overrides: Any) -> AsyncIterator[Any]:
    """A TestClient of a hub on a database of its own (migrated, dropped afterwards), for module-scoped
    fixtures whose tests only read, so they do not pay for emptying the tables each time."""
    from aiohttp.test_utils import TestClient, TestServer

    from hub.app import build_app

    async with migrated_database(pg_dsn, "twinhub_shared") as dsn:
        values = {"auth_anonymous_write": True, **overrides}  # the fixtures fill the database over HTTP
        settings = Settings(database_url=dsn, data_dir=data_dir, migrate_on_start=False, **values)
        async with TestClient(TestServer(build_app(settings))) as test_client:
            yield test_client
