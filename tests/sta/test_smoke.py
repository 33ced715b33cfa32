# SPDX-License-Identifier: Apache-2.0
"""Smoke: the root document answers."""

from __future__ import annotations

from typing import Any


async def test_root_lists_entity_sets(client: Any) -> None:
    response = await client.get("/v1.1")
    assert response.status == 200
    body = await response.json()
    assert [s["name"] for s in body["value"]][:2] == ["Things", "Locations"]
