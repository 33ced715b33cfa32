# SPDX-License-Identifier: Apache-2.0
"""Helpers for the deploy/ checks: the compose broker on free ports, MQTT clients per account, compose."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

DEPLOY = Path(__file__).parent.parent.parent / "deploy"
MOSQUITTO = DEPLOY / "mosquitto"

# The MQTT tests' helpers (entities, pools, waiting) serve here too.
sys.path.insert(0, str(Path(__file__).parent.parent / "mqtt"))

HUB_PASSWORD = "hub-secret-1"
OPERATOR_PASSWORD = "operator-secret-2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DeployBroker:
    """mosquitto started by deploy/mosquitto/start.sh with deploy/mosquitto/mosquitto.conf."""

    mqtt_port: int
    websocket_port: int
    process: subprocess.Popen[bytes]


def local_config(directory: Path, mqtt_port: int, websocket_port: int) -> Path:
    """The deploy config with this machine's ports and a private directory; everything else as shipped."""
    text = (MOSQUITTO / "mosquitto.conf").read_text()
    assert "listener 1883\n" in text
    assert "listener 9001\n" in text
    text = text.replace("listener 1883\n", f"listener {mqtt_port} 127.0.0.1\n")
    text = text.replace("listener 9001\n", f"listener {websocket_port} 127.0.0.1\n")
    text = text.replace("/mosquitto/config/", f"{directory}/config/").replace("/mosquitto/", f"{directory}/")
    # Started as root here, mosquitto would drop to a user that cannot write the tmp directory.
    text = f"user {pwd.getpwuid(os.getuid()).pw_name}\n" + text
    (directory / "config").mkdir(parents=True)
    (directory / "data").mkdir()
    (directory / "config" / "mosquitto.acl").write_text((MOSQUITTO / "mosquitto.acl").read_text())
    conf = directory / "config" / "mosquitto.conf"
    conf.write_text(text)
    return conf


@contextmanager
def deploy_broker_in(tmp_path: Path) -> Iterator[DeployBroker]:
    """mosquitto with the deploy config and ACL, started by start.sh as compose starts it."""
    mqtt_port, websocket_port = free_port(), free_port()
    conf = local_config(tmp_path / "broker", mqtt_port, websocket_port)
    environ = {
        **os.environ,
        "MOSQUITTO_CONF": str(conf),
        "HUB_MQTT_PASSWORD": HUB_PASSWORD,
        "OPERATOR_MQTT_PASSWORD": OPERATOR_PASSWORD,
    }
    log = (tmp_path / "mosquitto.log").open("ab")
    process = subprocess.Popen(["sh", str(MOSQUITTO / "start.sh")], env=environ, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while not _answers(mqtt_port) or not _answers(websocket_port):
            assert process.poll() is None, (tmp_path / "mosquitto.log").read_text()
            assert time.monotonic() < deadline, "mosquitto did not open its listeners"
            time.sleep(0.05)
        yield DeployBroker(mqtt_port, websocket_port, process)
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
    except OSError:
        return False
    return True


def tool(name: str) -> str:
    """A command installed with the dev extra (next to this Python), else from PATH; fails when missing."""
    import shutil

    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is not installed: `pip install -e '.[dev]'` brings it"
    return found


COMPOSE_ENV = {
    "DB_PASSWORD": "db-pw",
    "HUB_MQTT_PASSWORD": HUB_PASSWORD,
    "OPERATOR_MQTT_PASSWORD": OPERATOR_PASSWORD,
}


def render_compose(environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`docker compose config` of deploy/compose.yaml (the client alone; no Docker engine needed)."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        env_file = Path(scratch) / "env"
        env_file.write_text("".join(f"{key}={value}\n" for key, value in environ.items()))
        # Only the variables given here: neither the caller's environment nor a deploy/.env count.
        clean = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("TWINHUB_") and key not in COMPOSE_ENV
        }
        command = [tool("docker-compose"), "-f", str(DEPLOY / "compose.yaml"), "--env-file", str(env_file)]
        return subprocess.run(
            [*command, "config", "--format", "json"],
            capture_output=True,
            text=True,
            env=clean,
            timeout=60,
            check=False,
        )


def compose_file() -> dict[str, Any]:
    """deploy/compose.yaml as compose itself normalises it."""
    import json

    rendered = render_compose(COMPOSE_ENV)
    assert rendered.returncode == 0, rendered.stderr
    document: dict[str, Any] = json.loads(rendered.stdout)
    return document


ACCOUNTS: dict[str, tuple[str, str] | None] = {
    "anonymous": None,
    "hub": ("twinhub", HUB_PASSWORD),
    "operator": ("operator", OPERATOR_PASSWORD),
}


class Client:
    """A connected paho client (MQTT 5) that keeps what it receives."""

    def __init__(self, port: int, account: str, transport: str = "tcp") -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self.reason: Any = None
        self.paho = paho.Client(
            CallbackAPIVersion.VERSION2,
            protocol=MQTTProtocolVersion.MQTTv5,
            transport="websockets" if transport == "websockets" else "tcp",
        )
        credentials = ACCOUNTS[account]
        if credentials is not None:
            self.paho.username_pw_set(*credentials)
        self.paho.on_message = self._on_message
        self.paho.on_connect = self._on_connect
        self.paho.connect("127.0.0.1", port)
        self.paho.loop_start()
        assert self._connected.wait(5), "no CONNACK"

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.reason = reason
        self._connected.set()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload))

    def subscribe(self, topic_filter: str) -> None:
        done = threading.Event()
        self.paho.on_subscribe = lambda *args: done.set()
        self.paho.subscribe(topic_filter, qos=1)
        assert done.wait(5), "no SUBACK"

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 and wait for the PUBACK (also when the broker refuses the message)."""
        info = self.paho.publish(topic, payload, qos=1)
        info.wait_for_publish(5)

    def received(self, topic: str) -> list[bytes]:
        with self._lock:
            return [payload for got, payload in self.messages if got == topic]

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


@contextmanager
def client(port: int, account: str, transport: str = "tcp") -> Iterator[Client]:
    connected = Client(port, account, transport)
    try:
        yield connected
    finally:
        connected.close()
