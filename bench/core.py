# SPDX-License-Identifier: Apache-2.0
"""Core benchmark of the hub: Observation POSTs and paged Observation GETs over HTTP.

The hub runs in its own process (`python -m hub.cli serve`) against a fresh database
`twinhub_bench`, so the load generator never shares the server's event loop (it does
share the machine's cores: its CPU use is reported next to every figure).

    .venv/bin/python -m bench.core [--rows 1000000] [--duration 10] [--output FILE]

See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import itertools
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiohttp
import asyncpg
import orjson

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as bench/core.py: make `bench` and `hub` importable
    sys.path.insert(0, str(REPO_ROOT))

from bench.harness import BenchError, Serve, check_loopback  # noqa: E402

BENCH_DB = "twinhub_bench"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DSN_ENV = "TWINHUB_BENCH_DSN"
HOST = "127.0.0.1"
API = "/v1.1"

TARGET_POST_RPS = 2500.0  # at concurrency 16
TARGET_GET_P50_MS = 3.0

JSON_HEADERS = {"Content-Type": "application/json"}
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60)
ERROR_SAMPLES = 3
T0 = datetime(2020, 1, 1, tzinfo=UTC)

# psutil is optional: without it the server and PostgreSQL CPU columns stay empty.
try:
    psutil: Any = importlib.import_module("psutil")
except ImportError:  # pragma: no cover - depends on the environment
    psutil = None


# ---- results -----------------------------------------------------------------------------------


@dataclass
class CpuUse:
    """CPU seconds used during a phase per wall second (1.0 = one core busy)."""

    client: float
    server: float | None
    postgres: float | None
    other: float | None  # everything else on the machine: other sessions' load disturbs the figures


@dataclass
class Phase:
    """What one timed load phase measured."""

    name: str
    concurrency: int
    ok: int
    errors: int
    wall: float
    latencies: list[float]
    cpu: CpuUse
    error_samples: list[str] = field(default_factory=list)
    target: str = ""

    @property
    def rps(self) -> float:
        return self.ok / self.wall if self.wall > 0 else 0.0

    def cpu_ms_per_request(self, share: float | None) -> float | None:
        """CPU milliseconds per successful request from a share of one core."""
        if share is None or self.ok == 0:
            return None
        return share * self.wall / self.ok * 1000

    def pct_ms(self, q: float) -> float | None:
        """Latency percentile q (0-100) of the successful requests, nearest rank, in ms."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank] * 1000


@dataclass
class Report:
    """Everything the final table shows."""

    machine: dict[str, str] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)
    load_rows: int = 0
    load_seconds: float = 0.0
    prepare_seconds: float = 0.0
    profiles: dict[str, str] = field(default_factory=dict)
    plans: dict[str, str] = field(default_factory=dict)


# ---- CPU accounting ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU seconds at one moment."""

    wall: float
    client: float
    server: float | None = None
    postgres: float | None = None
    machine: float | None = None  # busy time of all cores


class CpuMeter:
    """Samples CPU time of this process, the hub, PostgreSQL (for the bench database) and the machine."""

    def __init__(self, server_pid: int | None) -> None:
        self.server = None
        if psutil is not None and server_pid is not None:
            self.server = psutil.Process(server_pid)

    def snapshot(self) -> CpuSample:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        client = usage.ru_utime + usage.ru_stime
        if self.server is None:
            return CpuSample(time.perf_counter(), client)
        times = self.server.cpu_times()
        server = times.user + times.system
        postgres = sum(_cpu(proc) for proc in psutil.process_iter(["name", "cmdline"]) if _ours(proc))
        machine = psutil.cpu_times()
        # guest time is counted in user already; steal is the hypervisor's, not this machine's work.
        idle = ("idle", "iowait", "steal", "guest", "guest_nice")
        busy = sum(getattr(machine, name) for name in machine._fields if name not in idle)
        return CpuSample(time.perf_counter(), client, server, postgres, busy)

    def measure(self, before: CpuSample) -> CpuUse:
        """CPU used since `before`, per wall second."""
        after = self.snapshot()
        wall = max(after.wall - before.wall, 1e-9)

        def share(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else (b - a) / wall

        client = (after.client - before.client) / wall
        server = share(before.server, after.server)
        postgres = share(before.postgres, after.postgres)
        machine = share(before.machine, after.machine)
        other = None
        if machine is not None and server is not None and postgres is not None:
            other = max(0.0, machine - client - server - postgres)
        return CpuUse(client=client, server=server, postgres=postgres, other=other)


def _ours(proc: Any) -> bool:
    """PostgreSQL's own processes and its backends for the bench database, not other databases' clients."""
    if not (proc.info["name"] or "").startswith("postgres"):
        return False
    title = " ".join(proc.info["cmdline"] or [])
    is_client_backend = "(" in title or "[local]" in title
    return not is_client_backend or f" {BENCH_DB} " in title


def _cpu(proc: Any) -> float:
    try:
        times = proc.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0
    return float(times.user + times.system)


# ---- load generation ---------------------------------------------------------------------------

# (method, path with query, body or None) for the i-th request of a phase.
RequestSpec = Callable[[int], tuple[str, str, bytes | None]]


async def run_phase(
    base: str,
    name: str,
    concurrency: int,
    spec: RequestSpec,
    expected: int,
    meter: CpuMeter,
    *,
    duration: float | None = None,
    count: int | None = None,
) -> Phase:
    """Send requests from `concurrency` workers until `duration` seconds or `count` requests are done."""
    assert (duration is None) != (count is None), "a phase is bounded by time or by count"
    latencies: list[float] = []
    samples: list[str] = []
    ok = errors = 0
    issued = itertools.count()
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(base, connector=connector, timeout=REQUEST_TIMEOUT) as session:
        started = meter.snapshot()
        deadline = started.wall + duration if duration is not None else None

        async def worker() -> None:
            nonlocal ok, errors
            while True:
                i = next(issued)
                if count is not None and i >= count:
                    return
                if deadline is not None and time.perf_counter() >= deadline:
                    return
                method, path, body = spec(i)
                t0 = time.perf_counter()
                try:
                    async with session.request(method, path, data=body, headers=JSON_HEADERS) as resp:
                        payload = await resp.read()
                        status = resp.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    errors += 1
                    if len(samples) < ERROR_SAMPLES:
                        samples.append(f"{type(exc).__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - t0
                if status == expected:
                    ok += 1
                    latencies.append(elapsed)
                else:
                    errors += 1
                    if len(samples) < ERROR_SAMPLES:
                        samples.append(f"HTTP {status}: {payload[:300].decode(errors='replace')}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu = meter.measure(started)
        wall = time.perf_counter() - started.wall
    return Phase(name, concurrency, ok, errors, wall, latencies, cpu, samples)


async def warm_up(base: str, concurrency: int, spec: RequestSpec, expected: int, seconds: float) -> None:
    """Untimed requests so that pool connections, prepared statements and caches exist."""
    if seconds <= 0:
        return
    meter = CpuMeter(None)
    phase = await run_phase(base, "warm-up", concurrency, spec, expected, meter, duration=seconds)
    if phase.ok == 0:
        raise BenchError(f"warm-up got no {expected} answer: {phase.error_samples}")


# ---- the hub process ---------------------------------------------------------------------------


class Hub(Serve):
    """`twinhub serve` in a child process (harness.Serve), its output in a log file. Unlike the
    deployed bench's hub, other TWINHUB_* variables of the environment (not TWINHUB_CONFIG) pass on,
    and writes need no key: the figures are of the write path, not of auth."""

    def __init__(self, dsn: str, port: int, log_level: str, log_path: Path) -> None:
        extra = {"TWINHUB_LOG_LEVEL": log_level, "TWINHUB_AUTH_ANONYMOUS_WRITE": "true"}
        super().__init__(dsn, None, REPO_ROOT, log_path, port=port, extra=extra, inherit=True)


class Profiler:
    """py-spy record on the server pid while a phase runs (optional)."""

    def __init__(self, executable: str, pid: int, out: Path) -> None:
        self.executable = executable
        self.pid = pid
        self.out = out
        self.proc: asyncio.subprocess.Process | None = None

    @staticmethod
    def find() -> str | None:
        beside = Path(sys.executable).parent / "py-spy"
        return str(beside) if beside.exists() else shutil.which("py-spy")

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            self.executable,
            "record",
            "--pid",
            str(self.pid),
            "--rate",
            "200",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(self.out),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        await asyncio.sleep(0.5)  # let it attach before the phase starts
        if self.proc.returncode is not None:
            err = await self.proc.stderr.read() if self.proc.stderr else b""
            raise BenchError(f"py-spy failed: {err.decode(errors='replace').strip()}")

    async def stop(self) -> str:
        """Stop recording and summarize the samples."""
        if self.proc is None:
            return ""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.proc.communicate(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if not self.out.exists():
            return "(py-spy wrote no samples)"
        return summarize_profile(self.out.read_text(errors="replace"))


def _frame_name(frame: str) -> str:
    """'handle_post (hub/http/handlers.py:117)' -> 'handle_post (hub/http/handlers.py)'."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = path.replace(str(REPO_ROOT) + os.sep, "")
    return f"{name} ({path})" if path else name


def _package(frame: str) -> str:
    """The top-level package or stdlib module a frame belongs to."""
    path = frame.rpartition(" (")[2].rstrip(")")
    head = path.split("/", 1)[0] if "/" in path else path
    if head.startswith(".") or head.isdigit():  # stdlib: '.11/asyncio/...' after the /lib/python3 cut
        parts = path.split("/")
        head = parts[1] if len(parts) > 1 else path
    return head.removesuffix(".py")


def summarize_profile(raw: str, top: int = 15) -> str:
    """Markdown lists of the hottest functions (self and inclusive) from py-spy's raw output."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        n = int(number)
        frames = [_frame_name(f) for f in stack.split(";") if " (" in f]
        if not frames:
            continue
        samples += n
        own[frames[-1]] += n
        packages[_package(frames[-1])] += n
        for name in set(frames):
            if name.endswith(".py)") and " (hub/" in name and " (hub/cli.py)" not in name:
                total[name] += n
    if samples == 0:
        return "(no samples)"

    def listing(counter: Counter[str]) -> list[str]:
        return [f"  - {100 * n / samples:5.1f} % {name}" for name, n in counter.most_common(top)]

    return "\n".join(
        [
            f"{samples} busy samples (idle time in the event loop's select is not sampled).",
            "- self time by package:",
            *listing(packages),
            "- self time by function:",
            *listing(own),
            "- inclusive time by hub function (with its callees):",
            *listing(total),
        ]
    )


# ---- database ----------------------------------------------------------------------------------


def bench_dsn(maintenance_dsn: str) -> str:
    """The maintenance DSN with the benchmark database instead of its own."""
    parts = urlsplit(maintenance_dsn)
    return urlunsplit(parts._replace(path=f"/{BENCH_DB}"))


async def create_database(maintenance_dsn: str) -> tuple[str, str]:
    """Drop and create twinhub_bench; return (server version, durability settings)."""
    conn = await asyncpg.connect(maintenance_dsn, timeout=10)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {BENCH_DB}")
        version = await conn.fetchval("SHOW server_version")
        settings = await conn.fetch(
            "SELECT name, current_setting(name) AS setting FROM pg_settings "
            "WHERE name = ANY($1::text[]) ORDER BY name",
            ["fsync", "synchronous_commit", "shared_buffers", "max_connections"],
        )
    finally:
        await conn.close()
    return str(version), ", ".join(f"{r['name']}={r['setting']}" for r in settings)


async def drop_database(maintenance_dsn: str) -> None:
    conn = await asyncpg.connect(maintenance_dsn, timeout=10)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    finally:
        await conn.close()


_LOAD_SQL = """
INSERT INTO observations (phenomenon_time_start, phenomenon_time_end, result,
                          datastream_id, feature_of_interest_id)
SELECT t, t, to_jsonb(random()), $1, $2
FROM (SELECT $3::timestamptz + g * interval '1 second' AS t FROM generate_series(1, $4::bigint) g) s
"""


async def load_observations(dsn: str, datastream_id: int, feature_id: int, rows: int) -> float:
    """Insert `rows` observations set-based, VACUUM ANALYZE, refresh the stream's extents; seconds taken."""
    # Imported here so that the script also runs as bench/core.py (main() puts the repo on sys.path).
    from hub.store.observations import refresh_extents

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        t0 = time.perf_counter()
        await conn.execute(_LOAD_SQL, datastream_id, feature_id, T0, rows)
        elapsed = time.perf_counter() - t0
        # VACUUM sets hint bits and the visibility map, as autovacuum would soon after; it includes ANALYZE.
        await conn.execute("VACUUM (ANALYZE) observations")
        await refresh_extents(conn, "datastreams", [datastream_id])
    finally:
        await conn.close()
    return elapsed


async def explain(dsn: str, target: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the page query the hub compiles for GET `target` (warm, 2nd run).

    It asks the hub's own query compiler for the SQL. That is internal API which moves while the
    hub grows, so it is reached dynamically and any mismatch only costs the plan, not the run.
    """
    try:
        from multidict import MultiDict

        compiler: Any = importlib.import_module("hub.query.compile")
        parser_mod: Any = importlib.import_module("hub.query.parse")
        path_mod: Any = importlib.import_module("hub.query.path")
        config: Any = importlib.import_module("hub.config")
        path, _, text = target.partition("?")
        defaults = config.Settings.model_validate({})
        query = parser_mod.parse_query(MultiDict(parse_qsl(text)), defaults.default_top, defaults.max_top)
        extra: dict[str, Any] = {}
        if "dialect" in inspect.signature(compiler.compile_read).parameters:
            extra["dialect"] = importlib.import_module("hub.query.filter").Dialect(postgis=False)
        compiled = compiler.compile_read(path_mod.parse_path(path), query, **extra)
        page_sql = compiled.page if hasattr(compiled, "page") else compiled[0]
        sql_text, sql_args = str(page_sql.text), tuple(page_sql.args)
    except Exception as exc:  # the plan is only a diagnostic
        return f"(no plan: {type(exc).__name__}: {exc})"
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        sql = "EXPLAIN (ANALYZE, BUFFERS) " + sql_text
        await conn.fetch(sql, *sql_args)
        rows = await conn.fetch(sql, *sql_args)
    finally:
        await conn.close()
    return "\n".join([sql_text, f"-- args {sql_args}", *(str(r[0]) for r in rows)])


# ---- entities over HTTP ------------------------------------------------------------------------


def _thing(name: str, streams: int) -> dict[str, Any]:
    """A Thing with one Location and `streams` Datastreams, each with its own Sensor and ObservedProperty."""
    return {
        "name": name,
        "description": "benchmark station",
        "Locations": [
            {
                "name": f"{name} site",
                "description": "loopback",
                "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [9.99, 53.55]},
            }
        ],
        "Datastreams": [
            {
                "name": f"{name} stream {i}",
                "description": "air temperature",
                "unitOfMeasurement": {
                    "name": "degree Celsius",
                    "symbol": "degC",
                    "definition": "http://unitsofmeasure.org/ucum.html#para-30",
                },
                "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                "Sensor": {
                    "name": f"sensor {i}",
                    "description": "sensor",
                    "encodingType": "application/pdf",
                    "metadata": "http://example.org/sensor.pdf",
                },
                "ObservedProperty": {
                    "name": f"temperature {i}",
                    "description": "air temperature",
                    "definition": "http://qudt.org/vocab/quantitykind/Temperature",
                },
            }
            for i in range(streams)
        ],
    }


async def _post(session: aiohttp.ClientSession, path: str, body: Any) -> dict[str, Any]:
    async with session.post(f"{API}/{path}", data=orjson.dumps(body), headers=JSON_HEADERS) as resp:
        payload = await resp.read()
        if resp.status != 201:
            raise BenchError(f"POST {path} answered {resp.status}: {payload[:300]!r}")
    result: dict[str, Any] = orjson.loads(payload)
    return result


async def _get(session: aiohttp.ClientSession, path: str) -> dict[str, Any]:
    async with session.get(f"{API}/{path}") as resp:
        payload = await resp.read()
        if resp.status != 200:
            raise BenchError(f"GET {path} answered {resp.status}: {payload[:300]!r}")
    result: dict[str, Any] = orjson.loads(payload)
    return result


async def make_thing(base: str, name: str, streams: int) -> list[int]:
    """Create a Thing with `streams` Datastreams over HTTP; return the Datastream ids in order."""
    async with aiohttp.ClientSession(base, timeout=REQUEST_TIMEOUT) as session:
        thing = await _post(session, "Things", _thing(name, streams))
        listed = await _get(session, f"Things({thing['@iot.id']})/Datastreams?$top={streams}")
    return sorted(int(d["@iot.id"]) for d in listed["value"])


async def make_feature(base: str) -> int:
    body = {
        "name": "bench feature",
        "description": "where the loaded rows were observed",
        "encodingType": "application/geo+json",
        "feature": {"type": "Point", "coordinates": [9.99, 53.55]},
    }
    async with aiohttp.ClientSession(base, timeout=REQUEST_TIMEOUT) as session:
        return int((await _post(session, "FeaturesOfInterest", body))["@iot.id"])


async def check_page(base: str, path: str, expected_items: int) -> None:
    """One GET before the timed phase, to be sure the figures are for a full page."""
    async with aiohttp.ClientSession(base, timeout=REQUEST_TIMEOUT) as session:
        page = await _get(session, path)
    if len(page.get("value", [])) != expected_items:
        raise BenchError(f"GET {path} returned {len(page.get('value', []))} items, not {expected_items}")


# ---- phases ------------------------------------------------------------------------------------


def post_spec(streams: Sequence[int]) -> RequestSpec:
    """POST one Observation to the streams in turn; every phenomenonTime is distinct."""
    clock = itertools.count()
    start = datetime.now(UTC).replace(microsecond=0)

    def spec(i: int) -> tuple[str, str, bytes | None]:
        n = next(clock)
        when = (start + timedelta(milliseconds=n)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        body = orjson.dumps({"phenomenonTime": when, "result": 20 + (n % 100) / 10})
        return "POST", f"{API}/Datastreams({streams[i % len(streams)]})/Observations", body

    return spec


def get_spec(path: str) -> RequestSpec:
    url = f"{API}/{path}"

    def spec(_i: int) -> tuple[str, str, bytes | None]:
        return "GET", url, None

    return spec


async def run_with_profile(
    args: argparse.Namespace, report: Report, hub: Hub, label: str, phase: Callable[[], Any]
) -> Phase:
    """Run a phase, under py-spy when --profile asked for it."""
    profiler = None
    if args.profile:
        executable = Profiler.find()
        if executable is None:
            report.profiles[label] = "(py-spy not found: `.venv/bin/pip install py-spy`)"
        else:
            out = Path(args.workdir) / f"profile-{len(report.profiles)}.txt"
            profiler = Profiler(executable, hub.pid, out)
            await profiler.start()
    try:
        result: Phase = await phase()
    finally:
        if profiler is not None:
            report.profiles[label] = await profiler.stop()
    return result


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def describe(phase: Phase) -> str:
    p50, p95, p99 = (phase.pct_ms(q) for q in (50, 95, 99))
    text = (
        f"{phase.name} c={phase.concurrency}: {phase.ok} ok, {phase.errors} errors in {phase.wall:.1f} s"
        f" = {phase.rps:,.0f} req/s; p50 {_ms(p50)} p95 {_ms(p95)} p99 {_ms(p99)} ms;"
        f" CPU client {_pct(phase.cpu.client)} server {_pct(phase.cpu.server)}"
        f" postgres {_pct(phase.cpu.postgres)} other {_pct(phase.cpu.other)}"
    )
    for sample in phase.error_samples:
        text += f"\n    error: {sample}"
    return text


async def benchmark(args: argparse.Namespace, report: Report) -> None:
    maintenance = args.dsn
    check_loopback(maintenance)
    dsn = bench_dsn(maintenance)
    version, durability = await create_database(maintenance)
    report.machine.update(
        nproc=str(os.cpu_count()),
        cpu=_cpu_model(),
        python=platform.python_version(),
        aiohttp=aiohttp.__version__,
        postgresql=f"{version} ({durability})",
        hub=f"{_git_revision()}, 1 process, TWINHUB_LOG_LEVEL={args.server_log_level}",
    )
    hub = Hub(dsn, args.port or _free_port(), args.server_log_level, Path(args.workdir) / "hub.log")
    try:
        say(f"starting the hub on {hub.base} (database {BENCH_DB}; log {hub.log})")
        t0 = time.perf_counter()
        await hub.start()
        meter = CpuMeter(hub.pid)
        if psutil is None:
            say("psutil is not installed: server and PostgreSQL CPU are not reported")

        # Phase 1: single-Observation POSTs.
        spread = max(args.concurrency)
        streams = await make_thing(base=hub.base, name="post bench", streams=spread)
        report.prepare_seconds = time.perf_counter() - t0
        variants: list[tuple[str, int, list[int]]] = [
            ("POST Observation (1 Datastream)", c, streams[:1]) for c in args.concurrency
        ]
        if spread > 1:
            variants.append((f"POST Observation ({spread} Datastreams)", spread, streams))
        for name, concurrency, targets in variants:
            spec = post_spec(targets)
            await warm_up(hub.base, concurrency, spec, 201, args.warmup)

            async def post_phase(c: int = concurrency, s: RequestSpec = spec, n: str = name) -> Phase:
                return await run_phase(hub.base, n, c, s, 201, meter, duration=args.duration)

            phase = await run_with_profile(args, report, hub, f"{name}, c={concurrency}", post_phase)
            if concurrency == spread:
                phase.target = _verdict(phase.rps >= TARGET_POST_RPS, f">= {TARGET_POST_RPS:,.0f} req/s")
            report.phases.append(phase)
            say(describe(phase))

        # Phase 2: paged GETs over one Datastream with --rows Observations.
        (stream,) = await make_thing(base=hub.base, name="get bench", streams=1)
        feature = await make_feature(hub.base)
        say(f"loading {args.rows:,} observations into Datastream {stream} ...")
        report.load_seconds = await load_observations(dsn, stream, feature, args.rows)
        report.load_rows = args.rows
        say(f"loaded in {report.load_seconds:.1f} s (+ VACUUM ANALYZE and the extents update)")

        top = 100
        page = f"Datastreams({stream})/Observations?$top={top}"
        await check_page(hub.base, page, min(top, args.rows))
        report.plans[page] = await explain(dsn, page)
        for concurrency in args.concurrency:
            spec = get_spec(page)
            await warm_up(hub.base, concurrency, spec, 200, args.warmup)
            name = f"GET {top} Observations"

            async def get_phase(c: int = concurrency, s: RequestSpec = spec, n: str = name) -> Phase:
                return await run_phase(hub.base, n, c, s, 200, meter, count=args.get_requests)

            phase = await run_with_profile(args, report, hub, f"{name}, c={concurrency}", get_phase)
            p50 = phase.pct_ms(50)
            phase.target = _verdict(
                p50 is not None and p50 < TARGET_GET_P50_MS, f"p50 < {TARGET_GET_P50_MS:g} ms"
            )
            report.phases.append(phase)
            say(describe(phase))

        skip = min(500_000, max(args.rows - top, 0))
        deep = f"Datastreams({stream})/Observations?$top={top}&$skip={skip}"
        await check_page(hub.base, deep, min(top, args.rows - skip))
        report.plans[deep] = await explain(dsn, deep)
        phase = await run_phase(
            hub.base,
            f"GET {top} Observations, $skip={skip:,}",
            1,
            get_spec(deep),
            200,
            meter,
            count=args.deep_requests,
        )
        phase.target = "(no target; keyset paging later)"
        report.phases.append(phase)
        say(describe(phase))
    finally:
        hub.stop()
        if hub.proc is not None and hub.proc.returncode not in (0, None, -signal.SIGTERM):
            say(f"the hub exited with {hub.proc.returncode}:\n{hub.tail()}")
        if args.keep:
            say(f"kept database {BENCH_DB}")
        else:
            await drop_database(maintenance)


# ---- output ------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    digits = 2 if value < 10 else 1 if value < 100 else 0
    return f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def _verdict(met: bool, target: str) -> str:
    return f"{target}: {'met' if met else 'MISSED'}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_revision() -> str:
    """The commit the hub runs from, marked when the work tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "hub", "schemas"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "git revision unknown"
    return f"git {head}" + (" + uncommitted changes in hub/ or schemas/" if dirty else "")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def render(report: Report, args: argparse.Namespace) -> str:
    lines = [f"## twinhub core benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", ""]
    lines += [f"- {key}: {value}" for key, value in report.machine.items()]
    lines += [
        "- load generator: this script (aiohttp client, keep-alive, one connection per concurrent worker), "
        "on the same machine as the hub and PostgreSQL",
        f"- POST phases: {args.duration:g} s each after {args.warmup:g} s warm-up; GET phases: "
        f"{args.get_requests} requests each; deep offset: {args.deep_requests} requests",
    ]
    if report.load_rows:
        rate = report.load_rows / report.load_seconds if report.load_seconds else 0
        lines.append(
            f"- GET dataset: {report.load_rows:,} observations in one Datastream, INSERT ... SELECT "
            f"in {report.load_seconds:.1f} s ({rate:,.0f} rows/s), then VACUUM ANALYZE"
        )
    lines += [
        "",
        "| phase | conc. | ok | errors | req/s | p50 ms | p95 ms | p99 ms | client CPU | hub CPU "
        "| PostgreSQL CPU | other CPU | hub CPU ms/req | PostgreSQL CPU ms/req | target |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for p in report.phases:
        lines.append(
            f"| {p.name} | {p.concurrency} | {p.ok:,} | {p.errors:,} | {p.rps:,.0f} | {_ms(p.pct_ms(50))} "
            f"| {_ms(p.pct_ms(95))} | {_ms(p.pct_ms(99))} | {_pct(p.cpu.client)} | {_pct(p.cpu.server)} "
            f"| {_pct(p.cpu.postgres)} | {_pct(p.cpu.other)} | {_ms(p.cpu_ms_per_request(p.cpu.server))} "
            f"| {_ms(p.cpu_ms_per_request(p.cpu.postgres))} | {p.target} |"
        )
    lines += [
        "",
        "CPU columns are shares of one core (the machine has "
        f"{report.machine.get('nproc', '?')}); targets: >= {TARGET_POST_RPS:,.0f} POST/s at concurrency "
        f"{max(args.concurrency)}, GET p50 < {TARGET_GET_P50_MS:g} ms.",
    ]
    errors = [(p, s) for p in report.phases for s in p.error_samples]
    if errors:
        lines += ["", "Error samples:", ""] + [f"- {p.name} c={p.concurrency}: `{s}`" for p, s in errors]
    if report.plans:
        lines += ["", "### Query plans of the page queries (EXPLAIN ANALYZE, warm)", ""]
        for target, plan in report.plans.items():
            lines += [f"GET {API}/{target}", "", "```", plan, "```", ""]
    if report.profiles:
        lines += ["", "### py-spy profiles of the hub process", ""]
        for label, text in report.profiles.items():
            lines += [f"#### {label}", "", text, ""]
    return "\n".join(lines).rstrip() + "\n"


# ---- command line ------------------------------------------------------------------------------


def _concurrency(text: str) -> list[int]:
    values = sorted({int(v) for v in text.split(",") if v.strip()})
    if not values or values[0] < 1 or values[-1] > 256:
        raise argparse.ArgumentTypeError("give concurrencies between 1 and 256, e.g. 1,16")
    return values


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench.core", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--dsn",
        default=os.environ.get(DSN_ENV) or DEFAULT_DSN,
        help=f"maintenance database URL on a local server (default ${DSN_ENV} or {DEFAULT_DSN}); "
        f"the benchmark creates and drops its own database {BENCH_DB} there",
    )
    p.add_argument("--duration", type=_positive(float), default=10.0, help="seconds per POST phase (10)")
    p.add_argument(
        "--rows", type=_positive(int), default=1_000_000, help="observations in the GET dataset (1000000)"
    )
    p.add_argument("--port", type=int, default=0, help="hub HTTP port on 127.0.0.1 (default: a free port)")
    p.add_argument("--concurrency", type=_concurrency, default=[1, 16], help="concurrency levels (1,16)")
    p.add_argument("--get-requests", type=_positive(int), default=2000, help="requests per GET phase (2000)")
    p.add_argument("--deep-requests", type=_positive(int), default=5, help="deep-offset GETs (5)")
    p.add_argument("--warmup", type=float, default=1.0, help="untimed seconds before each phase (1)")
    p.add_argument(
        "--server-log-level",
        default="WARNING",
        help="hub log level (WARNING: INFO writes an access-log line per request)",
    )
    p.add_argument("--profile", action="store_true", help="run py-spy on the hub during each phase")
    p.add_argument("--keep", action="store_true", help=f"keep the database {BENCH_DB} afterwards")
    p.add_argument("--output", type=Path, help="also write the markdown report to this file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))  # run as bench/core.py: make `hub` importable
    report = Report()
    with tempfile.TemporaryDirectory(prefix="twinhub-bench-") as workdir:
        args.workdir = workdir
        try:
            asyncio.run(benchmark(args, report))
        except BenchError as exc:
            say(f"bench.core: {exc}")
            return 1
        except KeyboardInterrupt:
            return 130
    text = render(report, args)
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
