# SPDX-License-Identifier: Apache-2.0
"""The api_keys table: create, list, revoke, and the lookup authentication does."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class StoredKey:
    """One row of api_keys."""

    key_id: str
    name: str
    roles: tuple[str, ...]
    sha256: str
    created_at: datetime
    revoked_at: datetime | None


def _stored(row: asyncpg.Record) -> StoredKey:
    return StoredKey(
        row["id"], row["name"], tuple(row["roles"]), row["sha256"], row["created_at"], row["revoked_at"]
    )


async def insert_key(
    conn: asyncpg.Connection, key_id: str, name: str, roles: Iterable[str], sha256: str
) -> StoredKey:
    """Store a new key's hash."""
    row = await conn.fetchrow(
        "INSERT INTO api_keys (id, name, roles, sha256) VALUES ($1, $2, $3, $4) RETURNING *",
        key_id,
        name,
        sorted(roles),
        sha256,
    )
    return _stored(row)


async def list_keys(conn: asyncpg.Connection) -> list[StoredKey]:
    """Every key, oldest first, revoked ones included."""
    return [_stored(row) for row in await conn.fetch("SELECT * FROM api_keys ORDER BY created_at, id")]


async def revoke_key(conn: asyncpg.Connection, key_id: str) -> bool | None:
    """Revoke a key: True when revoked now, False when it already was, None when it does not exist."""
    row = await conn.fetchrow(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 "
        "RETURNING revoked_at = now() AS fresh",  # now() is the statement's transaction time
        key_id,
    )
    if row is None:
        return None
    return bool(row["fresh"])


async def active_key(conn: asyncpg.Connection, key_id: str) -> StoredKey | None:
    """The unrevoked key with this id, or None."""
    row = await conn.fetchrow("SELECT * FROM api_keys WHERE id = $1 AND revoked_at IS NULL", key_id)
    return None if row is None else _stored(row)
