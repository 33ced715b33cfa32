# SPDX-License-Identifier: Apache-2.0
"""`twinhub demo`: a private PostgreSQL, an MQTT broker, the hub and the simulator in one command.

Everything lives under `<data_dir>/demo/`: `postgres/` (the embedded cluster, unless
database_url is set), `mosquitto/` (generated config, log, persistence) and `demo.json` (the
ports and seed chosen on the first run and whether the history was backfilled), so a second
run finds the same devices on the same ports and does not backfill again. Ctrl-C (SIGINT) or
SIGTERM stops the simulator, then the hub (which commits and acknowledges what it holds), then
the broker and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from aiohttp import web

from hub.config import Settings
from hub.demo import DemoError
from hub.demo.broker import BrokerUrls, running_broker
from hub.demo.simulator import Simulator, SimulatorOptions
from hub.store.embedded import EmbeddedPostgres
from hub.store.migrate import migrate_dsn

log = logging.getLogger("hub.demo")

# The adapters the simulator's devices need, on their default topics.
DEMO_ADAPTERS = ("ttn", "sensor_community", "shelly", "tasmota", "telraam")
# Ports tried first on a first run (then any free one): HTTP as `twinhub serve`, MQTT next to
# the usual 1883 (which another broker may hold), WebSocket on mosquitto's customary 9001.
PREFERRED_MQTT_PORT = 1884
PREFERRED_WS_PORT = 9001
POLL_SECONDS = 0.05
SUBSCRIBE_WARN_SECONDS = 10.0


@dataclass
class DemoOptions:
    """What `twinhub demo` was asked for; ports of None: last run's, else the preferred, else free."""

    http_port: int | None = None
    mqtt_port: int | None = None
    ws_port: int | None = None
    devices: int = 30
    rate: float = 5.0
    backfill_hours: float = 6.0
    malformed_ratio: float = 0.01
    seed: int = 1
    broker: str = "auto"  # auto (mosquitto if on the PATH, else amqtt), mosquitto or amqtt


@dataclass
class DemoState:
    """What a demo run leaves for the next one (demo.json)."""

    http_port: int = 0
    mqtt_port: int = 0
    ws_port: int = 0
    seed: int = 1
    devices: int = 0
    backfilled: bool = False

    @classmethod
    def load(cls, path: Path) -> DemoState:
        try:
            values = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls()
        known = {key: values[key] for key in cls.__dataclass_fields__ if key in values}
        return cls(**known)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")


def _free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def choose_ports(host: str, wishes: list[tuple[int | None, tuple[int, ...]]]) -> list[int]:
    """One distinct port per wish (asked, preferred...): the asked port (0: any free one), else the
    first free preferred one, else any free one. Free ports are held open until all are chosen, so
    the system cannot hand out the same one twice."""
    chosen: list[int] = []
    held: list[socket.socket] = []
    try:
        for asked, preferred in wishes:
            candidates = [asked] if asked else [] if asked == 0 else list(preferred)
            port = next((p for p in candidates if p and p not in chosen and _free(host, p)), None)
            if port is None and asked:
                port = asked  # asked for explicitly: let the listener report it if it is taken
            if port is None:
                sock = socket.socket()
                sock.bind((host, 0))
                held.append(sock)
                port = int(sock.getsockname()[1])
            chosen.append(port)
    finally:
        for sock in held:
            sock.close()
    return chosen


@contextlib.contextmanager
def _database(settings: Settings, directory: Path) -> Iterator[str]:
    if settings.database_url:
        yield settings.database_url
        return
    log.info("starting the embedded PostgreSQL in %s", directory)
    with EmbeddedPostgres(directory) as dsn:
        yield dsn


def run_demo(settings: Settings, options: DemoOptions) -> int:
    """Run the whole demo until SIGINT or SIGTERM; returns the exit code."""
    home = settings.data_dir / "demo"
    state_path = home / "demo.json"
    state = DemoState.load(state_path)
    host = settings.http_host
    state.http_port, state.mqtt_port, state.ws_port = choose_ports(
        host,
        [
            (options.http_port, (state.http_port, settings.http_port)),
            (options.mqtt_port, (state.mqtt_port, PREFERRED_MQTT_PORT)),
            (options.ws_port, (state.ws_port, PREFERRED_WS_PORT)),
        ],
    )
    if state.devices and (state.seed, state.devices) != (options.seed, options.devices):
        log.info(
            "other devices than last time (seed %d, %d devices): backfilling again",
            options.seed,
            options.devices,
        )
        state.backfilled = False
    state.seed, state.devices = options.seed, options.devices
    state.save(state_path)
    if settings.log_level != "DEBUG":
        # One line per request drowns the story (the simulator's registration alone is hundreds).
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    with _database(settings, home / "postgres") as dsn:
        asyncio.run(_demo(settings.model_copy(update={"database_url": dsn}), options, state, state_path))
    log.info("twinhub demo stopped; its data stays in %s for the next run", home)
    return 0


async def _demo(settings: Settings, options: DemoOptions, state: DemoState, state_path: Path) -> None:
    host = settings.http_host
    home = state_path.parent
    broker = running_broker(home / "mosquitto", host, state.mqtt_port, state.ws_port, options.broker)
    async with broker as urls:
        hub_settings = settings.model_copy(
            update={
                "http_port": state.http_port,
                "mqtt_url": urls.mqtt,
                "mqtt_client_id": "twinhub-demo",
                "mqtt_protocol": "5" if urls.kind == "mosquitto" else "3.1.1",
                "adapters": DEMO_ADAPTERS,
                # The root document tells clients both listeners, the browser's WebSocket included.
                "mqtt_public_urls": (urls.mqtt, urls.websocket),
                # Local and for show: the simulator names and places its Things over HTTP without a key.
                "auth_anonymous_write": True,
            }
        )
        await _run_hub_and_simulator(hub_settings, options, state, state_path, urls)


async def _run_hub_and_simulator(
    settings: Settings, options: DemoOptions, state: DemoState, state_path: Path, urls: BrokerUrls
) -> None:
    from hub.app import build_app

    assert settings.database_url is not None
    await migrate_dsn(settings.database_url, log=log.info)
    runner = web.AppRunner(build_app(settings))
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        try:
            await web.TCPSite(runner, settings.http_host, settings.http_port).start()
        except OSError as exc:
            where = f"{settings.http_host}:{settings.http_port}"
            raise DemoError(f"cannot listen on {where}: {exc.strerror or exc} (try --http-port 0)") from exc
        await _subscribed(runner.app, stop)  # devices published before would be lost
        base = f"http://{settings.http_host}:{settings.http_port}"
        _print_urls(base, urls, state)
        simulator = Simulator(
            SimulatorOptions(
                mqtt_url=urls.mqtt,
                devices=options.devices,
                rate=options.rate,
                backfill_hours=0.0 if state.backfilled else options.backfill_hours,
                malformed_ratio=options.malformed_ratio,
                seed=options.seed,
                sta_url=f"{base}/v1.1",
                client_id="twinhub-demo-simulator",
                timezone=settings.timezone,
                report_seconds=60.0,
            ),
            say=log.info,
            after_backfill=lambda: _mark_backfilled(state, state_path),
        )
        simulation = asyncio.create_task(simulator.run(stop))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait((simulation, stopping), return_when=asyncio.FIRST_COMPLETED)
        log.info("stopping: simulator, hub, broker, database")
        stop.set()
        await stopping
        await simulation  # re-raises what stopped the simulator early, if anything
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await runner.cleanup()


async def _subscribed(app: web.Application, stop: asyncio.Event) -> None:
    """Wait until the hub's ingest is connected and subscribed (or a stop signal)."""
    from hub.app import MQTT

    service = app[MQTT]
    warn_at = asyncio.get_running_loop().time() + SUBSCRIBE_WARN_SECONDS
    while not service.client_ready() and not stop.is_set():
        if warn_at and asyncio.get_running_loop().time() > warn_at:
            log.warning("the hub has not subscribed at the broker yet; waiting")
            warn_at = 0.0
        await asyncio.sleep(POLL_SECONDS)


def _mark_backfilled(state: DemoState, state_path: Path) -> None:
    if not state.backfilled:
        state.backfilled = True
        state.save(state_path)


def _print_urls(base: str, urls: BrokerUrls, state: DemoState) -> None:
    lines = [
        "",
        "twinhub demo is running (Ctrl-C stops it):",
        f"  viewer            {base}/",
        f"  SensorThings API  {base}/v1.1",
        f"  MQTT (TCP)        {urls.mqtt}   ({urls.kind})",
        f"  MQTT (WebSocket)  {urls.websocket}",
        "  history           " + ("kept from the last run" if state.backfilled else "backfilling now"),
        "",
    ]
    print("\n".join(lines), flush=True)
