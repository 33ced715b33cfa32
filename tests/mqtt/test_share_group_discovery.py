# SPDX-License-Identifier: Apache-2.0
"""Home Assistant discovery in a share group: every replica must know every discovered entity.

A shared subscription hands each message to one member only, so a discovery config published
while the replicas run (a device joining, Zigbee2MQTT answering Home Assistant's birth message)
would reach one replica; the state messages, shared, would then be dead-lettered by the others.
MQTT 5 §4.8.2 also lets a broker withhold retained messages from shared subscriptions (mosquitto
sends them). Discovery filters are therefore subscribed outside the group, by every replica.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from mqtt_helpers import Broker, Collector, connect, count, hub_settings, publish_all, replicas, wait_for

CONFIG_TOPIC = "homeassistant/sensor/0x00158d0001a2b3c4/temperature/config"
STATE_TOPIC = "zigbee2mqtt/terrace_weather"
CONFIG = {
    "dev": {"ids": ["zigbee2mqtt_0x00158d0001a2b3c4"], "name": "terrace_weather", "mdl": "WSDCGQ11LM"},
    "dev_cla": "temperature",
    "stat_t": STATE_TOPIC,
    "uniq_id": "0x00158d0001a2b3c4_temperature_zigbee2mqtt",
    "unit_of_meas": "°C",
    "val_tpl": "{{ value_json.temperature }}",
}
STATES = 40


def _publish_retained(port: int, topic: str, payload: bytes) -> None:
    client = connect(port)
    try:
        info = client.publish(topic, payload, qos=1, retain=True)
        info.wait_for_publish(10)
        assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("retained", [True, False], ids=["retained-before-start", "published-while-running"])
async def test_a_discovery_config_reaches_every_replica_of_a_share_group(
    clean_db: str, broker: Broker, tmp_path: Path, retained: bool
) -> None:
    config = json.dumps(CONFIG).encode()
    if retained:
        await asyncio.to_thread(_publish_retained, broker.port, CONFIG_TOPIC, config)
    dead = Collector(broker.port, "twinhub/errors/#")
    settings = hub_settings(
        clean_db, broker, tmp_path, mqtt_share_group="ingest", adapters=("home_assistant",)
    )
    try:
        async with replicas(settings) as services:
            if not retained:
                await asyncio.to_thread(publish_all, broker.port, [(CONFIG_TOPIC, config)])
            # each replica got the config itself (consumed), not one of them through the group
            await wait_for(lambda: all(s.stats.adapters["home_assistant", "consumed"] >= 1 for s in services))
            states = [(STATE_TOPIC, json.dumps({"temperature": 10 + i / 10}).encode()) for i in range(STATES)]
            await asyncio.to_thread(publish_all, broker.port, states, 1)
            await wait_for(lambda: sum(s.stats.committed for s in services) >= STATES)
            assert all(s.stats.committed > 0 for s in services)  # the group shared the states
    finally:
        dead.close()
    assert await count(clean_db) == STATES
    assert dead.messages == []
