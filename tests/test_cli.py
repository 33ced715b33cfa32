# SPDX-License-Identifier: Apache-2.0
"""The twinhub command in a subprocess: exit codes and one-line errors."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from demo_process import own_data_dir

from hub.store.migrate import MIGRATIONS_DIR

NewDatabase = Callable[[], Awaitable[str]]

ROOT = Path(__file__).resolve().parent.parent
UNREACHABLE_DSN = "postgresql://postgres@127.0.0.1:1/x"

# serve with a stand-in hub.app, so the command's own job (ports, signals, logging) is tested alone.
STAND_IN = """
import sys, types
from aiohttp import web
module = types.ModuleType("hub.app")
def build_app(settings):
    app = web.Application()
    async def root(request):
        return web.json_response({"database": settings.database_url is not None})
    app.router.add_get("/v1.1", root)
    return app
module.build_app = build_app
sys.modules["hub.app"] = module
from hub.cli import main
raise SystemExit(main())
"""


def clean_env(**settings: str) -> dict[str, str]:
    """The current environment without TWINHUB_* variables, plus `settings`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TWINHUB_")}
    return env | settings


def twinhub(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("twinhub: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# --- check-config -----------------------------------------------------------


def test_check_config_prints_settings_with_password_masked(tmp_path: Path) -> None:
    env = clean_env(TWINHUB_DATABASE_URL="postgresql://hub:secret@db:5432/hub", TWINHUB_HTTP_PORT="9000")
    result = twinhub("check-config", env=env)
    assert result.returncode == 0, result.stderr
    assert "http_port = 9000" in result.stdout.splitlines()
    assert 'database_url = "postgresql://hub:***@db:5432/hub"' in result.stdout.splitlines()
    assert "secret" not in result.stdout + result.stderr


@pytest.mark.parametrize("position", ["before", "after"])
def test_config_option_before_or_after_command(tmp_path: Path, position: str) -> None:
    config = tmp_path / "hub.toml"
    config.write_text("max_top = 777\n", encoding="utf-8")
    args = ("--config", str(config), "check-config")
    result = twinhub(*(args if position == "before" else args[2:] + args[:2]), env=clean_env())
    assert "max_top = 777" in result.stdout.splitlines(), result.stderr


@pytest.mark.parametrize("command", ["check-config", "migrate", "serve"])
def test_bad_port_is_a_config_error(command: str) -> None:
    result = twinhub(command, env=clean_env(TWINHUB_HTTP_PORT="abc"))
    assert_one_line_error(result, 2, "TWINHUB_HTTP_PORT", "'abc'")


def test_unknown_toml_key_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text("http_prot = 1\n", encoding="utf-8")
    assert_one_line_error(twinhub("--config", str(config), "check-config", env=clean_env()), 2, "http_prot")


# --- migrate ----------------------------------------------------------------


async def test_migrate_then_up_to_date(new_database: NewDatabase) -> None:
    env = clean_env(TWINHUB_DATABASE_URL=await new_database())
    first = twinhub("migrate", env=env)
    assert first.returncode == 0, first.stderr
    files = sorted(path.name for path in MIGRATIONS_DIR.glob("*.sql"))
    timed = [
        line.split()[1]
        for line in first.stdout.splitlines()
        if re.fullmatch(r"applied \S+ in [\d.]+ s", line)
    ]
    assert timed == files  # each migration reports how long it took
    second = twinhub("migrate", env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "database is up to date"


def test_migrate_unreachable_database() -> None:
    result = twinhub("migrate", env=clean_env(TWINHUB_DATABASE_URL=UNREACHABLE_DSN))
    assert_one_line_error(result, 1, "cannot use the database at postgresql://postgres@127.0.0.1:1/x")


def test_migrate_hides_password_in_errors() -> None:
    result = twinhub("migrate", env=clean_env(TWINHUB_DATABASE_URL="postgresql://u:secret@127.0.0.1:1/x"))
    assert_one_line_error(result, 1)
    assert "secret" not in result.stderr


def test_migrate_uses_embedded_postgres_without_url() -> None:
    # A folder of our own, as for the demo (tests/demo_process.py): run as root, pytest sessions
    # starting meanwhile close their base temp to the embedded server's own user (conftest.pg_dsn).
    with own_data_dir() as data:
        env = clean_env(TWINHUB_DATA_DIR=str(data))
        result = twinhub("migrate", env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "using the embedded PostgreSQL in" in result.stderr
        again = twinhub("migrate", env=env, timeout=120)
        assert again.stdout.strip() == "database is up to date", again.stderr


# --- serve ------------------------------------------------------------------


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    script = tmp_path / "serve_stand_in.py"
    script.write_text(STAND_IN, encoding="utf-8")
    return script


@pytest.fixture
def hub_process(stand_in: Path, db_dsn: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    env = clean_env(TWINHUB_DATABASE_URL=db_dsn, TWINHUB_HTTP_PORT=str(port))
    process = subprocess.Popen(
        [sys.executable, str(stand_in), "serve"], env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_for_line(process: subprocess.Popen[str], fragment: str, timeout: float = 30) -> str:
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if fragment in line:
            return line
        if not line and process.poll() is not None:
            break
    pytest.fail(f"no {fragment!r} from the hub (exit code {process.poll()})")


def test_serve_listens_and_stops_on_sigterm(hub_process: tuple[subprocess.Popen[str], int]) -> None:
    process, port = hub_process
    line = wait_for_line(process, "twinhub listening on")
    assert line.rstrip().endswith(f"INFO hub.cli: twinhub listening on http://127.0.0.1:{port}/v1.1")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1.1", timeout=10) as response:
        assert response.status == 200
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def test_serve_port_in_use(stand_in: Path, db_dsn: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(TWINHUB_DATABASE_URL=db_dsn, TWINHUB_HTTP_PORT=str(port), TWINHUB_LOG_LEVEL="ERROR")
        result = subprocess.run(
            [sys.executable, str(stand_in), "serve"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert_one_line_error(result, 1, f"cannot listen on 127.0.0.1:{port}")


def test_serve_unreachable_database(stand_in: Path) -> None:
    env = clean_env(TWINHUB_DATABASE_URL=UNREACHABLE_DSN)
    result = subprocess.run(
        [sys.executable, str(stand_in), "serve"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_one_line_error(result, 1, "cannot use the database")


# --- a missing piece breaks only the command that needs it ------------------

# paho (the simulator's MQTT library) made unimportable, as in an incomplete installation.
WITHOUT_PAHO = """
import sys
sys.modules["paho"] = None
from hub.cli import main
raise SystemExit(main())
"""


def test_a_missing_simulator_library_breaks_only_simulate_and_demo() -> None:
    env = clean_env(TWINHUB_DATABASE_URL=UNREACHABLE_DSN)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", WITHOUT_PAHO, *args]
        return subprocess.run(
            command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        )

    helped = run("--help")
    assert helped.returncode == 0, helped.stderr
    assert "simulate" in helped.stdout
    assert run("demo", "--help").returncode == 0
    checked = run("check-config")
    assert checked.returncode == 0, checked.stderr
    assert "database_url" in checked.stdout
    assert_one_line_error(run("simulate", "--duration", "1"), 1, "cannot load hub.demo.commands", "paho")
