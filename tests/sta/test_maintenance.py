# SPDX-License-Identifier: Apache-2.0
"""`twinhub dedupe`: duplicate Observations (QoS 1 redelivery after a crash) can be removed."""

from __future__ import annotations

from typing import Any

import asyncpg
from helpers import create, get_ok, ids, observation, populate, ref

from hub.store.maintenance import remove_duplicate_observations


async def test_dedupe_keeps_the_oldest_of_equal_observations_and_refreshes_the_stream(
    client: Any, clean_db: str
) -> None:
    await populate(client)  # Observations 1 (10:00, 20.5) and 2 (10:10, 21.0) on Datastream 1
    again = observation(21.0, "2021-05-15T10:10:00Z", Datastream=ref(1))
    assert await create(client, "Observations", again) == 3  # a redelivered copy of 2
    other = observation(22.0, "2021-05-15T10:10:00Z", Datastream=ref(1))
    assert await create(client, "Observations", other) == 4  # same time, other result: not a copy

    conn = await asyncpg.connect(clean_db)
    try:
        assert await remove_duplicate_observations(conn) == 1
        assert await remove_duplicate_observations(conn) == 0
        count = await conn.fetchval("SELECT observation_count FROM datastreams WHERE id = 1")
    finally:
        await conn.close()
    assert sorted(await ids(client, "Datastreams(1)/Observations")) == [1, 2, 4]
    assert count == 3
    stream = await get_ok(client, "Datastreams(1)")
    assert stream["phenomenonTime"] == "2021-05-15T10:00:00Z/2021-05-15T10:10:00Z"
