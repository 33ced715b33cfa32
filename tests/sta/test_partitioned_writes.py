# SPDX-License-Identifier: Apache-2.0
"""HTTP writes of Observations at any time succeed, whatever partitions exist (docs/storage.md)."""

from __future__ import annotations

from typing import Any

from helpers import create, get, get_ok, observation, populate, ref


async def test_far_past_and_far_future_observations_are_stored_and_served(client: Any) -> None:
    await populate(client)  # Observations 1 and 2 (2021-05-15) on Datastream 1
    past = await create(client, "Observations", observation(1.5, "1700-01-01T00:00:00Z", Datastream=ref(1)))
    future = await create(client, "Observations", observation(2.5, "2999-12-31T23:59:59Z", Datastream=ref(1)))
    now = await create(client, "Observations", observation(3.5, None, Datastream=ref(1)))
    assert (await get_ok(client, f"Observations({past})"))["result"] == 1.5
    assert (await get_ok(client, f"Observations({future})"))["phenomenonTime"] == "2999-12-31T23:59:59Z"
    assert (await get_ok(client, f"Observations({now})"))["result"] == 3.5
    body = await get_ok(client, "Datastreams(1)/Observations?$orderby=phenomenonTime desc&$select=id")
    assert [o["@iot.id"] for o in body["value"]] == [future, now, 2, 1, past]
    stream = await get_ok(client, "Datastreams(1)")
    assert stream["phenomenonTime"] == "1700-01-01T00:00:00Z/2999-12-31T23:59:59Z"
    # PATCH moving an Observation to another time moves it to another partition; its id stays.
    status, _ = await get(client, f"Observations({past})")
    assert status == 200
    response = await client.patch(
        f"/v1.1/Observations({past})", json={"phenomenonTime": "2024-02-29T12:00:00Z"}
    )
    assert response.status == 200
    moved = await get_ok(client, f"Observations({past})")
    assert moved["phenomenonTime"] == "2024-02-29T12:00:00Z"
    stream = await get_ok(client, "Datastreams(1)")
    assert stream["phenomenonTime"].startswith("2021-05-15T10:00:00Z/")
