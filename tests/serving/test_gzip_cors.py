# SPDX-License-Identifier: Apache-2.0
"""gzip for large responses and configurable CORS (issue 7, "HTTP for viewers at scale")."""

from __future__ import annotations

import contextlib
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from hub.app import build_app
from hub.config import Settings
from hub.http.compression import accepts_gzip

ROOT = "/v1.1"
VIEWER = "https://viewer.example"


def thing(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": "a station with a long enough description to make collections large " * 3,
        "Locations": [
            {
                "name": f"{name} place",
                "description": "roof",
                "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [10.0, 53.5]},
            }
        ],
        "Datastreams": [
            {
                "name": f"{name} temperature",
                "description": "air",
                "unitOfMeasurement": {"name": "degree Celsius", "symbol": "Cel", "definition": "ucum:Cel"},
                "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                "Sensor": {"name": "PT100", "description": "t", "encodingType": "text/html", "metadata": "m"},
                "ObservedProperty": {"name": "Temperature", "definition": "qudt:T", "description": "t"},
            }
        ],
    }


@pytest_asyncio.fixture
async def make_hub(clean_db: str, settings: Settings) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Factory of a hub client with settings overrides, holding 20 Things and 40 Observations."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(**overrides: Any) -> Any:
            configured = settings.model_copy(update=overrides)
            client = await stack.enter_async_context(TestClient(TestServer(build_app(configured))))
            for index in range(20):
                assert (await client.post(f"{ROOT}/Things", json=thing(f"Station {index}"))).status == 201
            for minute in range(40):
                body = {"phenomenonTime": f"2026-03-05T10:{minute:02d}:00Z", "result": minute}
                assert (await client.post(f"{ROOT}/Datastreams(1)/Observations", json=body)).status == 201
            return client

        yield make


@pytest_asyncio.fixture
async def hub(make_hub: Callable[..., Awaitable[Any]]) -> Any:
    """A hub with the default settings."""
    return await make_hub()


async def raw_get(client: Any, path: str, encoding: str) -> tuple[Any, bytes]:
    """GET without the client's own decompression, to see what went over the wire."""
    response = await client.get(
        f"{ROOT}/{path}", headers={"Accept-Encoding": encoding}, auto_decompress=False
    )
    assert response.status == 200
    return response.headers, await response.read()


LARGE = (
    ("Things", "application/json"),
    ("Things?$resultFormat=GeoJSON", "application/geo+json"),
    ("Datastreams(1)/Observations?$resultFormat=CSV", "text/csv"),
    ("Datastreams(1)/Observations?$resultFormat=dataArray", "application/json"),
)


@pytest.mark.parametrize(("path", "media_type"), LARGE)
async def test_large_answers_are_gzipped_when_accepted(hub: Any, path: str, media_type: str) -> None:
    headers, body = await raw_get(hub, path, "gzip, deflate")
    assert headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in headers["Vary"]
    assert headers["Content-Type"].startswith(media_type)
    plain = gzip.decompress(body)
    assert len(body) < len(plain)
    identity_headers, identity = await raw_get(hub, path, "identity")
    assert "Content-Encoding" not in identity_headers
    assert identity == plain


async def test_small_answers_are_not_compressed(hub: Any) -> None:
    headers, body = await raw_get(hub, "Things(1)/name", "gzip")
    assert "Content-Encoding" not in headers
    assert json.loads(body) == {"name": "Station 0"}


async def test_gzip_refused_with_q_zero(hub: Any) -> None:
    headers, _ = await raw_get(hub, "Things", "gzip;q=0, identity")
    assert "Content-Encoding" not in headers


async def test_compressed_answers_keep_their_validators(hub: Any) -> None:
    headers, _ = await raw_get(hub, "Things", "gzip")
    response = await hub.get(
        f"{ROOT}/Things", headers={"Accept-Encoding": "identity", "If-None-Match": headers["ETag"]}
    )
    assert response.status == 304


async def test_gzip_off(make_hub: Callable[..., Awaitable[Any]]) -> None:
    hub = await make_hub(gzip_min_bytes=0)
    headers, _ = await raw_get(hub, "Things", "gzip")
    assert "Content-Encoding" not in headers


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("deflate, gzip;q=0.5", True),
        ("GZIP", True),
        ("*", True),
        ("gzip;q=0", False),
        ("*;q=0", False),
        ("identity", False),
        ("", False),
        ("br, *;q=0.1", True),
        ("gzip;q=0, *", False),
        ("gzip;q=bad", False),
    ],
)
def test_accept_encoding(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


# ---- CORS ------------------------------------------------------------------------------------


async def preflight(client: Any, method: str, origin: str = VIEWER) -> Any:
    return await client.options(
        f"{ROOT}/Things",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type, if-none-match",
        },
    )


async def test_cors_off_by_default(hub: Any) -> None:
    response = await hub.get(f"{ROOT}/Things", headers={"Origin": VIEWER})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert (await preflight(hub, "GET")).status == 405


async def test_cors_reads_from_an_allowed_origin(make_hub: Callable[..., Awaitable[Any]]) -> None:
    hub = await make_hub(cors_origins=(VIEWER,))
    response = await hub.get(f"{ROOT}/Things", headers={"Origin": VIEWER})
    assert response.headers["Access-Control-Allow-Origin"] == VIEWER
    exposed = response.headers["Access-Control-Expose-Headers"]
    assert "ETag" in exposed
    assert "Last-Modified" in exposed
    assert "Origin" in response.headers["Vary"]
    answer = await preflight(hub, "GET")
    assert answer.status == 204
    assert answer.headers["Access-Control-Allow-Origin"] == VIEWER
    assert "POST" not in answer.headers["Access-Control-Allow-Methods"]
    assert answer.headers["Access-Control-Allow-Headers"] == "content-type, if-none-match"
    assert answer.headers["Access-Control-Max-Age"] == "600"


async def test_cors_refuses_other_origins_and_writes(make_hub: Callable[..., Awaitable[Any]]) -> None:
    hub = await make_hub(cors_origins=(VIEWER,))
    response = await hub.get(f"{ROOT}/Things", headers={"Origin": "https://elsewhere.example"})
    assert "Access-Control-Allow-Origin" not in response.headers
    answer = await preflight(hub, "GET", "https://elsewhere.example")
    assert answer.status == 403
    assert "origin" in (await answer.json())["message"]
    answer = await preflight(hub, "POST")
    assert answer.status == 403
    assert "cors_allow_writes" in (await answer.json())["message"]


async def test_cors_writes_when_enabled(make_hub: Callable[..., Awaitable[Any]]) -> None:
    hub = await make_hub(cors_origins=(VIEWER,), cors_allow_writes=True)
    answer = await preflight(hub, "PATCH")
    assert answer.status == 204
    for method in ("POST", "PATCH", "PUT", "DELETE"):
        assert method in answer.headers["Access-Control-Allow-Methods"]
    response = await hub.post(f"{ROOT}/Things", json=thing("Cross"), headers={"Origin": VIEWER})
    assert response.status == 201
    assert response.headers["Access-Control-Allow-Origin"] == VIEWER
    assert "Location" in response.headers["Access-Control-Expose-Headers"]


async def test_cors_any_origin(make_hub: Callable[..., Awaitable[Any]]) -> None:
    hub = await make_hub(cors_origins=("*",))
    response = await hub.get(f"{ROOT}/Things(999)", headers={"Origin": "https://any.example"})
    assert response.status == 404
    assert response.headers["Access-Control-Allow-Origin"] == "https://any.example"
