# SPDX-License-Identifier: Apache-2.0
"""Every write path of the model refuses missing, wrong and insufficient credentials and accepts
the right ones (issue 7, Security). The paths are generated from schemas/model.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from auth_helpers import (
    bearer,
    hub,
    hub_on_own_database,
    own_database,
    populate,
    request_id,
    reset_entities,
    send,
    store_key,
    write_requests,
)

from hub.auth.roles import ROLES, Role, role_for
from hub.config import Settings
from schemas.model import ALL_TYPES, ENTITY_SETS

WRITES = write_requests()
# Credentials that must be refused with 401, whatever the path.
WRONG = {
    "unknown key": bearer("thk_0123456789_" + "x" * 43),
    "malformed key": bearer("thk_nonsense"),
    "a JWT, but no JWKS configured": bearer("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"),
    "bearer without a credential": {"Authorization": "Bearer "},
    "empty X-API-Key": {"X-API-Key": " "},
}
COUNTED = (
    "Things", "Locations", "HistoricalLocations", "Sensors", "ObservedProperties", "Datastreams",
    "MultiDatastreams", "Observations", "FeaturesOfInterest",
)  # fmt: skip


@dataclass
class Refusing:
    """A populated hub with default auth settings, and keys holding every role but one."""

    client: Any
    all_but: dict[Role, str]
    tampered: str
    counts: dict[str, int]


async def table_counts(client: Any) -> dict[str, int]:
    counts = {}
    for set_name in COUNTED:
        status, body = await send(client, "GET", f"{set_name}?$count=true&$top=0")
        assert status == 200, body
        counts[set_name] = body["@iot.count"]
    return counts


@pytest.fixture(scope="module")
async def refusing(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Refusing]:
    data_dir = tmp_path_factory.mktemp("refusing")
    async with hub_on_own_database(pg_dsn, data_dir, auth_anonymous_write=False) as (dsn, client):
        await populate(client, bearer(await store_key(dsn, ["admin"])))
        all_but = {
            role: await store_key(dsn, [other for other in ROLES if other not in (role, "admin")])
            for role in ROLES
        }
        key = await store_key(dsn, ["admin"])
        tampered = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
        yield Refusing(client, all_but, tampered, await table_counts(client))


def test_the_generated_paths_cover_the_model() -> None:
    assert {method for method, _, _ in WRITES} == {"POST", "PATCH", "PUT", "DELETE"}
    assert len([path for _, path, _ in WRITES if path.endswith("/$ref")]) > 20
    assert len(WRITES) > 100


@pytest.mark.parametrize("request_", WRITES, ids=request_id)
async def test_write_refuses_missing_wrong_and_insufficient_credentials(
    refusing: Refusing, request_: tuple[str, str, Any]
) -> None:
    method, path, body = request_
    client = refusing.client
    response = await client.request(method, f"/v1.1/{path}", json=body)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="twinhub"'
    payload = await response.json()
    assert payload["code"] == 401
    assert "credentials are needed" in payload["message"]

    for name, headers in WRONG.items():
        status, payload = await send(client, method, path, body, headers)
        assert status == 401, (name, payload)
        assert payload["code"] == 401, name
    response = await client.request(method, f"/v1.1/{path}", json=body, headers=bearer(refusing.tampered))
    assert response.status == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert "unknown, revoked or wrong" in (await response.json())["message"]

    # Another scheme (a proxy's Basic authentication) is not the hub's: as good as no credentials.
    status, payload = await send(client, method, path, body, {"Authorization": "Basic dXNlcjpwYXNz"})
    assert status == 401, payload
    assert "credentials are needed" in payload["message"]

    needed = role_for(method)
    status, payload = await send(client, method, path, body, {"X-API-Key": refusing.all_but[needed]})
    assert status == 403, payload
    assert payload["code"] == 403
    assert f"lacks the role {needed}" in payload["message"]
    assert await table_counts(client) == refusing.counts


# Rounds of writes, each on a freshly populated database: the creates, updates and links together
# (they leave the graph in place), then every delete alone (deletes cascade).
ROUNDS = [[r for r in WRITES if r[0] != "DELETE"]] + [[r] for r in WRITES if r[0] == "DELETE"]
SEQUENCE = [request for round_ in ROUNDS for request in round_]


async def run_rounds(
    clean_db: str, settings: Settings, open_writes: bool
) -> list[tuple[int, dict[str, int]]]:
    """Every write of ROUNDS: with exactly the needed role's key on a secured hub, or without
    credentials on a hub where anyone may write; each answer's status and the counts after it."""
    outcomes = []
    role_keys = {role: bearer(await store_key(clean_db, [role])) for role in ROLES}
    conn = await asyncpg.connect(clean_db)
    try:
        async with hub(settings, auth_anonymous_write=open_writes) as client:
            for round_ in ROUNDS:
                await reset_entities(conn)
                await populate(client, role_keys["admin"])
                for method, path, body in round_:
                    headers = {} if open_writes else role_keys[role_for(method)]
                    status, _ = await send(client, method, path, body, headers)
                    outcomes.append((status, await row_counts(conn)))
    finally:
        await conn.close()
    return outcomes


async def row_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """Rows per entity table, in one query."""
    tables = [(set_name, ENTITY_SETS[set_name].table) for set_name in COUNTED]
    sql = "SELECT " + ", ".join(f'(SELECT count(*) FROM {table}) AS "{name}"' for name, table in tables)
    return dict(await conn.fetchrow(sql))


Outcomes = list[tuple[int, dict[str, int]]]


@pytest.fixture(scope="module")
async def sequences(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Outcomes, Outcomes]:
    """SEQUENCE run with role keys on a secured hub, and without credentials on an open one."""
    async with own_database(pg_dsn) as dsn:
        settings = Settings(database_url=dsn, data_dir=tmp_path_factory.mktemp("seq"), migrate_on_start=False)
        return await run_rounds(dsn, settings, False), await run_rounds(dsn, settings, True)


def test_most_writes_of_the_sequence_succeed(sequences: tuple[Outcomes, Outcomes]) -> None:
    """The comparison below means something only if the writes mostly do something; every write on
    an entity set or an entity of each type succeeds with its role."""
    statuses = {
        request_id(request): status for request, (status, _) in zip(SEQUENCE, sequences[0], strict=True)
    }
    assert sum(200 <= status < 300 for status in statuses.values()) >= 2 / 3 * len(statuses), statuses
    for entity_type in ALL_TYPES:
        for method, path in (("POST", "{}"), ("PATCH", "{}(1)"), ("PUT", "{}(1)"), ("DELETE", "{}(1)")):
            name = f"{method} {path.format(entity_type.set_name)}"
            assert statuses[name] in (200, 201), (name, statuses[name])


@pytest.mark.parametrize("index", range(len(SEQUENCE)), ids=[request_id(r) for r in SEQUENCE])
def test_write_with_its_role_does_what_an_open_hub_does(
    sequences: tuple[Outcomes, Outcomes], index: int
) -> None:
    """With exactly the needed role, each write gets the answer (and leaves the data) that it gets
    from a hub where anyone may write: authorisation changes nothing else."""
    secured, open_ = sequences[0][index], sequences[1][index]
    assert secured == open_
    assert secured[0] not in (401, 403, 500)
