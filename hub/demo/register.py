# SPDX-License-Identifier: Apache-2.0
"""What an operator does once per device in the hub's HTTP API, and what the simulator can only do there.

The adapters create a Thing on a device's first message, but Shelly, Tasmota and Telraam payloads
carry no position and none carries a city. `register` waits until the hub has provisioned each
simulated device, then names its Thing, adds city, district and domain to its properties and
gives it a Location where it has none (a TTN uplink brings its own), and marks its Datastreams
for deduplication at ingest. It also returns the
Datastream ids of the sensor.community stations, whose pushes carry no time: their backfill goes
as STA Observations to `v1.1/Datastreams(id)/Observations` instead (see simulator.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from hub.demo import DemoError
from hub.demo.devices import KINDS, Device

THINGS_QUERY = (
    "Things?$select=id,name,properties&$top=1000"
    "&$expand=Locations($select=id),Datastreams($select=id,properties)"
)
POLL_SECONDS = 0.5
# Each simulated stream has one value per instant; with this flag the hub drops a repeated one
# (a Telraam hour announced again after a restart, a QoS 1 redelivery). See docs/mqtt.md.
DEDUPLICATE = "twinhub:deduplicate"


class RegisterError(DemoError):
    """The hub did not answer as expected; the message says what it answered."""


@dataclass
class Registered:
    """What registration found and did."""

    things: dict[str, int] = field(default_factory=dict)  # device id -> Thing id
    streams: dict[str, dict[str, int]] = field(default_factory=dict)  # device id -> stream -> Datastream id
    updated: int = 0
    located: int = 0


async def _fetch_things(session: aiohttp.ClientSession, root: str) -> list[dict[str, Any]]:
    """Every Thing with its Locations and Datastreams, following @iot.nextLink."""
    things: list[dict[str, Any]] = []
    url: str | None = f"{root}/{THINGS_QUERY}"
    while url:
        async with session.get(url) as response:
            if response.status != 200:
                raise RegisterError(f"GET {url} answered {response.status}: {await response.text()}")
            page = await response.json()
        things.extend(page["value"])
        url = page.get("@iot.nextLink")
    return things


def _properties(device: Device, current: dict[str, Any]) -> dict[str, Any]:
    _, kind_de, kind_en = KINDS[device.kind]
    return {
        **current,
        "city": device.city,
        "district": device.district,
        "domain": device.domain,
        "kind": device.kind,
        "label_de": device.site_de,
        "label_en": device.site_en,
        "sensorKind_de": kind_de,
        "sensorKind_en": kind_en,
        "simulated": True,
    }


async def _send(session: aiohttp.ClientSession, method: str, url: str, body: dict[str, Any]) -> None:
    async with session.request(method, url, json=body) as response:
        if response.status not in (200, 201):
            raise RegisterError(f"{method} {url} answered {response.status}: {await response.text()}")


async def _complete(session: aiohttp.ClientSession, root: str, device: Device, thing: dict[str, Any]) -> bool:
    """Name the Thing, add its city and place it; True when something was changed."""
    properties = thing.get("properties") or {}
    changed = False
    if properties.get("city") != device.city or thing.get("name") != device.name:
        body = {
            "name": device.name,
            "description": f"{device.site_en}, {device.district}, {device.city} (simulated)",
            "properties": _properties(device, properties),
        }
        await _send(session, "PATCH", f"{root}/Things({thing['@iot.id']})", body)
        changed = True
    if not thing.get("Locations"):
        location = {
            "name": f"{device.district}, {device.city}",
            "description": f"Position of {device.site_en}",
            "encodingType": "application/geo+json",
            "location": {"type": "Point", "coordinates": [device.longitude, device.latitude]},
        }
        await _send(session, "POST", f"{root}/Things({thing['@iot.id']})/Locations", location)
        changed = True
    for stream in thing.get("Datastreams") or []:
        current = stream.get("properties") or {}
        if current.get(DEDUPLICATE) is not True:
            body = {"properties": {**current, DEDUPLICATE: True}}
            await _send(session, "PATCH", f"{root}/Datastreams({stream['@iot.id']})", body)
            changed = True
    return changed


async def register(
    root: str,
    devices: list[Device],
    within: float,
    say: Callable[[str], None],
    stop: asyncio.Event | None = None,
) -> Registered:
    """Wait up to `within` seconds (or until `stop`) for every device's Thing, then complete each one."""
    registered = Registered()
    wanted = {device.device_id: device for device in devices}
    deadline = asyncio.get_running_loop().time() + within
    async with aiohttp.ClientSession(raise_for_status=False) as session:
        while True:
            things = {
                str((t.get("properties") or {}).get("deviceId")): t
                for t in await _fetch_things(session, root)
            }
            missing = [key for key in wanted if key not in things]
            if not missing or asyncio.get_running_loop().time() > deadline:
                break
            if stop is not None and stop.is_set():
                return registered
            await asyncio.sleep(POLL_SECONDS)
        if missing:
            say(
                f"simulator: {len(missing)} device(s) not provisioned by the hub in {within:.0f} s, e.g. "
                f"{missing[0]}; is the hub subscribed to the adapters' topics?"
            )
        for key, device in wanted.items():
            thing = things.get(key)
            if thing is None:
                continue
            registered.things[key] = int(thing["@iot.id"])
            registered.streams[key] = {
                str((stream.get("properties") or {}).get("stream")): int(stream["@iot.id"])
                for stream in thing.get("Datastreams") or []
            }
            located = bool(thing.get("Locations"))
            if await _complete(session, root, device, thing):
                registered.updated += 1
                registered.located += not located
    return registered
