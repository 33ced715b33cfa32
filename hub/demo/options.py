# SPDX-License-Identifier: Apache-2.0
"""The options of `twinhub simulate` and `twinhub demo`: argparse only, so `twinhub --help` never
imports the simulator, its MQTT library or the demo's broker."""

from __future__ import annotations

import argparse
from collections.abc import Callable

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"


def _number(kind: type[int] | type[float], text: str) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def check(text: str) -> int | float:
        value = _number(kind, text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return check


def _between(low: float, high: float, unit: str = "") -> Callable[[str], float]:
    """A number from low to high, both included; `unit` follows the bounds in the error."""

    def check(text: str) -> float:
        value = float(_number(float, text))
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}{unit}, got {text}")
        return value

    return check


_ratio = _between(0, 1)
_hours = _between(0, 24 * 14, " hours")


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
