# SPDX-License-Identifier: Apache-2.0
"""What authentication costs per request: GET Things(1) anonymously, with an API key and with an
OIDC token, and the rate limiter switched on; POST Sensors with and without a key.

The hub runs in this process (one event loop with the load generator), so read the figures
against each other, not as the hub's throughput (bench/core.py measures that).

    .venv/bin/python -m bench.auth [--seconds 5] [--concurrency 16]

Needs a PostgreSQL maintenance DSN in TWINHUB_BENCH_DSN (default: local postgres, trust auth);
it creates and drops a database of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from hub.app import build_app
from hub.auth.keys import generate_key
from hub.config import Settings
from hub.store.api_keys import insert_key
from hub.store.migrate import apply_migrations

DSN = os.environ.get("TWINHUB_BENCH_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
ISSUER = "https://idp.example.org/realms/bench"
SENSOR = {"name": "S", "description": "d", "encodingType": "text/html", "metadata": "m"}
THING = {"name": "T", "description": "d"}


async def load(
    url: str, method: str, body: Any, headers: dict[str, str], seconds: float, workers: int
) -> str:
    """Requests per second and median latency of `workers` clients sending for `seconds`."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    stop = time.perf_counter() + seconds
    data = json.dumps(body).encode() if body is not None else None
    all_headers = {**headers, **({"Content-Type": "application/json"} if data else {})}

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < stop:
            start = time.perf_counter()
            async with session.request(method, url, data=data, headers=all_headers) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
            latencies.append(time.perf_counter() - start)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(workers)))
    rate = len(latencies) / seconds
    return f"{rate:8.0f} req/s  p50 {statistics.median(latencies) * 1000:6.2f} ms  statuses {statuses}"


async def serve(settings: Settings) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(build_app(settings))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/v1.1"


async def main(seconds: float, workers: int) -> None:
    name = f"twinhub_bench_auth_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = DSN.rsplit("/", 1)[0] + f"/{name}"
    try:
        conn = await asyncpg.connect(dsn)
        await apply_migrations(conn)
        key = generate_key()
        await insert_key(conn, key.key_id, "bench", ["read", "create"], key.sha256)
        await conn.close()
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key())) | {"kid": "b1"}
        folder = Path(tempfile.mkdtemp())
        (folder / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
        claims = {
            "iss": ISSUER,
            "exp": int(time.time()) + 3600,
            "sub": "b",
            "realm_access": {"roles": ["read"]},
        }
        token = jwt.encode(claims, private, algorithm="RS256", headers={"kid": "b1"})
        base = Settings(database_url=dsn, data_dir=folder, migrate_on_start=False)
        secured = base.model_copy(update={"auth_jwks_file": folder / "jwks.json", "auth_issuer": ISSUER})
        cases: list[tuple[str, Settings, str, str, Any, dict[str, str]]] = [
            ("GET anonymous", secured, "GET", "Things(1)", None, {}),
            ("GET with API key", secured, "GET", "Things(1)", None, {"Authorization": f"Bearer {key.key}"}),
            ("GET with JWT", secured, "GET", "Things(1)", None, {"Authorization": f"Bearer {token}"}),
            ("GET anonymous, rate limiter on", secured.model_copy(update={"rate_limit": 10**6}),
             "GET", "Things(1)", None, {}),
            ("POST anonymous (auth_anonymous_write)", base.model_copy(update={"auth_anonymous_write": True}),
             "POST", "Sensors", SENSOR, {}),
            ("POST with API key", secured, "POST", "Sensors", SENSOR, {"X-API-Key": key.key}),
        ]  # fmt: skip
        print(f"{workers} concurrent clients, {seconds:g} s per case, hub and load in one process")
        for label, settings, method, path, body, headers in cases:
            runner, url = await serve(settings)
            try:
                async with aiohttp.ClientSession() as session:
                    await session.post(f"{url}/Things", json=THING, headers={"X-API-Key": key.key})
                print(f"{label:<40} {await load(f'{url}/{path}', method, body, headers, seconds, workers)}")
            finally:
                await runner.cleanup()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.seconds, arguments.concurrency))
