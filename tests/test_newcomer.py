# SPDX-License-Identifier: Apache-2.0
"""The newcomer's path, as the README tells it (issue 11): a fresh clone, a fresh virtual environment
with `pip install .` and no extras, `twinhub demo`, the API and the page at / answering, Ctrl-C
exiting 0. It proves the runtime dependency list is complete, so pip really installs (using the
machine's pip configuration and cache): about a minute.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_process import free_port, get_json, poll

from hub.demo.sockets import WILDCARDS, listening

ROOT = Path(__file__).resolve().parent.parent
PIP_SECONDS = 600


def run(command: list[str], cwd: Path, timeout: float) -> str:
    """Run a setup step; fail with its output when it fails."""
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, (
        f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    )
    return result.stdout


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    """A clone of this repository's HEAD installed without extras into a new venv; its bin folder."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of twinhub to clone")
    with tempfile.TemporaryDirectory(prefix="twinhub-newcomer-") as folder:
        home = Path(folder)
        run(["git", "clone", "--quiet", str(ROOT), str(home / "twinhub")], home, 120)
        run([sys.executable, "-m", "venv", str(home / "venv")], home, 120)
        pip = [str(home / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        run([*pip, str(home / "twinhub")], home, PIP_SECONDS)
        yield home / "venv" / "bin"


def fetch(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.headers.get_content_type(), response.read().decode()


@pytest.mark.newcomer
def test_a_fresh_install_runs_the_demo_and_stops_on_ctrl_c(installed: Path) -> None:
    help_text = run([str(installed / "twinhub"), "--help"], installed, 60)
    assert "demo" in help_text
    with tempfile.TemporaryDirectory(prefix="twinhub-newcomer-data-") as folder:
        data = Path(folder)
        env = {key: value for key, value in os.environ.items() if not key.startswith("TWINHUB_")}
        env["TWINHUB_DATA_DIR"] = str(data)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        command = [str(installed / "twinhub"), "demo", "--http-port", str(port), "--mqtt-port", "0",
                   "--ws-port", "0", "--devices", "3", "--backfill-hours", "0.2", "--rate", "5"]  # fmt: skip
        # cwd outside the checkout: the installed package must be the one that runs.
        demo = subprocess.Popen(
            command, cwd=data, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            poll(lambda: get_json(f"{base}/ready")["status"] == "ready", 90, demo, "/ready")
            root = get_json(f"{base}/v1.1")
            assert {entity["name"] for entity in root["value"]} >= {"Things", "Datastreams", "Observations"}
            poll(lambda: get_json(f"{base}/v1.1/Things")["value"], 60, demo, "the simulated Things")
            status, content_type, page = fetch(f"{base}/")
            assert (status, content_type) == (200, "text/html")
            if "make viewer" in page:  # not built (no npm in a fresh clone): the page says what to do
                assert f'href="{base}/v1.1"' in page
            ports = json.loads((data / "demo" / "demo.json").read_text())
            for name in ("http_port", "mqtt_port", "ws_port"):
                bound = listening(ports[name])
                assert bound, f"nothing listens on the demo's {name} {ports[name]}"
                assert not bound & WILDCARDS, f"the demo's {name} listens on every interface: {bound}"
        finally:
            if demo.poll() is None:
                demo.send_signal(signal.SIGINT)  # Ctrl-C
            output = demo.communicate(timeout=60)[0]
    assert demo.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
