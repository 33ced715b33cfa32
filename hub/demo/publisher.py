# SPDX-License-Identifier: Apache-2.0
"""A QoS 1 publisher that bounds its in-flight window and counts what the broker acknowledged.

paho alone loses track beyond 65,535 outstanding QoS 1 messages and queues without limit
(LIMITS.md); here at most `window` messages are unacknowledged at any time: `publish` waits for
a free slot, and every PUBACK frees one. `counts()` says how many were handed over,
acknowledged and refused, so a load test can check its own figures.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from hub.demo import DemoError
from hub.mqtt.client import BrokerAddress

CONNECT_SECONDS = 10.0


class Stopped(Exception):
    """Publishing was stopped while waiting for the broker."""


class PublishError(DemoError):
    """The broker could not be reached or refused the connection."""


@dataclass(frozen=True)
class Counts:
    """What one publisher did so far."""

    sent: int
    acknowledged: int
    failed: int

    @property
    def in_flight(self) -> int:
        return self.sent - self.acknowledged - self.failed


class WindowedPublisher:
    """One paho client (network loop in its own thread) publishing at QoS 1 within a window."""

    def __init__(self, url: str, client_id: str, window: int = 1000) -> None:
        self.address = BrokerAddress.parse(url)
        self.window = window
        transport: Literal["websockets", "tcp"] = (
            "websockets" if self.address.scheme in ("ws", "wss") else "tcp"
        )
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv311,
            transport=transport,
        )
        if transport == "websockets":
            self._client.ws_set_options(path=self.address.path)
        if self.address.scheme in ("mqtts", "wss"):
            self._client.tls_set()
        if self.address.username:
            self._client.username_pw_set(self.address.username, self.address.password)
        self._client.max_inflight_messages_set(window)
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._sent = self._acknowledged = self._failed = 0
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._refused: str | None = None

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self._refused = str(reason)
        self._connected.set()

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._lock:
            self._acknowledged += 1
        if self._loop is not None and self._slots is not None:
            self._loop.call_soon_threadsafe(self._slots.release)

    async def start(self) -> None:
        """Connect (waiting up to CONNECT_SECONDS) and start the network thread."""
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self.window)
        try:
            await asyncio.to_thread(self._client.connect, self.address.host, self.address.port, 30)
        except OSError as exc:
            where = f"{self.address.host}:{self.address.port}"
            raise PublishError(f"cannot reach the MQTT broker at {where}: {exc.strerror or exc}") from exc
        self._client.loop_start()
        if not await asyncio.to_thread(self._connected.wait, CONNECT_SECONDS) or self._refused:
            self._client.loop_stop()
            raise PublishError(f"the MQTT broker refused the connection: {self._refused or 'no answer'}")

    async def publish(self, topic: str, payload: bytes, stop: asyncio.Event | None = None) -> None:
        """Publish at QoS 1, first waiting until fewer than `window` messages are unacknowledged;
        raise Stopped when `stop` is set while waiting (a broker that stopped acknowledging)."""
        assert self._slots is not None, "start() first"
        if self._slots.locked() and stop is not None:
            await self._acquire_unless(stop)
        else:
            await self._slots.acquire()
        info = self._client.publish(topic, payload, qos=1)
        with self._lock:
            if info.rc == paho.MQTT_ERR_SUCCESS or info.rc == paho.MQTT_ERR_NO_CONN:
                self._sent += 1  # without a connection paho keeps it and sends it on reconnect
                return
            self._sent += 1
            self._failed += 1
        self._slots.release()

    async def _acquire_unless(self, stop: asyncio.Event) -> None:
        assert self._slots is not None
        slot = asyncio.ensure_future(self._slots.acquire())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait((slot, stopped), return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not slot.done():
            slot.cancel()
            raise Stopped
        if stop.is_set():
            self._slots.release()
            raise Stopped

    async def drain(self, within: float, stop: asyncio.Event | None = None) -> bool:
        """Wait up to `within` seconds (or until `stop`) until every sent message is acknowledged."""
        deadline = asyncio.get_running_loop().time() + within
        while self.counts().in_flight > 0:
            if asyncio.get_running_loop().time() > deadline or (stop is not None and stop.is_set()):
                return False
            await asyncio.sleep(0.05)
        return True

    def counts(self) -> Counts:
        with self._lock:
            return Counts(self._sent, self._acknowledged, self._failed)

    async def stop(self) -> None:
        """Disconnect and stop the network thread."""
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
