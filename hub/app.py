# SPDX-License-Identifier: Apache-2.0
"""build_app(settings) -> web.Application, with the pool owned by a cleanup context."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from hub.config import Settings
from hub.http.context import STATE, AppState
from hub.http.errors import error_middleware
from hub.http.routes import add_routes
from hub.ingest.group_commit import GroupCommit
from hub.lifecycle import maintenance_context
from hub.mqtt.service import mqtt_context
from hub.store.pool import create_pool, detect_dialect

log = logging.getLogger("twinhub")


def build_app(settings: Settings) -> web.Application:
    """The hub's aiohttp application; settings.database_url must be set."""
    if settings.database_url is None:
        raise ValueError(
            "build_app needs settings.database_url (the CLI fills it in for the embedded server)"
        )
    app = web.Application(middlewares=[error_middleware], client_max_size=settings.max_body_bytes)
    add_routes(app)

    async def database(app: web.Application) -> AsyncIterator[None]:
        assert settings.database_url is not None
        pool = await create_pool(
            settings.database_url, settings.db_pool_min, settings.db_pool_max, settings.statement_timeout_ms
        )
        group_commit = GroupCommit(pool)
        group_commit.start()
        app[STATE] = AppState(settings, pool, await detect_dialect(pool), group_commit)
        try:
            yield
        finally:
            await group_commit.close()
            await pool.close()

    app.cleanup_ctx.append(database)
    if settings.mqtt_url:
        app.cleanup_ctx.append(mqtt_context(settings))
    if settings.maintenance_interval_s:
        app.cleanup_ctx.append(maintenance_context(settings))
    return app
