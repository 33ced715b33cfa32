# SPDX-License-Identifier: Apache-2.0
"""`twinhub demo` as a user runs it: it comes up with its own PostgreSQL and broker, Ctrl-C stops
everything with exit code 0, and a second start finds the first one's devices and history."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_process import (
    free_port,
    get_json,
    own_data_dir,
    poll,
    run_then_stop,
    start_demo,
    wait_until_backfilled,
)

DEVICES = 9  # every domain in every city


def _start(data_dir: Path, http_port: int, broker: str) -> subprocess.Popen[str]:
    options = ("--devices", str(DEVICES), "--backfill-hours", "1", "--rate", "20", "--broker", broker)
    return start_demo(data_dir, http_port, *options)


def _count(base: str, path: str) -> int:
    return int(get_json(f"{base}/v1.1/{path}?$count=true&$top=0")["@iot.count"])


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with own_data_dir() as folder:
        yield folder


@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
def test_demo_starts_stops_on_ctrl_c_and_reuses_its_data(data_dir: Path, broker: str) -> None:
    if broker == "mosquitto" and shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed")
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    found: dict[str, int] = {}

    def first_run() -> None:
        wait_until_backfilled(data_dir, base, first)
        found["things"], found["observations"] = _count(base, "Things"), _count(base, "Observations")

    first = _start(data_dir, port, broker)
    output = run_then_stop(first, first_run)
    assert found["things"] == DEVICES
    assert found["observations"] > 0
    for line in (f"viewer            {base}/", f"SensorThings API  {base}/v1.1", "MQTT (WebSocket)"):
        assert line in output
    assert f"({broker})" in output  # after the MQTT (TCP) URL
    assert "backfilling now" in output
    assert "simulator: sent " in output  # the final count

    def second_run() -> None:
        poll(lambda: get_json(f"{base}/ready")["status"] == "ready", 40, second, "/ready")
        more = found["observations"]
        poll(lambda: _count(base, "Observations") > more, 20, second, "new live Observations")
        assert _count(base, "Things") == DEVICES  # the same devices, found again

    second = _start(data_dir, port, broker)
    output = run_then_stop(second, second_run)
    assert "kept from the last run" in output
    assert "simulator: backfilled" not in output  # no second history
