# SPDX-License-Identifier: Apache-2.0
"""/health (the process answers) and /ready (it can do its job: database, broker, ingest moving).

Orchestrators restart on /health and route traffic on /ready; a stalled ingest (messages waiting,
no batch finished for STALL_SECONDS, e.g. while PostgreSQL is down) makes the hub unready, so the
mosquitto backlog that builds meanwhile is visible instead of silent.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import web

from hub.http.context import INGEST, AppState
from hub.http.reads import READS
from hub.ingest.writer import STALL_SECONDS, IngestStats

__all__ = ["STALL_SECONDS", "handle_health", "handle_ready", "ingest_checks"]
DATABASE_PROBE_SECONDS = 2.0


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def handle_health(request: web.Request) -> web.StreamResponse:
    """Alive: the event loop answers."""
    return _json({"status": "ok"})


async def _database_ok(state: AppState) -> bool:
    try:
        async with asyncio.timeout(DATABASE_PROBE_SECONDS), state.pool.acquire() as conn:
            answer: int | None = await conn.fetchval("SELECT 1")
    except Exception:  # refused, timed out, pool closed: any failure is "not ready", never a 500
        return False
    return answer == 1


def ingest_checks(stats: IngestStats, now: float) -> dict[str, Any]:
    """The broker and ingest part of /ready."""
    return {"broker": stats.connected(), "ingest_stalled": stats.stalled(now), **stats.snapshot()}


async def handle_ready(request: web.Request) -> web.StreamResponse:
    """Ready: the database answers and, with a broker configured, the broker is connected and
    ingest is not stalled. 503 with the failing checks otherwise."""
    state = AppState.of(request)
    checks: dict[str, Any] = {"database": await _database_ok(state)}
    ready = checks["database"]
    replicas = request.app.get(READS)
    if replicas is not None:  # informational: without a usable standby, reads go to the primary
        checks["replicas"] = replicas.report()
    stats = request.app.get(INGEST)
    if stats is not None:
        checks.update(ingest_checks(stats, time.monotonic()))
        ready = ready and checks["broker"] and not checks["ingest_stalled"]
    return _json({"status": "ready" if ready else "unready", "checks": checks}, 200 if ready else 503)
