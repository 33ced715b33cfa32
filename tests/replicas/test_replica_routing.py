# SPDX-License-Identifier: Apache-2.0
"""Read routing without a standby fixture: lag arithmetic, a server that is not a standby, a
standby that fails during a read (real refused connections, no mocks)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.app import build_app
from hub.config import Settings
from hub.http.reads import DATABASE, READS
from hub.store.replicas import OK, ReplicaSet


def _lag_of(history: list[tuple[float, int]], replay_lsn: int, now: float) -> tuple[float, int] | None:
    replicas = ReplicaSet(primary=None, replicas=[], max_lag=5.0, interval=1.0)  # type: ignore[arg-type]
    for when, lsn in history:
        replicas._remember(when, lsn)
    return replicas.lag(replay_lsn, now)


@pytest.mark.parametrize(
    ("history", "replay_lsn", "now", "expected"),
    [
        ([], 100, 10.0, None),  # no sample of the primary yet: unknown
        ([(1.0, 100), (2.0, 100), (3.0, 100)], 100, 9.0, (0.0, 0)),  # idle primary: never behind
        ([(1.0, 100), (2.0, 150), (3.0, 200)], 200, 9.0, (0.0, 0)),  # caught up with the newest
        ([(1.0, 100), (2.0, 150), (3.0, 200)], 120, 9.0, (7.0, 80)),  # missing WAL seen first at 2.0
        ([(1.0, 100), (2.0, 150), (3.0, 200)], 50, 9.0, (8.0, 150)),  # behind every sample kept
        ([(1.0, 500), (2.0, 100)], 100, 3.0, (0.0, 0)),  # the primary's WAL went back: a new primary
    ],
)
def test_lag_is_the_age_of_the_oldest_wal_the_standby_has_not_replayed(
    history: list[tuple[float, int]], replay_lsn: int, now: float, expected: tuple[float, int] | None
) -> None:
    assert _lag_of(history, replay_lsn, now) == expected


def _refused_dsn(dsn: str) -> str:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{port}"))


def _settings(db_dsn: str, tmp_path: Path, *read_urls: str) -> Settings:
    return Settings(
        database_url=db_dsn,
        database_read_urls=read_urls,
        replica_check_interval=60,  # the tests drive the state themselves
        data_dir=tmp_path / "data",
        migrate_on_start=False,
        auth_anonymous_write=True,
    )


async def test_a_read_url_that_is_not_a_standby_gets_no_reads(clean_db: str, tmp_path: Path) -> None:
    async with TestClient(TestServer(build_app(_settings(clean_db, tmp_path, clean_db)))) as client:
        response = await client.get("/v1.1/Things")
        assert response.status == 200
        assert response.headers[DATABASE] == "primary"
        ready = await (await client.get("/ready")).json()
        assert ready["status"] == "ready"
        assert ready["checks"]["replicas"][0] | {"url": ""} == ready["checks"]["replicas"][0] | {
            "url": "",
            "state": "not_standby",
            "in_recovery": False,
        }


async def test_a_standby_failing_during_a_read_is_answered_by_the_primary(
    clean_db: str, tmp_path: Path
) -> None:
    async with TestClient(
        TestServer(build_app(_settings(clean_db, tmp_path, _refused_dsn(clean_db))))
    ) as client:
        replica = client.app[READS].replicas[0]
        ready: Any = await (await client.get("/ready")).json()
        assert ready["status"] == "ready"
        assert ready["checks"]["replicas"][0]["state"] == "unreachable"
        replica.state = OK  # as if it had answered the last check and went away since
        created = await client.post("/v1.1/Things", json={"name": "n", "description": "d"})
        response = await client.get(urlsplit(created.headers["Location"]).path)
        assert response.status == 200
        assert response.headers[DATABASE] == "primary"
        assert replica.state == "unreachable"
        assert replica.fallbacks == 1
        metrics = await (await client.get("/metrics")).text()
        assert 'twinhub_db_replica_fallbacks_total{replica="replica1"} 1.0' in metrics
        assert 'twinhub_db_reads_total{server="primary"} 1.0' in metrics
