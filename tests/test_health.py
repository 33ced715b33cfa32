# SPDX-License-Identifier: Apache-2.0
"""/health and /ready."""

from __future__ import annotations

from typing import Any

from hub.http.health import STALL_SECONDS, ingest_checks
from hub.ingest.writer import IngestStats


async def test_health_and_ready_without_a_broker(client: Any) -> None:
    assert (await client.get("/health")).status == 200
    response = await client.get("/ready")
    assert response.status == 200
    assert await response.json() == {"status": "ready", "checks": {"database": True}}


def _stats(depth: int, connected: bool, last_progress: float) -> IngestStats:
    stats = IngestStats(last_progress=last_progress)
    stats.buffer_depth = lambda: depth
    stats.connected = lambda: connected
    return stats


def test_ingest_that_waits_on_messages_without_progress_is_stalled() -> None:
    now = 1000.0
    assert not ingest_checks(_stats(0, True, 0.0), now)["ingest_stalled"]  # idle, nothing waiting
    assert not ingest_checks(_stats(50, True, now - 1), now)["ingest_stalled"]  # busy, moving
    assert ingest_checks(_stats(50, True, now - STALL_SECONDS - 1), now)["ingest_stalled"]
    assert ingest_checks(_stats(50, True, 0.0), now)["ingest_stalled"]  # never finished a batch
    assert ingest_checks(_stats(0, False, 0.0), now)["broker"] is False
