# SPDX-License-Identifier: Apache-2.0
"""/metrics after MQTT ingest: the in-process hub, and a `twinhub ingest` worker's own port."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import aiohttp
import orjson
from aiohttp.test_utils import TestClient, TestServer
from mqtt_helpers import (
    Broker,
    Collector,
    count,
    free_port,
    hub_settings,
    make_entities,
    observation,
    publish_all,
    wait_for,
)
from observe_helpers import Exposition

from hub.app import MQTT, build_app


def _messages(datastream: int, good: int) -> tuple[list[tuple[str, bytes]], int, int]:
    """`good` Observations plus rejects: (messages, bad_json count, unknown_datastream count)."""
    topic = f"v1.1/Datastreams({datastream})/Observations"
    messages = [(topic, observation(seq)) for seq in range(good)]
    messages += [(topic, b"{not json") for _ in range(3)]
    messages += [("v1.1/Datastreams(424242)/Observations", observation(0)) for _ in range(2)]
    return messages, 3, 2


async def test_metrics_after_http_requests_and_an_ingest_batch(
    clean_db: str, broker: Broker, tmp_path: Path
) -> None:
    entities = await make_entities(clean_db)
    settings = hub_settings(clean_db, broker, tmp_path, ingest_batch_ms=20)
    dead = Collector(broker.port, "twinhub/errors/#")
    try:
        async with TestClient(TestServer(build_app(settings))) as client:
            service = client.app[MQTT]
            await wait_for(service.client_ready)
            assert (await client.get("/ready")).status == 200
            assert (await client.get(f"/v1.1/Datastreams({entities.datastreams[0]})")).status == 200
            messages, bad_json, unknown = _messages(entities.datastreams[0], good=40)
            publish_all(broker.port, messages)
            await wait_for(lambda: len(dead.messages) >= bad_json + unknown)
            await wait_for(lambda: service.stats.acknowledged >= len(messages) and service.client.depth == 0)
            metrics = Exposition(await (await client.get("/metrics")).text())
            batches = service.stats.batches
    finally:
        dead.close()

    stored = await count(clean_db)
    assert stored == 40
    echoes = metrics.value("twinhub_ingest_echoes_total")  # own notifications, if the broker returns them
    assert metrics.value("twinhub_ingest_messages_received_total") == len(messages) + echoes
    assert metrics.value("twinhub_ingest_messages_acknowledged_total") == len(messages) + echoes
    assert metrics.value("twinhub_ingest_observations_committed_total") == stored
    causes = sorted(body["cause"] for _, body in dead.messages)
    assert causes == ["bad_json"] * bad_json + ["unknown_datastream"] * unknown
    assert metrics.value("twinhub_ingest_dead_letters_total", cause="bad_json") == bad_json
    assert metrics.value("twinhub_ingest_dead_letters_total", cause="unknown_datastream") == unknown
    # Every batch is in both histograms; together they hold every committed row.
    assert batches >= 1
    assert metrics.value("twinhub_ingest_batch_rows_count") == batches
    assert metrics.value("twinhub_ingest_batch_rows_sum") == stored
    assert metrics.value("twinhub_ingest_batch_rows_bucket", le="+Inf") == batches
    assert metrics.value("twinhub_ingest_batch_commit_seconds_count") == batches
    assert metrics.value("twinhub_ingest_batch_commit_seconds_sum") > 0
    assert metrics.value("twinhub_ingest_buffer_depth") == 0
    assert metrics.value("twinhub_ingest_stalled") == 0
    assert metrics.value("twinhub_mqtt_connected") == 1
    assert metrics.value("twinhub_mqtt_notifications_dropped_total") == 0
    assert metrics.value("twinhub_ingest_db_retries_total") == 0
    route = "/v1.1/Datastreams(id)"
    assert metrics.value("twinhub_http_requests_total", method="GET", route=route, status="2xx") == 1
    assert metrics.value("twinhub_http_requests_total", method="GET", route="/ready", status="2xx") >= 1
    assert metrics.label_values("twinhub_info", "mqtt_client_id") == {settings.mqtt_client_id}


async def _scrape(url: str) -> Exposition | None:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return Exposition(await response.text()) if response.status == 200 else None
    except aiohttp.ClientError:
        return None


def _start_worker(env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    """`twinhub ingest` as `twinhub serve --ingest-workers` starts it, logging to `log`."""
    return subprocess.Popen([sys.executable, "-m", "hub.cli", "ingest"], env=env, stderr=log)


async def test_an_ingest_worker_serves_its_own_metrics(clean_db: str, broker: Broker, tmp_path: Path) -> None:
    entities = await make_entities(clean_db)
    port = free_port()
    env = {
        **os.environ,
        "TWINHUB_DATABASE_URL": clean_db,
        "TWINHUB_MQTT_URL": broker.url,
        "TWINHUB_MQTT_CLIENT_ID": "twinhub-metrics-worker",
        "TWINHUB_INGEST_METRICS_PORT": str(port),
        "TWINHUB_INGEST_BATCH_MS": "20",
        "TWINHUB_DATA_DIR": str(tmp_path / "data"),
        "TWINHUB_LOG_FORMAT": "json",
    }
    log = (tmp_path / "worker.log").open("wb")
    worker = _start_worker(env, log)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        scraped: list[Exposition] = []

        async def subscribed() -> bool:
            # A message the worker rejects shows it reads its topics; publish one until it does.
            publish_all(broker.port, [("v1.1/Datastreams(424242)/Observations", observation(0))])
            metrics = await _scrape(url)
            if metrics is None or "twinhub_mqtt_connected" not in metrics.names():
                return False
            return bool(metrics.label_values("twinhub_ingest_dead_letters_total", "cause"))

        await wait_for(subscribed, within=60, step=0.3)
        messages, bad_json, _ = _messages(entities.datastreams[0], good=25)
        publish_all(broker.port, messages)

        async def settled() -> bool:
            metrics = await _scrape(url)
            if metrics is None or metrics.value("twinhub_ingest_observations_committed_total") < 25:
                return False
            scraped.append(metrics)
            return metrics.value("twinhub_ingest_dead_letters_total", cause="bad_json") == bad_json

        await wait_for(settled, within=60, step=0.2)
    finally:
        worker.terminate()
        worker.wait(30)
        log.close()
    metrics: Any = scraped[-1]
    assert metrics.value("twinhub_ingest_observations_committed_total") == await count(clean_db) == 25
    assert metrics.label_values("twinhub_info", "role") == {"ingest"}
    assert metrics.label_values("twinhub_info", "mqtt_client_id") == {"twinhub-metrics-worker"}
    assert metrics.value("twinhub_db_pool_max") == 4  # the ingest process's own small pool
    assert metrics.value("twinhub_http_requests_total", method="GET", route="/metrics", status="2xx") >= 1
    assert worker.returncode == 0
    lines = [orjson.loads(line) for line in (tmp_path / "worker.log").read_text().splitlines()]
    assert any(line["logger"] == "hub.cli" and "metrics at" in line["message"] for line in lines)
    rejects = [line for line in lines if line["logger"] == "hub.ingest" and "cause" in line]
    assert {line["cause"] for line in rejects} <= {"bad_json", "unknown_datastream"}
    assert all(line["topic"].startswith("v1.1/Datastreams(") for line in rejects)
    assert rejects  # at least the first reject of each cause is logged (the rest are rate-limited)


def _two_free_ports() -> int:
    """A port p with p and p + 1 free (for two workers' metrics), below Linux's ephemeral range
    (32768-60999): a port from free_port() lies inside it, and an outgoing connection of the hub
    (to PostgreSQL or the broker) could take it between this probe and the worker's bind."""
    for _ in range(200):
        base = random.randrange(20_000, 32_000)
        with socket.socket() as first, socket.socket() as second:
            try:
                first.bind(("127.0.0.1", base))
                second.bind(("127.0.0.1", base + 1))
            except OSError:
                continue
        return base
    raise AssertionError("no two consecutive free ports")


def _start_serve(env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hub.cli", "serve"], env=env, stderr=log)


async def test_serve_with_ingest_workers_gives_each_worker_a_metrics_port(
    clean_db: str, broker: Broker, tmp_path: Path
) -> None:
    base, http_port = _two_free_ports(), free_port()
    env = {
        **os.environ,
        "TWINHUB_DATABASE_URL": clean_db,
        "TWINHUB_MQTT_URL": broker.url,
        "TWINHUB_MQTT_CLIENT_ID": "twinhub-scraped",
        "TWINHUB_HTTP_PORT": str(http_port),
        "TWINHUB_MIGRATE_ON_START": "false",
        "TWINHUB_DATA_DIR": str(tmp_path / "data"),
        "TWINHUB_INGEST_WORKERS": "3",
        "TWINHUB_INGEST_METRICS_PORT": str(base),
    }
    log = (tmp_path / "serve.log").open("wb")
    hub = _start_serve(env, log)
    found: dict[int, Exposition] = {}
    try:

        async def all_answer() -> bool:
            for port in (http_port, base, base + 1):
                if port not in found and (metrics := await _scrape(f"http://127.0.0.1:{port}/metrics")):
                    found[port] = metrics
            return len(found) == 3

        await wait_for(all_answer, within=60, step=0.3)
    finally:
        hub.terminate()
        hub.wait(30)
        log.close()
    client_ids = {
        port: metrics.label_values("twinhub_info", "mqtt_client_id") for port, metrics in found.items()
    }
    assert client_ids == {
        http_port: {"twinhub-scraped"},
        base: {"twinhub-scraped-w1"},
        base + 1: {"twinhub-scraped-w2"},
    }
    assert found[http_port].label_values("twinhub_info", "role") == {"serve"}
    assert found[base].label_values("twinhub_info", "role") == {"ingest"}
    assert hub.returncode == 0
