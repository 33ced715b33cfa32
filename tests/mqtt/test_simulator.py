# SPDX-License-Identifier: Apache-2.0
"""The demo city's simulator against a real broker and an in-process hub (issue 6): its devices'
native payloads pass through the real adapters into the store, with history, positions in three
cities, hourly traffic intervals and dead letters for the deliberately broken messages."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from mqtt_helpers import Broker, Collector, free_port, hub_settings, wait_for

from hub.app import MQTT, build_app
from hub.demo.cities import CITIES
from hub.demo.run import DEMO_ADAPTERS
from hub.demo.simulator import Simulator, SimulatorOptions, Tally

DISTRICTS = {(city.name, d.name): d for city in CITIES for d in city.districts}
DEVICES = 15  # every kind in every city
BACKFILL_HOURS = 2.5


@pytest_asyncio.fixture
async def hub(clean_db: str, broker: Broker, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    settings = hub_settings(clean_db, broker, tmp_path, ingest_batch_ms=20, adapters=DEMO_ADAPTERS)
    async with TestClient(TestServer(build_app(settings))) as client:
        await wait_for(client.server.app[MQTT].client_ready)
        yield client


async def _get(client: TestClient[Any, Any], path: str) -> Any:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    return await response.json()


async def _all(client: TestClient[Any, Any], path: str) -> list[dict[str, Any]]:
    """Every entity of a collection, following nextLinks."""
    page = await _get(client, path)
    values = list(page["value"])
    while "@iot.nextLink" in page:
        page = await _get(client, "/v1.1" + page["@iot.nextLink"].split("/v1.1", 1)[1])
        values += page["value"]
    return values


def _times(observation: dict[str, Any]) -> tuple[datetime, datetime]:
    start, _, end = observation["phenomenonTime"].partition("/")
    return datetime.fromisoformat(start), datetime.fromisoformat(end or start)


async def _run_simulator(hub: TestClient[Any, Any], broker: Broker) -> tuple[Simulator, list[str]]:
    lines: list[str] = []
    options = SimulatorOptions(
        mqtt_url=broker.url,
        devices=DEVICES,
        rate=60.0,
        backfill_hours=BACKFILL_HOURS,
        malformed_ratio=0.2,
        seed=7,
        duration=3.0,
        sta_url=str(hub.make_url("/v1.1")),
        client_id=f"simulator-test-{uuid.uuid4().hex[:8]}",
    )
    simulator = Simulator(options, say=lines.append)
    counts = await simulator.run()
    assert counts.failed == 0
    assert counts.acknowledged == counts.sent
    tally = simulator.tally
    assert counts.sent == tally.announced + tally.backfilled + tally.backfilled_sta + tally.live
    return simulator, lines


async def _settled(hub: TestClient[Any, Any], tally: Tally) -> dict[str, Any]:
    """Wait until the hub has dead-lettered every broken message and holds nothing back."""

    async def done() -> dict[str, Any] | None:
        checks: dict[str, Any] = (await (await hub.get("/ready")).json())["checks"]
        dead = sum(checks["dead_lettered"].values())
        return checks if dead >= tally.malformed and checks["buffer_depth"] == 0 else None

    await wait_for(done, within=60)
    checks = await done()
    assert checks is not None
    return checks


async def test_simulated_city_passes_through_the_adapters_into_the_store(
    hub: TestClient[Any, Any], broker: Broker
) -> None:
    simulator, lines = await _run_simulator(hub, broker)
    tally = simulator.tally
    assert tally.malformed > 0
    checks = await _settled(hub, tally)
    # Every deliberately broken message was rejected by its adapter, and nothing else was.
    assert sum(checks["dead_lettered"].values()) == tally.malformed
    assert any(line.startswith("simulator: sent ") for line in lines)

    things = await _all(hub, "/v1.1/Things?$expand=Locations&$top=100")
    assert len(things) == DEVICES
    cities = {t["properties"]["city"] for t in things}
    assert cities == {"Hamburg", "Leipzig", "München"}
    for thing in things:
        assert thing["Locations"], f"{thing['name']} has no Location"
        longitude, latitude = thing["Locations"][0]["location"]["coordinates"]
        district = DISTRICTS[(thing["properties"]["city"], thing["properties"]["district"])]
        assert abs(latitude - district.latitude) < 0.01  # within about a kilometre
        assert abs(longitude - district.longitude) < 0.015
    per_city = {(t["properties"]["city"], t["properties"]["domain"]) for t in things}
    assert len(per_city) == 9  # every domain in every city

    streams = await _all(hub, "/v1.1/Datastreams?$expand=Thing($select=properties)&$top=1000")
    by_domain: dict[str, set[str]] = {}
    for stream in streams:
        by_domain.setdefault(stream["Thing"]["properties"]["domain"], set()).add(
            stream["properties"]["quantity"]
        )
    assert {"active_power", "energy"} <= by_domain["energy"]
    assert {"air_temperature", "relative_humidity", "pm2_5", "pm10"} <= by_domain["climate"]
    assert {"car_count", "bicycle_count"} <= by_domain["traffic"]


async def test_traffic_counts_are_hourly_intervals_and_history_is_backfilled(
    hub: TestClient[Any, Any], broker: Broker
) -> None:
    simulator, _ = await _run_simulator(hub, broker)
    await _settled(hub, simulator.tally)
    now = datetime.now(UTC)
    history = now - timedelta(hours=BACKFILL_HOURS - 0.5)

    async def observations(quantity: str, adapter: str) -> list[dict[str, Any]]:
        query = (
            f"$filter=properties/quantity eq '{quantity}' and Thing/properties/adapter eq '{adapter}'"
            "&$top=1&$expand=Observations($orderby=phenomenonTime asc;$top=1000)"
        )
        found = await _get(hub, f"/v1.1/Datastreams?{query}")
        assert found["value"], f"no {quantity} Datastream of {adapter}"
        observations: list[dict[str, Any]] = found["value"][0]["Observations"]
        return observations

    cars = await observations("car_count", "telraam")
    assert len(cars) >= 2
    for observation in cars:
        start, end = _times(observation)
        assert end - start == timedelta(hours=1)
        assert start.minute == 0

    # Shelly's own frames carry their time: the counter has hours of history and never falls.
    energy = await observations("energy", "shelly")
    assert _times(energy[0])[0] < history
    results = [o["result"] for o in energy]
    assert results == sorted(results)

    # sensor.community pushes carry no time: their history came as STA Observations with a
    # measuring window, the live pushes as windows ending at the hub's receive time.
    particulates = await observations("pm2_5", "sensor_community")
    first_start, first_end = _times(particulates[0])
    assert first_start < history
    assert first_end - first_start == timedelta(seconds=145)
    assert _times(particulates[-1])[1] > now - timedelta(minutes=1)


class RawCollector(Collector):
    """Keeps payloads as bytes: the simulator's broken messages are not JSON."""

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self.messages.append((msg.topic, msg.payload))


def _simulate(*arguments: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TWINHUB_")}
    command = [sys.executable, "-m", "hub.cli", "simulate", *arguments]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


async def test_simulate_command_says_what_it_sent_and_the_broker_got_all_of_it(broker: Broker) -> None:
    collector = RawCollector(broker.port, "#")
    try:
        done = await asyncio.to_thread(
            _simulate, "--mqtt", broker.url, "--devices", "15", "--rate", "200", "--duration", "1",
            "--backfill-hours", "1", "--malformed-ratio", "0.1",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        summary = next(line for line in done.stdout.splitlines() if line.startswith("simulator: sent "))
        sent = int(summary.split()[2])
        assert f"{sent} acknowledged by the broker, 0 failed" in summary
        # Without --sta the sensor.community stations have no history, and it says so.
        assert "no history for 3 sensor.community station(s)" in done.stdout
        await wait_for(lambda: len(collector.messages) >= sent, within=20)
        assert len(collector.messages) == sent
        assert {topic.split("/")[0] for topic, _ in collector.messages} >= {
            "tele",
            "v3",
            "airrohr",
            "telraam",
        }
    finally:
        collector.close()


def test_simulate_command_names_a_bad_option_or_an_unreachable_broker() -> None:
    bad_rate = _simulate("--rate", "0")
    assert bad_rate.returncode == 2
    assert "--rate: must be greater than 0" in bad_rate.stderr
    bad_url = _simulate("--mqtt", "http://127.0.0.1:1")
    assert bad_url.returncode == 1
    assert "--mqtt: must be a URL starting with mqtt://" in bad_url.stderr
    unreachable = _simulate("--mqtt", f"mqtt://127.0.0.1:{free_port()}", "--duration", "1")
    assert unreachable.returncode == 1
    assert "cannot reach the MQTT broker at 127.0.0.1:" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr


async def test_a_second_run_finds_its_devices_again_and_repeats_no_hour(
    hub: TestClient[Any, Any], broker: Broker
) -> None:
    first, _ = await _run_simulator(hub, broker)
    await _settled(hub, first.tally)
    query = "/v1.1/Datastreams?$filter=properties/quantity eq 'car_count'&$expand=Observations($top=1000)"
    before = {s["@iot.id"]: [o["phenomenonTime"] for o in s["Observations"]] for s in await _all(hub, query)}

    options = SimulatorOptions(
        mqtt_url=broker.url, devices=DEVICES, rate=60.0, seed=7, duration=1.0,
        sta_url=str(hub.make_url("/v1.1")), malformed_ratio=0.0,
    )  # fmt: skip
    lines: list[str] = []
    second = Simulator(options, say=lines.append)
    await second.run()
    await _settled(hub, second.tally)
    assert "simulator: registered 15 Things (0 named and placed, 0 given a Location)" in lines
    assert len(await _all(hub, "/v1.1/Things?$top=100")) == DEVICES
    # The second run announces each segment's last completed hour again; the Datastreams are
    # marked for deduplication, so the hour is not stored twice.
    after = {s["@iot.id"]: [o["phenomenonTime"] for o in s["Observations"]] for s in await _all(hub, query)}
    assert after.keys() == before.keys()
    for stream, hours in after.items():
        assert len(hours) == len(set(hours)), f"an hour stored twice in Datastream {stream}"
        assert set(before[stream]) <= set(hours)
