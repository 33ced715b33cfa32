# SPDX-License-Identifier: Apache-2.0
"""The hub's one broker connection: an MQTT 5 / 3.1.1 client on the asyncio event loop.

Why not paho: with paho's network loop in a thread, the hub spent ~40 % of its core in paho
(a lock and a queue per acknowledgement and per publish, and a thread hop per batch) and most of
another ~27 % publishing notifications one packet at a time. Here the socket is an asyncio
protocol: each chunk read is split into packets by hub/mqtt/wire.py and handed to `deliver` as one
list; acknowledgements and publications are appended to one buffer that is written once per loop
turn.

Acknowledgement is manual: `done(message)` sends PUBACK (PUBREC for QoS 2) after the writer has
committed, in the order the messages arrived (MQTT-4.6.0-2/3: an echo finished at once waits
behind an earlier message's commit). The session is persistent (clean start off, session expiry
set), so what is published while the hub is away waits at the broker. Reconnects back off (1 s
doubling to 30 s) and resubscribe; each connection has a generation number so that a message
received on a connection that has since dropped is never acknowledged with a packet id of the new
one. The broker sends at most `ingest_buffer_max` unacknowledged messages (MQTT 5 Receive
Maximum), so reading goes on while the writer is behind (PINGRESP keeps arriving); only QoS 0
input or a broker without Receive Maximum (3.1.1) beyond that bound pauses reading the socket.
Outgoing QoS 1/2 publications respect the broker's Receive Maximum, Maximum QoS, Retain Available
and Maximum Packet Size; beyond the window they wait in a bounded queue, and past its cap they are
dropped and counted (notifications are best effort: the data is safe in the store).

Whatever the broker sends, a malformed packet or a protocol violation closes the connection at
once (`abort`, never waiting on a write buffer the peer may not be reading; with MQTT 5 after a
DISCONNECT naming the reason) and the client reconnects. docs/mqtt.md lists each MUST of the
specification the client touches, with the code and the test that cover it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from hub.config import Settings
from hub.ingest.dispatch import Message
from hub.mqtt import wire
from hub.query.topics import TopicFilter

log = logging.getLogger("hub.mqtt")

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883, "ws": 80, "wss": 443}
KEEPALIVE = 30
CONNECT_TIMEOUT = 10.0
CLOSE_TIMEOUT = 5.0  # seconds to wait for the broker to close after DISCONNECT
RECONNECT_FIRST, RECONNECT_MAX = 1.0, 30.0
# A connection that ends sooner than this (another client took over our session, say) is
# retried with backoff, not at once, so that two processes with one client id do not spin.
STABLE_AFTER = 10.0
# CONNACK codes of a broker that does not speak MQTT 5: 3.1.1's "unacceptable protocol version"
# and MQTT 5's "unsupported protocol version".
UNSUPPORTED_PROTOCOL = (0x01, 0x84)
# Publications waiting while the socket is paused, beyond which they are dropped and counted.
# An ingest batch of 500 Observations announces ~6,000 notifications at once (4 topics x the
# entity and 2 $select forms); 20,000 held three batches, and at 10k obs/s flat out (make bench)
# the bursts dropped 44,000 of them while the broker kept up on average. 100,000 (~30 MB at most)
# dropped none in the same run.
OUTGOING_QUEUE_MAX = 100_000
# Past BACKLOG_HIGH publications waiting, `drained()` (the change feed, after each batch it hands
# over) waits until BACKLOG_LOW are left, at most DRAIN_WAIT seconds: the backlog then stays in the
# feed, whose writers wait in turn (ChangeFeed.room), instead of overflowing the queue above.
BACKLOG_HIGH = OUTGOING_QUEUE_MAX // 2
BACKLOG_LOW = OUTGOING_QUEUE_MAX // 4
DRAIN_WAIT = 10.0
# Bytes the socket may buffer before publications wait in the bounded queue instead: kept small,
# because acknowledgements are written behind whatever is buffered, and a backlog of QoS 0
# notifications there delayed them by seconds (the broker then stops delivering).
WRITE_BUFFER_HIGH = 256 * 1024
WRITE_BUFFER_LOW = 64 * 1024
# Room around a payload of max_body_bytes in the largest packet the hub accepts: a topic of up to
# 64 KiB, the packet id and properties.
PACKET_HEADROOM = 128 * 1024
# A publication resent on this many connections without an acknowledgement is dropped: a broker
# that disconnects on seeing it (for a limit it did not announce) would otherwise do so forever.
RESEND_MAX = 3
RESUBSCRIBE_AFTER = 30.0  # seconds before refused subscriptions are asked for again
_PUBLISH, _TRUNCATED = wire.PUBLISH, wire.TRUNCATED
_PUBACK_HEAD, _PUBREC_HEAD = wire.ack(wire.PUBACK, 1)[:2], wire.ack(wire.PUBREC, 1)[:2]
_U16 = struct.Struct(">H").pack
# The MQTT 5 user property every hub notification carries (publish_notification): any hub's ingest
# (this one, a replica, a worker of a share group) drops a message carrying it unparsed, as an
# echo. No properties under 3.1.1: there the create handler's byte check stays (hub/ingest/sta.py).
NOTIFICATION_MARK = ("twinhub", "notification")
_NOTIFICATION_PROPS = wire.properties({}, (NOTIFICATION_MARK,))
_NO_PROPS = b"\x00"
# Fixed-header flags every packet type a client may receive must carry (§2.1.3); PUBLISH has its own.
_CONTROL_FLAGS = {
    wire.CONNACK: 0,
    wire.PUBACK: 0,
    wire.PUBREC: 0,
    wire.PUBREL: 2,
    wire.PUBCOMP: 0,
    wire.SUBACK: 0,
    wire.UNSUBACK: 0,
    wire.PINGRESP: 0,
    wire.DISCONNECT: 0,
}


@dataclass(frozen=True)
class BrokerAddress:
    """Where and as whom to connect, from TWINHUB_MQTT_URL."""

    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None
    path: str

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Split mqtt[s]://user:password@host:port (or ws[s]://.../path)."""
        parts = urlsplit(url)
        return cls(
            scheme=parts.scheme,
            host=parts.hostname or "localhost",
            port=parts.port or DEFAULT_PORTS[parts.scheme],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            path=parts.path or "/mqtt",
        )

    @property
    def tls(self) -> bool:
        return self.scheme in ("mqtts", "wss")

    @property
    def websocket(self) -> bool:
        return self.scheme in ("ws", "wss")


def tls_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context for mqtts:// and wss://: the system's CAs or mqtt_tls_ca_file, and for mutual
    TLS the client certificate and key; the broker's host name is always checked."""
    context = ssl.create_default_context(cafile=settings.mqtt_tls_ca_file)
    if settings.mqtt_tls_cert_file is not None:
        context.load_cert_chain(settings.mqtt_tls_cert_file, settings.mqtt_tls_key_file)
    return context


@dataclass
class _Outgoing:
    """A QoS 1/2 publication awaiting its acknowledgement (`released`: PUBREC seen, PUBREL sent)."""

    topic: bytes
    payload: bytes
    qos: int
    retain: bool
    props: bytes = _NO_PROPS  # the encoded MQTT 5 property block
    released: bool = False
    sent: int = 1  # connections it was sent on


class _Protocol(asyncio.Protocol):
    """A TCP (or TLS) connection: hands the transport's events to the client until detached."""

    def __init__(self, client: MqttClient) -> None:
        self.client = client
        self.active = True  # False once the client has moved on: late events are ignored
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        stream.set_write_buffer_limits(high=WRITE_BUFFER_HIGH, low=WRITE_BUFFER_LOW)
        self.transport = stream
        self.client._attach(self)

    def write(self, data: bytes) -> None:
        # uvloop raises on a write to a closed transport (asyncio drops it): after abort() the
        # connection is gone, and what was not sent is resent or redelivered on the next one.
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        """Close after the write buffer drains (a clean DISCONNECT)."""
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Close now, dropping the write buffer: a broker that stopped reading cannot hold us."""
        if self.transport is not None:
            self.transport.abort()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.active:
            self.client._on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.active:
            self.client._on_lost(exc)

    def pause_writing(self) -> None:
        if self.active:
            self.client._write_paused = True

    def resume_writing(self) -> None:
        if self.active:
            self.client._write_paused = False
            self.client._pump()


class _WebSocketLink:
    """A WebSocket connection with the same face as _Protocol: a bounded outgoing queue (pausing
    the client's writes past WRITE_BUFFER_HIGH) and a reader that can be paused."""

    def __init__(self, client: MqttClient, ws: Any, session: Any) -> None:
        self.client = client
        self.active = True
        self._ws = ws
        self._session = session
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._paused = False
        self._closing = False
        self._wake = asyncio.Event()
        self._readable = asyncio.Event()
        self._readable.set()
        self._reader = asyncio.create_task(self._read(), name="twinhub-mqtt-ws")

    def write(self, data: bytes) -> None:
        self._queue.append(data)
        self._queued += len(data)
        self._wake.set()
        if self._queued > WRITE_BUFFER_HIGH and not self._paused:
            self._paused = True
            if self.active:
                self.client._write_paused = True

    def close(self) -> None:
        self._closing = True
        self._wake.set()

    def abort(self) -> None:
        self._reader.cancel()

    def pause_reading(self) -> None:
        self._readable.clear()

    def resume_reading(self) -> None:
        self._readable.set()

    async def _send(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while True:
                while self._queue:
                    data = self._queue.popleft()
                    await self._ws.send_bytes(data)
                    self._queued -= len(data)
                    if self._paused and self._queued <= WRITE_BUFFER_LOW:
                        self._paused = False
                        if self.active:
                            self.client._write_paused = False
                            self.client._pump()
                if self._closing:
                    await self._ws.close()
                    return
                self._wake.clear()
                await self._wake.wait()

    async def _read(self) -> None:
        import aiohttp

        writer = asyncio.create_task(self._send())
        try:
            while True:
                await self._readable.wait()
                frame = await self._ws.receive()
                if frame.type == aiohttp.WSMsgType.BINARY:
                    if self.active:
                        self.client._on_data(frame.data)
                elif frame.type == aiohttp.WSMsgType.TEXT:
                    log.error("mqtt: a text frame from the broker; reconnecting")  # [MQTT-6.0.0-1]
                    break
                else:
                    break  # closed or failed
        except Exception as error:  # the reader must end with _on_lost, whatever happened
            log.warning("mqtt: websocket failed: %s", error)
        finally:
            if self._closing:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(writer), 2)
            writer.cancel()
            with contextlib.suppress(Exception):
                await self._session.close()
            if self.active:
                self.client._on_lost(None)


class MqttClient:
    """One broker connection: subscriptions, batched hand-over, manual acks, publish for others."""

    def __init__(
        self,
        settings: Settings,
        filters: Sequence[TopicFilter],
        deliver: Callable[[list[Message]], None],
        client_id: str | None = None,
    ) -> None:
        assert settings.mqtt_url is not None
        self.settings = settings
        self.address = BrokerAddress.parse(settings.mqtt_url)
        self.filters = list(filters)
        self.deliver = deliver  # called on the event loop with each list of messages
        self.client_id = client_id or settings.mqtt_client_id
        self.buffer_max = settings.ingest_buffer_max
        self.keepalive = KEEPALIVE  # seconds, sent in CONNECT (the broker may override it)
        self.generation = 0
        self.connected = False
        self.subscribed = False  # the current connection's subscriptions are all granted
        self.refused: list[str] = []  # subscriptions the broker refused on this connection
        self.dropped = 0  # publications given up: queue full, over the broker's limits, resent too often
        self._v5 = settings.mqtt_protocol == "5"
        self._level = wire.MQTT5 if self._v5 else wire.MQTT311
        self._received = 0
        self._released = 0
        self._decoder = wire.Decoder(settings.max_body_bytes + PACKET_HEADROOM)
        self._link: _Protocol | _WebSocketLink | None = None
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._write_paused = False
        self._reading_paused = False
        # Received QoS 1/2 messages in arrival order, [packet id, qos, finished], so that the
        # acknowledgements go out in that order (MQTT-4.6.0-2/3); by packet id too.
        self._acks: deque[list[int]] = deque()
        self._ack_slots: dict[int, list[int]] = {}
        self._inflight: dict[int, _Outgoing] = {}
        self._pending: deque[tuple[bytes, bytes, int, bool, bytes]] = deque()
        self._qos0: wire.Qos0Publisher | None = None  # QoS 0 notifications, many at once
        # Batches of QoS 0 notifications waiting for the socket, as publish_notifications got them,
        # and how many publications they hold (with _pending, bounded by OUTGOING_QUEUE_MAX).
        self._held: deque[tuple[Sequence[tuple[str, bytes, bool]], bytes]] = deque()
        self._held_count = 0
        self._drain_waiter: asyncio.Future[None] | None = None  # set once the backlog is low (drained)
        # The broker's limits from CONNACK (MQTT 5 §3.2.2.3).
        self._send_quota = 65535
        self._max_qos = 2
        self._retain_ok = True
        self._max_out = wire.MAX_REMAINING
        self._next_id = 0
        self._subscribe_ids: set[int] = set()  # SUBSCRIBE/UNSUBSCRIBE awaiting SUBACK/UNSUBACK
        self._unsubscribed: asyncio.Future[None] | None = None
        self._pong_due = False
        self._stopping = False
        self._closing = False
        self._connack: asyncio.Future[wire.ConnAck] | None = None
        self._lost: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._last_drop_log = 0.0

    @property
    def depth(self) -> int:
        """Messages received and not yet finished (acked, rejected or released)."""
        return self._received - self._released

    @property
    def protocol(self) -> str:
        """The protocol version in use: "5" or "3.1.1" (after a fallback)."""
        return "5" if self._v5 else "3.1.1"

    @property
    def max_packet(self) -> int:
        """The largest packet the hub accepts (MQTT 5 Maximum Packet Size, sent in CONNECT)."""
        limit = self._decoder.max_packet  # of the remaining length; plus the fixed header
        return 1 + len(wire.varint(limit)) + limit

    # ---- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background, reconnecting with backoff until `close`."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._task = self._loop.create_task(self._run(), name="twinhub-mqtt")

    def stop_reading(self) -> None:
        """Hand no more messages over; the ones not handed over are redelivered after reconnect."""
        self._stopping = True
        self._resume_reading()

    async def leave(self) -> bool:
        """Unsubscribe from every ingest filter, so that the broker hands this client nothing more
        (in a share group: the other members get it); True once the broker has confirmed."""
        if not self.connected or not self.filters:
            return False
        assert self._loop is not None
        self._unsubscribed = self._loop.create_future()
        packet_id = self._new_id()
        self._subscribe_ids.add(packet_id)
        topics = [f.subscription(self.settings.mqtt_share_group) for f in self.filters]
        self._write(wire.unsubscribe(packet_id, self._level, topics))
        try:
            await asyncio.wait_for(asyncio.shield(self._unsubscribed), CONNECT_TIMEOUT)
        except TimeoutError:
            return False
        return True

    async def close(self, end_session: bool = False) -> None:
        """Send what is queued (acks included) and DISCONNECT, then stop reconnecting.

        `end_session`: ask the broker (MQTT 5) to drop the persistent session instead of keeping
        it; for a replica leaving a share group for good, whose session would otherwise be handed
        its share of the group's messages until it expires (mosquitto does)."""
        self._stopping = self._closing = True
        lost = self._lost
        link = self._link
        if self.connected and link is not None:
            self._flush()
            link.write(wire.disconnect(self._level, 0 if end_session else None))
            link.close()
            if lost is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(lost), CLOSE_TIMEOUT)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        delay = RECONNECT_FIRST
        while not self._closing:
            began = time.monotonic()
            # Each connection tries the configured version again: a fallback to 3.1.1 lasts one
            # connection, so a broker upgraded meanwhile gets MQTT 5 on the next.
            self._v5 = self.settings.mqtt_protocol == "5"
            try:
                if await self._session() and time.monotonic() - began > STABLE_AFTER:
                    delay = RECONNECT_FIRST
                    continue  # it was up for a while: reconnect at once
            except (OSError, TimeoutError, wire.ProtocolError) as error:
                log.warning("mqtt: cannot connect to %s:%s: %s", self.address.host, self.address.port,
                            str(error) or type(error).__name__)  # fmt: skip
            except Exception:
                log.exception("mqtt: connection to %s failed", self.address.host)
            finally:
                self._detach()
            if self._closing:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX)

    async def _session(self) -> bool:
        """One connection from CONNECT to its loss; True if it was established (CONNACK success)."""
        loop = asyncio.get_running_loop()
        self._connack = loop.create_future()
        self._lost = loop.create_future()
        self._decoder.reset()
        self._level = wire.MQTT5 if self._v5 else wire.MQTT311
        await asyncio.wait_for(self._open(), CONNECT_TIMEOUT)
        self._write(self._connect_packet())
        waiting: set[asyncio.Future[Any]] = {self._connack, self._lost}
        await asyncio.wait_for(asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED), CONNECT_TIMEOUT)
        if not self._connack.done():
            raise ConnectionError("the broker closed the connection before CONNACK")
        ack = self._connack.result()
        if ack.reason != 0:
            self._abort()
            if self._v5 and ack.reason in UNSUPPORTED_PROTOCOL:
                log.warning("mqtt: %s does not speak MQTT 5; falling back to MQTT 3.1.1", self.address.host)
                self._v5 = False
                self._detach()
                return await self._session()  # at once, with 3.1.1
            reason = ack.props.get(wire.REASON_STRING) or f"reason code 0x{ack.reason:02x}"
            log.warning("mqtt: broker %s refused the connection: %s", self.address.host, reason)
            await self._lost
            return False
        log.info("mqtt: connected to %s:%s with MQTT %s (session present: %s)", self.address.host,
                 self.address.port, self.protocol, ack.session_present)  # fmt: skip
        keepalive = asyncio.create_task(
            self._keepalive(int(ack.props.get(wire.SERVER_KEEP_ALIVE, self.keepalive)))
        )
        try:
            await self._lost
        finally:
            keepalive.cancel()
        if not self._closing:
            log.warning("mqtt: disconnected from %s; reconnecting", self.address.host)
        return True

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        context = tls_context(self.settings) if self.address.tls else None
        if self.address.websocket:
            await self._open_websocket(context)
            return
        await loop.create_connection(
            lambda: _Protocol(self), self.address.host, self.address.port, ssl=context
        )

    async def _open_websocket(self, context: ssl.SSLContext | None) -> None:
        import aiohttp  # only for ws:// and wss:// brokers

        scheme = "https" if self.address.tls else "http"
        url = f"{scheme}://{self.address.host}:{self.address.port}{self.address.path}"
        session = aiohttp.ClientSession()
        try:
            # aiohttp answers the broker's WebSocket pings; MQTT's own keepalive runs above it.
            ws = await session.ws_connect(url, protocols=("mqtt",), ssl=context or True, autoping=True)
        except BaseException:
            await session.close()
            raise
        self._attach(_WebSocketLink(self, ws, session))

    def _connect_packet(self) -> bytes:
        props = {}
        if self._v5:
            props = {
                wire.SESSION_EXPIRY: self.settings.mqtt_session_expiry,
                # The broker sends at most this many unacknowledged messages: the buffer's bound.
                wire.RECEIVE_MAXIMUM: max(1, min(self.buffer_max, 65535)),
                # A larger message is dropped by the broker (MQTT-3.1.2-25), not sent to stall us.
                wire.MAXIMUM_PACKET_SIZE: self.max_packet,
            }
        return wire.connect(
            self.client_id,
            self._level,
            self.keepalive,
            clean_start=False,
            username=self.address.username,
            password=self.address.password,
            props=props,
        )

    def _attach(self, link: _Protocol | _WebSocketLink) -> None:
        self._link = link
        self._write_paused = False
        self._reading_paused = False

    def _detach(self) -> None:
        self._abort()
        if self._link is not None:
            self._link.active = False  # its late events (connection_lost, data) are not ours
        self._link = None
        self._out.clear()
        self.connected = self.subscribed = False
        self._wake_drained()

    def _abort(self) -> None:
        if self._link is not None:
            self._link.abort()

    def _fail(self, error: wire.ProtocolError) -> None:
        """The broker broke the protocol: say why (MQTT 5, §4.13) and drop the connection now."""
        log.error("mqtt: protocol error from %s (%s); reconnecting", self.address.host, error)
        link = self._link
        if link is not None:
            if self._level == wire.MQTT5:  # CONNECT went first: received data answers it
                self._out.clear()
                link.write(wire.disconnect(self._level, reason=error.reason))
            link.active = False  # nothing more of this connection is read or acknowledged
            link.abort()
        self._on_lost(None)

    def _on_lost(self, exc: Exception | None) -> None:
        self.connected = self.subscribed = False
        self._wake_drained()  # nobody waits for a broker that is away: the queue's cap holds
        if exc is not None and not self._closing:
            log.warning("mqtt: connection lost: %s", exc)
        if self._unsubscribed is not None and not self._unsubscribed.done():
            self._unsubscribed.cancel()
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    async def _keepalive(self, interval: int) -> None:
        """PINGREQ every half keep-alive; a PINGRESP missing by the next one drops the connection.

        While reading is paused (backpressure) a PINGRESP cannot be seen, so a missing one does
        not count then; PINGREQs go on, so the broker keeps the connection (MQTT 5 §3.1.2.10)."""
        period = max(interval / 2, 0.5) if interval else self.keepalive / 2
        while True:
            await asyncio.sleep(period)
            if self._pong_due and not self._reading_paused:
                log.warning("mqtt: no PINGRESP from %s; reconnecting", self.address.host)
                self._abort()
                return
            self._pong_due = not self._reading_paused
            self._write(wire.PINGREQ_PACKET)

    # ---- reading ------------------------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        # Anything from the broker shows the connection is alive; under a stream of messages the
        # PINGRESP can sit behind them in the broker's buffer (seen as reconnects by bench/deployed.py).
        self._pong_due = False
        try:
            self._read(data)
        except wire.ProtocolError as error:
            self._fail(error)

    def _read(self, data: bytes) -> None:
        packets = self._decoder.feed(data)
        messages: list[Message] = []
        append = messages.append
        now = time.time()
        level = self._level
        slots = self._ack_slots
        read_publish = wire.read_publish_marked
        mark = NOTIFICATION_MARK
        try:
            for kind, flags, body in packets:
                if kind == _PUBLISH and self.connected:
                    if flags & _TRUNCATED and level == wire.MQTT5:
                        raise wire.ProtocolError(
                            "PUBLISH over our Maximum Packet Size", wire.PACKET_TOO_LARGE
                        )
                    # 3.1.1 has no Maximum Packet Size: a larger message is cut to max_packet
                    # bytes, still longer than max_body_bytes, so that the writer dead-letters it
                    # as oversized and acknowledges it, instead of the broker redelivering it forever.
                    topic, packet_id, payload, echo = read_publish(flags, body, level, mark)
                    if not self._stopping:
                        qos = (flags >> 1) & 0x03
                        if qos:  # its acknowledgement's place in the arrival order
                            if packet_id in slots:  # [MQTT-2.2.1-4]: not reused before acknowledged
                                raise wire.ProtocolError(f"packet id {packet_id} reused before its "
                                                         "acknowledgement", wire.PROTOCOL_ERROR)  # fmt: skip
                            slot = slots[packet_id] = [packet_id, qos, 0]
                            self._acks.append(slot)
                        append(Message(topic, payload, packet_id, qos, now, self.generation, echo))
                else:
                    self._on_control(kind, flags, body)
        finally:
            # What was read before a malformed packet is handed over even when the connection
            # dies: its generation is stale by then, so the writer drops it (redelivered).
            if messages:
                self._received += len(messages)
                self.deliver(messages)
                # Past the receive maximum only QoS 0 or a 3.1.1 broker can send more: then stop
                # reading the socket, as the second guard of the bound.
                if self.depth > self.buffer_max and self._link is not None and not self._reading_paused:
                    self._reading_paused = True
                    self._link.pause_reading()

    def _on_control(self, kind: int, flags: int, body: bytes) -> None:
        if _CONTROL_FLAGS.get(kind) != flags:  # an unknown type, a server-only one, AUTH or bad flags
            raise wire.ProtocolError(f"packet type {kind} with flags 0x{flags:x}", wire.PROTOCOL_ERROR)
        level = self._level
        if kind == wire.CONNACK:
            self._on_connack(wire.read_connack(body, level))
            return
        if not self.connected:  # [MQTT-3.2.0-1]: CONNACK first
            raise wire.ProtocolError(f"packet type {kind} before CONNACK", wire.PROTOCOL_ERROR)
        if kind == wire.PUBACK or kind == wire.PUBCOMP:
            self._inflight.pop(wire.read_ack(body, level, kind)[0], None)
            self._pump()
        elif kind == wire.PUBREC:
            packet_id, reason = wire.read_ack(body, level, kind)
            outgoing = self._inflight.get(packet_id)
            if outgoing is not None and reason >= 0x80:
                del self._inflight[packet_id]  # refused (MQTT 5): no PUBREL follows
                self._pump()
            else:
                if outgoing is not None:
                    outgoing.released = True
                self._write(wire.ack(wire.PUBREL, packet_id))
        elif kind == wire.PUBREL:
            self._write(wire.ack(wire.PUBCOMP, wire.read_ack(body, level, kind)[0]))
        elif kind == wire.PINGRESP:
            if body:
                raise wire.ProtocolError("PINGRESP with a body")  # §3.13: it has none
            self._pong_due = False
        elif kind == wire.SUBACK:
            self._on_suback(*wire.read_suback(body, level))
        elif kind == wire.UNSUBACK:
            self._subscribe_ids.discard(wire.read_suback(body, level, kind)[0])
            if self._unsubscribed is not None and not self._unsubscribed.done():
                self._unsubscribed.set_result(None)
        elif kind == wire.DISCONNECT:
            reason, why = wire.read_reason(body, level)
            log.warning("mqtt: the broker disconnected the hub: reason 0x%02x %s", reason, why or "")
            self._abort()

    def _on_connack(self, ack: wire.ConnAck) -> None:
        # Handled here, not after the awaiting coroutine resumes: the broker sends a resumed
        # session's queued messages right behind CONNACK, often in the same read.
        if self.connected or (self._connack is not None and self._connack.done()):
            raise wire.ProtocolError("a second CONNACK", wire.PROTOCOL_ERROR)  # [MQTT-3.2.0-2]
        if ack.reason == 0:
            props = ack.props
            self.generation += 1
            self.connected = True
            self._pong_due = False
            self._send_quota = int(props.get(wire.RECEIVE_MAXIMUM, 65535))
            self._max_qos = int(props.get(wire.MAXIMUM_QOS, 2))
            self._retain_ok = bool(props.get(wire.RETAIN_AVAILABLE, 1))
            self._max_out = int(props.get(wire.MAXIMUM_PACKET_SIZE, wire.MAX_REMAINING))
            # Packet ids of the last connection's acknowledgements and (UN)SUBSCRIBEs are void.
            self._acks.clear()
            self._ack_slots.clear()
            self._subscribe_ids.clear()
            if not ack.session_present:
                self._forget_session()
            self._resend()
            self._subscribe()
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(ack)

    def _subscribe(self) -> None:
        group = self.settings.mqtt_share_group
        qos = self.settings.mqtt_qos
        topics = [f.subscription(group) for f in self.filters]
        self.refused = []
        if not topics:
            self.subscribed = True
            return
        # No Local keeps our own notifications on create topics from coming back (MQTT 5, unshared:
        # the spec forbids it on a shared subscription).
        no_local = [0x04 if self._v5 and not (group and f.shared) else 0 for f in self.filters]
        packet_id = self._new_id()
        self._subscribe_ids.add(packet_id)
        entries = [(topic, qos | flag) for topic, flag in zip(topics, no_local, strict=True)]
        self._write(wire.subscribe(packet_id, self._level, entries))

    def _on_suback(self, packet_id: int, codes: list[int]) -> None:
        if packet_id not in self._subscribe_ids:
            raise wire.ProtocolError(f"SUBACK for packet id {packet_id}, not ours", wire.PROTOCOL_ERROR)
        self._subscribe_ids.discard(packet_id)
        topics = [f.subscription(self.settings.mqtt_share_group) for f in self.filters]
        if len(codes) != len(topics):  # [MQTT-3.8.4-6]: one reason code per topic filter
            raise wire.ProtocolError(f"SUBACK with {len(codes)} codes for {len(topics)} filters")
        self.refused = [topic for topic, code in zip(topics, codes, strict=True) if code >= 0x80]
        if not self.refused:
            self.subscribed = True
            return
        # Not ready (/ready says so) until every subscription is granted: ask again later, as
        # the broker's ACL may change; a reconnect asks again too.
        log.error("mqtt: the broker refused the subscriptions %s; asking again in %.0f s",
                  self.refused, RESUBSCRIBE_AFTER)  # fmt: skip
        assert self._loop is not None
        generation = self.generation
        self._loop.call_later(RESUBSCRIBE_AFTER, self._resubscribe, generation)

    def _resubscribe(self, generation: int) -> None:
        if self.connected and self.generation == generation and not self.subscribed:
            self._subscribe()

    def _resume_reading(self) -> None:
        if self._reading_paused and self._link is not None:
            self._reading_paused = False
            self._pong_due = False  # a PINGRESP may have waited unread: the next period checks
            self._link.resume_reading()

    # ---- acknowledging ------------------------------------------------------------------------

    def is_current(self, message: Message) -> bool:
        """Whether the connection a message came on is still the live one."""
        return message.generation == self.generation and self.connected

    def done(self, message: Message) -> None:
        """Acknowledge a finished message (if its connection lives), in arrival order, and release
        its buffer slot."""
        if message.qos and message.generation == self.generation and self.connected:
            slots = self._ack_slots
            slot = slots.get(message.mid)
            if slot is not None:
                slot[2] = 1
                acks = self._acks
                while acks and acks[0][2]:
                    packet_id, qos, _ = acks.popleft()
                    del slots[packet_id]
                    self._write((_PUBACK_HEAD if qos == 1 else _PUBREC_HEAD) + _U16(packet_id))
        self._released += 1
        if self._reading_paused and self.depth <= self.buffer_max:
            self._resume_reading()

    # ---- writing ------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._out:
            return
        data = b"".join(self._out)
        self._out.clear()
        if self._link is not None:
            self._link.write(data)

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool, props: bytes = _NO_PROPS) -> None:
        """Publish (the dead-letter publisher's entry point); thread-safe. `props`: an encoded
        MQTT 5 property block (left out under 3.1.1)."""
        if threading.get_ident() != self._loop_thread:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self.publish, topic, payload, qos, retain, props)
            return
        encoded = topic.encode()
        if self._pending or not self._can_send(qos):
            if len(self._pending) + self._held_count >= OUTGOING_QUEUE_MAX:
                self._drop("outgoing queue full")
                return
            self._pending.append((encoded, payload, qos, retain, props))
            return
        self._send(encoded, payload, qos, retain, props)

    @property
    def _notification_props(self) -> bytes:
        """NOTIFICATION_MARK in a share group, where No Local cannot keep our own notifications (and
        the other members') away; nothing otherwise: the property costs the broker ~1.5 µs per
        message, ~12 messages per ingested Observation (make bench: 42 -> 60 µs/obs of broker CPU)."""
        return _NOTIFICATION_PROPS if self.settings.mqtt_share_group else _NO_PROPS

    def publish_notification(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        """Publish a change notification (the Notifier's entry point), marked in a share group."""
        self.publish(topic, payload, qos, retain, self._notification_props)

    def publish_notifications(self, items: Sequence[tuple[str, bytes, bool]], qos: int) -> None:
        """publish_notification of each (topic, payload, retain), in order. At QoS 0 (the default,
        ~12 messages per created Observation) the checks are made once for all of them: nothing
        in between can change them, the writes are only collected here. When they cannot go out
        now (the socket's buffer is past its mark, or the broker away) the batch waits as it is,
        in the bounded queue, and is encoded when the socket drains (_pump)."""
        props = self._notification_props
        if qos or threading.get_ident() != self._loop_thread:
            for topic, payload, retain in items:
                self.publish(topic, payload, qos, retain, props)
            return
        if self._held or not self._can_send(0):
            room = max(OUTGOING_QUEUE_MAX - len(self._pending) - self._held_count, 0)
            if len(items) > room:
                for _ in range(len(items) - room):
                    self._drop("outgoing queue full")
                items = items[:room]
            if items:
                self._held.append((items, props))
                self._held_count += len(items)
            return
        self._write_qos0(items, props)

    def _write_qos0(self, items: Iterable[tuple[str, bytes, bool]], props: bytes) -> None:
        """Encode QoS 0 publications into the write buffer (the caller checked _can_send(0))."""
        encoder = self._qos0
        if encoder is None or encoder.level != self._level or encoder.props is not props:
            encoder = self._qos0 = wire.Qos0Publisher(self._level, props)
        if isinstance(items, wire.Grouped):
            too_large = encoder.encode_grouped(items, self._retain_ok, self._max_out, self._out)
        else:
            too_large = encoder.encode(items, self._retain_ok, self._max_out, self._out)
        for size in too_large:  # [MQTT-3.2.2-15]
            self._drop(f"{size} bytes exceed the broker's Maximum Packet Size {self._max_out}")
        if self._out and not self._flush_scheduled:
            self._flush_scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    def _can_send(self, qos: int) -> bool:
        return (
            self.connected and not self._write_paused and (qos == 0 or len(self._inflight) < self._send_quota)
        )

    def _encode(
        self, topic: bytes, payload: bytes, qos: int, retain: bool, packet_id: int, props: bytes
    ) -> bytes | None:
        """The PUBLISH within the broker's limits, or None if it is too large for it."""
        encoded = wire.publish(topic, payload, qos, retain, packet_id, self._level, props)
        if len(encoded) > self._max_out:  # [MQTT-3.2.2-15]: the broker would disconnect us
            self._drop(f"{len(encoded)} bytes exceed the broker's Maximum Packet Size {self._max_out}")
            return None
        return encoded

    def _send(self, topic: bytes, payload: bytes, qos: int, retain: bool, props: bytes) -> None:
        # Within what the broker announced: a lower QoS (MQTT-3.2.2-11), no retain (MQTT-3.2.2-14).
        qos = min(qos, self._max_qos)
        retain = retain and self._retain_ok
        packet_id = self._new_id() if qos else 0
        encoded = self._encode(topic, payload, qos, retain, packet_id, props)
        if encoded is None:
            return
        if qos:
            self._inflight[packet_id] = _Outgoing(topic, payload, qos, retain, props)
        self._write(encoded)

    def _pump(self) -> None:
        """Send queued publications while the broker's window and the socket allow."""
        pending = self._pending
        while pending and self._can_send(pending[0][2]):
            self._send(*pending.popleft())
        held = self._held
        while held and self._can_send(0):
            items, props = held.popleft()
            self._held_count -= len(items)
            self._write_qos0(items, props)
        self._wake_drained()

    @property
    def backlog(self) -> int:
        """Publications waiting for the socket or the broker's window."""
        return len(self._pending) + self._held_count

    async def drained(self) -> None:
        """Return once at most BACKLOG_LOW publications wait, if more than BACKLOG_HIGH do now;
        at once while the broker is away, and after DRAIN_WAIT seconds at most."""
        if not self.connected or self.backlog <= BACKLOG_HIGH:
            return
        waiter = self._drain_waiter
        if waiter is None or waiter.done():
            waiter = self._drain_waiter = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(waiter), DRAIN_WAIT)

    def _wake_drained(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done() and (not self.connected or self.backlog <= BACKLOG_LOW):
            waiter.set_result(None)

    def _forget_session(self) -> None:
        """Session present 0: the broker has no session state, so neither may we (MQTT-3.2.2-5).
        Unacknowledged publications go back to the queue as new ones; those already released
        (PUBREC seen) reached the broker and are done."""
        fresh = [
            (o.topic, o.payload, o.qos, o.retain, o.props) for o in self._inflight.values() if not o.released
        ]
        self._inflight.clear()
        self._pending.extendleft(reversed(fresh))

    def _resend(self) -> None:
        """After a reconnect: unacknowledged publications again (with DUP), then the queue (§4.4)."""
        for packet_id, outgoing in list(self._inflight.items()):
            if outgoing.released:
                self._write(wire.ack(wire.PUBREL, packet_id))
                continue
            outgoing.sent += 1
            encoded = None
            if outgoing.sent > RESEND_MAX:
                self._drop(f"no acknowledgement after {RESEND_MAX} connections")
            elif outgoing.qos > self._max_qos or (outgoing.retain and not self._retain_ok):
                self._drop("over the reconnected broker's Maximum QoS or Retain Available")
            else:
                encoded = self._encode(
                    outgoing.topic, outgoing.payload, outgoing.qos, outgoing.retain, packet_id, outgoing.props
                )
            if encoded is None:
                del self._inflight[packet_id]
            else:
                self._write(wire.with_dup(encoded))
        self._pump()

    def _new_id(self) -> int:
        """A packet id in 1..65535 not in use by an unacknowledged publication or subscription."""
        for _ in range(65535):
            self._next_id = self._next_id + 1 if self._next_id < 65535 else 1
            if self._next_id not in self._inflight and self._next_id not in self._subscribe_ids:
                return self._next_id
        raise RuntimeError("all 65,535 MQTT packet ids are in use")

    def _drop(self, why: str) -> None:
        self.dropped += 1
        now = time.monotonic()
        if now - self._last_drop_log > 10:
            self._last_drop_log = now
            log.warning("mqtt: dropped a publication (%s); %d dropped so far", why, self.dropped)
