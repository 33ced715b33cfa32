# SPDX-License-Identifier: Apache-2.0
"""Verified API keys are remembered, by their hash, no longer than their database record is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from auth_helpers import store_key

from hub.auth import authenticate
from hub.auth.authenticate import KEY_CACHE_SECONDS, Authenticator
from hub.auth.keys import generate_key, hash_key
from hub.auth.oidc import TokenError
from hub.config import ConfiguredKey, Settings
from hub.store.api_keys import revoke_key


class Clock:
    """time.monotonic of hub.auth.authenticate, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(authenticate, "time", SimpleNamespace(monotonic=fake))  # not the loop's clock
    return fake


@pytest_asyncio.fixture
async def pool(clean_db: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(clean_db, min_size=1, max_size=2) as made:
        yield made


class CountingPool:
    """The pool, counting the connections the authenticator takes (one per database lookup)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool, self.acquired = pool, 0

    def acquire(self) -> Any:
        self.acquired += 1
        return self.pool.acquire()


async def test_a_revoked_key_works_until_its_record_is_cache_seconds_old(
    clean_db: str, settings: Settings, pool: asyncpg.Pool, clock: Clock
) -> None:
    key = await store_key(clean_db, ["read", "create"])
    auth = Authenticator(settings)
    counting = CountingPool(pool)
    first = await auth.principal(key, counting)  # type: ignore[arg-type]
    assert first.roles == {"read", "create"}
    async with pool.acquire() as conn:
        assert await revoke_key(conn, key.split("_")[1]) is True
    clock.now += KEY_CACHE_SECONDS - 0.5
    assert await auth.principal(key, counting) == first  # type: ignore[arg-type]
    assert counting.acquired == 1  # remembered: no second lookup
    clock.now += 1.0  # the record read at the first request is now KEY_CACHE_SECONDS old
    with pytest.raises(TokenError, match="unknown, revoked or wrong"):
        await auth.principal(key, counting)  # type: ignore[arg-type]
    assert counting.acquired == 2


async def test_a_wrong_secret_for_a_remembered_key_id_is_refused(
    clean_db: str, settings: Settings, pool: asyncpg.Pool, clock: Clock
) -> None:
    key = await store_key(clean_db, ["read"])
    auth = Authenticator(settings)
    await auth.principal(key, pool)
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    with pytest.raises(TokenError, match="unknown, revoked or wrong"):
        await auth.principal(forged, pool)
    with pytest.raises(TokenError, match="unknown, revoked or wrong"):  # twice: refusals are not kept
        await auth.principal(forged, pool)


async def test_the_cache_holds_hashes_not_keys(settings: Settings, pool: asyncpg.Pool, clock: Clock) -> None:
    new = generate_key()
    configured = settings.model_copy(
        update={"auth_api_keys": {new.key_id: ConfiguredKey(roles=("read",), sha256=new.sha256)}}
    )
    auth = Authenticator(configured)
    principal = await auth.principal(new.key, pool)
    assert principal.name == f"key:{new.key_id}"
    assert list(auth._verified) == [hash_key(new.key)]
    assert new.key not in repr(auth._verified)
    clock.now += KEY_CACHE_SECONDS  # configured keys are checked again after the same time
    assert await auth.principal(new.key, pool) == principal
