# SPDX-License-Identifier: Apache-2.0
"""The demo city's devices publishing through a broker, also a load generator for any deployment.

A run has four steps:

1. announce: one current message per device in its native format, so the hub provisions it;
2. register (with `sta_url`): name, city and position of each Thing, over the hub's HTTP API;
3. backfill (`backfill_hours` > 0): past messages, so charts have history. Formats that carry a
   time (Shelly `ts`, Tasmota `Time`, TTN `received_at`/gateway time, Telraam `date`) are sent
   as the device would have sent them then. sensor.community pushes carry no time (the hub uses
   the receive time), so their history goes as STA Observations with a phenomenonTime interval
   to `v1.1/Datastreams(id)/Observations`, which needs the Datastream ids from step 2;
4. live: `rate` messages per second overall, round robin over the devices, each a current
   message; a Telraam segment reports once per completed hour. A `malformed_ratio` share of
   live messages is broken, so the dead-letter path shows.

Every message is QoS 1 within a bounded in-flight window; the counts are printed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hub.demo import formats
from hub.demo.devices import Device, make_devices
from hub.demo.publisher import Counts, Stopped, WindowedPublisher
from hub.demo.register import register

HOUR = timedelta(hours=1)
TICK_SECONDS = 0.05
# Spacing of backfilled messages per kind: a meter every 5 min, a LoRaWAN node every 10 min.
BACKFILL_STEP = {
    "shelly_pro3em": timedelta(minutes=5),
    "tasmota": timedelta(minutes=5),
    "ttn_lht65n": timedelta(minutes=10),
    "airrohr": timedelta(minutes=5),
}
AIRROHR_WINDOW = timedelta(seconds=145)  # the firmware's default measuring interval
DRAIN_SECONDS = 30.0
STOP_DRAIN_SECONDS = 5.0  # after Ctrl-C, wait this long for outstanding acknowledgements


@dataclass(frozen=True)
class SimulatorOptions:
    """How to run the simulator."""

    mqtt_url: str
    devices: int = 30
    rate: float = 5.0
    backfill_hours: float = 0.0
    malformed_ratio: float = 0.01
    seed: int = 1
    duration: float | None = None  # seconds of live publishing; None: until stopped
    sta_url: str | None = None  # the hub's STA root (http://host:port/v1.1) for registration
    register_seconds: float = 60.0
    window: int = 1000
    client_id: str = "twinhub-simulator"
    timezone: str = "Europe/Berlin"
    report_seconds: float = 10.0


@dataclass
class Tally:
    """What the simulator published, by step."""

    announced: int = 0
    backfilled: int = 0
    backfilled_sta: int = 0
    live: int = 0
    malformed: int = 0
    live_seconds: float = 0.0
    by_kind: collections.Counter[str] = field(default_factory=collections.Counter)


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


class Simulator:
    """Runs the devices of one seed against one broker."""

    def __init__(
        self,
        options: SimulatorOptions,
        say: Callable[[str], None] = print,
        after_backfill: Callable[[], None] | None = None,
    ) -> None:
        self.options = options
        self.say = say
        self.after_backfill = after_backfill
        self.zone = ZoneInfo(options.timezone)
        self.devices = make_devices(options.devices, options.seed)
        self.noise = random.Random(f"noise:{options.seed}:{time.time_ns()}")
        self.tally = Tally()
        self.publisher = WindowedPublisher(options.mqtt_url, options.client_id, options.window)
        self._traffic_hour: dict[str, datetime] = {}  # segment -> start of the last hour reported
        self._stop = asyncio.Event()

    async def run(self, stop: asyncio.Event | None = None) -> Counts:
        """All four steps; live until `stop` is set or `duration` has passed. Returns the counts."""
        stop = self._stop = stop or asyncio.Event()
        await self.publisher.start()
        kinds = collections.Counter(device.kind for device in self.devices)
        self.say(
            f"simulator: {len(self.devices)} devices ({', '.join(f'{n} {k}' for k, n in kinds.items())}) "
            f"-> {self.options.mqtt_url}"
        )
        try:
            now = datetime.now(UTC)
            await self._announce(now)
            streams: dict[str, dict[str, int]] = {}
            if self.options.sta_url:
                await self.publisher.drain(DRAIN_SECONDS, stop)
                done = await register(
                    self.options.sta_url, self.devices, self.options.register_seconds, self.say, stop
                )
                streams = done.streams
                self.say(
                    f"simulator: registered {len(done.things)} Things "
                    f"({done.updated} named and placed, {done.located} given a Location)"
                )
            if self.options.backfill_hours > 0:
                await self._backfill(now, streams)
                drained = await self.publisher.drain(DRAIN_SECONDS, stop)
                if self.after_backfill is not None and drained and not stop.is_set():
                    self.after_backfill()
            if not stop.is_set():
                await self._live(stop)
        except Stopped:
            self.say("simulator: stopped while the broker had not acknowledged its window")
        finally:
            drained = await self.publisher.drain(STOP_DRAIN_SECONDS if stop.is_set() else DRAIN_SECONDS)
            counts = self.publisher.counts()
            await self.publisher.stop()
            self._summary(counts, drained)
        return counts

    async def _send(self, device: Device, topic: str, payload: bytes) -> None:
        await self.publisher.publish(topic, payload, self._stop)
        self.tally.by_kind[device.kind] += 1

    async def _announce(self, now: datetime) -> None:
        """One good message per device, so that the hub creates its Thing and Datastreams."""
        for device in self.devices:
            moment = now
            if device.kind == "telraam":
                moment = _floor_hour(now) - HOUR  # the last completed hour
                self._traffic_hour[device.device_id] = moment
            await self._send(
                device, *formats.build(device, moment, self.noise, self.zone, self._interval_ms())
            )
            self.tally.announced += 1

    async def _backfill(self, now: datetime, streams: dict[str, dict[str, int]]) -> None:
        """Past messages from `backfill_hours` ago up to the announcement."""
        start = now - timedelta(hours=self.options.backfill_hours)
        before = self.tally.backfilled + self.tally.backfilled_sta
        skipped = 0
        for device in self.devices:
            if device.kind == "telraam":
                hour = _floor_hour(start)
                while hour < self._traffic_hour[device.device_id]:
                    await self._send(device, *formats.build(device, hour, self.noise, self.zone, 0))
                    self.tally.backfilled += 1
                    hour += HOUR
                continue
            if device.kind == "airrohr" and device.device_id not in streams:
                skipped += 1
                continue
            moment = start
            while moment < now - timedelta(seconds=1):
                if device.kind == "airrohr":
                    await self._send_sta(device, moment, streams[device.device_id])
                else:
                    await self._send(device, *formats.build(device, moment, self.noise, self.zone, 0))
                    self.tally.backfilled += 1
                moment += BACKFILL_STEP[device.kind]
        if skipped:
            self.say(
                f"simulator: no history for {skipped} sensor.community station(s): their pushes carry no "
                "time, and the STA route needs the hub's HTTP API (--sta URL)"
            )
        sent = self.tally.backfilled + self.tally.backfilled_sta - before
        self.say(f"simulator: backfilled {self.options.backfill_hours:g} h with {sent} messages")

    async def _send_sta(self, device: Device, moment: datetime, streams: dict[str, int]) -> None:
        """A sensor.community station's past values as STA Observations (its own format has no time)."""
        window = f"{(moment - AIRROHR_WINDOW).isoformat()}/{moment.isoformat()}"
        for value_type, value in formats.airrohr_values(device, moment, self.noise).items():
            if value_type not in streams:
                continue
            body = {"phenomenonTime": window, "resultTime": moment.isoformat(), "result": value}
            topic = f"v1.1/Datastreams({streams[value_type]})/Observations"
            await self._send(device, topic, json.dumps(body).encode())
            self.tally.backfilled_sta += 1

    def _interval_ms(self) -> int:
        """How often each device speaks in live mode, in ms (what an airRohr reports as interval)."""
        speakers = max(1, sum(device.kind != "telraam" for device in self.devices))
        return max(1000, round(speakers / max(self.options.rate, 1e-3) * 1000))

    def _due_traffic(self, now: datetime) -> list[tuple[Device, datetime]]:
        """Telraam reports of hours completed since the last report."""
        due = []
        for device in self.devices:
            last = self._traffic_hour.get(device.device_id)
            if last is not None and last + 2 * HOUR <= now:
                self._traffic_hour[device.device_id] = last + HOUR
                due.append((device, last + HOUR))
        return due

    async def _live(self, stop: asyncio.Event) -> None:
        """`rate` messages per second until stopped."""
        speakers = [device for device in self.devices if device.kind != "telraam"]
        pending: collections.deque[tuple[Device, datetime]] = collections.deque()
        loop = asyncio.get_running_loop()
        began = last_report = loop.time()
        interval_ms = self._interval_ms()
        turn = 0
        sent = 0
        catch_up = max(1, int(self.options.rate * TICK_SECONDS * 4))
        while not stop.is_set():
            elapsed = loop.time() - began
            if self.options.duration is not None and elapsed >= self.options.duration:
                break
            now = datetime.now(UTC)
            pending.extend(self._due_traffic(now))
            # Catch up at most a few ticks' worth at once, so that --duration holds when the
            # publisher cannot keep up; the summary then shows the rate reached.
            target = min(int(elapsed * self.options.rate) + 1, sent + catch_up)
            while sent < target and (pending or speakers):
                if pending:
                    device, moment = pending.popleft()
                else:
                    device, moment = speakers[turn % len(speakers)], now
                    turn += 1
                if self.noise.random() < self.options.malformed_ratio:
                    topic, payload = formats.malformed(device, moment, self.noise, self.zone)
                    self.tally.malformed += 1
                else:
                    topic, payload = formats.build(device, moment, self.noise, self.zone, interval_ms)
                await self._send(device, topic, payload)
                self.tally.live += 1
                sent += 1
            self.tally.live_seconds = loop.time() - began
            if loop.time() - last_report >= self.options.report_seconds:
                last_report = loop.time()
                self._progress(loop.time() - began)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK_SECONDS)

    def _progress(self, seconds: float) -> None:
        counts = self.publisher.counts()
        self.say(
            f"simulator: {counts.sent} sent, {counts.acknowledged} acknowledged, {counts.failed} failed; "
            f"live {self.tally.live} in {seconds:.0f} s ({self.tally.live / max(seconds, 1e-9):.1f} msg/s), "
            f"{self.tally.malformed} malformed"
        )

    def _live_rate(self) -> float:
        return self.tally.live / max(self.tally.live_seconds, 1e-9)

    def _summary(self, counts: Counts, drained: bool) -> None:
        tally = self.tally
        self.say(
            f"simulator: sent {counts.sent} messages: {tally.announced} announcements, "
            f"{tally.backfilled} backfilled in device formats, {tally.backfilled_sta} backfilled as STA "
            f"Observations, {tally.live} live in {tally.live_seconds:.1f} s ({self._live_rate():.0f} msg/s, "
            f"{tally.malformed} deliberately malformed); "
            f"{counts.acknowledged} acknowledged by the broker, {counts.failed} failed"
            + ("" if drained else f", {counts.in_flight} still unacknowledged")
        )
        if tally.live_seconds > 1 and self._live_rate() < 0.95 * self.options.rate:
            self.say(
                f"simulator: could not keep up with --rate {self.options.rate:g}: reached "
                f"{self._live_rate():.0f} msg/s (this process's CPU or the broker's acknowledgements bind)"
            )
        self.say("simulator: by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(tally.by_kind.items())))
