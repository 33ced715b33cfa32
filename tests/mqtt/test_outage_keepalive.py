# SPDX-License-Identifier: Apache-2.0
"""A database outage several keepalives long, with real mosquitto and a private PostgreSQL: the
client keeps its one connection (no reconnect storm, no redelivery of the in-flight window) and
nothing is lost or stored twice.

With MQTT 5 the broker holds back at Receive Maximum, so the client keeps reading and PINGRESP
keeps arriving; with 3.1.1 (no Receive Maximum) the client pauses reading past the buffer bound and
a missing PINGRESP does not count while it is paused.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mqtt_helpers import Broker, hub_settings, make_entities, make_pool, results, wait_for
from test_reliability import _join, _messages, _pg_ctl, private_pg, publish_in_background

from hub.mqtt.service import IngestService
from hub.store.embedded import EmbeddedPostgres

__all__ = ["private_pg"]  # the fixture, shared with test_reliability

N = 4000
KEEPALIVE = 2  # seconds; the outage lasts four of them
OUTAGE = 4 * KEEPALIVE


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_outage_longer_than_the_keepalive_keeps_the_connection(
    protocol: str, private_pg: tuple[EmbeddedPostgres, str], broker: Broker, tmp_path: Path
) -> None:
    embedded, dsn = private_pg
    e = await make_entities(dsn, datastreams=10)
    pool = await make_pool(dsn)
    settings = hub_settings(
        dsn, broker, tmp_path, ingest_batch_size=200, ingest_buffer_max=500, mqtt_protocol=protocol
    )
    service = IngestService(settings, pool, lambda changes: None)
    service.client.keepalive = KEEPALIVE
    service.start()
    try:
        await wait_for(service.client_ready)
        publisher = publish_in_background(broker.port, _messages(e.datastreams, N), pause=0.2)
        await wait_for(lambda: service.stats.committed >= 400)
        await asyncio.to_thread(_pg_ctl, embedded, "-w", "-m", "fast", "stop")
        paused = False
        for _ in range(int(OUTAGE / 0.1)):
            await asyncio.sleep(0.1)
            paused = paused or service.client._reading_paused
            assert service.client.generation == 1, "the client reconnected during the outage"
            assert service.client.depth <= settings.ingest_buffer_max or protocol == "3.1.1"
        assert service.client.connected
        assert service.stats.db_retries > 0
        assert service.stats.committed < N
        # MQTT 5: the broker's window bounds the buffer, reading never paused; 3.1.1: it paused.
        assert paused is (protocol == "3.1.1")
        server = embedded._server
        assert server is not None
        await asyncio.to_thread(server.ensure_postgres_running)
        await _join(publisher)
        await wait_for(lambda: service.stats.committed >= N, within=60)
        assert service.client.generation == 1
    finally:
        await service.stop()
        await pool.close()
    assert await results(dsn) == list(range(N))  # all stored, none twice
