# SPDX-License-Identifier: Apache-2.0
"""`twinhub demo` as a user runs it: it comes up with its own PostgreSQL and broker, Ctrl-C stops
everything with exit code 0, and a second start finds the first one's devices and history."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DEVICES = 9  # every domain in every city


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _poll(check: Any, within: float, process: subprocess.Popen[str], what: str) -> None:
    """Call check() until it returns something truthy; fail early if the demo exited."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the demo exited with {process.returncode} before {what}")
        try:
            if check():
                return
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"the demo did not get to {what} in {within:g} s")


def _start(data_dir: Path, http_port: int, broker: str) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TWINHUB_")}
    env["TWINHUB_DATA_DIR"] = str(data_dir)
    command = [
        sys.executable, "-m", "hub.cli", "demo", "--http-port", str(http_port), "--mqtt-port", "0",
        "--ws-port", "0", "--devices", str(DEVICES), "--backfill-hours", "1", "--rate", "20",
        "--broker", broker,
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(process: subprocess.Popen[str]) -> str:
    """Ctrl-C (SIGINT) and the output; at most 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    return process.communicate(timeout=30)[0]


def _run(process: subprocess.Popen[str], steps: Any) -> str:
    """Run the checks against a started demo, stop it, and return its output (in any failure too)."""
    try:
        steps()
    except AssertionError as exc:
        raise AssertionError(f"{exc}; its output ends: {_stop(process)[-3000:]}") from None
    output = _stop(process)
    assert process.returncode == 0, output[-3000:]
    return output


def _count(base: str, path: str) -> int:
    return int(_get(f"{base}/v1.1/{path}?$count=true&$top=0")["@iot.count"])


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data folder of our own: pytest's numbered tmp folders are pruned by other concurrent
    pytest sessions of the same user, which would pull the embedded PostgreSQL's files away."""
    with tempfile.TemporaryDirectory(prefix="twinhub-demo-") as folder:
        yield Path(folder)


@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
def test_demo_starts_stops_on_ctrl_c_and_reuses_its_data(data_dir: Path, broker: str) -> None:
    if broker == "mosquitto" and shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    state = data_dir / "demo" / "demo.json"

    found: dict[str, int] = {}

    def first_run() -> None:
        _poll(lambda: _get(f"{base}/ready")["status"] == "ready", 40, first, "/ready")
        _poll(lambda: json.loads(state.read_text())["backfilled"], 30, first, "the end of the backfill")
        found["things"], found["observations"] = _count(base, "Things"), _count(base, "Observations")

    first = _start(data_dir, port, broker)
    output = _run(first, first_run)
    assert found["things"] == DEVICES
    assert found["observations"] > 0
    for line in (f"viewer            {base}/", f"SensorThings API  {base}/v1.1", "MQTT (WebSocket)"):
        assert line in output
    assert f"({broker})" in output  # after the MQTT (TCP) URL
    assert "backfilling now" in output
    assert "simulator: sent " in output  # the final count

    def second_run() -> None:
        _poll(lambda: _get(f"{base}/ready")["status"] == "ready", 40, second, "/ready")
        more = found["observations"]
        _poll(lambda: _count(base, "Observations") > more, 20, second, "new live Observations")
        assert _count(base, "Things") == DEVICES  # the same devices, found again

    second = _start(data_dir, port, broker)
    output = _run(second, second_run)
    assert "kept from the last run" in output
    assert "simulator: backfilled" not in output  # no second history
