# SPDX-License-Identifier: Apache-2.0
"""A `twinhub serve` in its own process on a database the test owns, and plain HTTP calls to it."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from chromium import WAIT, free_port


def request(method: str, url: str, body: Any = None) -> Any:
    """One HTTP call with a JSON body; the decoded JSON answer (None when empty)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=WAIT) as response:
        text = response.read()
    return json.loads(text) if text else None


@contextlib.contextmanager
def serving(dsn: str, folder: Path, extra: Mapping[str, str] | None = None) -> Iterator[str]:
    """`twinhub serve` on `dsn` and a free port until the block ends; yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINHUB_")}
    env |= {
        "TWINHUB_DATABASE_URL": dsn,
        "TWINHUB_HTTP_HOST": "127.0.0.1",
        "TWINHUB_HTTP_PORT": str(port),
        "TWINHUB_DATA_DIR": str(folder / "data"),
        "TWINHUB_AUTH_ANONYMOUS_WRITE": "true",  # the tests write their data without keys
        **(extra or {}),
    }
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "hub.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from hub.cli import main; sys.exit(main(['serve']))"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + WAIT
        while True:
            if process.poll() is not None:
                pytest.fail(f"the hub exited: {log_path.read_text()}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{base}/health", timeout=2).close()
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the hub did not answer: {log_path.read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
