# SPDX-License-Identifier: Apache-2.0
"""deploy/mosquitto: who may publish and read what, against the real broker started as compose starts it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg
import paho.mqtt.client as paho
import pytest
from deploy_helpers import HUB_PASSWORD, Client, DeployBroker, client, compose_file
from mqtt_helpers import count, make_entities, make_pool, observation, wait_for
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from hub.config import Settings
from hub.mqtt.service import IngestService


def arrives(reader: Client, topic: str, port: int, account: str, marker_writer: Client) -> bool:
    """Whether a message that `account` publishes on `topic` reaches `reader`.

    The writer is a fresh connection (mosquitto disconnects a client whose publish it refuses). A
    marker published afterwards by an account that may publish there bounds the wait: the broker
    delivers one topic's messages to a subscriber in order, so once the marker is in, the probe
    either arrived before it or was refused.
    """
    probe, marker = f"probe {time.monotonic_ns()}".encode(), f"marker {time.monotonic_ns()}".encode()
    with client(port, account) as writer:
        writer.publish(topic, probe)
    marker_writer.publish(topic, marker)
    deadline = time.monotonic() + 5
    while marker not in reader.received(topic):
        assert time.monotonic() < deadline, f"the marker on {topic} never arrived"
        time.sleep(0.02)
    return probe in reader.received(topic)


INGEST_TOPICS = [
    "v1.1/Observations",
    "v1.1/Datastreams(7)/Observations",
    "v1.1/MultiDatastreams(2)/Observations",
    "v1.0/Datastreams(7)/Observations",
    "senml/meter-1",
    "v3/app/devices/dev-1/up",
    "application/3/device/00aa/event/up",
    "airrohr/esp8266-1/data",
    "shellypro3em-1/events/rpc",
    "shellies/shellyem-AA8900/emeter/0/power",
    "tele/tasmota_1/SENSOR",
    "homeassistant/sensor/dev/temp/config",
    "zigbee2mqtt/kitchen",
    "telraam/9000/traffic",
]


@pytest.mark.parametrize("topic", INGEST_TOPICS)
def test_only_operators_publish_ingest_topics(deploy_broker: DeployBroker, topic: str) -> None:
    port = deploy_broker.mqtt_port
    with client(port, "hub") as hub, client(port, "operator") as operator:
        hub.subscribe(topic)
        assert not arrives(hub, topic, port, "anonymous", operator)
        assert arrives(hub, topic, port, "operator", operator)


@pytest.mark.parametrize("transport", ["tcp", "websockets"])
def test_everyone_reads_notifications_only_the_hub_publishes_them(
    deploy_broker: DeployBroker, transport: str
) -> None:
    port = deploy_broker.mqtt_port if transport == "tcp" else deploy_broker.websocket_port
    topic = "v1.1/Things(1)"
    tcp = deploy_broker.mqtt_port
    with (
        client(tcp, "hub") as hub,
        client(tcp, "operator") as operator,
        client(port, "anonymous", transport) as viewer,
    ):
        viewer.subscribe("v1.1/#")
        assert arrives(viewer, topic, tcp, "hub", hub)
        assert not arrives(viewer, topic, tcp, "anonymous", hub)
        assert not arrives(viewer, topic, tcp, "operator", hub)
        # An operator's Observation on a create topic is seen by viewers too (STA §14: one topic tree).
        assert arrives(viewer, "v1.1/Datastreams(3)/Observations", tcp, "operator", operator)


def test_viewers_read_neither_device_topics_nor_dead_letters(deploy_broker: DeployBroker) -> None:
    port = deploy_broker.mqtt_port
    with (
        client(port, "hub") as hub,
        client(port, "operator") as operator,
        client(port, "anonymous") as viewer,
    ):
        viewer.subscribe("tele/#")
        viewer.subscribe("twinhub/errors/#")
        operator.subscribe("twinhub/errors/#")
        hub.subscribe("tele/#")
        operator.publish("tele/t1/SENSOR", b"{}")
        hub.publish("twinhub/errors/tele/t1/SENSOR", b'{"cause": "bad_json"}')
        deadline = time.monotonic() + 5
        while not hub.received("tele/t1/SENSOR") or not operator.received("twinhub/errors/tele/t1/SENSOR"):
            assert time.monotonic() < deadline, "the hub or the operator got nothing"
            time.sleep(0.02)
        time.sleep(0.2)
        assert viewer.messages == []


def test_a_wrong_password_is_refused(deploy_broker: DeployBroker) -> None:
    refused = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    refused.username_pw_set("operator", "not-the-password")
    outcome: list[Any] = []
    refused.on_connect = lambda client, userdata, flags, reason, props: outcome.append(reason)
    refused.connect("127.0.0.1", deploy_broker.mqtt_port)
    refused.loop_start()
    try:
        deadline = time.monotonic() + 5
        while not outcome:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        refused.loop_stop()
    assert outcome[0].is_failure
    assert "authori" in str(outcome[0]).lower() or "password" in str(outcome[0]).lower()


def test_compose_broker_healthcheck_reads_uptime(deploy_broker: DeployBroker) -> None:
    command = compose_file()["services"]["broker"]["healthcheck"]["test"]
    assert command[0] == "CMD"
    argv = [part.replace("1883", str(deploy_broker.mqtt_port)) for part in command[1:]]
    argv = [part.replace("$$", "$") for part in argv]
    finished = subprocess.run(argv, capture_output=True, timeout=20, check=False)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip(), "no uptime message"


async def test_two_hubs_share_the_ingest_stream(
    deploy_broker: DeployBroker, clean_db: str, tmp_path: Path
) -> None:
    """The hub account may subscribe through $share; two replicas split what operators publish."""
    entities = await make_entities(clean_db, datastreams=1)
    pools: list[asyncpg.Pool] = []
    services: list[IngestService] = []
    try:
        for replica in (1, 2):
            settings = Settings(
                database_url=clean_db,
                mqtt_url=f"mqtt://twinhub:{HUB_PASSWORD}@127.0.0.1:{deploy_broker.mqtt_port}",
                mqtt_client_id=f"twinhub-{replica}",
                mqtt_share_group="twinhub",
                data_dir=tmp_path / f"data{replica}",
                migrate_on_start=False,
                ingest_batch_ms=20,
                adapters=(),
            )
            pools.append(await make_pool(clean_db))
            service = IngestService(settings, pools[-1], lambda batch: None)
            service.start()
            services.append(service)
            await wait_for(service.client_ready)
        topic = f"v1.1/Datastreams({entities.datastreams[0]})/Observations"
        with client(deploy_broker.mqtt_port, "operator") as operator:
            for seq in range(40):
                operator.publish(topic, observation(seq))
        await wait_for(lambda: sum(s.stats.committed for s in services) >= 40)
        assert await count(clean_db) == 40
        assert all(s.stats.received > 0 for s in services), [s.stats.received for s in services]
    finally:
        for service in services:
            await service.stop()
        for pool in pools:
            await pool.close()
