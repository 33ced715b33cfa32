# SPDX-License-Identifier: Apache-2.0
"""$batch needs the union of its requests' roles; closed reads; configured keys; X-API-Key."""

from __future__ import annotations

from typing import Any

from auth_helpers import BODIES, bearer, hub, send, store_key

from hub.auth.keys import generate_key
from hub.config import ConfiguredKey, Settings

SENSOR = BODIES["Sensors"]


def batch(*requests: tuple[str, str, Any]) -> dict[str, Any]:
    parts = []
    for index, (method, url, body) in enumerate(requests):
        part: dict[str, Any] = {"id": str(index), "method": method, "url": url}
        if body is not None:
            part["body"] = body
        parts.append(part)
    return {"requests": parts}


async def sensor_count(client: Any) -> int:
    status, body = await send(client, "GET", "Sensors?$count=true&$top=0")
    assert status == 200
    return int(body["@iot.count"])


async def test_batch_needs_every_role_of_its_requests(clean_db: str, settings: Settings) -> None:
    creator = bearer(await store_key(clean_db, ["create"]))
    both = bearer(await store_key(clean_db, ["create", "delete"]))
    mixed = batch(("POST", "Sensors", SENSOR), ("POST", "Sensors", SENSOR), ("DELETE", "Sensors(1)", None))
    async with hub(settings, auth_anonymous_write=False) as client:
        status, body = await send(client, "POST", "$batch", mixed)
        assert status == 401, body
        status, body = await send(client, "POST", "$batch", mixed, creator)
        assert status == 403, body
        assert "delete" in body["message"]
        assert await sensor_count(client) == 0  # refused before any request ran
        status, body = await send(client, "POST", "$batch", mixed, both)
        assert status == 200, body
        assert [r["status"] for r in body["responses"]] == [201, 201, 200]
        assert await sensor_count(client) == 1


async def test_a_batch_of_reads_is_anonymous_when_reads_are(clean_db: str, settings: Settings) -> None:
    reads = batch(("GET", "Sensors", None), ("GET", "Things", None))
    async with hub(settings, auth_anonymous_write=False) as client:
        status, body = await send(client, "POST", "$batch", reads)
        assert status == 200, body
        assert [r["status"] for r in body["responses"]] == [200, 200]
    async with hub(settings, auth_anonymous_read=False) as client:
        status, body = await send(client, "POST", "$batch", reads)
        assert status == 401, body


async def test_closed_reads_need_the_read_role(clean_db: str, settings: Settings) -> None:
    reader = bearer(await store_key(clean_db, ["read"]))
    creator = bearer(await store_key(clean_db, ["create"]))
    async with hub(settings, auth_anonymous_read=False, auth_anonymous_write=False) as client:
        for path in ("", "Things", "Things(1)/Datastreams"):
            response = await client.get(f"/v1.1/{path}".rstrip("/"))
            assert response.status == 401, path
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="twinhub"'
        status, _ = await send(client, "GET", "Things", None, reader)
        assert status == 200
        status, body = await send(client, "GET", "Things", None, creator)
        assert status == 403
        assert "lacks the role read" in body["message"]
        basic = {"Authorization": "Basic dXNlcjpwYXNz"}  # a proxy's own authentication, passed on
        assert (await send(client, "GET", "Things", None, basic))[0] == 401
        for probe in ("/health", "/ready"):  # probes never ask for credentials
            assert (await client.get(probe)).status == 200


async def test_admin_may_do_everything(clean_db: str, settings: Settings) -> None:
    admin = {"X-API-Key": await store_key(clean_db, ["admin"])}
    async with hub(settings, auth_anonymous_read=False, auth_anonymous_write=False) as client:
        assert (await send(client, "POST", "Sensors", SENSOR, admin))[0] == 201
        assert (await send(client, "PATCH", "Sensors(1)", {"name": "B"}, admin))[0] == 200
        assert (await send(client, "GET", "Sensors(1)", None, admin))[1]["name"] == "B"
        assert (await send(client, "DELETE", "Sensors(1)", None, admin))[0] == 200


async def test_a_key_from_the_configuration(clean_db: str, settings: Settings) -> None:
    new = generate_key()
    configured = {new.key_id: ConfiguredKey(roles=("create",), sha256=new.sha256, name="ops")}
    async with hub(settings, auth_anonymous_write=False, auth_api_keys=configured) as client:
        status, body = await send(client, "POST", "Sensors", SENSOR, bearer(new.key))
        assert status == 201, body
        status, body = await send(client, "DELETE", "Sensors(1)", None, bearer(new.key))
        assert status == 403, body
        assert f"key:{new.key_id}" in body["message"]
        wrong = new.key[:-1] + ("a" if new.key[-1] != "a" else "b")
        status, body = await send(client, "POST", "Sensors", SENSOR, bearer(wrong))
        assert status == 401, body


async def test_another_authorization_scheme_leaves_reads_anonymous(clean_db: str, settings: Settings) -> None:
    async with hub(settings, auth_anonymous_write=False) as client:
        basic = {"Authorization": "Basic dXNlcjpwYXNz"}
        assert (await send(client, "GET", "Things", None, basic))[0] == 200


async def test_a_batch_request_with_an_unknown_method_answers_405_inside(
    clean_db: str, settings: Settings
) -> None:
    async with hub(settings, auth_anonymous_write=False) as client:
        status, body = await send(
            client, "POST", "$batch", batch(("GET", "Things", None), ("BREW", "Things", None))
        )
    assert status == 200, body
    assert [r["status"] for r in body["responses"]] == [200, 405]
