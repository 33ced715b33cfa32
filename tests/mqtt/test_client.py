# SPDX-License-Identifier: Apache-2.0
"""The hub's own MQTT client against a real mosquitto: protocol fallback, WebSocket, QoS 0 and 2."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from unittest import mock

import asyncpg
import pytest
from mqtt_helpers import (
    Broker,
    Collector,
    connect,
    hub_settings,
    make_entities,
    observation,
    results,
    wait_for,
)
from scripted_broker import running_client

from hub.config import Settings
from hub.mqtt import client as client_module
from hub.mqtt import wire
from hub.mqtt.client import NOTIFICATION_MARK, WRITE_BUFFER_HIGH, MqttClient, _WebSocketLink
from hub.mqtt.service import IngestService, running_ingest


class OldBroker:
    """A broker that only speaks MQTT 3.1.1, as the hub meets it: CONNECT with protocol level 5 is
    refused with 3.1.1's "unacceptable protocol version"; other connections are relayed to a real
    mosquitto, so everything after the handshake is the real broker's doing."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.refused = 0
        self.relayed = 0
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"mqtt://127.0.0.1:{port}"

    async def __aenter__(self) -> OldBroker:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.read(65536)
        packets = wire.Decoder().feed(first)
        assert packets
        assert packets[0][0] == wire.CONNECT
        level = packets[0][2][6]  # after the two-byte length and "MQTT"
        if level == wire.MQTT5:
            self.refused += 1
            writer.write(b"\x20\x02\x00\x01")  # CONNACK, return code 1
            await writer.drain()
            writer.close()
            return
        self.relayed += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.broker.port)
        up_writer.write(first)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@contextlib.asynccontextmanager
async def ingest(service: IngestService) -> AsyncIterator[IngestService]:
    service.start()
    try:
        await wait_for(service.client_ready, within=15)
        yield service
    finally:
        await service.stop()


async def test_falls_back_to_mqtt_311_when_the_broker_refuses_mqtt_5(
    clean_db: str, pool: asyncpg.Pool, broker: Broker, tmp_path: Path
) -> None:
    e = await make_entities(clean_db, datastreams=1)
    async with OldBroker(broker) as old:
        settings = hub_settings(clean_db, broker, tmp_path, mqtt_url=old.url, ingest_batch_ms=20)
        async with ingest(IngestService(settings, pool, lambda changes: None)) as service:
            assert service.client.protocol == "3.1.1"
            assert old.refused == 1
            assert old.relayed == 1
            publisher = connect(broker.port, v5=False)
            try:
                publisher.publish(f"v1.1/Datastreams({e.datastreams[0]})/Observations", observation(7), qos=1)
                await wait_for(lambda: results(clean_db), within=15)
            finally:
                publisher.disconnect()
                publisher.loop_stop()
    assert await results(clean_db) == [7]


async def test_ingest_and_notifications_over_websocket(
    clean_db: str, pool: asyncpg.Pool, broker: Broker, tmp_path: Path
) -> None:
    e = await make_entities(clean_db, datastreams=1)
    ws_url = f"ws://127.0.0.1:{broker.ws_port}/mqtt"
    settings = hub_settings(clean_db, broker, tmp_path, mqtt_url=ws_url, ingest_batch_ms=20)
    notified = Collector(broker.port, "v1.1/Observations")
    try:
        async with running_ingest(settings, pool) as service:
            await wait_for(service.client_ready, within=15)
            publisher = connect(broker.port)
            try:
                for seq in range(20):
                    topic = f"v1.1/Datastreams({e.datastreams[0]})/Observations"
                    publisher.publish(topic, observation(seq), qos=1)
                await wait_for(lambda: _count(clean_db, 20), within=15)
                # The notifications went out over the same WebSocket connection.
                await wait_for(lambda: len(notified.messages) >= 20, within=15)
            finally:
                publisher.disconnect()
                publisher.loop_stop()
    finally:
        notified.close()
    assert await results(clean_db) == list(range(20))
    assert sorted(body["result"] for _, body in notified.messages) == list(range(20))


@pytest.mark.parametrize("qos", [0, 2])
async def test_ingest_at_qos(
    qos: int, clean_db: str, pool: asyncpg.Pool, broker: Broker, tmp_path: Path
) -> None:
    e = await make_entities(clean_db, datastreams=1)
    settings = hub_settings(clean_db, broker, tmp_path, mqtt_qos=qos, ingest_batch_ms=20)
    async with ingest(IngestService(settings, pool, lambda changes: None)) as service:
        publisher = connect(broker.port)
        try:
            infos = [
                publisher.publish(
                    f"v1.1/Datastreams({e.datastreams[0]})/Observations", observation(seq), qos=qos
                )
                for seq in range(200)
            ]
            for info in infos:
                info.wait_for_publish(10)
            await wait_for(lambda: _count(clean_db, 200), within=15)
            # Every message finished: acknowledged (QoS 2: PUBREC then PUBCOMP) and released.
            await wait_for(lambda: service.client.depth == 0, within=5)
        finally:
            publisher.disconnect()
            publisher.loop_stop()
    assert await results(clean_db) == list(range(200))


async def _count(dsn: str, n: int) -> bool:
    return len(await results(dsn)) >= n


async def test_websocket_writes_are_bounded_and_all_arrive(broker: Broker, tmp_path: Path) -> None:
    """The WebSocket link's outgoing queue stops taking publications past the write-buffer mark (they
    wait in the client's bounded queue, as with TCP), and drains: every publication arrives, in order."""
    count, size = 200, 32 * 1024
    collected: list[tuple[str, bytes]] = []
    watcher = connect(broker.port)
    watcher.on_message = lambda client, userdata, msg: collected.append((msg.topic, msg.payload))
    watcher.subscribe("bulk/#", qos=0)
    url = f"ws://127.0.0.1:{broker.ws_port}/mqtt"
    try:
        async with running_client(url, tmp_path) as client:
            await wait_for(lambda: client.subscribed, within=10)
            link = client._link
            assert isinstance(link, _WebSocketLink)
            most = 0
            paused = False
            per_turn = 16  # publications per loop turn (512 KiB, over the mark), handed over in batches
            for index in range(count):
                client.publish(f"bulk/{index}", bytes([index % 256]) * size, 1, False)
                if index % per_turn == per_turn - 1:
                    await asyncio.sleep(0)
                    most = max(most, link._queued)
                    paused = paused or client._write_paused
            while client._pending or client._inflight:
                most = max(most, link._queued)
                await asyncio.sleep(0.01)
            assert paused  # the mark was reached, and publications waited in the client's queue
            # As on TCP: the mark plus one flush (what waited is sent at once on resuming), never
            # the whole stream.
            assert WRITE_BUFFER_HIGH < most < count * size // 2
            await wait_for(lambda: len(collected) == count, within=20)
    finally:
        watcher.disconnect()
        watcher.loop_stop()
    assert [topic for topic, _ in collected] == [f"bulk/{index}" for index in range(count)]


def _unconnected_client(settings_url: str, tmp_path: Path, share_group: str | None = "ingest") -> MqttClient:
    """A client whose writes are collected, not sent: its state set as if connected on this thread."""
    settings = Settings(
        database_url="postgresql://x@127.0.0.1/x",
        mqtt_url=settings_url,
        data_dir=tmp_path,
        mqtt_share_group=share_group,
    )
    client = MqttClient(settings, [], lambda messages: None)
    client.connected = True
    client._loop_thread = threading.get_ident()
    client._flush_scheduled = True  # keep the writes in client._out
    return client


@pytest.mark.parametrize("qos", [0, 1])
def test_publish_notifications_writes_what_publishing_one_by_one_writes(qos: int, tmp_path: Path) -> None:
    items = [(f"v1.1/Datastreams({i})/Observations", b'{"result":%d}' % i, i % 3 == 0) for i in range(50)]
    one, many = (_unconnected_client("mqtt://127.0.0.1:1", tmp_path) for _ in range(2))
    for topic, payload, retain in items:
        one.publish_notification(topic, payload, qos, retain)
    many.publish_notifications(items, qos)
    written = b"".join(many._out)  # a QoS 0 packet may be written in pieces: the bytes count
    assert written == b"".join(one._out)
    packets = wire.Decoder().feed(written)
    assert len(packets) == len(items)
    _, flags, body = packets[0]
    assert wire.read_publish_marked(flags, body, wire.MQTT5, NOTIFICATION_MARK)[3]


def test_notifications_queued_while_paused_go_out_as_publishing_one_by_one_would(tmp_path: Path) -> None:
    """Past the write-buffer mark QoS 0 notifications wait in the bounded queue (beyond its cap
    dropped and counted); on resuming they go out, in order, as one-by-one publishing writes them."""
    items = [(f"v1.1/Datastreams({i % 7})/Observations", b'{"result":%d}' % i, i % 3 == 0) for i in range(50)]
    one, many = (_unconnected_client("mqtt://127.0.0.1:1", tmp_path) for _ in range(2))
    for topic, payload, retain in items:
        one.publish_notification(topic, payload, 0, retain)
    many._write_paused = True
    many.publish_notifications(items[:20], 0)
    many.publish("dead/letter", b"x", 1, False)  # a QoS 1 publication between two batches
    many.publish_notifications(items[20:], 0)
    assert not many._out
    assert len(many._pending) == 1
    assert many._held_count == len(items)
    many._write_paused = False
    many._pump()
    # The QoS 1 publication waited in its own queue: it goes first, the notifications in order.
    expected = [wire.publish(b"dead/letter", b"x", 1, False, 1, wire.MQTT5), *one._out]
    assert b"".join(many._out) == b"".join(expected)
    full = _unconnected_client("mqtt://127.0.0.1:1", tmp_path)
    full._write_paused = True
    with mock.patch("hub.mqtt.client.OUTGOING_QUEUE_MAX", 30):
        full.publish_notifications(items, 0)
        assert full._held_count == 30
        assert full.dropped == 20
        full.publish("dead/letter", b"x", 0, False)  # the cap holds for every publication
        assert full.dropped == 21


def test_notifications_are_marked_only_in_a_share_group(tmp_path: Path) -> None:
    """Without a share group No Local keeps our notifications away; the mark would only cost the broker."""
    for group, marked in (("ingest", True), (None, False)):
        client = _unconnected_client("mqtt://127.0.0.1:1", tmp_path, group)
        client.publish_notifications([("v1.1/Datastreams(1)/Observations", b"{}", False)], 0)
        _, flags, body = wire.Decoder().feed(b"".join(client._out))[0]
        assert wire.read_publish_marked(flags, body, wire.MQTT5, NOTIFICATION_MARK)[3] is marked


async def test_drained_waits_while_the_notification_backlog_is_high(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The change feed waits here after each batch: past BACKLOG_HIGH waiting publications until
    BACKLOG_LOW are left, so the backlog stays in the feed instead of overflowing the queue; a
    broker that goes away releases the waiter (the queue's cap bounds the backlog then)."""
    monkeypatch.setattr(client_module, "BACKLOG_HIGH", 10)
    monkeypatch.setattr(client_module, "BACKLOG_LOW", 4)
    client = _unconnected_client("mqtt://127.0.0.1:1", tmp_path)
    items = [(f"v1.1/Things({i})", b"{}", False) for i in range(12)]
    await asyncio.wait_for(client.drained(), 1)  # nothing waits: at once
    for release in ("socket drains", "broker away"):
        client._write_paused = True  # the socket is past its mark: publications wait
        client.publish_notifications(items, 0)
        assert client.backlog == 12
        waiter = asyncio.create_task(client.drained())
        await asyncio.sleep(0.02)
        assert not waiter.done()
        if release == "socket drains":
            client._write_paused = False
            client._pump()
        else:
            client._on_lost(None)
        await asyncio.wait_for(waiter, 1)
    assert client.dropped == 0
    assert len(wire.Decoder().feed(b"".join(client._out))) == 12  # the first round went out
