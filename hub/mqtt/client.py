# SPDX-License-Identifier: Apache-2.0
"""The hub's one broker connection: paho-mqtt with its network loop in its own thread.

The thread hands received messages to the event loop in lists (one call_soon_threadsafe per
list, however many arrived meanwhile). Acknowledgement is manual: `done(message)` acks after the
writer has committed. The session is persistent (clean start off, session expiry set), so what
is published while the hub is away waits at the broker. Reconnects back off inside paho and
resubscribe in on_connect; each connection has a generation number so that a message received
on a connection that has since dropped is never acked with a packet id of the new one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from hub.config import Settings
from hub.ingest.dispatch import Message
from hub.mqtt.topics import TopicFilter

log = logging.getLogger("hub.mqtt")

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883, "ws": 80, "wss": 443}
KEEPALIVE = 30
UNSUPPORTED_PROTOCOL = (1, 132)  # CONNACK codes of a broker that does not speak MQTT 5


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


OUTGOING_QUEUE_MAX = 20_000


class MqttClient:
    """One paho client: subscriptions, batched hand-over, manual acks, publish for others."""

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
        self._v5 = settings.mqtt_protocol == "5"
        self._received = 0  # written by the network thread only
        self._released = 0  # written by the event loop only
        self._room = threading.Event()
        self._room.set()
        self._inbox: list[Message] = []
        self._inbox_lock = threading.Lock()
        self._stopping = False
        self._gone = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client = self._make_client()

    @property
    def depth(self) -> int:
        """Messages received and not yet finished (acked, rejected or released)."""
        return self._received - self._released

    # ---- life cycle -------------------------------------------------------------------------

    def _make_client(self) -> paho.Client:
        protocol = MQTTProtocolVersion.MQTTv5 if self._v5 else MQTTProtocolVersion.MQTTv311
        websockets = self.address.scheme in ("ws", "wss")
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=None if self._v5 else False,
            protocol=protocol,
            transport="websockets" if websockets else "tcp",
            manual_ack=True,
        )
        if websockets:
            client.ws_set_options(path=self.address.path)
        if self.address.scheme in ("mqtts", "wss"):
            client.tls_set()
        if self.address.username is not None:
            client.username_pw_set(self.address.username, self.address.password)
        client.reconnect_delay_set(1, 30)
        # Outgoing QoS 1 messages (notifications, dead letters) wait here for their PUBACK; an
        # overloaded or absent broker would otherwise grow it without bound (RSS rose to ~270 MB
        # under an ingest overload). Past the cap paho refuses the publish: notifications are
        # best effort, the data is safe in the store.
        client.max_queued_messages_set(OUTGOING_QUEUE_MAX)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def start(self) -> None:
        """Connect in the background (retrying with backoff) and start the network thread."""
        self._loop = asyncio.get_running_loop()
        properties = None
        if self._v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self.settings.mqtt_session_expiry
            # The broker sends at most this many unacknowledged messages: the buffer's bound.
            properties.ReceiveMaximum = min(self.buffer_max, 65535)
        self._client.connect_async(
            self.address.host, self.address.port, KEEPALIVE, clean_start=False, properties=properties
        )
        self._client.loop_start()

    def stop_reading(self) -> None:
        """Hand no more messages over; the ones not handed over are redelivered after reconnect."""
        self._stopping = True
        self._room.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect after the queued acks are sent, and join the network thread."""
        self._stopping = True
        self._room.set()
        if self.connected:
            self._gone.clear()
            self._client.disconnect()
            self._gone.wait(timeout)
        self._client.loop_stop()

    # ---- the network thread -------------------------------------------------------------------

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("mqtt: broker %s refused the connection: %s", self.address.host, reason)
            if self._v5 and reason.value in UNSUPPORTED_PROTOCOL:
                log.warning("mqtt: falling back to MQTT 3.1.1")
                self._v5 = False
                client._protocol = MQTTProtocolVersion.MQTTv311  # paho reconnects with it
                client._clean_session = False
            return
        self.generation += 1
        self.connected = True
        log.info("mqtt: connected to %s:%s (session present: %s)", self.address.host, self.address.port,
                 flags.session_present)  # fmt: skip
        group = self.settings.mqtt_share_group
        qos = self.settings.mqtt_qos
        # No Local keeps our own notifications on create topics from coming back (MQTT 5, unshared).
        topics = [f.subscription(group) for f in self.filters]
        if topics and self._v5:
            options = SubscribeOptions(qos=qos, noLocal=not group)
            client.subscribe([(topic, options) for topic in topics])
        elif topics:
            client.subscribe([(topic, qos) for topic in topics])

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        was = self.connected
        self.connected = self.subscribed = False
        self._gone.set()
        if was and not self._stopping:
            log.warning("mqtt: disconnected from %s (%s); reconnecting", self.address.host, reason)

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        failed = [code for code in codes if code.is_failure]
        if failed:
            log.error("mqtt: the broker refused subscriptions: %s", failed)
        self.subscribed = True

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        if self._stopping:
            return
        while self.depth >= self.buffer_max and not self._stopping:
            self._room.clear()  # the writer is behind (database away?): stop reading the socket
            if self.depth >= self.buffer_max:
                self._room.wait(0.5)
        message = Message(msg.topic, bytes(msg.payload), msg.mid, msg.qos, time.time(), self.generation)
        self._received += 1
        with self._inbox_lock:
            self._inbox.append(message)
            first = len(self._inbox) == 1
        if first:
            self._call(self._drain)

    def _call(self, callback: Callable[[], None]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(callback)

    # ---- the event loop -----------------------------------------------------------------------

    def _drain(self) -> None:
        with self._inbox_lock:
            messages, self._inbox = self._inbox, []
        if messages:
            self.deliver(messages)

    def is_current(self, message: Message) -> bool:
        """Whether the connection a message came on is still the live one."""
        return message.generation == self.generation and self.connected

    def done(self, message: Message) -> None:
        """Acknowledge a finished message (if its connection lives) and release its buffer slot."""
        if message.qos > 0 and self.is_current(message):
            self._client.ack(message.mid, message.qos)
        self._released += 1
        if not self._room.is_set() and self.depth < self.buffer_max:
            self._room.set()

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        """Publish from any thread (the Notifier's and the dead-letter publisher's entry point)."""
        self._client.publish(topic, payload, qos=qos, retain=retain)
