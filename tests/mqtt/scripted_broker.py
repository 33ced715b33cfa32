# SPDX-License-Identifier: Apache-2.0
"""A scripted MQTT broker for the client's tests: an asyncio TCP server whose test decides, packet by
packet, what each connection answers (hostile CONNACKs, silence, DISCONNECT, malformed bytes).

It is not a mock of mosquitto: it speaks real bytes over a real socket to the real client, so the
client's reading, framing, timers and reconnects run exactly as in production. It uses hub/mqtt/wire.py
only to encode and frame; what the client sends is checked field by field by the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.config import Settings
from hub.ingest.dispatch import Message
from hub.mqtt import client as client_module
from hub.mqtt import wire
from hub.mqtt.client import MqttClient
from hub.query.topics import TopicFilter

Packet = tuple[int, int, bytes]  # (type, flags, body)


@dataclass
class Connection:
    """One client connection as the script sees it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    decoder: wire.Decoder = field(default_factory=wire.Decoder)
    backlog: list[Packet] = field(default_factory=list)
    connect: bytes = b""  # the CONNECT body

    async def next(self, within: float = 5.0) -> Packet:
        """The next packet the client sent (waiting at most `within` seconds)."""
        while not self.backlog:
            data = await asyncio.wait_for(self.reader.read(65536), within)
            if not data:
                raise ConnectionError("the client closed the connection")
            self.backlog += self.decoder.feed(data)
        return self.backlog.pop(0)

    async def expect(self, kind: int, within: float = 5.0, skip: tuple[int, ...] = (wire.PINGREQ,)) -> Packet:
        """The next packet of type `kind`, answering PINGREQ on the way unless told otherwise."""
        while True:
            packet = await self.next(within)
            if packet[0] == kind:
                return packet
            if packet[0] == wire.PINGREQ and wire.PINGREQ in skip:
                self.send(b"\xd0\x00")
                continue
            raise AssertionError(f"expected packet type {kind}, got {packet[0]}")

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def closed(self, within: float = 5.0) -> bool:
        """True once the client has closed or reset the connection (reading what it still sends)."""
        try:
            async with asyncio.timeout(within):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    def close(self) -> None:
        self.writer.close()

    @property
    def level(self) -> int:
        return self.connect[6]

    def connect_props(self) -> dict[int, Any]:
        """The CONNECT's MQTT 5 properties."""
        return wire.read_properties(self.connect, 10)[0]


class ScriptedBroker:
    """Accepts connections and queues them for the test; `accept()` hands the next one over after
    reading its CONNECT."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.connections: asyncio.Queue[Connection] = asyncio.Queue()
        self.opened: list[Connection] = []

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def __aenter__(self) -> ScriptedBroker:
        self.server = await asyncio.start_server(self._accepted, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        for conn in self.opened:
            conn.writer.transport.abort()
        self.server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(reader, writer)
        self.opened.append(conn)
        await self.connections.put(conn)

    async def accept(self, within: float = 10.0) -> Connection:
        """The next connection, its CONNECT read."""
        conn = await asyncio.wait_for(self.connections.get(), within)
        kind, _, body = await conn.next(within)
        assert kind == wire.CONNECT
        conn.connect = body
        return conn

    async def session(
        self, present: bool = False, props: dict[int, int] | None = None, grant: int | None = None
    ) -> Connection:
        """Accept a connection, answer CONNACK (MQTT 5 with `props`) and grant its SUBSCRIBE."""
        conn = await self.accept()
        conn.send(connack(conn.level, present, props=props))
        await grant_subscription(conn, 1 if grant is None else grant)
        return conn


async def grant_subscription(conn: Connection, code: int) -> None:
    """Answer the next SUBSCRIBE with `code` for each filter; what came before it stays to be read."""
    early: list[Packet] = []
    while True:
        packet = await conn.next()
        if packet[0] == wire.SUBSCRIBE:
            break
        early.append(packet)
    packet_id, count = subscribe_of(packet[2], conn.level)
    conn.send(suback(packet_id, conn.level, [code] * count))
    conn.backlog[:0] = early


def connack(level: int, present: bool = False, reason: int = 0, props: dict[int, int] | None = None) -> bytes:
    """A CONNACK; MQTT 5 with a property block."""
    body = bytes((1 if present else 0, reason))
    if level == wire.MQTT5:
        body += wire.properties(props or {})
    return wire.packet(wire.CONNACK << 4, body)


def suback(packet_id: int, level: int, codes: list[int]) -> bytes:
    body = struct.pack(">H", packet_id) + (b"\x00" if level == wire.MQTT5 else b"") + bytes(codes)
    return wire.packet(wire.SUBACK << 4, body)


def subscribe_of(body: bytes, level: int) -> tuple[int, int]:
    """A SUBSCRIBE's packet id and its number of topic filters."""
    packet_id = struct.unpack_from(">H", body)[0]
    pos = 2
    if level == wire.MQTT5:
        pos = wire.read_properties(body, pos)[1]
    count = 0
    while pos < len(body):
        size = struct.unpack_from(">H", body, pos)[0]
        pos += 2 + size + 1
        count += 1
    return packet_id, count


def parse_publish(flags: int, body: bytes, level: int) -> tuple[str, int, bytes, int, bool, bool]:
    """A PUBLISH the client sent: (topic, packet id, payload, qos, retain, dup)."""
    topic, packet_id, payload = wire.read_publish(flags, body, level)
    return topic, packet_id, payload, (flags >> 1) & 3, bool(flags & 1), bool(flags & 8)


@contextlib.asynccontextmanager
async def running_client(
    url: str,
    tmp_path: Path,
    deliver: Callable[[list[Message]], None] | None = None,
    keepalive: int = client_module.KEEPALIVE,
    **settings: Any,
) -> AsyncIterator[MqttClient]:
    """A started MqttClient subscribed to `sensors/#`, reconnecting fast (tests wait for it)."""
    values: dict[str, Any] = {"mqtt_url": url, "data_dir": tmp_path / "data", "mqtt_client_id": "scripted"}
    client = MqttClient(
        Settings(**(values | settings)), [TopicFilter("sensors/#")], deliver or (lambda m: None)
    )
    client.keepalive = keepalive
    saved = client_module.RECONNECT_FIRST
    client_module.RECONNECT_FIRST = 0.05
    client.start()
    try:
        yield client
    finally:
        await client.close()
        client_module.RECONNECT_FIRST = saved


class Errors(logging.Handler):
    """Collects log records with a traceback: an exception that escaped where none may."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


@contextlib.contextmanager
def escaped_errors() -> Any:
    """Yields a list that fills with exceptions the event loop or the client's logger saw."""
    loop = asyncio.get_running_loop()
    seen: list[Any] = []
    handler = Errors()
    logging.getLogger("hub.mqtt").addHandler(handler)
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        yield seen
    finally:
        loop.set_exception_handler(previous)
        logging.getLogger("hub.mqtt").removeHandler(handler)
        seen.extend(handler.records)
