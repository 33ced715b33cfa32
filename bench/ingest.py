# SPDX-License-Identifier: Apache-2.0
"""MQTT ingest benchmark: sustained obs/s committed, publish->commit latency, hub RSS, and floors.

    .venv/bin/python bench/ingest.py [--n 100000] [--workers 1] [--dsn postgresql://...]
    .venv/bin/python bench/ingest.py --mix [--devices 300] [--n 30000]

Starts a private mosquitto (max_queued_messages 0, max_inflight_messages 0) on a free port, a fresh
database with 1,000 Datastreams, and the hub's IngestService in `--workers` processes (one share
group). Publishers send JSON Observations at QoS 1 with a bounded in-flight window. Also measured in
the same run: a raw COPY of the same rows, and a naive pipeline (subscribe, parse, COPY per batch).

`--mix` instead compares, in one run and over the same number of Observations, the native STA JSON
rate with an adapter mix: TTN v3 uplinks, Shelly Gen2 NotifyStatus and SenML packs in turn (the
samples of tests/ingest_adapters, 5 + 5 + 10 Observations per message) from `--devices` devices of
each family, each message with its own device id, values and times. Every device's first message
(and one per Datastream for STA) is published and committed before timing starts, so provisioning
is outside the timed figure; that warm-up is reported as the cold figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    Broker,
    copy_rows,
    database_name,
    drop_database,
    fresh_database,
    naive_pipeline,
    publish,
)
from hub.config import Settings
from hub.store.migrate import apply_migrations

STREAMS = 1000
SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "ingest_adapters" / "samples"
MIX = ("ttn_v3_uplink.json", "shelly_gen2_plugs_notifystatus.json", "senml_pack.json")
MIX_OBS = (5, 5, 10)  # Observations per message of each family (what the adapters make of the samples)
MIX_ADAPTERS = ("ttn", "shelly", "senml")


async def _codecs(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog"
    )


async def setup_database(maintenance: str) -> str:
    """A database of its own (a random name: runs may overlap), migrated, with STREAMS Datastreams."""
    dsn = await fresh_database(maintenance, f"twinhub_bench_{uuid.uuid4().hex[:8]}")
    conn = await asyncpg.connect(dsn)
    await apply_migrations(conn)
    geo = '{"type":"Point","coordinates":[8,50]}'
    await conn.execute(f"""
        INSERT INTO things (name, description) VALUES ('t', 'd');
        INSERT INTO locations (name, description, encoding_type, location)
            VALUES ('l', 'd', 'application/geo+json', '{geo}');
        INSERT INTO thing_locations (thing_id, location_id) VALUES (1, 1);
        INSERT INTO features_of_interest (name, description, encoding_type, feature, location_id)
            VALUES ('l', 'd', 'application/geo+json', '{geo}', 1);
        INSERT INTO sensors (name, description, encoding_type, metadata)
            VALUES ('s', 'd', 'text/plain', '"m"');
        INSERT INTO observed_properties (name, definition, description) VALUES ('p', 'x', 'd');
        INSERT INTO datastreams (name, description, unit_of_measurement, observation_type,
                                 thing_id, sensor_id, observed_property_id)
        SELECT 'ds' || i, 'd', '{{}}', 'OM_Measurement', 1, 1, 1 FROM generate_series(1, {STREAMS}) i;
    """)
    await conn.close()
    return dsn


def payload(i: int) -> tuple[bytes, bytes]:
    now = time.time()
    body = {
        "result": i,
        "phenomenonTime": datetime.fromtimestamp(now, UTC).isoformat(),
        "parameters": {"t": now},
    }
    return f"v1.1/Datastreams({i % STREAMS + 1})/Observations".encode(), orjson.dumps(body)


_templates: list[bytes] = []


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def mix_payload(i: int, devices: int) -> tuple[bytes, bytes]:
    """Message i of the adapter mix: family i % 3, device (i // 3) % devices; values and times vary."""
    if not _templates:
        _templates.extend((SAMPLES / name).read_bytes() for name in MIX)
    family, device = i % 3, (i // 3) % devices
    now = time.time()
    wobble = (i % 97) / 10
    body = orjson.loads(_templates[family])
    if family == 0:  # TTN: DevEUI is the Thing, device_id the topic
        device_id = f"lht65n-bench-{device:04d}"
        ids = body["end_device_ids"]
        ids["device_id"], ids["dev_eui"] = device_id, f"A84041F2{device:08X}"
        up = body["uplink_message"]
        up["f_cnt"] = i
        decoded = up["decoded_payload"]
        decoded["TempC_SHT"] = 15 + wobble
        decoded["TempC_DS"] = 14 + wobble
        decoded["Hum_SHT"] = 40 + wobble
        decoded["BatV"] = 3 + (i % 50) / 1000
        body["received_at"] = up["received_at"] = up["settings"]["time"] = _iso(now)
        for gateway in up["rx_metadata"]:
            gateway["received_at"] = _iso(now)
            if "time" in gateway:
                gateway["time"] = _iso(now)
        topic = f"v3/twinhub-climate@ttn/devices/{device_id}/up"
    elif family == 1:  # Shelly: src is the device and the topic
        src = f"shellyplusplugs-{device:012x}"
        body["src"], body["dst"] = src, f"{src}/events"
        params = body["params"]
        params["ts"] = now
        switch = params["switch:0"]
        switch["apower"] = 1000 + wobble
        switch["voltage"] = 225 + wobble
        switch["current"] = 4 + wobble / 10
        switch["aenergy"]["total"] = 400000 + i
        switch["aenergy"]["minute_ts"] = int(now)
        switch["temperature"]["tC"] = 35 + wobble
        topic = f"{src}/events/rpc"
    else:  # SenML: bn names the device
        name = f"urn:dev:mac:0024beff{device:08x}"
        body[0]["bn"], body[0]["bt"] = f"{name}:", now
        for record in body:
            if "v" in record:
                record["v"] = round(record["v"] + wobble, 1)
            if "s" in record:
                record["s"] += i
        topic = f"senml/{name}"
    return topic.encode(), orjson.dumps(body)


def mix_observations(start: int, n: int) -> int:
    """How many Observations messages start..start+n-1 of the mix make."""
    return sum(MIX_OBS[i % 3] for i in range(start, start + n))


def sent_at(payload: bytes) -> float:
    """Publish time carried in a payload of either kind (for the latency samples)."""
    body = orjson.loads(payload)
    if isinstance(body, list):  # SenML
        return float(body[0]["bt"])
    if "parameters" in body:  # STA
        return float(body["parameters"]["t"])
    if "params" in body:  # Shelly
        return float(body["params"]["ts"])
    return datetime.fromisoformat(body["received_at"]).timestamp()  # TTN


def publisher(
    port: int, start: int, n: int, rate: float, window: int = 1000, kind: str = "sta", devices: int = 0
) -> None:
    """Publish n messages at QoS 1, at most `rate` msg/s, with a bounded in-flight window
    (harness.publish: a plain socket, the next window after all PUBACKs of the last)."""
    make = payload if kind == "sta" else lambda i: mix_payload(i, devices)
    publish(port, f"bench-pub-{start}", make, start, n, window=window, rate=rate)


def hub_worker(settings: Settings, index: int, stop: Any, out: Any, notify: bool) -> None:
    """One ingest process running the real IngestService until `stop` is set; reports latencies."""
    from hub.cli import run  # the event loop `twinhub serve` runs on (uvloop where installed)

    profile_to = os.environ.get("BENCH_PROFILE")  # e.g. /tmp/hub.prof: cProfile of each hub process
    if not profile_to:
        run(_hub(settings, index, stop, out, notify))
        return
    import cProfile

    with cProfile.Profile() as profiler:
        run(_hub(settings, index, stop, out, notify))
    profiler.dump_stats(f"{profile_to}.{os.getpid()}")


async def _hub(settings: Settings, index: int, stop: Any, out: Any, notify: bool = True) -> None:
    from hub.ingest.writer import Outlets
    from hub.mqtt.service import IngestService, running_ingest

    assert settings.database_url is not None
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4, init=_codecs)
    latencies: list[float] = []
    async with contextlib.AsyncExitStack() as stack:
        if notify:  # as `twinhub serve` runs it: change notifications on the same connection
            settings = settings.model_copy(update={"mqtt_client_id": f"bench-{index}"})
            service = await stack.enter_async_context(running_ingest(settings, pool))
        else:
            service = IngestService(settings, pool, lambda changes: None, f"bench-{index}")
            service.start()
            stack.push_async_callback(service.stop)
        outlets = service.writer.outlets

        def timed(message: Any) -> None:
            if message.mid % 10 == 0:  # sample: publish time travels in the payload
                with contextlib.suppress(KeyError, IndexError, TypeError, ValueError):
                    latencies.append(time.time() - sent_at(message.payload))
            outlets.done(message)

        service.writer.outlets = Outlets(timed, outlets.dead_letter, outlets.committed, outlets.is_current)
        while not service.client_ready():  # noqa: ASYNC110 - the connection sets it
            await asyncio.sleep(0.05)
        out.put(("ready", index))
        while not stop.is_set():
            await asyncio.sleep(0.1)
            if latencies and len(latencies) > 200_000:
                del latencies[:100_000]
        stats = dict(service.stats.dead_lettered)
    await pool.close()
    out.put(("done", index, latencies, stats))


async def observation_count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM observations"))
    finally:
        await conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run_hub_phase(
    dsn: str,
    port: int,
    n: int,
    workers: int,
    rate: float,
    publishers: int,
    kind: str = "sta",
    warmup: int = 0,
    devices: int = 0,
    notify: bool = True,
    notify_qos: int = 1,
) -> dict[str, Any]:
    """Start the hub workers, publish n messages, wait for all commits; measure rate, latency, RSS.

    With `warmup`, messages 0..warmup-1 are published and committed first, untimed (and reported as
    the cold figure); the timed messages follow them. Observations are counted, not messages."""
    asyncio.run(_truncate(dsn))
    settings = Settings(
        database_url=dsn,
        mqtt_url=f"mqtt://127.0.0.1:{port}",
        mqtt_share_group="bench" if workers > 1 else None,
        mqtt_session_expiry=0,
        mqtt_notify_qos=notify_qos,
        adapters=MIX_ADAPTERS if kind == "mix" else None,
    )
    ctx = mp.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=hub_worker, args=(settings, i, stop, out, notify)) for i in range(workers)]
    for proc in procs:
        proc.start()
    for _ in procs:
        out.get(timeout=60)

    def expected(start: int, count: int) -> int:
        return count if kind == "sta" else mix_observations(start, count)

    cold = 0.0
    base = 0
    if warmup:
        pub = ctx.Process(target=publisher, args=(port, 0, warmup, 0, 1000, kind, devices))
        began = time.monotonic()
        pub.start()
        base, _, last = _wait_for(dsn, expected(0, warmup), began, procs)
        pub.join()
        cold = base / (last - began)
    per = n // publishers
    pubs = [
        ctx.Process(
            target=publisher,
            args=(port, warmup + k * per, per, rate / publishers if rate else 0, 1000, kind, devices),
        )
        for k in range(publishers)
    ]
    target = sum(expected(warmup + k * per, per) for k in range(publishers))
    began = time.monotonic()
    for pub in pubs:
        pub.start()
    total, peak, last = _wait_for(dsn, base + target, began, procs)
    seen = total - base
    for pub in pubs:
        pub.join()
    stop.set()
    latencies: list[float] = []
    dead: dict[str, int] = {}
    for _ in procs:
        report = out.get(timeout=60)
        latencies.extend(report[2])
        for cause, count in report[3].items():
            dead[cause] = dead.get(cause, 0) + count
    for proc in procs:
        proc.join()
    return {
        "messages": per * publishers,
        "expected": target,
        "committed": seen,
        "obs_per_s": seen / (last - began),
        "cold_obs_per_s": cold,
        "warmup_obs": base,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "peak_rss_mb": peak / 2**20,
        "dead_letters": dead,
    }


def _wait_for(dsn: str, target: int, began: float, procs: list[Any]) -> tuple[int, int, float]:
    """Poll the Observation count until `target` (or 30 s without progress, or 600 s in all);
    returns (count, peak RSS of the hub processes, time of the last change)."""
    peak, last, seen = 0, began, 0
    while seen < target:
        time.sleep(0.25)
        peak = max(peak, *(psutil.Process(p.pid).memory_info().rss for p in procs))
        current = asyncio.run(observation_count(dsn))
        now = time.monotonic()
        if current != seen:
            seen, last = current, now
        if now - last > 30 or now - began > 600:
            print(f"  (stopped waiting at {seen:,} of {target:,} Observations)", file=sys.stderr)
            break
    return seen, peak, last


async def _truncate(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    await conn.execute("TRUNCATE observations")
    await conn.close()


async def raw_copy(dsn: str, n: int) -> float:
    """COPY the same rows, 10k per batch: the database's ceiling on this machine."""
    await _truncate(dsn)
    now = datetime.now(UTC)
    return await copy_rows(dsn, [(now, now, orjson.dumps(i).decode(), i % STREAMS + 1, 1) for i in range(n)])


def naive(dsn: str, port: int, n: int) -> float:
    """Floor: one process, paho auto-ack subscriber -> orjson -> COPY per 1,000 rows or 50 ms."""
    asyncio.run(_truncate(dsn))
    return naive_pipeline(dsn, port, "v1.1/+/Observations", n, 1, publisher, (port, 0, n, 0), limit=600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument(
        "--no-notify",
        dest="notify",
        action="store_false",
        help="run ingest without change notifications (by default they are published, as in serve)",
    )
    parser.add_argument("--notify-qos", type=int, default=1, choices=(0, 1, 2), help="QoS of notifications")
    parser.add_argument("--mix", action="store_true", help="adapter mix against native STA JSON")
    parser.add_argument("--devices", type=int, default=300, help="--mix: devices per adapter family")
    parser.add_argument(
        "--dsn", default=os.environ.get("TWINHUB_TEST_DSN", "postgresql://postgres@127.0.0.1/postgres")
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp), unlimited_inflight=True)
        try:
            dsn = asyncio.run(setup_database(args.dsn))
            try:
                (_report_mix if args.mix else _report)(dsn, broker.port, args)
            finally:
                asyncio.run(drop_database(args.dsn, database_name(dsn)))
        finally:
            broker.stop()


def _report(dsn: str, port: int, args: argparse.Namespace) -> None:
    notes = f"notifications at QoS {args.notify_qos}" if args.notify else "notifications off"
    print(f"{os.cpu_count()} CPUs; {args.n} observations over {STREAMS} Datastreams, QoS 1, {notes}")
    print(f"raw COPY, 10k rows per batch:           {asyncio.run(raw_copy(dsn, args.n)):>9,.0f} rows/s")
    print(f"naive pipeline (paho -> orjson -> COPY): {naive(dsn, port, args.n):>9,.0f} obs/s")
    full = run_hub_phase(
        dsn, port, args.n, args.workers, 0, args.publishers, notify=args.notify, notify_qos=args.notify_qos
    )
    print(
        f"hub, {args.workers} ingest process(es), flat out:   {full['obs_per_s']:>9,.0f} obs/s committed "
        f"(p50 {full['p50_ms']:.0f} ms, p99 {full['p99_ms']:.0f} ms, peak RSS {full['peak_rss_mb']:.0f} MB)"
    )
    paced = run_hub_phase(
        dsn, port, 50_000, args.workers, 5000, 1, notify=args.notify, notify_qos=args.notify_qos
    )
    print(
        f"hub at 5,000 obs/s offered:              {paced['obs_per_s']:>9,.0f} obs/s committed "
        f"(p50 {paced['p50_ms']:.0f} ms, p99 {paced['p99_ms']:.0f} ms, "
        f"peak RSS {paced['peak_rss_mb']:.0f} MB)"
    )


def _report_mix(dsn: str, port: int, args: argparse.Namespace) -> None:
    messages = args.n * 3 // sum(MIX_OBS) // (3 * args.publishers) * 3 * args.publishers
    load = os.getloadavg()
    print(
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"{args.workers} ingest process(es), {args.publishers} publishers, QoS 1"
    )
    native = run_hub_phase(dsn, port, args.n, args.workers, 0, args.publishers, "sta", STREAMS)
    mix = run_hub_phase(
        dsn, port, messages, args.workers, 0, args.publishers, "mix", 3 * args.devices, args.devices
    )
    print(
        "| run | messages | Observations | obs/s committed | cold obs/s (warm-up) | p50 ms | p99 ms "
        "| peak RSS MB | dead letters |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, r in (
        (f"native STA JSON, {STREAMS} Datastreams", native),
        (f"adapter mix (TTN/Shelly/SenML x {args.devices} devices)", mix),
    ):
        print(
            f"| {name} | {r['messages']:,} | {r['committed']:,} of {r['expected']:,} "
            f"| {r['obs_per_s']:,.0f} | {r['cold_obs_per_s']:,.0f} ({r['warmup_obs']:,} obs) "
            f"| {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['peak_rss_mb']:.0f} | {r['dead_letters'] or 0} |"
        )
    ratio = mix["obs_per_s"] / native["obs_per_s"]
    verdict = "met" if ratio >= 0.7 else "MISSED"
    print(f"\nmix / native: {ratio:.0%} (issue #5 target >= 70 %: {verdict})")
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
