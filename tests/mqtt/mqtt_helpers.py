# SPDX-License-Identifier: Apache-2.0
"""Helpers for the MQTT tests: private mosquitto brokers, a bounded-window publisher, sample entities."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from hub.config import Settings
from hub.mqtt.service import IngestService
from hub.store.pool import create_pool, init_connection
from hub.store.write import Writer
from schemas.model import FEATURE_OF_INTEREST, MULTI_DATASTREAM, THING

# `user` keeps mosquitto (started as root here) from dropping to a user that cannot write the
# tmp persistence directory; without it a restart silently loses the queued messages.
BROKER_CONF = """
user {user}
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {data}/
autosave_interval 1
max_queued_messages 0
max_inflight_messages 0
listener {ws_port} 127.0.0.1
protocol websockets
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Broker:
    """A private mosquitto on a free port with its own config and persistence directory."""

    directory: Path
    port: int = field(default_factory=free_port)
    ws_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        conf = self.directory / "mosquitto.conf"
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        user = pwd.getpwuid(os.getuid()).pw_name
        conf.write_text(
            BROKER_CONF.format(user=user, port=self.port, ws_port=self.ws_port, data=self.directory / "data")
        )
        log = (self.directory / "mosquitto.log").open("ab")
        self.process = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # SIGTERM: mosquitto writes its persistence file
            self.process.wait(10)
            self.process = None


def connect(port: int, client_id: str = "", v5: bool = True) -> paho.Client:
    """A paho client with its own network thread, connected."""
    protocol = paho.MQTTv5 if v5 else paho.MQTTv311
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion(protocol)
    )
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def publish_all(port: int, messages: Sequence[tuple[str, bytes]], window: int = 1000) -> None:
    """Publish at QoS 1 in chunks, waiting for each chunk's PUBACKs (bounded in-flight, LIMITS.md)."""
    client = connect(port)
    try:
        for start in range(0, len(messages), window):
            infos = [client.publish(t, p, qos=1) for t, p in messages[start : start + window]]
            for info in infos:
                info.wait_for_publish(30)
                assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


class Collector:
    """Subscribes to a filter and keeps what arrives (dead letters, notifications)."""

    def __init__(self, port: int, topic_filter: str) -> None:
        self.messages: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic_filter, qos=1)
        self.client.loop_start()
        assert subscribed.wait(5)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, orjson.loads(msg.payload)))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def observation(seq: int, datastream: int | None = None, **extra: Any) -> bytes:
    """An Observation body whose result carries a sequence number (to find losses and duplicates)."""
    body: dict[str, Any] = {"phenomenonTime": datetime.now(UTC).isoformat(), "result": seq, **extra}
    if datastream is not None:
        body["Datastream"] = {"@iot.id": datastream}
    return orjson.dumps(body)


async def wait_for(condition: Callable[[], Any], within: float = 30.0, step: float = 0.05) -> None:
    """Poll a (possibly async) condition until it is truthy."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


async def results(dsn: str) -> list[int]:
    """Every stored Observation's result (sequence number), sorted."""
    conn = await asyncpg.connect(dsn)
    try:
        return sorted(r[0] for r in await conn.fetch("SELECT (result #>> '{}')::int FROM observations"))
    finally:
        await conn.close()


async def count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM observations"))
    finally:
        await conn.close()


@dataclass(frozen=True)
class Entities:
    datastreams: list[int]
    multi_datastream: int
    feature: int


SENSOR = {"name": "s", "description": "d", "encodingType": "text/plain", "metadata": "m"}
UNIT = {"name": "degree Celsius", "symbol": "degC", "definition": "ucum:Cel"}
MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"


def _datastream(index: int) -> dict[str, Any]:
    return {
        "name": f"ds{index}",
        "description": "d",
        "unitOfMeasurement": UNIT,
        "observationType": MEASUREMENT,
        "Sensor": SENSOR,
        "ObservedProperty": {"name": f"op{index}", "definition": "x", "description": "d"},
    }


async def make_entities(dsn: str, datastreams: int = 3) -> Entities:
    """A Thing with a Location, `datastreams` Datastreams, a MultiDatastream and a FeatureOfInterest."""
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    try:
        async with conn.transaction():
            writer = Writer(conn, datetime.now(UTC))
            point = {"type": "Point", "coordinates": [8.0, 50.0]}
            location = {
                "name": "l",
                "description": "d",
                "encodingType": "application/geo+json",
                "location": point,
            }
            body = {
                "name": "t",
                "description": "d",
                "Locations": [location],
                "Datastreams": [_datastream(i) for i in range(datastreams)],
            }
            thing = await writer.create(THING, body)
            multi = {
                "name": "md",
                "description": "d",
                "unitOfMeasurements": [UNIT, UNIT],
                "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_ComplexObservation",
                "multiObservationDataTypes": [MEASUREMENT, MEASUREMENT],
                "Thing": {"@iot.id": thing},
                "Sensor": SENSOR,
                "ObservedProperties": [
                    {"name": f"mop{i}", "definition": "x", "description": "d"} for i in range(2)
                ],
            }
            multi_id = await writer.create(MULTI_DATASTREAM, multi)
            feature = await writer.create(
                FEATURE_OF_INTEREST,
                {"name": "f", "description": "d", "encodingType": "application/geo+json", "feature": point},
            )
            ids = [r[0] for r in await conn.fetch("SELECT id FROM datastreams ORDER BY id")]
        return Entities(ids, multi_id, feature)
    finally:
        await conn.close()


def hub_settings(dsn: str, broker: Broker, tmp_path: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": dsn,
        "mqtt_url": broker.url,
        "data_dir": tmp_path / "data",
        "migrate_on_start": False,
        "mqtt_client_id": "twinhub-test",
        "auth_anonymous_write": True,  # the tests also create over HTTP, without keys
        **extra,
    }
    return Settings(**values)


async def make_pool(dsn: str) -> asyncpg.Pool:
    """A small pool made exactly as the hub makes its own (codecs, settings)."""
    return await create_pool(dsn, min_size=1, max_size=4)


@contextlib.asynccontextmanager
async def replicas(settings: Settings, count: int = 2) -> AsyncIterator[list[IngestService]]:
    """`count` ingest services (client ids r0, r1, ...) on pools of their own, subscribed: the
    members of a share group when `settings` names one."""
    assert settings.database_url is not None
    pools = [await make_pool(settings.database_url) for _ in range(count)]
    services = [IngestService(settings, p, lambda c: None, f"r{i}") for i, p in enumerate(pools)]
    for service in services:
        service.start()
    try:
        await wait_for(lambda: all(s.client_ready() for s in services))
        yield services
    finally:
        for service in services:
            await service.stop()  # a second stop of a stopped service does nothing
        for p in pools:
            await p.close()
