# SPDX-License-Identifier: Apache-2.0
"""What the benchmarks share: a private broker, a bench database, `twinhub serve` as a user starts
it, CPU accounting, a raw-socket MQTT publisher and the ceilings every ingest figure stands beside
(a raw COPY and a naive paho -> orjson -> COPY pipeline).

Used by bench/deployed.py, bench/ingest.py, bench/aggregates.py and bench/sizing.py (see
bench/README.md). Nothing here measures by itself; every wait is bounded in time.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiohttp
import asyncpg
import orjson

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `python bench/x.py` as well as `python -m bench.x`
    sys.path.insert(0, str(REPO_ROOT))

from hub.mqtt import wire  # noqa: E402

HOST = "127.0.0.1"
API = "/v1.1"
START_TIMEOUT = 60.0  # `twinhub serve` answers within this, or the bench stops
IDLE_TIMEOUT = 20.0  # a load phase that sees no progress for this long stops
PHASE_TIMEOUT = 180.0  # and none runs longer than this
OBS_COLUMNS = [
    "phenomenon_time_start",
    "phenomenon_time_end",
    "result",
    "datastream_id",
    "feature_of_interest_id",
]


class BenchError(RuntimeError):
    """The benchmark cannot go on; the message says why."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# ---- broker --------------------------------------------------------------------------------------


def mosquitto() -> str | None:
    """The mosquitto executable, None where it is not installed."""
    return shutil.which("mosquitto") or next(
        (path for path in ("/usr/sbin/mosquitto",) if os.access(path, os.X_OK)), None
    )


class Broker:
    """A private mosquitto on a free loopback port that never drops what it acknowledged
    (`max_queued_messages 0`, LIMITS.md). `unlimited_inflight` also lifts mosquitto's limit of 20
    unacknowledged deliveries per client (the default a deployment has keeps it)."""

    def __init__(self, home: Path, *, unlimited_inflight: bool = False) -> None:
        exe = mosquitto()
        if exe is None:
            raise BenchError("mosquitto is not installed")
        self.port = free_port()
        conf = home / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} {HOST}\nallow_anonymous true\nmax_queued_messages 0\n"
            + ("max_inflight_messages 0\n" if unlimited_inflight else "")
        )
        self.proc = subprocess.Popen(
            [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex((HOST, self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise BenchError("mosquitto did not start")

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---- database ------------------------------------------------------------------------------------


def check_loopback(dsn: str) -> None:
    """Refuse to create and drop a database anywhere but on this machine."""
    parts = urlsplit(dsn)
    hosts = [parts.hostname or ""] + [v for k, v in parse_qsl(parts.query) if k == "host"]
    for host in hosts:
        if host in ("", "localhost") or host.startswith("/"):
            continue
        try:
            if ip_address(host).is_loopback:
                continue
        except ValueError:
            pass
        raise BenchError(f"--dsn must point at a loopback address or a local socket, not {host!r}")


def database_dsn(maintenance: str, name: str) -> str:
    """The maintenance DSN with database `name` instead of its own."""
    return urlunsplit(urlsplit(maintenance)._replace(path=f"/{name}"))


async def fresh_database(maintenance: str, name: str) -> str:
    """Database `name` made anew (a leftover dropped first) on the maintenance DSN's server; its DSN."""
    check_loopback(maintenance)
    conn = await asyncpg.connect(maintenance, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_dsn(maintenance, name)


async def drop_database(maintenance: str, name: str) -> None:
    """Drop database `name`, ending its sessions."""
    conn = await asyncpg.connect(maintenance, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


async def copy_rows(dsn: str, rows: Sequence[tuple[Any, ...]], batch: int = 10_000) -> float:
    """COPY observation rows (OBS_COLUMNS), `batch` per call: the database's ceiling in rows/s."""
    conn = await asyncpg.connect(dsn, timeout=10)  # COPY is binary: jsonb goes as text, no codec
    try:
        began = time.monotonic()
        for at in range(0, len(rows), batch):
            await conn.copy_records_to_table(
                "observations", records=rows[at : at + batch], columns=OBS_COLUMNS
            )
        return len(rows) / (time.monotonic() - began)
    finally:
        await conn.close()


# ---- twinhub serve -------------------------------------------------------------------------------


def hub_command() -> list[str]:
    """`twinhub` from this interpreter's environment (the console script a user runs)."""
    script = Path(sys.executable).with_name("twinhub")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hub.cli"]


class Serve:
    """`twinhub serve` in a child process, started the way a user starts it.

    The environment holds no TWINHUB_* variable but the database URL, the broker URL (when there is
    a broker), the HTTP host (loopback) and port, and `extra`: every other setting is its default
    (`inherit`: the environment's other TWINHUB_* variables, but TWINHUB_CONFIG, pass on too).
    Its output (the access log included) goes to `log`; `start` returns once /v1.1 answers."""

    def __init__(
        self,
        dsn: str,
        mqtt_url: str | None,
        cwd: Path,
        log: Path,
        *,
        port: int | None = None,
        extra: Mapping[str, str] | None = None,
        inherit: bool = False,
    ) -> None:
        self.port = port or free_port()
        self.cwd, self.log = cwd, log
        dropped = "TWINHUB_CONFIG" if inherit else "TWINHUB_"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
        self.env.update(
            TWINHUB_DATABASE_URL=dsn,
            TWINHUB_HTTP_HOST=HOST,  # loopback only
            TWINHUB_HTTP_PORT=str(self.port),
        )
        if mqtt_url:
            self.env["TWINHUB_MQTT_URL"] = mqtt_url
        self.env.update(extra or {})
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def spawn(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            return subprocess.Popen(
                [*hub_command(), "serve"],
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )

    async def start(self) -> None:
        self.proc = self.spawn()
        try:
            await wait_until_serving(self.base, self.proc.poll, self.tail)
        except BenchError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def make_key(self) -> str:
        """`twinhub keys create`, as a user makes a key for writing; returns the key."""
        out = subprocess.run(
            [*hub_command(), "keys", "create", "--name", "bench", "--roles", "read,create,update,delete"],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if out.returncode != 0:
            raise BenchError(f"twinhub keys create failed: {out.stderr[-2000:]}")
        return out.stdout.strip().splitlines()[-1]


async def wait_until_serving(base: str, exited: Callable[[], int | None], tail: Callable[[], str]) -> None:
    """Poll `base`/v1.1 until it answers 200, for START_TIMEOUT s at most; BenchError with the hub's
    log tail when the process exits first (`exited()` gives its exit code) or the time runs out."""
    deadline = time.monotonic() + START_TIMEOUT
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline:
            if (code := exited()) is not None:
                raise BenchError(f"twinhub serve exited with {code}:\n{tail()}")
            try:
                async with session.get(f"{base}{API}") as resp:
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
    raise BenchError(f"twinhub serve did not answer {API} within {START_TIMEOUT:.0f} s:\n{tail()}")


async def metric(base: str, name: str) -> float:
    """One value from the hub's /metrics, summed over its labels (0 when absent)."""
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as resp:
        text = await resp.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


# ---- CPU -----------------------------------------------------------------------------------------


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def postgres_cpu(database: str) -> float:
    """CPU seconds of PostgreSQL's backends for `database` plus its background processes."""
    import psutil

    total = 0.0
    for proc in psutil.process_iter(["name", "cmdline"]):
        title = " ".join(proc.info["cmdline"] or [])
        if not (proc.info["name"] or "").startswith("postgres"):
            continue
        backend = "(" in title or "[local]" in title
        if backend and f" {database} " not in title:
            continue
        try:
            times = proc.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += times.user + times.system
    return total


class Cpu:
    """CPU seconds of the hub process and busy seconds of the whole machine."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.psutil = psutil
        self.hub = psutil.Process(pid)

    def sample(self) -> tuple[float, float, float]:
        times = self.hub.cpu_times()
        machine = self.psutil.cpu_times()
        idle = ("idle", "iowait", "steal", "guest", "guest_nice")
        busy = sum(getattr(machine, n) for n in machine._fields if n not in idle)
        own = resource.getrusage(resource.RUSAGE_SELF)
        return times.user + times.system, busy, own.ru_utime + own.ru_stime

    @staticmethod
    def used(before: tuple[float, float, float], after: tuple[float, float, float]) -> tuple[float, float]:
        """(hub CPU s, CPU s of everything but the hub and this process) between two samples."""
        hub = after[0] - before[0]
        return hub, max(0.0, (after[1] - before[1]) - hub - (after[2] - before[2]))


# ---- MQTT publisher ------------------------------------------------------------------------------

Message = Callable[[int], tuple[bytes, bytes]]  # i -> (topic, payload)


def publish(
    port: int,
    client_id: str,
    message: Message,
    start: int,
    n: int,
    *,
    window: int = 1000,
    rate: float = 0.0,
    timeout: float | None = None,
) -> None:
    """Publish messages start..start+n-1 at QoS 1, at most `rate` msg/s (0: as fast as acknowledged).

    A plain blocking socket speaking MQTT 5 through hub/mqtt/wire.py: each window of `window`
    messages goes out in one write and the next starts when all its PUBACKs are back. A paho
    publisher manages ~12k msg/s and takes a core doing it (LIMITS.md); this one leaves the cores
    to the broker, the database and the hub, which are what is measured."""
    sock = socket.create_connection((HOST, port))
    sock.settimeout(timeout)
    sock.sendall(wire.connect(client_id, wire.MQTT5, 60, clean_start=True))
    decoder = wire.Decoder()
    _expect(sock, decoder, wire.CONNACK, 1)
    began = time.monotonic()
    for chunk in range(start, start + n, window):
        end = min(chunk + window, start + n)
        packets = []
        for i in range(chunk, end):
            topic, body = message(i)
            packets.append(wire.publish(topic, body, 1, False, i - chunk + 1, wire.MQTT5))
        sock.sendall(b"".join(packets))
        _expect(sock, decoder, wire.PUBACK, end - chunk)
        if rate:
            ahead = (end - start) / rate - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)
    sock.sendall(wire.DISCONNECT_PACKET)
    sock.close()


def _expect(sock: socket.socket, decoder: wire.Decoder, kind: int, count: int) -> None:
    """Read until `count` packets of `kind` arrived (a closed socket or another packet type: fail)."""
    seen = 0
    while seen < count:
        data = sock.recv(1 << 16)
        if not data:
            raise RuntimeError("the broker closed the publisher's connection")
        for got, _, body in decoder.feed(data):
            if got != kind or (kind == wire.CONNACK and body[1] != 0):
                raise RuntimeError(f"publisher: unexpected packet type {got} ({body[:8]!r})")
            seen += 1


# ---- the naive pipeline --------------------------------------------------------------------------


def naive_pipeline(
    dsn: str,
    port: int,
    subscription: str,
    n: int,
    feature: int,
    publisher: Callable[..., None],
    publisher_args: tuple[Any, ...],
    limit: float = PHASE_TIMEOUT,
) -> float:
    """The floor to beat: in a process of its own, a paho subscriber (QoS 1, auto-ack, acks before
    commit) on `subscription` -> orjson -> COPY per 1,000 rows or 50 ms, no validation, no links;
    `publisher(*publisher_args)` (a module-level function) publishes n STA Observations to
    <tree>/Datastreams(id)/Observations in another process. Returns obs/s, first row to last COPY;
    stops after `limit` s, or IDLE_TIMEOUT s without a message."""
    ctx = mp.get_context("spawn")
    ready, out = ctx.Event(), ctx.Queue()
    worker = ctx.Process(target=_naive_worker, args=(dsn, port, subscription, n, feature, limit, ready, out))
    worker.start()
    try:
        if not ready.wait(30):
            raise BenchError("the naive pipeline did not subscribe")
        pub = ctx.Process(target=publisher, args=publisher_args)
        pub.start()
        rate = float(out.get(timeout=limit))
        pub.join(30)
    finally:
        worker.join(30)
        if worker.is_alive():
            worker.kill()
    return rate


def _naive_worker(
    dsn: str, port: int, subscription: str, n: int, feature: int, limit: float, ready: Any, out: Any
) -> None:
    asyncio.run(_naive(dsn, port, subscription, n, feature, limit, ready, out))


async def _naive(
    dsn: str, port: int, subscription: str, n: int, feature: int, limit: float, ready: Any, out: Any
) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.on_message = lambda c, u, m: loop.call_soon_threadsafe(queue.put_nowait, (m.topic, m.payload))
    client.connect(HOST, port)
    client.subscribe(subscription, qos=1)
    client.loop_start()
    conn = await asyncpg.connect(dsn)
    await asyncio.sleep(0.5)
    ready.set()
    done, began = 0, 0.0
    hard_stop = time.monotonic() + limit
    try:
        while done < n and time.monotonic() < hard_stop:
            try:
                batch = [await asyncio.wait_for(queue.get(), IDLE_TIMEOUT)]
            except TimeoutError:
                break
            began = began or time.monotonic()
            deadline = time.monotonic() + 0.05
            while len(batch) < 1000 and (left := deadline - time.monotonic()) > 0:
                try:
                    batch.append(await asyncio.wait_for(queue.get(), left))
                except TimeoutError:
                    break
            rows = []
            for topic, raw in batch:
                body = orjson.loads(raw)
                moment = datetime.fromisoformat(body["phenomenonTime"])
                stream = int(topic[topic.index("(") + 1 : topic.index(")")])
                rows.append((moment, moment, orjson.dumps(body["result"]).decode(), stream, feature))
            await conn.copy_records_to_table("observations", records=rows, columns=OBS_COLUMNS)
            done += len(rows)
        out.put(done / (time.monotonic() - began) if began else 0.0)
    finally:
        client.disconnect()
        client.loop_stop()
        await conn.close()
