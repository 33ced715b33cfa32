# SPDX-License-Identifier: Apache-2.0
"""HEAD wherever GET works (RFC 9110 §9.3.2): the same status and headers, no body (issue 11).

Link checkers, proxies and `curl -I` use HEAD; each kind of resource is asked both ways and the
answers compared header by header.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import deep_thing, observation

ROOT = "/v1.1"

THING = deep_thing("Station", observations=[observation(21.5, "2026-01-01T00:00:00Z")])

# Headers that must agree between GET and HEAD; Date and X-Request-Id differ per request.
VARYING = {"date", "x-request-id"}

RESOURCES = [
    pytest.param("/", id="viewer page"),
    pytest.param("/health", id="health"),
    pytest.param("/ready", id="ready"),
    pytest.param("/metrics", id="metrics"),
    pytest.param("/viewer-config.json", id="viewer config"),
    pytest.param(ROOT, id="service root"),
    pytest.param(f"{ROOT}/api", id="OpenAPI"),
    pytest.param(f"{ROOT}/Things", id="collection"),
    pytest.param(f"{ROOT}/Things?$expand=Datastreams($top=1)&$count=true", id="collection with options"),
    pytest.param(f"{ROOT}/Things(1)", id="entity"),
    pytest.param(f"{ROOT}/Things(1)/Datastreams", id="navigation collection"),
    pytest.param(f"{ROOT}/Datastreams(1)/Thing", id="navigation entity"),
    pytest.param(f"{ROOT}/Things(1)/name", id="property"),
    pytest.param(f"{ROOT}/Things(1)/name/$value", id="$value"),
    pytest.param(f"{ROOT}/Things(1)/Datastreams/$ref", id="$ref collection"),
    pytest.param(f"{ROOT}/Datastreams(1)/Thing/$ref", id="$ref entity"),
    pytest.param(f"{ROOT}/Observations?$resultFormat=dataArray", id="dataArray"),
    pytest.param(f"{ROOT}/Locations?$resultFormat=GeoJSON", id="GeoJSON"),
    pytest.param(f"{ROOT}/Things(99)", id="missing entity (404)"),
    pytest.param(f"{ROOT}/Things?$filter=nonsense eq", id="bad query (400)"),
    pytest.param(f"{ROOT}/CreateObservations", id="action (405)"),
]


@pytest.fixture
async def hub(client: Any) -> Any:
    response = await client.post(f"{ROOT}/Things", json=THING)
    assert response.status == 201, await response.text()
    return client


@pytest.mark.parametrize("target", RESOURCES)
async def test_head_answers_as_get_without_a_body(hub: Any, target: str) -> None:
    get = await hub.get(target, headers={"Accept-Encoding": "identity"})
    get_body = await get.read()
    head = await hub.head(target, headers={"Accept-Encoding": "identity"})
    assert head.status == get.status, target
    assert await head.read() == b""
    differing = {
        name: (get.headers.get(name), head.headers.get(name))
        for name in {n.lower() for n in [*get.headers, *head.headers]}
        if name not in VARYING and get.headers.get(name) != head.headers.get(name)
    }
    if target == "/metrics":  # the request counters move between the two requests
        differing.pop("content-length", None)
    assert differing == {}
    if target != "/metrics":
        assert int(head.headers["Content-Length"]) == len(get_body)


async def test_head_keeps_the_entity_tag_and_revalidates(hub: Any) -> None:
    get = await hub.get(f"{ROOT}/Things(1)")
    etag = get.headers["ETag"]
    head = await hub.head(f"{ROOT}/Things(1)")
    assert head.headers["ETag"] == etag
    again = await hub.head(f"{ROOT}/Things(1)", headers={"If-None-Match": etag})
    assert again.status == 304


async def test_head_is_a_read_for_the_405_allow_list(hub: Any) -> None:
    response = await hub.post(f"{ROOT}/Things(1)", json=THING)
    assert response.status == 405
    assert "HEAD" in {m.strip() for m in response.headers["Allow"].split(",")}
