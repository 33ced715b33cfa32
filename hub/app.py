# SPDX-License-Identifier: Apache-2.0
"""build_app(settings) -> web.Application: the application layer, wiring HTTP, the change feed and MQTT.

Cleanup contexts, in order: the database pool; the change feed with its /live sink (and the
relay between processes); the broker connection with ingest and the MQTT notifications.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from hub.changes.feed import ChangeFeed, running_feed
from hub.changes.live import LiveFanout
from hub.changes.notice import base_url_of
from hub.config import Settings
from hub.http.compression import compression_middleware
from hub.http.context import INGEST, STATE, AppState
from hub.http.cors import cors_middleware
from hub.http.errors import error_middleware
from hub.http.live import LIVE, setup_live
from hub.http.observe import add_metrics, observe_middleware
from hub.http.reads import name_the_server, replica_context
from hub.http.routes import add_routes
from hub.http.security import GUARD, Guard, security_middleware
from hub.ingest.group_commit import WRITERS, GroupCommit
from hub.lifecycle import maintenance_context
from hub.metrics import HubMetrics
from hub.mqtt.service import IngestService, running_ingest
from hub.store.pool import create_pool, detect_dialect
from schemas.model import OBSERVATION

log = logging.getLogger("twinhub")

FEED = web.AppKey("feed", ChangeFeed)
MQTT = web.AppKey("mqtt", IngestService)


def build_app(settings: Settings) -> web.Application:
    """The hub's aiohttp application; settings.database_url must be set."""
    if settings.database_url is None:
        raise ValueError(
            "build_app needs settings.database_url (the CLI fills it in for the embedded server)"
        )
    # Outermost first: metrics and request ids see every answer, CORS answers preflights before any
    # credential check, compression takes the final (error or not) bodies. Without cors_origins
    # CORS is off, and its middleware is left out rather than passed through on every request.
    middlewares = [
        observe_middleware,
        *([cors_middleware(settings)] if settings.cors_origins else []),
        compression_middleware(settings),
        error_middleware,
        security_middleware,
    ]
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_body_bytes)
    app[GUARD] = Guard.from_settings(settings)
    add_routes(app)
    metrics = HubMetrics(client_id=settings.mqtt_client_id if settings.mqtt_url else "")
    add_metrics(app, metrics)

    async def database(app: web.Application) -> AsyncIterator[None]:
        assert settings.database_url is not None
        # The group commit's writers get connections of their own, planning their few statements
        # once (generic plans: the requests' pool plans each execution, and planning the insert
        # cost PostgreSQL more than running it). They come out of db_pool_max.
        most = max(settings.db_pool_max - WRITERS, 1)
        pool = await create_pool(
            settings.database_url, min(settings.db_pool_min, most), most, settings.statement_timeout_ms
        )
        try:
            writer_pool = await create_pool(
                settings.database_url,
                WRITERS,
                WRITERS,
                settings.statement_timeout_ms,
                plan_cache_mode="force_generic_plan",
            )
        except BaseException:
            await pool.close()
            raise
        group_commit = GroupCommit(writer_pool, writers=WRITERS)
        group_commit.start()
        try:
            app[STATE] = AppState(settings, pool, await detect_dialect(pool), group_commit)
            metrics.watch_pool(pool, writer_pool)
            yield
        finally:
            await group_commit.close()
            await writer_pool.close()
            await pool.close()

    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(changes_context)
    if settings.database_read_urls:
        app.cleanup_ctx.append(replica_context(settings))  # hot standbys for reads (hub/http/reads.py)
        app.on_response_prepare.append(name_the_server)
    setup_live(app)  # GET /live: server-sent events of every process's commits
    if settings.mqtt_url:
        app.cleanup_ctx.append(mqtt_context(settings))

        async def ingest_metrics(app: web.Application) -> AsyncIterator[None]:
            metrics.watch_ingest(app[INGEST])  # the ingest service exists from here on
            yield

        app.cleanup_ctx.append(ingest_metrics)
    if settings.maintenance_interval_s:
        app.cleanup_ctx.append(maintenance_context(settings))
    return app


async def changes_context(app: web.Application) -> AsyncIterator[None]:
    """The change feed for the app's lifetime: HTTP commits in, /live (and later MQTT) out."""
    state = app[STATE]
    async with running_feed(state.pool, state.settings.database_url) as feed:
        fanout = LiveFanout(base_url_of(state.settings))
        feed.sinks.append(fanout)
        app[FEED] = feed
        app[LIVE] = fanout
        state.change_listeners.append(feed.on_commit)
        state.write_gates.append(feed.room)
        if state.group_commit is not None:
            state.group_commit.room = feed.room
            if feed.relay is not None:
                state.group_commit.notice = feed.relay.id_notice(OBSERVATION, "create")
        try:
            yield
        finally:
            if state.group_commit is not None:
                state.group_commit.notice = None
                state.group_commit.room = None
            state.write_gates.remove(feed.room)
            state.change_listeners.remove(feed.on_commit)
            fanout.close()
            feed.sinks.remove(fanout)


def mqtt_context(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx that runs the broker connection and ingest for the app's lifetime."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        async with running_ingest(settings, app[STATE].pool, app[FEED]) as service:
            app[INGEST] = service.stats
            app[MQTT] = service
            yield

    return context
