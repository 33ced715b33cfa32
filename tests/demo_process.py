# SPDX-License-Identifier: Apache-2.0
"""`twinhub demo` as a subprocess for tests: start it, wait for what it should get to, Ctrl-C it.

Used by tests/test_demo_command.py and tests/viewer/test_browser_demo.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def poll(check: Callable[[], Any], within: float, process: subprocess.Popen[str], what: str) -> None:
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


def start_demo(data_dir: Path, http_port: int, *options: str) -> subprocess.Popen[str]:
    """`twinhub demo` on data_dir and http_port, MQTT on free ports; its output in a pipe."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TWINHUB_")}
    env["TWINHUB_DATA_DIR"] = str(data_dir)
    command = [
        sys.executable, "-m", "hub.cli", "demo", "--http-port", str(http_port), "--mqtt-port", "0",
        "--ws-port", "0", *options,
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_demo(process: subprocess.Popen[str]) -> str:
    """Ctrl-C (SIGINT) and the output; at most 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    return process.communicate(timeout=30)[0]


def run_then_stop(process: subprocess.Popen[str], steps: Callable[[], None]) -> str:
    """Run the checks against a started demo, stop it with Ctrl-C, check it exited with 0, and
    return its output (a failing check shows the end of it too)."""
    try:
        steps()
    except AssertionError as exc:
        raise AssertionError(f"{exc}; its output ends: {stop_demo(process)[-3000:]}") from None
    output = stop_demo(process)
    assert process.returncode == 0, output[-3000:]
    return output


def wait_until_backfilled(data_dir: Path, base: str, process: subprocess.Popen[str]) -> None:
    """/ready answers ready, then demo.json says the history is backfilled."""
    state = data_dir / "demo" / "demo.json"
    poll(lambda: get_json(f"{base}/ready")["status"] == "ready", 40, process, "/ready")
    poll(lambda: json.loads(state.read_text())["backfilled"], 30, process, "the end of the backfill")


@contextlib.contextmanager
def own_data_dir() -> Iterator[Path]:
    """A data folder of our own: pytest's numbered tmp folders are pruned by other concurrent
    pytest sessions of the same user, which would pull the embedded PostgreSQL's files away."""
    with tempfile.TemporaryDirectory(prefix="twinhub-demo-") as folder:
        yield Path(folder)
