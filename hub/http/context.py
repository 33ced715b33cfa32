# SPDX-License-Identifier: Apache-2.0
"""What handlers share: the app state under typed AppKeys, and the absolute service root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
from aiohttp import web

from hub.config import Settings
from hub.ingest.group_commit import GroupCommit
from hub.ingest.writer import IngestStats
from hub.query.filter import Dialect
from hub.store.write import Change

ChangeListener = Callable[[Sequence[Change]], None]


@dataclass(frozen=True)
class AppState:
    """Settings, the database pool and who hears about committed changes, stored once on the app."""

    settings: Settings
    pool: asyncpg.Pool
    dialect: Dialect = field(default_factory=lambda: Dialect(postgis=False))
    group_commit: GroupCommit | None = None  # shared transactions for concurrent Observation POSTs
    # Called after each commit with its changes (the change feed subscribes here); never before.
    change_listeners: list[ChangeListener] = field(default_factory=list)
    # Awaited before a bulk write (room()): the change feed's backpressure (hub/app.py).
    write_gates: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def room(self) -> None:
        """Wait while a write gate holds writes back (the notifications lag far behind the commits)."""
        for gate in self.write_gates:
            await gate()

    def committed(self, changes: Sequence[Change]) -> None:
        """Tell every listener about the changes of a transaction that has committed."""
        if changes:
            for listener in self.change_listeners:
                listener(changes)

    @staticmethod
    def of(request: web.Request) -> AppState:
        """The state of the application serving `request`."""
        return request.app[STATE]


STATE = web.AppKey("state", AppState)
INGEST = web.AppKey("ingest", IngestStats)  # only present when TWINHUB_MQTT_URL is set


def _first(value: str | None) -> str | None:
    """Proxies append to X-Forwarded-* lists; the first entry is the client-facing one."""
    if value is None:
        return None
    return value.split(",")[0].strip() or None


def external_base(request: web.Request, settings: Settings) -> str:
    """The externally visible URL of the hub, without a trailing slash.

    A configured base URL wins; otherwise X-Forwarded-Proto/Host/Port/Prefix
    from a reverse proxy; otherwise the request's own scheme and Host.
    """
    if settings.base_url:
        return settings.base_url.rstrip("/")
    headers = request.headers
    scheme = _first(headers.get("X-Forwarded-Proto")) or request.scheme
    host = _first(headers.get("X-Forwarded-Host")) or request.host
    port = _first(headers.get("X-Forwarded-Port"))
    default_port = {"http": "80", "https": "443"}.get(scheme)
    if port and ":" not in host.rsplit("]", 1)[-1] and port != default_port:
        host = f"{host}:{port}"
    prefix = (_first(headers.get("X-Forwarded-Prefix")) or "").strip("/")
    return f"{scheme}://{host}" + (f"/{prefix}" if prefix else "")


def service_root(request: web.Request, settings: Settings) -> str:
    """The absolute root of the STA version the request addresses, e.g. https://host/v1.1."""
    return f"{external_base(request, settings)}/{request.match_info.get('version', 'v1.1')}"
