# SPDX-License-Identifier: Apache-2.0
"""Hostile input: $expand depth, $filter length and terms, and the per-client rate limit."""

from __future__ import annotations

from typing import Any

import pytest
from auth_helpers import BODIES, bearer, hub, send, store_key

from hub.config import Settings
from hub.http.ratelimit import TokenBuckets


@pytest.mark.parametrize(
    ("query", "limit"),
    [
        ("$expand=Datastreams/Observations/FeatureOfInterest", "max_expand_depth"),
        ("$expand=Datastreams($expand=Observations($expand=FeatureOfInterest))", "max_expand_depth"),
        ("$filter=" + " or ".join(f"id eq {i}" for i in range(60)), "max_filter_nodes"),
        (
            "$expand=Datastreams($filter=" + " or ".join(f"id eq {i}" for i in range(60)) + ")",
            "max_filter_nodes",
        ),
        ("$filter=name eq '" + "x" * 2500 + "'", "max_filter_length"),
    ],
    ids=["path depth", "nested depth", "terms", "terms in $expand", "length"],
)
async def test_a_query_over_a_limit_is_400_naming_it(
    clean_db: str, settings: Settings, query: str, limit: str
) -> None:
    limits = {"max_expand_depth": 2, "max_filter_nodes": 100, "max_filter_length": 2000}
    async with hub(settings, **limits) as client:
        status, body = await send(client, "GET", f"Things?{query}")
        assert status == 400, body
        assert limit in body["message"]
        assert f"limit of {limits[limit]}" in body["message"]


async def test_queries_within_the_limits_pass(clean_db: str, settings: Settings) -> None:
    async with hub(settings, max_expand_depth=2, max_filter_nodes=100, max_filter_length=2000) as client:
        for query in (
            "$expand=Datastreams/Observations",
            "$filter=" + " or ".join(f"id eq {i}" for i in range(20)),
        ):
            status, body = await send(client, "GET", f"Things?{query}")
            assert status == 200, (query, body)


async def test_a_batch_get_is_held_to_the_limits(clean_db: str, settings: Settings) -> None:
    part = {"id": "1", "method": "GET", "url": "Things?$expand=Datastreams/Observations/FeatureOfInterest"}
    async with hub(settings, max_expand_depth=2) as client:
        status, body = await send(client, "POST", "$batch", {"requests": [part]})
    assert status == 200, body
    assert body["responses"][0]["status"] == 400
    assert "max_expand_depth" in body["responses"][0]["body"]["message"]


async def test_the_rate_limit_answers_429_with_retry_after(clean_db: str, settings: Settings) -> None:
    async with hub(settings, rate_limit=1, rate_limit_burst=3) as client:
        statuses = [(await client.get("/v1.1/Things")).status for _ in range(3)]
        assert statuses == [200, 200, 200]
        response = await client.get("/v1.1/Things")
        assert response.status == 429
        assert int(response.headers["Retry-After"]) >= 1
        body = await response.json()
        assert body["code"] == 429
        assert "1 per second" in body["message"]
        assert (await client.get("/health")).status == 200  # probes are never limited


async def test_each_key_has_its_own_bucket(clean_db: str, settings: Settings) -> None:
    first = bearer(await store_key(clean_db, ["read"]))
    second = bearer(await store_key(clean_db, ["read"]))
    async with hub(settings, rate_limit=1, rate_limit_burst=2) as client:
        for _ in range(2):
            assert (await send(client, "GET", "Things", None, first))[0] == 200
        assert (await send(client, "GET", "Things", None, first))[0] == 429
        assert (await send(client, "GET", "Things", None, second))[0] == 200
        assert (await send(client, "GET", "Things"))[0] == 200  # anonymous: the address's bucket


async def forwarded(client: Any, address: str) -> int:
    return (await client.get("/v1.1/Things", headers={"X-Forwarded-For": f"{address}, 127.0.0.1"})).status


async def test_x_forwarded_for_counts_only_from_trusted_proxies(clean_db: str, settings: Settings) -> None:
    async with hub(settings, rate_limit=1, rate_limit_burst=1, trusted_proxies=("127.0.0.0/8",)) as client:
        # The test client connects from 127.0.0.1, a trusted proxy: each forwarded client is counted alone.
        assert [await forwarded(client, f"203.0.113.{i}") for i in range(1, 4)] == [200, 200, 200]
        assert await forwarded(client, "203.0.113.1") == 429
    async with hub(settings, rate_limit=1, rate_limit_burst=1) as client:
        # No trusted proxies: the header is the client's word and changes nothing.
        assert [await forwarded(client, f"198.51.100.{i}") for i in range(1, 3)] == [200, 429]


def test_token_buckets_refill_at_the_rate() -> None:
    buckets = TokenBuckets(rate=2, burst=2)
    assert [buckets.take("a", 0.0) for _ in range(2)] == [0.0, 0.0]
    assert buckets.take("a", 0.0) == pytest.approx(0.5)
    assert buckets.take("a", 0.5) == 0.0  # one token back after 1/rate seconds
    assert buckets.take("b", 0.5) == 0.0


def test_token_buckets_forget_full_buckets_when_many() -> None:
    buckets = TokenBuckets(rate=1, burst=1, max_clients=3)
    for index, client in enumerate("abc"):
        buckets.take(client, float(index))
    assert buckets.take("d", 10.0) == 0.0
    assert buckets.take("a", 10.0) == 0.0  # forgotten when full: the same as a new bucket


async def test_writes_with_a_key_count_against_its_bucket(clean_db: str, settings: Settings) -> None:
    key = bearer(await store_key(clean_db, ["create"]))
    async with hub(settings, auth_anonymous_write=False, rate_limit=1, rate_limit_burst=1) as client:
        assert (await send(client, "POST", "Sensors", BODIES["Sensors"], key))[0] == 201
        assert (await send(client, "POST", "Sensors", BODIES["Sensors"], key))[0] == 429
