# SPDX-License-Identifier: Apache-2.0
"""One STA operation as plain values: what was asked (StaRequest) and what to answer (StaResponse).

The aiohttp handlers and the $batch executor both build a StaRequest and call the same
operations, which take an optional already-open connection: without one they open their
own transaction; with one (inside a batch) they nest into it as a SAVEPOINT.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from hub.http.context import AppState
from hub.store.write import Change

JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
GEO_JSON = "application/geo+json"
CSV = "text/csv"
TEXT = "text/plain"
JSON_TYPES = frozenset({JSON, GEO_JSON})


@dataclass(frozen=True)
class StaRequest:
    """A request below the service root: `tail` is the resource path, e.g. `Things(1)/Datastreams`."""

    method: str
    tail: str
    query: Mapping[str, str]
    base: str  # the absolute service root, e.g. https://host/v1.1
    body: Any = None  # the decoded JSON body, if any
    content_type: str = JSON  # JSON or JSON_PATCH for bodies


@dataclass
class StaResponse:
    """The answer of one operation; `data` is a JSON value, or text for the non-JSON media types."""

    status: int
    data: Any = None
    content_type: str | None = JSON
    headers: dict[str, str] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)  # to announce once the transaction committed

    @property
    def is_json(self) -> bool:
        """Whether `data` is a JSON value (otherwise text or nothing)."""
        return self.content_type in JSON_TYPES


def created(entity: dict[str, Any], changes: list[Change]) -> StaResponse:
    """201 with the Location header every client reads the new id from (STA-NOTES 2)."""
    return StaResponse(201, entity, headers={"Location": entity["@iot.selfLink"]}, changes=changes)


@contextlib.asynccontextmanager
async def transaction(state: AppState, conn: asyncpg.Connection | None) -> AsyncIterator[asyncpg.Connection]:
    """A transaction of its own, or a SAVEPOINT in the caller's open transaction."""
    if conn is None:
        async with state.pool.acquire() as own, own.transaction():
            yield own
    else:
        async with conn.transaction():
            yield conn


@contextlib.asynccontextmanager
async def connection(state: AppState, conn: asyncpg.Connection | None) -> AsyncIterator[asyncpg.Connection]:
    """The caller's connection, or one from the pool for the duration (reads need no transaction)."""
    if conn is None:
        async with state.pool.acquire() as own:
            yield own
    else:
        yield conn
