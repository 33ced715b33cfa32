# SPDX-License-Identifier: Apache-2.0
"""Keep-alive (MQTT 5 §3.1.2.10): a reader paused by back-pressure is not a dead broker (issue 11)."""

from __future__ import annotations

import asyncio

import pytest

from hub.config import Settings
from hub.mqtt.client import MqttClient


def client_with_records(monkeypatch: pytest.MonkeyPatch) -> tuple[MqttClient, list[int], list[bytes]]:
    """A client that never connects; what it would write and whether it drops the connection."""
    client = MqttClient(Settings(mqtt_url="mqtt://127.0.0.1:1883"), [], lambda messages: None)
    dropped: list[int] = []
    written: list[bytes] = []
    monkeypatch.setattr(client, "_abort", lambda: dropped.append(1))
    monkeypatch.setattr(client, "_write", written.append)
    return client, dropped, written


async def test_no_pingresp_while_reading_is_paused_keeps_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, dropped, written = client_with_records(monkeypatch)
    client._reading_paused = True  # ingest is behind: the PINGRESP waits behind unread messages
    task = asyncio.create_task(client._keepalive(2))  # a PINGREQ every second
    try:
        await asyncio.sleep(2.5)
        assert dropped == []
        assert len(written) >= 2  # it went on pinging
        # Reading again, and still no answer: the next PINGREQ is owed a PINGRESP, and the period
        # after it finds none: now it is dead.
        client._reading_paused = False
        await asyncio.sleep(2.2)
        assert dropped == [1]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_any_data_from_the_broker_answers_the_ping(monkeypatch: pytest.MonkeyPatch) -> None:
    client, dropped, _ = client_with_records(monkeypatch)
    task = asyncio.create_task(client._keepalive(2))
    try:
        for _ in range(3):
            await asyncio.sleep(0.9)
            client._on_data(b"")  # bytes arrived (here: none complete yet); the broker is there
        assert dropped == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
