# SPDX-License-Identifier: Apache-2.0
"""What docs/replicate.md says about replicas and broker sessions, shown on the compose broker.

A replica that goes away (a pod replaced or scaled in) leaves its persistent session at the
broker, and mosquitto keeps handing that session its share of the group's messages until the
replica returns under the same client id or the session expires.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as paho
from deploy_helpers import HUB_PASSWORD, DeployBroker, client
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

TOPIC = "v1.1/Datastreams(1)/Observations"


class Replica:
    """A hub-like subscriber: the hub's account, a persistent session, one $share group."""

    def __init__(self, port: int, client_id: str) -> None:
        self.received: list[bytes] = []
        self._lock = threading.Lock()
        self.paho = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        self.paho.username_pw_set("twinhub", HUB_PASSWORD)
        self.paho.on_message = self._on_message
        subscribed = threading.Event()
        self.paho.on_subscribe = lambda *args: subscribed.set()
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 3600
        self.paho.connect("127.0.0.1", port, clean_start=False, properties=properties)
        self.paho.loop_start()
        self.paho.subscribe(f"$share/twinhub/{TOPIC}", qos=1)
        assert subscribed.wait(5)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.received.append(msg.payload)

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def leave(self) -> None:
        """Disconnect, keeping the session (what a killed or replaced pod does)."""
        self.paho.disconnect()
        self.paho.loop_stop()


def wait_until(condition: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_an_absent_replica_keeps_its_share_until_it_returns(deploy_broker: DeployBroker) -> None:
    port = deploy_broker.mqtt_port
    staying, leaving = Replica(port, "twinhub-a"), Replica(port, "twinhub-b")
    leaving.leave()
    with client(port, "operator") as operator:
        for seq in range(20):
            operator.publish(TOPIC, str(seq).encode())
    returned = Replica(port, "twinhub-b")
    try:
        wait_until(lambda: staying.count() + returned.count() >= 20)
        assert returned.count() > 0  # the absent session was handed its share while away
        assert sorted(staying.received + returned.received, key=int) == [str(n).encode() for n in range(20)]
    finally:
        staying.leave()
        returned.leave()
