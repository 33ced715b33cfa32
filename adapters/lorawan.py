# SPDX-License-Identifier: Apache-2.0
"""What LoRaWAN network servers (TTN, ChirpStack) say about a reception, ranked the same way."""

from __future__ import annotations

import math
from datetime import datetime
from typing import NamedTuple


class Gateway(NamedTuple):
    """What one gateway reception entry (rx_metadata, rxInfo) tells."""

    gateway_id: str | None
    rssi: float | None
    snr: float | None
    time: datetime | None


NO_GATEWAY = Gateway(None, None, None, None)


def best_first(gateways: list[Gateway]) -> list[Gateway]:
    """The receptions, best (highest RSSI, then SNR) first."""
    return sorted(gateways, key=_rank, reverse=True)


def _rank(gateway: Gateway) -> tuple[float, float]:
    rssi, snr = gateway.rssi, gateway.snr
    return (-math.inf if rssi is None else rssi, -math.inf if snr is None else snr)
