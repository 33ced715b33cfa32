# SPDX-License-Identifier: Apache-2.0
"""The normalised reading every adapter produces: one value of one quantity of one device."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Reading:
    """One observed value, before it is mapped onto SensorThings entities.

    The Datastream of a reading is identified by (adapter, device, stream or quantity):
    `stream` tells apart several streams of one quantity on one device (the three phases
    of a meter, two temperature probes of one LoRaWAN node).
    """

    adapter: str  # "ttn", "shelly", ...
    device: str  # device key, unique within the adapter, e.g. the DevEUI
    quantity: str  # key into adapters.vocabulary.QUANTITIES, e.g. "air_temperature"
    value: Any  # number, string, bool, list or object: the Observation's result
    unit: str | None  # UCUM code, e.g. "Cel", "kW.h"; None for unitless category/count results
    phenomenon_time: tuple[datetime, datetime]  # aware UTC (start, end); an instant has start == end
    stream: str | None = None  # the device's own name for this stream, when it differs from the quantity
    result_time: datetime | None = None
    device_name: str | None = None
    device_properties: dict[str, Any] = field(default_factory=dict)  # model, firmware, tags ...
    sensor_model: str | None = None  # becomes the Sensor (one per model)
    location: dict[str, Any] | None = None  # GeoJSON geometry of the device, when the payload has one
    parameters: dict[str, Any] | None = None  # Observation parameters (rssi, uptime, ...)
    stream_properties: dict[str, Any] = field(default_factory=dict)  # e.g. the payload path it came from

    @property
    def stream_key(self) -> str:
        """The stable key of this reading's Datastream."""
        return f"{self.adapter}:{self.device}:{self.stream or self.quantity}"

    @property
    def device_key(self) -> str:
        """The stable key of this reading's Thing."""
        return f"{self.adapter}:{self.device}"
