# SPDX-License-Identifier: Apache-2.0
"""What observing a request costs: route shape, metrics and one JSON access line, and a /metrics scrape.

    .venv/bin/python -m bench.observe [--requests 20000]

Runs in-process, without a server or database: it times the work the observe middleware adds to
every request (compare with a request's own latency in bench/core.py) and the rendering of the
exposition text after that many requests over a few route shapes.
"""

from __future__ import annotations

import argparse
import io
import logging
import time

from hub.http.observe import access_log, sta_shape
from hub.logs import configure_logging
from hub.metrics import HubMetrics

TAILS = ("Datastreams({})/Observations", "Things({})", "Observations", "Things({})/Locations", "$batch")


def _per_request(metrics: HubMetrics, requests: int) -> float:
    started = time.perf_counter()
    for index in range(requests):
        route = "/v1.1/" + sta_shape(TAILS[index % len(TAILS)].format(index))
        metrics.observe_request("GET", route, 200, 0.002)
        fields = {"method": "GET", "route": route, "path": "/x", "status": 200, "duration_ms": 2.0}
        access_log.info("%s %s %d %.1f ms [%s]", "GET", "/x", 200, 2.0, "id", extra=fields)
    return (time.perf_counter() - started) / requests


def _scrape(metrics: HubMetrics, scrapes: int = 200) -> float:
    started = time.perf_counter()
    for _ in range(scrapes):
        metrics.exposition()
    return (time.perf_counter() - started) / scrapes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    configure_logging("INFO", "json", io.StringIO())
    metrics = HubMetrics()
    per_request = _per_request(metrics, args.requests)
    logging.getLogger().setLevel("WARNING")  # as bench/core.py runs the hub: no access lines
    quiet = _per_request(metrics, args.requests)
    print(f"| observe work per request, JSON access line at INFO | {per_request * 1e6:.1f} µs |")
    print(f"| observe work per request, access log off (WARNING) | {quiet * 1e6:.1f} µs |")
    print(f"| /metrics rendering ({len(TAILS)} route shapes)       | {_scrape(metrics) * 1e3:.2f} ms |")


if __name__ == "__main__":
    main()
