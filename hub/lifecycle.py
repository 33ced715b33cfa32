# SPDX-License-Identifier: Apache-2.0
"""The data lifecycle as `twinhub serve` runs it: maintenance every maintenance_interval_s.

Each run creates the coming Observation partitions and applies retention
(hub/store/maintenance.py); giving rows in the default partition partitions of their own is left
to `twinhub maintain`, since moving rows can hide them from queries running at that moment. Replicas
all run it; a database-wide advisory lock lets one at a time do the work. A failed run is logged
and retried at the next interval; it never stops the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import asyncpg
from aiohttp import web

from hub.config import Settings
from hub.http.context import STATE
from hub.store.maintenance import MaintenanceReport, run_maintenance
from hub.store.retention import RetentionPolicy

log = logging.getLogger("twinhub.lifecycle")


def retention_policy(settings: Settings) -> RetentionPolicy:
    """The retention settings as a policy."""
    return RetentionPolicy(
        settings.retention_days,
        dict(settings.retention_datasets),
        settings.retention_dataset_property,
        settings.rollup_retention_days,
    )


async def maintain(conn: asyncpg.Connection, settings: Settings, split: bool = False) -> MaintenanceReport:
    """One maintenance run with the hub's settings (split: also move rows out of the default partition)."""
    return await run_maintenance(
        conn, settings.partition_width, settings.partition_ahead, retention_policy(settings), split
    )


def maintenance_context(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context running maintenance periodically on the app's pool (after the database's)."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_every(app, settings), name="twinhub-maintenance")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return context


async def _every(app: web.Application, settings: Settings) -> None:
    while True:
        try:
            async with app[STATE].pool.acquire() as conn:
                # Maintenance may rebuild indexes or drop partitions: no request timeout applies.
                await conn.execute("SET statement_timeout = 0")
                try:
                    report = await maintain(conn, settings)
                finally:
                    await conn.execute("RESET statement_timeout")
            log.info("maintenance: %s", report)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("maintenance failed, retrying in %d s: %s", settings.maintenance_interval_s, exc)
        await asyncio.sleep(settings.maintenance_interval_s)
