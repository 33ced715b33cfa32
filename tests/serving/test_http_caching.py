# SPDX-License-Identifier: Apache-2.0
"""ETag, Last-Modified and 304 on entity and collection reads (RFC 9110 §13; issue 7).

A client's copy must never be confirmed (304) after a change, however the change arrived:
over HTTP, by a write on another connection (another replica, the ingest's provisioning) or
by the ingest's batched Observation insert.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from helpers import deep_thing

from hub.app import build_app
from hub.config import Settings
from hub.http.caching import etag_matches
from hub.store.observations import ObservationRow, insert_observations

ROOT = "/v1.1"


async def settle_clock(dsn: str) -> None:
    """Put the change clock a minute in the past, as it is between bursts of writes.

    Writes in the same second push the clock ahead of real time, and then Last-Modified is left
    out (it may not be later than Date); the tests want to see it.
    """
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "UPDATE twinhub_clock SET modified_at = date_trunc('second', now()) - interval '1 minute'"
        )
    finally:
        await conn.close()


@pytest_asyncio.fixture
async def seeded(client: Any, clean_db: str) -> AsyncIterator[Any]:
    """A hub with one Thing (Location, Datastream, Sensor, ObservedProperty) and one Observation."""
    response = await client.post(f"{ROOT}/Things", json=deep_thing("Station"))
    assert response.status == 201
    response = await client.post(f"{ROOT}/Datastreams(1)/Observations", json={"result": 1.5})
    assert response.status == 201
    await settle_clock(clean_db)
    yield client


async def fetch(client: Any, path: str, **headers: str) -> tuple[int, Any, bytes]:
    response = await client.get(f"{ROOT}/{path}", headers=headers)
    return response.status, response.headers, await response.read()


async def patch_thing(client: Any, name: str) -> None:
    response = await client.patch(f"{ROOT}/Things(1)", json={"name": name})
    assert response.status == 200


METADATA_PATHS = ("Things(1)", "Things", "Things(1)/Locations", "Locations?$expand=Things", "Things(1)/name")


@pytest.mark.parametrize("path", METADATA_PATHS)
async def test_metadata_reads_carry_clock_validators(seeded: Any, path: str) -> None:
    status, headers, body = await fetch(seeded, path)
    assert status == 200
    assert headers["ETag"].startswith('W/"m')
    assert headers["Cache-Control"] == "no-cache"
    modified = datetime.strptime(headers["Last-Modified"], "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    assert modified <= datetime.now(UTC)
    assert body


@pytest.mark.parametrize("path", METADATA_PATHS)
async def test_if_none_match_answers_304_until_an_http_change(seeded: Any, path: str) -> None:
    _, headers, _ = await fetch(seeded, path)
    etag = headers["ETag"]
    status, again, body = await fetch(seeded, path, **{"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert again["ETag"] == etag
    await patch_thing(seeded, "Renamed station")
    status, changed, body = await fetch(seeded, path, **{"If-None-Match": etag})
    assert status == 200
    assert changed["ETag"] != etag
    assert body


@pytest.mark.parametrize("path", METADATA_PATHS)
async def test_if_modified_since_answers_304_until_an_http_change(seeded: Any, path: str) -> None:
    _, headers, _ = await fetch(seeded, path)
    since = headers["Last-Modified"]
    status, _, body = await fetch(seeded, path, **{"If-Modified-Since": since})
    assert (status, body) == (304, b"")
    # A change within the same second as the client's copy still counts (the clock steps a second).
    await patch_thing(seeded, "Renamed station")
    status, _, body = await fetch(seeded, path, **{"If-Modified-Since": since})
    assert status == 200
    assert body


async def test_a_write_on_another_connection_invalidates(seeded: Any, clean_db: str) -> None:
    """Another replica, or the ingest's provisioning, writes straight to the database."""
    _, headers, _ = await fetch(seeded, "Locations")
    etag, since = headers["ETag"], headers["Last-Modified"]
    conn = await asyncpg.connect(clean_db)
    try:
        await conn.execute("UPDATE locations SET name = 'Moved' WHERE id = 1")
    finally:
        await conn.close()
    status, _, body = await fetch(seeded, "Locations", **{"If-None-Match": etag})
    assert status == 200
    assert b"Moved" in body
    status, _, _ = await fetch(seeded, "Locations", **{"If-Modified-Since": since})
    assert status == 200


async def test_a_write_that_changes_nothing_keeps_the_validators(seeded: Any, clean_db: str) -> None:
    _, headers, _ = await fetch(seeded, "Things")
    conn = await asyncpg.connect(clean_db)
    try:
        await conn.execute("UPDATE things SET name = 'x' WHERE id = -1")
        await conn.execute(
            "INSERT INTO sensors (name, description, encoding_type, metadata) SELECT 1, 1, 1, '1' WHERE false"
        )
    finally:
        await conn.close()
    status, _, _ = await fetch(seeded, "Things", **{"If-None-Match": headers["ETag"]})
    assert status == 304


OBSERVATION_PATHS = (
    "Datastreams(1)/Observations",
    "Observations(1)",
    "Datastreams(1)",
    "Things?$expand=Datastreams",
    "Things?$filter=Datastreams/name eq 'Air temperature at the town hall'",
)


@pytest.mark.parametrize("path", OBSERVATION_PATHS)
async def test_observation_reads_carry_a_body_etag(seeded: Any, path: str) -> None:
    status, headers, _ = await fetch(seeded, path)
    assert status == 200
    assert headers["ETag"].startswith('W/"b')
    assert "Last-Modified" not in headers
    status, _, body = await fetch(seeded, path, **{"If-None-Match": headers["ETag"]})
    assert (status, body) == (304, b"")


async def test_an_ingest_insert_invalidates_observation_reads(seeded: Any, clean_db: str) -> None:
    """The ingest path (insert_observations, one batch) on its own connection."""
    paths = ("Datastreams(1)/Observations", "Datastreams(1)", "Things(1)?$expand=Datastreams")
    etags = {path: (await fetch(seeded, path))[1]["ETag"] for path in paths}
    conn = await asyncpg.connect(clean_db)
    try:
        feature = await conn.fetchval("SELECT feature_of_interest_id FROM observations WHERE id = 1")
        moment = datetime(2030, 1, 1, tzinfo=UTC)
        row = ObservationRow(moment, moment, 99.5, feature, datastream_id=1)
        async with conn.transaction():
            await insert_observations(conn, [row])
    finally:
        await conn.close()
    for path, etag in etags.items():
        status, headers, _ = await fetch(seeded, path, **{"If-None-Match": etag})
        assert status == 200, path
        assert headers["ETag"] != etag


async def test_writes_and_errors_carry_no_validators(seeded: Any) -> None:
    response = await seeded.post(f"{ROOT}/Things", json=deep_thing("Another"))
    assert response.status == 201
    assert "ETag" not in response.headers
    status, headers, _ = await fetch(seeded, "Things(999)")
    assert status == 404
    assert "ETag" not in headers


async def test_if_modified_since_in_the_future_or_broken_is_ignored(seeded: Any) -> None:
    future = format_datetime(datetime(2099, 1, 1, tzinfo=UTC), usegmt=True)
    for since in (future, "not a date"):
        status, _, _ = await fetch(seeded, "Things", **{"If-Modified-Since": since})
        assert status == 200


async def test_if_none_match_wins_over_if_modified_since(seeded: Any) -> None:
    _, headers, _ = await fetch(seeded, "Things")
    status, _, _ = await fetch(
        seeded, "Things", **{"If-None-Match": 'W/"other"', "If-Modified-Since": headers["Last-Modified"]}
    )
    assert status == 200


async def test_cache_control_is_configurable_per_kind(clean_db: str, settings: Settings) -> None:
    configured = settings.model_copy(
        update={"cache_control_metadata": "public, max-age=60", "cache_control_observations": "max-age=5"}
    )
    async with TestClient(TestServer(build_app(configured))) as client:
        assert (await client.post(f"{ROOT}/Things", json=deep_thing("Station"))).status == 201
        _, headers, _ = await fetch(client, "Things")
        assert headers["Cache-Control"] == "public, max-age=60"
        _, headers, _ = await fetch(client, "Datastreams")
        assert headers["Cache-Control"] == "max-age=5"


@pytest.mark.parametrize(
    ("header", "etag", "expected"),
    [
        ('W/"a"', 'W/"a"', True),
        ('"a"', 'W/"a"', True),
        ('W/"b", W/"a"', 'W/"a"', True),
        ("*", 'W/"a"', True),
        ('W/"b"', 'W/"a"', False),
        ("", 'W/"a"', False),
    ],
)
def test_weak_comparison(header: str, etag: str, expected: bool) -> None:
    assert etag_matches(header, etag) is expected


async def test_replicas_with_other_page_settings_do_not_share_etags(seeded: Any, settings: Settings) -> None:
    _, headers, _ = await fetch(seeded, "Things")
    other = settings.model_copy(update={"default_top": 1})
    async with TestClient(TestServer(build_app(other))) as client:
        status, other_headers, _ = await fetch(client, "Things", **{"If-None-Match": headers["ETag"]})
    assert status == 200
    assert other_headers["ETag"] != headers["ETag"]


async def test_if_none_match_star_needs_an_existing_entity(seeded: Any) -> None:
    status, _, _ = await fetch(seeded, "Things(1)", **{"If-None-Match": "*"})
    assert status == 304
    status, _, body = await fetch(seeded, "Things(999)", **{"If-None-Match": "*"})
    assert status == 404
    assert b"999" in body


async def clock(dsn: str, set_to: str | None = None) -> datetime:
    conn = await asyncpg.connect(dsn)
    try:
        if set_to is not None:
            await conn.execute(f"UPDATE twinhub_clock SET modified_at = {set_to}")
        value: datetime = await conn.fetchval("SELECT modified_at FROM twinhub_clock WHERE name = 'metadata'")
        return value
    finally:
        await conn.close()


async def test_the_clock_steps_one_second_per_transaction(seeded: Any, clean_db: str) -> None:
    """A deep insert writes five clocked tables in one transaction: one step. While the clock is
    ahead of real time (a burst of writes), Last-Modified is left out and the ETag carries on."""
    ahead = await clock(clean_db, "date_trunc('second', now()) + interval '1 hour'")
    try:
        response = await seeded.post(f"{ROOT}/Things", json=deep_thing("Deep"))
        assert response.status == 201
        assert (await clock(clean_db) - ahead).total_seconds() == 1
        status, headers, _ = await fetch(seeded, "Things")
    finally:
        await settle_clock(clean_db)  # later tests on this database expect a clock in the past
    assert status == 200
    assert "Last-Modified" not in headers
    assert headers["ETag"].startswith('W/"m')
