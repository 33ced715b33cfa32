# SPDX-License-Identifier: Apache-2.0
"""The Prometheus metrics of one hub process, in one registry of its own (see README "Operations").

HTTP requests and ingest batches are observed as they happen (counters and histograms); the
database pool, the ingest counters and the broker state are read from their owners at scrape
time, so nothing has to be kept in step. Each process (the HTTP server, every `twinhub ingest`
worker) has its own registry and exposes it itself; nothing is shared between processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from importlib import metadata

import asyncpg
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hub.ingest.writer import IngestStats
from hub.store.replicas import ReplicaSet

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds: a page of a few rows answers in ~1 ms, a large $expand or $count can take seconds.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Rows per batch: ingest_batch_size defaults to 10000, a quiet hub writes batches of one.
BATCH_ROW_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000)
BATCH_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _version() -> str:
    try:
        return metadata.version("twinhub")
    except metadata.PackageNotFoundError:  # running from a source tree without an install
        return "unknown"


class HubMetrics:
    """The registry and the instruments the HTTP layer and the ingest writer report to."""

    def __init__(self, role: str = "serve", client_id: str = "") -> None:
        # No `_created` series: they double the series count and Prometheus does not need them.
        # (A process-wide switch of the library; the hub is its only user in the process.)
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "twinhub_http_requests",
            "HTTP requests answered, by method, route shape and status class.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "twinhub_http_request_duration_seconds",
            "Time from receiving an HTTP request to its response, by method and route shape.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "twinhub_ingest_batch_rows",
            "Observations committed per ingest batch.",
            buckets=BATCH_ROW_BUCKETS,
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "twinhub_ingest_batch_commit_seconds",
            "Time to write and commit one ingest batch (its successful attempt).",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=self.registry,
        )
        # The labelled children per (method, route, status class): labels() validates and looks its
        # arguments up on every call, a few µs of every request. The route shapes are bounded.
        self._http_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.state = StateCollector(role, client_id)
        self.registry.register(self.state)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered HTTP request."""
        key = (method, route, status // 100)
        children = self._http_children.get(key)
        if children is None:
            children = (
                self.http_requests.labels(method, route, f"{status // 100}xx"),
                self.http_duration.labels(method, route),
            )
            self._http_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_batch(self, rows: int, seconds: float) -> None:
        """Count one committed ingest batch (the hook IngestStats.on_batch calls)."""
        self.batch_rows.observe(rows)
        self.batch_seconds.observe(seconds)

    def watch_pool(self, *pools: asyncpg.Pool) -> None:
        """Report the size and use of this process's database pools, as one (the requests' pool and
        the group commit's writers share db_pool_max)."""
        self.state.pools = pools

    def watch_replicas(self, replicas: ReplicaSet) -> None:
        """Report the read standbys' state, lag and reads."""
        self.state.replicas = replicas

    def watch_ingest(self, stats: IngestStats) -> None:
        """Report these ingest counters and feed their batches into the histograms."""
        self.state.ingest = stats
        stats.on_batch = self.observe_batch

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (version 0.0.4)."""
        return generate_latest(self.registry)


class StateCollector(Collector):
    """Metrics read from their owners at scrape time: pool, ingest counters, broker, process info."""

    def __init__(self, role: str, client_id: str) -> None:
        self.role, self.client_id = role, client_id
        self.pools: tuple[asyncpg.Pool, ...] = ()
        self.ingest: IngestStats | None = None
        self.replicas: ReplicaSet | None = None

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily(
            "twinhub_info",
            "Always 1; the labels describe this hub process.",
            labels=["version", "role", "mqtt_client_id"],
        )
        info.add_metric([_version(), self.role, self.client_id], 1)
        yield info
        if self.pools:
            yield from _pool_metrics(self.pools)
        if self.ingest is not None:
            yield from _ingest_metrics(self.ingest, time.monotonic())
        if self.replicas is not None:
            yield from _replica_metrics(self.replicas)


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)


def _counter(name: str, text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, text, value=value)


def _pool_metrics(pools: tuple[asyncpg.Pool, ...]) -> Iterable[Metric]:
    size = sum(pool.get_size() for pool in pools)
    idle = sum(pool.get_idle_size() for pool in pools)
    most = sum(pool.get_max_size() for pool in pools)
    yield _gauge("twinhub_db_pool_size", "Open connections of the database pool.", size)
    yield _gauge("twinhub_db_pool_in_use", "Pool connections lent out now.", size - idle)
    yield _gauge("twinhub_db_pool_max", "Most connections the pool opens (db_pool_max).", most)


def _replica_metrics(replicas: ReplicaSet) -> Iterable[Metric]:
    labels = ["replica"]
    up = GaugeMetricFamily(
        "twinhub_db_replica_usable",
        "1 while reads may go to the standby (reachable, lag within max).",
        labels=labels,
    )
    lag = GaugeMetricFamily(
        "twinhub_db_replica_lag_seconds",
        "Replay lag behind the primary, measured by WAL position.",
        labels=labels,
    )
    lag_bytes = GaugeMetricFamily(
        "twinhub_db_replica_lag_bytes", "WAL not yet replayed, in bytes.", labels=labels
    )
    reads = CounterMetricFamily(
        "twinhub_db_reads", "Reads (GET, read-only $batch) answered, by server.", labels=["server"]
    )
    fallbacks = CounterMetricFamily(
        "twinhub_db_replica_fallbacks",
        "Reads that failed on the standby and were answered by the primary.",
        labels=labels,
    )
    reads.add_metric(["primary"], replicas.primary_reads)
    for replica in replicas.replicas:
        up.add_metric([replica.name], int(replica.usable))
        if replica.lag_seconds is not None and replica.lag_bytes is not None:
            lag.add_metric([replica.name], replica.lag_seconds)
            lag_bytes.add_metric([replica.name], replica.lag_bytes)
        reads.add_metric([replica.name], replica.reads)
        fallbacks.add_metric([replica.name], replica.fallbacks)
    yield from (up, lag, lag_bytes, reads, fallbacks)


def _ingest_metrics(stats: IngestStats, now: float) -> Iterable[Metric]:
    yield _gauge("twinhub_mqtt_connected", "1 while the broker connection is up, else 0.", stats.connected())
    yield _counter("twinhub_ingest_messages_received", "MQTT messages handed to ingest.", stats.received)
    yield _counter(
        "twinhub_ingest_messages_acknowledged",
        "Messages acknowledged after their commit or rejection.",
        stats.acknowledged,
    )
    yield _counter(
        "twinhub_ingest_observations_committed", "Observations committed by ingest.", stats.committed
    )
    yield _counter(
        "twinhub_ingest_echoes", "Own notifications seen on create topics and ignored.", stats.echoes
    )
    yield _counter(
        "twinhub_ingest_db_retries", "Batch writes retried because the database was away.", stats.db_retries
    )
    dead = CounterMetricFamily(
        "twinhub_ingest_dead_letters",
        "Messages rejected to the dead-letter topic, by cause.",
        labels=["cause"],
    )
    for cause, count in sorted(stats.dead_lettered.items()):
        dead.add_metric([cause], count)
    yield dead
    by_adapter = CounterMetricFamily(
        "twinhub_adapter_messages",
        "Messages each adapter read, by outcome (readings, consumed, no_readings, invalid).",
        labels=["adapter", "outcome"],
    )
    for (adapter, outcome), count in sorted(stats.adapters.items()):
        by_adapter.add_metric([adapter, outcome], count)
    yield by_adapter
    yield _gauge(
        "twinhub_ingest_buffer_depth",
        "Messages received and not yet committed or rejected.",
        stats.buffer_depth(),
    )
    yield _gauge(
        "twinhub_ingest_stalled",
        "1 while messages wait and no batch finished for 30 s (as /ready reports), else 0.",
        stats.stalled(now),
    )
    yield _counter(
        "twinhub_mqtt_notifications_dropped",
        "Change notifications dropped because the notifier's or the connection's queue was full.",
        stats.notifications_dropped(),
    )


__all__ = ["CONTENT_TYPE", "HubMetrics", "StateCollector"]
