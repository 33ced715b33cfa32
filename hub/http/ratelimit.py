# SPDX-License-Identifier: Apache-2.0
"""Token buckets per client: `rate` requests per second on average, `burst` at once."""

from __future__ import annotations

import math


class TokenBuckets:
    """One bucket per client key, refilled continuously; full buckets are forgotten when many pile up."""

    def __init__(self, rate: float, burst: int, max_clients: int = 100_000) -> None:
        self.rate, self.burst, self.max_clients = rate, burst, max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)

    def take(self, client: str, now: float) -> float:
        """Spend one token of `client`; 0 when allowed, else the seconds until a token is there."""
        tokens, at = self._buckets.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate
        if len(self._buckets) >= self.max_clients and client not in self._buckets:
            self._forget_full(now)
        self._buckets[client] = (tokens - 1.0, now)
        return 0.0

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled: they are the same as a new one."""
        self._buckets = {
            client: (tokens, at)
            for client, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self.rate < self.burst
        }


def retry_after(seconds: float) -> int:
    """Retry-After is whole seconds (RFC 9110 §10.2.3); never 0 for a refused request."""
    return max(1, math.ceil(seconds))
