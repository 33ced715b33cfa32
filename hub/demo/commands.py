# SPDX-License-Identifier: Apache-2.0
"""The `twinhub simulate` and `twinhub demo` subcommands: their options and entry points."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable

from hub.config import Settings
from hub.demo import DemoError
from hub.demo.run import DemoOptions, run_demo
from hub.demo.simulator import Simulator, SimulatorOptions

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"


class CommandError(DemoError):
    """A simulate or demo failure already phrased for the user."""


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def check(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return check


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 24 * 14:
        raise argparse.ArgumentTypeError(f"must be between 0 and 336 hours, got {text}")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0-65535 (0: any free port), got {text!r}")
    return int(text)


def _common_options(parser: argparse.ArgumentParser, rate: float, backfill: float) -> None:
    parser.add_argument(
        "--devices",
        type=_positive(int),
        default=30,
        metavar="N",
        help="simulated devices, spread over Hamburg, Leipzig and München (default 30)",
    )
    parser.add_argument(
        "--rate",
        type=_positive(float),
        default=rate,
        metavar="R",
        help=f"live messages per second, all devices together (default {rate:g})",
    )
    parser.add_argument(
        "--backfill-hours",
        type=_hours,
        default=backfill,
        metavar="H",
        help=f"hours of history published first (default {backfill:g})",
    )
    parser.add_argument(
        "--malformed-ratio",
        type=_ratio,
        default=0.01,
        metavar="P",
        help="share of live messages deliberately broken, for the dead-letter path (0.01)",
    )
    parser.add_argument("--seed", type=int, default=1, help="device seed: same seed, same devices (1)")


def add_simulate_options(parser: argparse.ArgumentParser) -> None:
    """Options of `twinhub simulate`."""
    parser.add_argument(
        "--mqtt",
        metavar="URL",
        default=None,
        help="broker URL, mqtt[s]://user:password@host:port or ws[s]:// "
        f"(default: mqtt_url, else {DEFAULT_BROKER})",
    )
    _common_options(parser, rate=10.0, backfill=0.0)
    parser.add_argument(
        "--sta",
        metavar="URL",
        default=None,
        help="the hub's STA root (http://host:port/v1.1): name and place the Things and "
        "backfill the sensor.community stations there",
    )
    parser.add_argument(
        "--duration",
        type=_positive(float),
        default=None,
        metavar="SECONDS",
        help="stop after this many seconds of live publishing (default: until Ctrl-C)",
    )
    parser.add_argument(
        "--window",
        type=_positive(int),
        default=1000,
        metavar="N",
        help="most unacknowledged QoS 1 messages at a time (default 1000)",
    )
    parser.add_argument("--client-id", default="twinhub-simulator", help="MQTT client id")


def add_demo_options(parser: argparse.ArgumentParser) -> None:
    """Options of `twinhub demo`."""
    for name, what in (("http", "HTTP"), ("mqtt", "MQTT TCP"), ("ws", "MQTT WebSocket")):
        parser.add_argument(
            f"--{name}-port",
            type=_port,
            default=None,
            metavar="PORT",
            help=f"{what} port (default: last run's, else a preferred one if free; 0: any)",
        )
    parser.add_argument(
        "--broker",
        choices=("auto", "mosquitto", "amqtt"),
        default="auto",
        help="MQTT broker: mosquitto if on the PATH, else amqtt (default auto)",
    )
    _common_options(parser, rate=5.0, backfill=6.0)


def simulate(settings: Settings, args: argparse.Namespace) -> int:
    """Run the simulator against a broker until Ctrl-C or --duration; print what was sent."""
    options = SimulatorOptions(
        mqtt_url=args.mqtt or settings.mqtt_url or DEFAULT_BROKER,
        devices=args.devices,
        rate=args.rate,
        backfill_hours=args.backfill_hours,
        malformed_ratio=args.malformed_ratio,
        seed=args.seed,
        duration=args.duration,
        sta_url=args.sta.rstrip("/") if args.sta else None,
        window=args.window,
        client_id=args.client_id,
        timezone=settings.timezone,
    )
    try:
        Settings.model_validate({"mqtt_url": options.mqtt_url})  # the same URL check as the hub's
    except ValueError:
        raise CommandError(
            "--mqtt: must be a URL starting with mqtt://, mqtts://, ws:// or wss://, "
            f"got {options.mqtt_url!r}"
        ) from None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        counts = await Simulator(options, say=lambda line: print(line, flush=True)).run(stop)
        if counts.failed:
            raise CommandError(f"{counts.failed} message(s) were not accepted by the broker")

    asyncio.run(main())
    return 0


def demo(settings: Settings, args: argparse.Namespace) -> int:
    """Run PostgreSQL, a broker, the hub and the simulator together until Ctrl-C."""
    options = DemoOptions(
        http_port=args.http_port,
        mqtt_port=args.mqtt_port,
        ws_port=args.ws_port,
        devices=args.devices,
        rate=args.rate,
        backfill_hours=args.backfill_hours,
        malformed_ratio=args.malformed_ratio,
        seed=args.seed,
        broker=args.broker,
    )
    return run_demo(settings, options)
