# SPDX-License-Identifier: Apache-2.0
"""The device corpus end to end: every payload published on its family's standard topic to a real
mosquitto, read by one hub (adapters, provisioning, the writer) into PostgreSQL; each case then
finds its Observations, units and times in the store. A message of each adapter that carries no
measurement is dead-lettered with cause `no_readings` and counted per adapter in /metrics.

One broker, one hub and one publishing run serve every case (a module fixture), so the whole
corpus costs seconds."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from corpus_cases import Case, expected_time, load_cases, received_offset, same_value, sta_message
from dbutil import empty_tables

from adapters import load_adapters
from hub.app import MQTT, build_app
from hub.ingest.adapters import EXTRA_DEFAULT_TOPICS

sys.path.insert(0, str(Path(__file__).parent.parent / "mqtt"))
from mqtt_helpers import Broker, Collector, hub_settings, publish_all, wait_for

CASES = load_cases()
ADAPTER_CASES = [case for case in CASES if case.family != "sta"]
STA_CASES = [case for case in CASES if case.family == "sta"]

# One message per adapter that is well-formed but holds no measurement: each must be dead-lettered.
EMPTY_UPLINK = {
    "end_device_ids": {"device_id": "status-only", "dev_eui": "0000000000000E01"},
    "received_at": "2026-03-05T10:00:00Z",
    "uplink_message": {"received_at": "2026-03-05T10:00:00Z", "decoded_payload": {"Bat_status": 3, "Mod": 1}},
}
EMPTY_EVENT = {
    "time": "2026-03-05T10:00:00+00:00",
    "deviceInfo": {"devEui": "0000000000000e02", "deviceName": "ids-only"},
    "object": {"device_id": 1, "protocol_version": 2},
}
NO_READINGS: dict[str, tuple[str, Any]] = {
    "ttn": ("v3/empty@ttn/devices/status-only/up", EMPTY_UPLINK),
    "chirpstack": ("application/empty/device/0000000000000e02/event/up", EMPTY_EVENT),
    "tasmota": ("tele/switch-only/SENSOR", {"Time": "2026-03-05T11:00:00", "Switch1": "ON"}),
    "senml": ("senml/empty-pack", []),
    "shelly": (
        "shellyplus1-empty/events/rpc",
        {
            "src": "shellyplus1-empty",
            "method": "NotifyStatus",
            "params": {"ts": 1772704800, "switch:0": {"output": True}},
        },
    ),
    "sensor_community": (
        "airrohr/esp8266-1/data",
        {"esp8266id": "1", "sensordatavalues": [{"value_type": "samples", "value": "4700000"}]},
    ),
    "telraam": ("telraam/1/traffic", {"status_code": 200, "message": "ok", "report": []}),
    "home_assistant": ("zigbee2mqtt/not_yet_known", {"temperature": None}),
}
EMPTY_CONFIG = (
    "homeassistant/sensor/not_yet_known/temperature/config",
    {
        "stat_t": "zigbee2mqtt/not_yet_known",
        "uniq_id": "not-yet-known-t",
        "dev_cla": "temperature",
        "unit_of_meas": "°C",
        "val_tpl": "{{ value_json.temperature }}",
    },
)


# A discovery config whose template is outside the supported forms: dead-lettered, template named.
JINJA_CONFIG = (
    "homeassistant/sensor/jinja_only/temperature/config",
    {"stat_t": "jinja/only", "uniq_id": "jinja-only-t", "val_tpl": "{{ states('sensor.outside') | float }}"},
)


@dataclass
class Run:
    """What one publishing run left: stored streams, dead letters, counters and the time window."""

    streams: dict[str, dict[str, Any]]  # stream_key -> unit, observations
    sta: dict[int, list[dict[str, Any]]]  # Datastream id -> observations
    sta_datastream: int
    dead_letters: list[tuple[str, Any]]
    adapter_counts: dict[tuple[str, str], int]
    metrics: str
    started: datetime
    finished: datetime


def _json(value: Any) -> bytes:
    return orjson.dumps(value)


def _state_filters() -> tuple[str, ...]:
    """The Home Assistant topics: its defaults plus the corpus's own state topics."""
    adapter = load_adapters()["home_assistant"]
    states = {case.topic for case in ADAPTER_CASES if case.family == "home_assistant"}
    return (*adapter.topics, *EXTRA_DEFAULT_TOPICS["home_assistant"], *sorted(states))


async def _sta_datastream(client: TestClient[Any, Any]) -> int:
    thing = {
        "name": "corpus STA thing",
        "description": "native STA creates of the corpus",
        "Locations": [
            {
                "name": "here",
                "description": "a place",
                "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [3.72, 51.05]},
            }
        ],
        "Datastreams": [
            {
                "name": "corpus STA stream",
                "description": "any result",
                "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Observation",
                "unitOfMeasurement": {"name": None, "symbol": None, "definition": None},
                "Sensor": {"name": "s", "description": "s", "encodingType": "text/plain", "metadata": "s"},
                "ObservedProperty": {"name": "p", "definition": "urn:p", "description": "p"},
            }
        ],
    }
    response = await client.post("/v1.1/Things", json=thing)
    assert response.status == 201, await response.text()
    listing = await (await client.get("/v1.1/Datastreams?$filter=name eq 'corpus STA stream'")).json()
    return int(listing["value"][0]["@iot.id"])


async def _snapshot(dsn: str) -> tuple[dict[str, dict[str, Any]], dict[int, list[dict[str, Any]]]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT d.id, d.stream_key, d.unit_of_measurement::text AS unit, o.result::text AS result, "
            "o.phenomenon_time_start AS t0, o.phenomenon_time_end AS t1, o.result_time AS rt, "
            "o.parameters::text AS parameters "
            "FROM datastreams d JOIN observations o ON o.datastream_id = d.id ORDER BY o.id"
        )
    finally:
        await conn.close()
    streams: dict[str, dict[str, Any]] = {}
    sta: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        observation = {
            "result": orjson.loads(row["result"]),
            "start": row["t0"],
            "end": row["t1"],
            "result_time": row["rt"],
            "parameters": orjson.loads(row["parameters"]) if row["parameters"] else None,
        }
        if row["stream_key"] is None:
            sta.setdefault(row["id"], []).append(observation)
            continue
        entry = streams.setdefault(row["stream_key"], {"unit": orjson.loads(row["unit"]), "observations": []})
        entry["observations"].append(observation)
    return streams, sta


async def _scenario(dsn: str, directory: Path) -> Run:
    await empty_tables(dsn)
    broker = Broker(directory / "broker")
    broker.start()
    collector = None
    try:
        settings = hub_settings(
            dsn,
            broker,
            directory,
            ingest_batch_ms=20,
            timezone="Europe/Berlin",
            adapter_topics={"home_assistant": _state_filters()},
        )
        async with TestClient(TestServer(build_app(settings))) as client:
            service = client.server.app[MQTT]
            await wait_for(service.client_ready)
            collector = Collector(broker.port, "twinhub/errors/#")
            datastream = await _sta_datastream(client)
            configs = [(t, p) for case in ADAPTER_CASES for t, p in case.before]
            configs.append((EMPTY_CONFIG[0], _json(EMPTY_CONFIG[1])))
            publish_all(broker.port, [*configs, (JINJA_CONFIG[0], _json(JINJA_CONFIG[1]))])
            counts = service.stats.adapters  # discovery first: the states need their configs
            await wait_for(
                lambda: (
                    counts["home_assistant", "consumed"] >= len(configs)
                    and counts["home_assistant", "invalid"] >= 1
                ),
                within=20,
            )
            messages = [(case.topic, case.payload) for case in ADAPTER_CASES]
            messages += [sta_message(case, datastream) for case in STA_CASES]
            messages += [(topic, _json(payload)) for topic, payload in NO_READINGS.values()]
            started = datetime.now(UTC)
            received_before = service.stats.received
            publish_all(broker.port, messages)
            total = received_before + len(messages)
            await wait_for(
                lambda: service.stats.received >= total and service.stats.acknowledged >= total + 0,
                within=30,
            )
            await wait_for(lambda: len(collector.messages) >= len(NO_READINGS) + 1, within=10)
            finished = datetime.now(UTC)
            metrics = await (await client.get("/metrics")).text()
            adapter_counts = dict(service.stats.adapters)
        streams, sta = await _snapshot(dsn)
        return Run(
            streams, sta, datastream, list(collector.messages), adapter_counts, metrics, started, finished
        )
    finally:
        if collector is not None:
            collector.close()
        broker.stop()


@pytest.fixture(scope="module")
def run(db_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Publish the whole corpus once through a real broker into a hub and the store."""
    directory = tmp_path_factory.mktemp("corpus")
    began = time.monotonic()
    result = asyncio.run(_scenario(db_dsn, directory))
    print(f"corpus end to end: {len(CASES)} cases in {time.monotonic() - began:.1f} s")
    return result


def _unit(expected: str | None, value: Any) -> dict[str, Any]:
    if expected is not None:
        return {"symbol": expected, "definition": "http://unitsofmeasure.org/ucum.html"}
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return {"name": "unknown" if numeric else None, "symbol": None}


def _at(start: datetime, expected: str, run: Run) -> bool:
    """The stored time is the expected one; one relative to reception lies in the run's window."""
    offset = received_offset(expected)
    if offset is None:
        return start == expected_time(expected)
    return run.started + offset <= start <= run.finished + offset


@pytest.mark.parametrize("case", ADAPTER_CASES, ids=[case.id for case in ADAPTER_CASES])
def test_corpus_payload_is_stored_with_units_and_times(run: Run, case: Case) -> None:
    assert case.device is not None
    problems = []
    for want in case.expected:
        key = f"{case.family}:{case.device}:{want['stream'] or want['quantity']}"
        stream = run.streams.get(key)
        if stream is None:
            problems.append(f"no Datastream {key}")
            continue
        unit = _unit(want["unit"], want["value"])
        if any(stream["unit"].get(k) != v for k, v in unit.items()):
            problems.append(f"{key}: unit {stream['unit']} is not {unit}")
        found = [
            o
            for o in stream["observations"]
            if same_value(o["result"], want["value"]) and _at(o["start"], want["time"], run)
        ]
        if not found:
            problems.append(
                f"{key}: no Observation {want['value']} at {want['time']}: {stream['observations']}"
            )
    letters = [letter for topic, letter in run.dead_letters if letter["topic"] == case.topic]
    assert problems == []
    assert letters == []


@pytest.mark.parametrize("case", STA_CASES, ids=[case.id for case in STA_CASES])
def test_corpus_sta_create_is_stored(run: Run, case: Case) -> None:
    [want] = case.expected
    observations = run.sta.get(run.sta_datastream, [])
    found = [o for o in observations if same_value(o["result"], want["result"])]
    assert found, f"no Observation {want['result']} in {observations}"
    if want["phenomenonTime"] != "received":
        start, end = (expected_time(t) for t in want["phenomenonTime"])
        assert any(o["start"] == start and o["end"] == end for o in found)
    if "resultTime" in want:
        assert any(o["result_time"] == expected_time(want["resultTime"]) for o in found)
    if "parameters" in want:
        assert any(o["parameters"] == want["parameters"] for o in found)


@pytest.mark.parametrize("adapter", sorted(NO_READINGS))
def test_message_without_readings_is_dead_lettered_and_counted(run: Run, adapter: str) -> None:
    topic = NO_READINGS[adapter][0]
    letters = [letter for dead_topic, letter in run.dead_letters if letter["topic"] == topic]
    assert [(letter["cause"], letter["reason"].split(":")[0]) for letter in letters] == [
        ("no_readings", adapter)
    ]
    assert run.adapter_counts[adapter, "no_readings"] == 1
    line = f'twinhub_adapter_messages_total{{adapter="{adapter}",outcome="no_readings"}} 1.0'
    assert line in run.metrics


def test_unsupported_template_is_dead_lettered_naming_it(run: Run) -> None:
    letters = [letter for topic, letter in run.dead_letters if letter["topic"] == JINJA_CONFIG[0]]
    assert [letter["cause"] for letter in letters] == ["invalid"]
    assert "states('sensor.outside')" in letters[0]["reason"]
    assert run.adapter_counts["home_assistant", "invalid"] == 1
