# SPDX-License-Identifier: Apache-2.0
"""The `twinhub simulate` and `twinhub demo` subcommands' entry points (options: hub/demo/options.py)."""

from __future__ import annotations

import argparse
import asyncio
import signal

from hub.config import Settings
from hub.demo import DemoError
from hub.demo.options import DEFAULT_BROKER
from hub.demo.run import DemoOptions, run_demo
from hub.demo.simulator import Simulator, SimulatorOptions


class CommandError(DemoError):
    """A simulate or demo failure already phrased for the user."""


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
