# SPDX-License-Identifier: Apache-2.0
"""Payload families -> normalised readings: pure functions, no I/O.

Each family is one module exposing `ADAPTER: Adapter`; FAMILIES lists them in the order
`twinhub adapters` shows them.
"""

from __future__ import annotations

import importlib

from adapters.base import Adapter

FAMILIES = (
    "senml",
    "ttn",
    "chirpstack",
    "sensor_community",
    "shelly",
    "shelly_gen1",
    "tasmota",
    "home_assistant",
    "telraam",
    "generic",
)


def load_adapters() -> dict[str, Adapter]:
    """Family name -> Adapter, for every family module."""
    adapters: dict[str, Adapter] = {}
    for family in FAMILIES:
        module = importlib.import_module(f"adapters.{family}")
        adapter: Adapter = module.ADAPTER
        adapters[adapter.name] = adapter
    return adapters
