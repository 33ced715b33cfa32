# SPDX-License-Identifier: Apache-2.0
"""The hub's one broker connection: an MQTT 5 / 3.1.1 client on the asyncio event loop.

Why not paho: with paho's network loop in a thread, the hub spent ~40 % of its core in paho
(a lock and a queue per acknowledgement and per publish, and a thread hop per batch) and most of
another ~27 % publishing notifications one packet at a time. Here the socket is an asyncio
protocol: each chunk read is split into packets by hub/mqtt/wire.py and handed to `deliver` as one
list; acknowledgements and publications are appended to one buffer that is written once per loop
turn.

Acknowledgement is manual: `done(message)` sends PUBACK (PUBREC for QoS 2) after the writer has
committed. The session is persistent (clean start off, session expiry set), so what is published
while the hub is away waits at the broker. Reconnects back off (1 s doubling to 30 s) and
resubscribe; each connection has a generation number so that a message received on a connection
that has since dropped is never acknowledged with a packet id of the new one. The broker sends at
most `ingest_buffer_max` unacknowledged messages (MQTT 5 Receive Maximum); QoS 0 input beyond it
pauses reading the socket. Outgoing QoS 1/2 publications respect the broker's Receive Maximum;
beyond it they wait in a bounded queue, and past its cap they are dropped and counted
(notifications are best effort: the data is safe in the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from hub.config import Settings
from hub.ingest.dispatch import Message
from hub.mqtt import wire
from hub.mqtt.topics import TopicFilter

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
OUTGOING_QUEUE_MAX = 20_000
# Bytes the socket may buffer before publications wait in the bounded queue instead: kept small,
# because acknowledgements are written behind whatever is buffered, and a backlog of QoS 0
# notifications there delayed them by seconds (the broker then stops delivering).
WRITE_BUFFER_HIGH = 256 * 1024


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


@dataclass
class _Outgoing:
    """A QoS 1/2 publication awaiting its acknowledgement (`released`: PUBREC seen, PUBREL sent)."""

    topic: bytes
    payload: bytes
    qos: int
    retain: bool
    released: bool = False


class _WebSocketLink:
    """The WebSocket counterpart of _Protocol's `active` flag."""

    active = True


class _Protocol(asyncio.Protocol):
    """Hands the transport's events to the client, until the client detaches it."""

    def __init__(self, client: MqttClient) -> None:
        self.client = client
        self.active = True  # False once the client has moved on: late events are ignored

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        stream.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        self.client._attach(stream.write, stream, stream.close, self)

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
        self.generation = 0
        self.connected = False
        self.subscribed = False  # the current connection's subscriptions are acknowledged
        self.dropped = 0  # publications refused because the outgoing queue was full
        self._v5 = settings.mqtt_protocol == "5"
        self._level = wire.MQTT5 if self._v5 else wire.MQTT311
        self._received = 0
        self._released = 0
        self._decoder = wire.Decoder()
        self._sink: Callable[[bytes], Any] | None = None
        self._transport: asyncio.Transport | None = None
        self._close_transport: Callable[[], Any] | None = None
        self._owner: _Protocol | _WebSocketLink | None = None
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._write_paused = False
        self._reading_paused = False
        self._inflight: dict[int, _Outgoing] = {}
        self._pending: deque[tuple[bytes, bytes, int, bool]] = deque()
        self._send_quota = 65535  # the broker's Receive Maximum
        self._next_id = 0
        self._subscribe_ids: set[int] = set()
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
        if self.connected and self._sink is not None:
            self._flush()
            self._sink(wire.disconnect(self._level, 0 if end_session else None))
            if self._close_transport is not None:
                self._close_transport()
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
            self._shut()
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
            self._keepalive(int(ack.props.get(wire.SERVER_KEEP_ALIVE, KEEPALIVE)))
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
        context = ssl.create_default_context() if self.address.tls else None
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
            ws = await session.ws_connect(url, protocols=("mqtt",), ssl=context or True, autoping=True)
        except BaseException:
            await session.close()
            raise
        outgoing: asyncio.Queue[bytes | None] = asyncio.Queue()
        link = _WebSocketLink()

        async def pump() -> None:
            try:
                while (data := await outgoing.get()) is not None:
                    await ws.send_bytes(data)
                await ws.close()
            except (ConnectionError, RuntimeError):
                pass

        async def read() -> None:
            writer = asyncio.create_task(pump())
            try:
                async for frame in ws:
                    if frame.type == aiohttp.WSMsgType.BINARY and link.active:
                        self._on_data(frame.data)
            finally:
                outgoing.put_nowait(None)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer, 2)
                await session.close()
                if link.active:
                    self._on_lost(None)

        reader = asyncio.create_task(read())

        def close() -> None:
            outgoing.put_nowait(None)
            reader.cancel()

        self._attach(outgoing.put_nowait, None, close, link)

    def _connect_packet(self) -> bytes:
        props = {}
        if self._v5:
            props = {
                wire.SESSION_EXPIRY: self.settings.mqtt_session_expiry,
                # The broker sends at most this many unacknowledged messages: the buffer's bound.
                wire.RECEIVE_MAXIMUM: max(1, min(self.buffer_max, 65535)),
            }
        return wire.connect(
            self.client_id,
            self._level,
            KEEPALIVE,
            clean_start=False,
            username=self.address.username,
            password=self.address.password,
            props=props,
        )

    def _attach(
        self,
        sink: Callable[[bytes], Any],
        transport: asyncio.Transport | None,
        close: Callable[[], Any],
        owner: _Protocol | _WebSocketLink,
    ) -> None:
        self._sink = sink
        self._transport = transport
        self._close_transport = close
        self._owner = owner
        self._write_paused = False
        self._reading_paused = False

    def _detach(self) -> None:
        self._shut()
        if self._owner is not None:
            self._owner.active = False  # its late events (connection_lost, data) are not ours
        self._owner = None
        self._sink = self._transport = self._close_transport = None
        self._out.clear()
        self.connected = self.subscribed = False

    def _shut(self) -> None:
        if self._close_transport is not None:
            self._close_transport()

    def _on_lost(self, exc: Exception | None) -> None:
        self.connected = self.subscribed = False
        if exc is not None and not self._closing:
            log.warning("mqtt: connection lost: %s", exc)
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    async def _keepalive(self, interval: int) -> None:
        """PINGREQ every half keep-alive; a PINGRESP missing by the next one drops the connection."""
        period = max(interval / 2, 1.0) if interval else KEEPALIVE / 2
        while True:
            await asyncio.sleep(period)
            # While reading is paused (ingest behind) the PINGRESP waits behind unread messages: not
            # the broker's fault. Seen as reconnects under load by bench/deployed.py (issue 11).
            if self._pong_due and not self._reading_paused:
                log.warning("mqtt: no PINGRESP from %s; reconnecting", self.address.host)
                self._shut()
                return
            self._pong_due = True
            self._write(wire.PINGREQ_PACKET)

    # ---- reading ------------------------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        self._pong_due = False  # anything from the broker shows the connection is alive
        try:
            packets = self._decoder.feed(data)
        except wire.ProtocolError as error:
            log.error("mqtt: malformed data from %s (%s); reconnecting", self.address.host, error)
            self._shut()
            return
        messages: list[Message] = []
        now = time.time()
        level = self._level
        for kind, flags, body in packets:
            try:
                if kind == wire.PUBLISH:
                    topic, packet_id, payload = wire.read_publish(flags, body, level)
                    if not self._stopping:
                        qos = (flags >> 1) & 0x03
                        messages.append(Message(topic, payload, packet_id, qos, now, self.generation))
                else:
                    self._on_control(kind, body)
            except (wire.ProtocolError, UnicodeDecodeError) as error:
                log.error("mqtt: malformed packet of type %d from %s (%s); reconnecting", kind,
                          self.address.host, error)  # fmt: skip
                self._shut()
                break
        if messages:
            self._received += len(messages)
            self.deliver(messages)
            if self.depth >= self.buffer_max and self._transport is not None and not self._reading_paused:
                self._reading_paused = True  # the writer is behind (database away?): stop reading
                self._transport.pause_reading()

    def _on_control(self, kind: int, body: bytes) -> None:
        level = self._level
        if kind == wire.PUBACK or kind == wire.PUBCOMP:
            self._inflight.pop(wire.read_packet_id(body), None)
            self._pump()
        elif kind == wire.PUBREC:
            packet_id = wire.read_packet_id(body)
            outgoing = self._inflight.get(packet_id)
            if outgoing is not None and len(body) > 2 and body[2] >= 0x80:
                del self._inflight[packet_id]  # refused (MQTT 5): no PUBREL follows
                self._pump()
            else:
                if outgoing is not None:
                    outgoing.released = True
                self._write(wire.ack(wire.PUBREL, packet_id))
        elif kind == wire.PUBREL:
            self._write(wire.ack(wire.PUBCOMP, wire.read_packet_id(body)))
        elif kind == wire.PINGRESP:
            self._pong_due = False
        elif kind == wire.CONNACK:
            self._on_connack(wire.read_connack(body, level))
        elif kind == wire.SUBACK:
            packet_id, codes = wire.read_suback(body, level)
            self._subscribe_ids.discard(packet_id)
            refused = [self.filters[i].subscription(self.settings.mqtt_share_group)
                       for i, code in enumerate(codes) if code >= 0x80 and i < len(self.filters)]  # fmt: skip
            if refused:
                log.error("mqtt: the broker refused the subscriptions %s", refused)
            self.subscribed = True
        elif kind == wire.UNSUBACK:
            self._subscribe_ids.discard(wire.read_packet_id(body))
            if self._unsubscribed is not None and not self._unsubscribed.done():
                self._unsubscribed.set_result(None)
        elif kind == wire.DISCONNECT:
            reason, why = wire.read_reason(body, level)
            log.warning("mqtt: the broker disconnected the hub: reason 0x%02x %s", reason, why or "")
            self._shut()

    def _on_connack(self, ack: wire.ConnAck) -> None:
        # Handled here, not after the awaiting coroutine resumes: the broker sends a resumed
        # session's queued messages right behind CONNACK, often in the same read.
        if ack.reason == 0:
            self.generation += 1
            self.connected = True
            self._pong_due = False
            self._send_quota = int(ack.props.get(wire.RECEIVE_MAXIMUM, 65535))
            self._resend()
            self._subscribe()
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(ack)

    def _subscribe(self) -> None:
        group = self.settings.mqtt_share_group
        qos = self.settings.mqtt_qos
        topics = [f.subscription(group) for f in self.filters]
        if not topics:
            self.subscribed = True
            return
        # No Local keeps our own notifications on create topics from coming back (MQTT 5, unshared).
        options = qos | (0x04 if self._v5 and not group else 0)
        packet_id = self._new_id()
        self._subscribe_ids.add(packet_id)
        self._write(wire.subscribe(packet_id, self._level, [(topic, options) for topic in topics]))

    def _resume_reading(self) -> None:
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()

    # ---- acknowledging ------------------------------------------------------------------------

    def is_current(self, message: Message) -> bool:
        """Whether the connection a message came on is still the live one."""
        return message.generation == self.generation and self.connected

    def done(self, message: Message) -> None:
        """Acknowledge a finished message (if its connection lives) and release its buffer slot."""
        if message.qos and message.generation == self.generation and self.connected:
            self._write(wire.ack(wire.PUBACK if message.qos == 1 else wire.PUBREC, message.mid))
        self._released += 1
        if self._reading_paused and self.depth < self.buffer_max:
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
        if self._sink is not None:
            self._sink(data)

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        """Publish (the Notifier's and the dead-letter publisher's entry point); thread-safe."""
        if threading.get_ident() != self._loop_thread:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self.publish, topic, payload, qos, retain)
            return
        encoded = topic.encode()
        if self._pending or not self._can_send(qos):
            if len(self._pending) >= OUTGOING_QUEUE_MAX:
                self._drop()
                return
            self._pending.append((encoded, payload, qos, retain))
            return
        self._send(encoded, payload, qos, retain)

    def _can_send(self, qos: int) -> bool:
        return (
            self.connected and not self._write_paused and (qos == 0 or len(self._inflight) < self._send_quota)
        )

    def _send(self, topic: bytes, payload: bytes, qos: int, retain: bool) -> None:
        packet_id = 0
        if qos:
            packet_id = self._new_id()
            self._inflight[packet_id] = _Outgoing(topic, payload, qos, retain)
        self._write(wire.publish(topic, payload, qos, retain, packet_id, self._level))

    def _pump(self) -> None:
        """Send queued publications while the broker's window and the socket allow."""
        pending = self._pending
        while pending and self._can_send(pending[0][2]):
            self._send(*pending.popleft())

    def _resend(self) -> None:
        """After a reconnect: unacknowledged publications again (with DUP), then the queue (§4.4)."""
        for packet_id, outgoing in self._inflight.items():
            if outgoing.released:
                self._write(wire.ack(wire.PUBREL, packet_id))
            else:
                encoded = wire.publish(outgoing.topic, outgoing.payload, outgoing.qos, outgoing.retain,
                                       packet_id, self._level)  # fmt: skip
                self._write(wire.with_dup(encoded))
        self._pump()

    def _new_id(self) -> int:
        """A packet id in 1..65535 not in use by an unacknowledged publication or subscription."""
        for _ in range(65535):
            self._next_id = self._next_id + 1 if self._next_id < 65535 else 1
            if self._next_id not in self._inflight and self._next_id not in self._subscribe_ids:
                return self._next_id
        raise RuntimeError("all 65,535 MQTT packet ids are in use")

    def _drop(self) -> None:
        self.dropped += 1
        now = time.monotonic()
        if now - self._last_drop_log > 10:
            self._last_drop_log = now
            log.warning("mqtt: outgoing queue full (%d); dropped %d publications so far",
                        OUTGOING_QUEUE_MAX, self.dropped)  # fmt: skip
