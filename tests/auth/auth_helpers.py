# SPDX-License-Identifier: Apache-2.0
"""What the auth tests share: every write path of the model, sample bodies, keys per role."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from dbutil import migrated_database

from hub.app import build_app
from hub.auth.keys import generate_key
from hub.config import Settings
from hub.store.api_keys import insert_key
from schemas.model import ALL_TYPES, EntityType

Json = dict[str, Any]
T0 = "2026-03-05T10:14:00Z"
POINT = {"type": "Point", "coordinates": [9.99, 53.55]}
CELSIUS = {
    "name": "degree Celsius",
    "symbol": "Cel",
    "definition": "http://unitsofmeasure.org/ucum.html#para-30",
}
MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
COMPLEX = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_ComplexObservation"

GEO = "application/geo+json"
ONE = {"@iot.id": 1}

# A valid create (and PUT) body per entity set, linked to the entities of `populate` (ids 1).
BODIES: dict[str, Json] = {
    "Things": {"name": "Station", "description": "on the roof", "Locations": [ONE]},
    "Locations": {"name": "Roof", "description": "the roof", "encodingType": GEO, "location": POINT},
    "HistoricalLocations": {"time": T0, "Thing": ONE, "Locations": [ONE]},
    "Sensors": {"name": "PT100", "description": "thermometer", "encodingType": "text/html", "metadata": "m"},
    "ObservedProperties": {"name": "Air temperature", "definition": "http://x.org/t", "description": "a"},
    "Datastreams": {
        "name": "T", "description": "air", "unitOfMeasurement": CELSIUS, "observationType": MEASUREMENT,
        "Thing": ONE, "Sensor": ONE, "ObservedProperty": ONE,
    },
    "MultiDatastreams": {
        "name": "M", "description": "two values", "unitOfMeasurements": [CELSIUS, CELSIUS],
        "observationType": COMPLEX, "multiObservationDataTypes": [MEASUREMENT, MEASUREMENT],
        "Thing": ONE, "Sensor": ONE, "ObservedProperties": [ONE, {"@iot.id": 2}],
    },
    "Observations": {"phenomenonTime": T0, "result": 21.5, "Datastream": ONE},
    "FeaturesOfInterest": {"name": "Roof", "description": "air", "encodingType": GEO, "feature": POINT},
}  # fmt: skip

# Creation order of `populate`: each set once (ObservedProperties twice), all ids 1.
POPULATE = ("Locations", "Things", "Sensors", "ObservedProperties", "ObservedProperties", "Datastreams",
            "MultiDatastreams", "FeaturesOfInterest", "Observations", "HistoricalLocations")  # fmt: skip


def write_requests() -> list[tuple[str, str, Any]]:
    """(method, path, body) of every write the model allows: on each entity set and entity, through
    each navigation property, and on each $ref; plus CreateObservations and a $batch."""
    requests: list[tuple[str, str, Any]] = []
    for entity_type in ALL_TYPES:
        own = f"{entity_type.set_name}(1)"
        body = BODIES[entity_type.set_name]
        update = _update_body(entity_type)
        requests += [("POST", entity_type.set_name, body), ("PATCH", own, update), ("PUT", own, update)]
        requests.append(("DELETE", own, None))
        for nav in entity_type.navigation:
            requests += _navigation_requests(entity_type, own, nav.name, nav.target, nav.many)
    create = [
        {"Datastream": {"@iot.id": 1}, "components": ["phenomenonTime", "result"], "dataArray": [[T0, 1]]}
    ]
    requests.append(("POST", "CreateObservations", create))
    return requests


def _update_body(entity_type: EntityType, leave_out: str | None = None) -> Json:
    """The create body without its to-many links (some, such as a MultiDatastream's
    ObservedProperties, are fixed at creation) and without `leave_out`."""
    many = {nav.name for nav in entity_type.navigation if nav.many}
    return {k: v for k, v in BODIES[entity_type.set_name].items() if k not in many and k != leave_out}


def _navigation_requests(
    source: EntityType, own: str, nav: str, target: EntityType, many: bool
) -> list[tuple[str, str, Any]]:
    back = source.inverse(source.navigation_by_name[nav])
    back_name = None if back is None else back.name
    body = {k: v for k, v in BODIES[target.set_name].items() if k != back_name}
    update = _update_body(target, back_name)
    link = {"@iot.id": 1}
    if not many:
        return [("PATCH", f"{own}/{nav}", update), ("PUT", f"{own}/{nav}/$ref", link),
                ("DELETE", f"{own}/{nav}/$ref", None)]  # fmt: skip
    member = f"{own}/{nav}(1)"
    return [
        ("POST", f"{own}/{nav}", body),
        ("PATCH", member, update),
        ("PUT", member, update),
        ("DELETE", member, None),
        ("POST", f"{own}/{nav}/$ref", link),
        ("DELETE", f"{member}/$ref", None),
    ]


def request_id(request: tuple[str, str, Any]) -> str:
    """A readable test id: `POST Things(1)/Locations/$ref`."""
    return f"{request[0]} {request[1]}"


async def populate(client: TestClient[Any, Any], headers: dict[str, str]) -> None:
    """One entity of each type (two ObservedProperties), all linked; every id is 1 (2 for the second)."""
    for set_name in POPULATE:
        status, body = await send(client, "POST", set_name, BODIES[set_name], headers)
        assert status == 201, (set_name, status, body)


async def send(
    client: TestClient[Any, Any],
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request below /v1.1; (status, decoded JSON or None)."""
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json"} if data is not None else {}
    all_headers.update(headers or {})
    response = await client.request(method, f"/v1.1/{path}", data=data, headers=all_headers)
    text = await response.text()
    return response.status, json.loads(text) if text.strip() else None


async def store_key(dsn: str, roles: Iterable[str], name: str = "test") -> str:
    """A new API key with `roles` in the database at `dsn`; the key."""
    new = generate_key()
    conn = await asyncpg.connect(dsn)
    try:
        await insert_key(conn, new.key_id, name, roles, new.sha256)
    finally:
        await conn.close()
    return new.key


def bearer(key: str) -> dict[str, str]:
    """The Authorization header carrying `key`."""
    return {"Authorization": f"Bearer {key}"}


@contextlib.asynccontextmanager
async def hub(settings: Settings, **changes: Any) -> AsyncIterator[TestClient[Any, Any]]:
    """A test client of a hub with `changes` to the settings."""
    async with TestClient(TestServer(build_app(settings.model_copy(update=changes)))) as client:
        yield client


@contextlib.asynccontextmanager
async def own_database(pg_dsn: str) -> AsyncIterator[str]:
    """A migrated database of its own, dropped afterwards."""
    async with migrated_database(pg_dsn, "twinhub_auth") as dsn:
        yield dsn


@contextlib.asynccontextmanager
async def hub_on_own_database(pg_dsn: str, data_dir: Path, **changes: Any) -> AsyncIterator[tuple[str, Any]]:
    """(dsn, test client) of a hub on a database of its own: for module fixtures."""
    async with own_database(pg_dsn) as dsn:
        settings = Settings(database_url=dsn, data_dir=data_dir, migrate_on_start=False)
        async with hub(settings, **changes) as client:
            yield dsn, client


_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname NOT IN ('twinhub_migrations', 'api_keys')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
"""


async def reset_entities(conn: asyncpg.Connection) -> None:
    """Delete every entity and restart the ids at 1, keeping the keys; much quicker than TRUNCATE on
    tables this small. Foreign-key triggers are off meanwhile (superuser), since everything goes."""
    tables = [row[0] for row in await conn.fetch(_TABLES)]
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("".join(f"DELETE FROM {table};" for table in tables))
        await conn.execute(
            "SELECT setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'S' AND n.nspname = 'public'"
        )
