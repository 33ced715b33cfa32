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
from hub.store.pool import create_pool

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
        pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
        app[STATE] = AppState(settings, pool)
        try:
            yield
        finally:
            await pool.close()

    app.cleanup_ctx.append(database)
    return app
