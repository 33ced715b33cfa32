# SPDX-License-Identifier: Apache-2.0
"""Hot standbys that serve reads: each one's replay lag measured against the primary, and skipped
while it is behind by more than max_replica_lag, unreachable or not a standby.

Lag is measured by WAL position, not by pg_last_xact_replay_timestamp(): on a primary that
writes nothing that timestamp grows without the standby missing anything. Every check samples
the primary's pg_current_wal_lsn(); a standby whose pg_last_wal_replay_lsn() has reached the
newest sample is current (lag 0), otherwise it lags by the age of the oldest sample it has not
replayed yet (a lower bound, exact to one check interval). The replay timestamp is reported
beside it for operators.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from hub.config import redact_url
from hub.store.pool import create_pool

log = logging.getLogger("twinhub.replicas")

PROBE_SECONDS = 2.0  # a standby that takes longer to answer a probe counts as unreachable
HISTORY_SECONDS = 120.0  # primary WAL positions kept for lag measurement (at least a few max lags)

# Errors that mean "this server cannot serve now" rather than "this request is wrong": the read is
# retried on the primary. Class 40 on a read-only snapshot of a standby is a recovery conflict
# ("canceling statement due to conflict with recovery", PostgreSQL docs, Hot Standby 27.4.2).
SERVER_FAILURES: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # a connection the server dropped mid-protocol ("cannot switch to state")
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.DatabaseDroppedError,
    asyncpg.TooManyConnectionsError,
    asyncpg.exceptions.TransactionRollbackError,
)

_PRIMARY_SQL = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
_STANDBY_SQL = """
SELECT pg_is_in_recovery() AS in_recovery,
       pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint AS replay_lsn,
       extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8 AS replay_age,
       CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END AS paused
"""

OK, LAGGING, UNREACHABLE, NOT_STANDBY, UNKNOWN = "ok", "lagging", "unreachable", "not_standby", "unknown"


@dataclass
class Replica:
    """One standby: its pool, its last measured state, and how many reads it served."""

    name: str  # replica1, replica2, ... in the order of database_read_urls
    url: str  # redacted, for /ready and logs
    pool: asyncpg.Pool
    state: str = UNKNOWN
    in_recovery: bool | None = None  # pg_is_in_recovery() at the last check: a standby
    lag_seconds: float | None = None
    lag_bytes: int | None = None
    replay_age: float | None = None  # seconds since the last replayed commit's time (informational)
    replay_paused: bool | None = None
    error: str | None = None
    reads: int = 0
    fallbacks: int = 0  # reads that failed here and were answered by the primary

    @property
    def usable(self) -> bool:
        """Whether reads may go here now."""
        return self.state == OK

    def report(self) -> dict[str, Any]:
        """The replica's state as /ready shows it."""
        lag = None if self.lag_seconds is None else round(self.lag_seconds, 3)
        report: dict[str, Any] = {"name": self.name, "url": self.url, "state": self.state}
        report["in_recovery"] = self.in_recovery
        report |= {"lag_seconds": lag, "lag_bytes": self.lag_bytes, "replay_paused": self.replay_paused}
        age = None if self.replay_age is None else round(self.replay_age, 3)
        report |= {"last_replayed_commit_age_seconds": age, "reads": self.reads, "fallbacks": self.fallbacks}
        if self.error:
            report["error"] = self.error
        return report


@dataclass
class ReplicaSet:
    """The standbys of one primary; choose() hands out a usable one in turn, or None."""

    primary: asyncpg.Pool
    replicas: list[Replica]
    max_lag: float
    interval: float
    primary_reads: int = 0
    _history: deque[tuple[float, int]] = field(default_factory=deque)
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    def choose(self) -> Replica | None:
        """The next usable standby (round robin), or None: read from the primary."""
        usable = [replica for replica in self.replicas if replica.usable]
        return usable[next(self._turn) % len(usable)] if usable else None

    def failed(self, replica: Replica, error: BaseException) -> None:
        """A read failed on `replica`: skip it until a check finds it well again."""
        replica.state, replica.error = UNREACHABLE, _describe(error)
        replica.fallbacks += 1
        log.warning("read replica %s failed, reading from the primary: %s", replica.name, replica.error)

    async def check(self) -> None:
        """Sample the primary's WAL position, then measure every standby against it."""
        try:
            async with asyncio.timeout(PROBE_SECONDS):
                lsn: int = await self.primary.fetchval(_PRIMARY_SQL)
        except SERVER_FAILURES as error:  # keep the last samples: standbys still serve meanwhile
            log.warning("replica check: the primary's WAL position is unavailable: %s", _describe(error))
        else:
            self._remember(time.monotonic(), lsn)
        await asyncio.gather(*(self._probe(replica) for replica in self.replicas))

    def _remember(self, now: float, lsn: int) -> None:
        if self._history and lsn < self._history[-1][1]:  # a new primary (failover): start over
            self._history.clear()
        self._history.append((now, lsn))
        keep = max(HISTORY_SECONDS, 4 * self.max_lag)
        while len(self._history) > 1 and self._history[0][0] < now - keep:
            self._history.popleft()

    def lag(self, replay_lsn: int, now: float) -> tuple[float, int] | None:
        """(seconds, bytes) the standby at `replay_lsn` is behind; None before the first sample."""
        if not self._history:
            return None
        newest = self._history[-1][1]
        if replay_lsn >= newest:
            return 0.0, 0
        oldest_missing = next(t for t, lsn in self._history if lsn > replay_lsn)
        return now - oldest_missing, newest - replay_lsn

    async def _probe(self, replica: Replica) -> None:
        try:
            async with asyncio.timeout(PROBE_SECONDS):
                row = await replica.pool.fetchrow(_STANDBY_SQL)
        except SERVER_FAILURES as error:
            self._set(replica, UNREACHABLE, _describe(error))
            return
        replica.replay_age, replica.replay_paused = row["replay_age"], row["paused"]
        replica.in_recovery = row["in_recovery"]
        if not row["in_recovery"]:
            # A server that accepts writes is not a copy of the primary (a promoted standby, a wrong
            # URL): its data may differ, so no reads go there.
            replica.lag_seconds = replica.lag_bytes = None
            self._set(replica, NOT_STANDBY, "not in recovery: not a standby of database_url")
            return
        if row["replay_lsn"] is None:  # in recovery but nothing replayed yet: not usable still
            self._set(replica, UNKNOWN, "no WAL replayed yet")
            return
        measured = self.lag(row["replay_lsn"], time.monotonic())
        replica.lag_seconds, replica.lag_bytes = measured if measured else (None, None)
        # Unknown lag (the primary never answered a sample) serves: nothing newer can be written.
        behind = measured is not None and measured[0] > self.max_lag
        self._set(
            replica, LAGGING if behind else OK, f"behind by more than {self.max_lag:g} s" if behind else None
        )

    def _set(self, replica: Replica, state: str, error: str | None) -> None:
        if state != replica.state:
            level = logging.INFO if state == OK else logging.WARNING
            log.log(level, "read replica %s: %s%s", replica.name, state, f" ({error})" if error else "")
        replica.state, replica.error = state, error

    async def run(self) -> None:
        """Check every interval until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:  # a bug here must not freeze the standbys in their last state silently
                log.exception("replica check failed")

    def report(self) -> list[dict[str, Any]]:
        """Every standby's state, for /ready."""
        return [replica.report() for replica in self.replicas]


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


@contextlib.asynccontextmanager
async def open_replicas(
    primary: asyncpg.Pool,
    urls: Sequence[str],
    max_lag: float,
    interval: float,
    pool_max: int = 16,
    statement_timeout_ms: int = 0,
) -> AsyncIterator[ReplicaSet]:
    """Pools for the standbys (connecting lazily: one may be down at start), checked every interval."""
    replicas = []
    for number, url in enumerate(urls, start=1):
        pool = await create_pool(url, 0, pool_max, statement_timeout_ms, connect_timeout=PROBE_SECONDS)
        replicas.append(Replica(f"replica{number}", redact_url(url), pool))
    replica_set = ReplicaSet(primary, replicas, max_lag, interval)
    await replica_set.check()  # usable from the first request on
    task = asyncio.create_task(replica_set.run(), name="twinhub-replica-check")
    try:
        yield replica_set
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.gather(*(replica.pool.close() for replica in replicas))


__all__ = ["SERVER_FAILURES", "Replica", "ReplicaSet", "open_replicas"]
