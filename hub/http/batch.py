# SPDX-License-Identifier: Apache-2.0
"""POST $batch in the JSON form of OData 4.01 (OGC 18-088 §12 as FROST implements it for v1.1).

{"requests": [{"id", "method", "url", "body"?, "headers"?, "atomicityGroup"?, "dependsOn"?}, ...]}
-> {"responses": [{"id", "status", "headers"?, "body"?}, ...]}

Requests run in order on one connection through the same operations as plain HTTP requests.
A request outside an atomicity group commits on its own; the members of a group (adjacent, as
OData requires) share ONE transaction with a SAVEPOINT each, and when one fails the group rolls
back: the failed member reports its own error, the others 424 Failed Dependency. So does a request
whose `dependsOn` names a failed one. `$<id>` at the start of a url, or as the value of an
`@iot.id` in a body, stands for the entity an earlier request created. Group commit is never
used here: the operations get the batch's connection.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import asyncpg
from aiohttp import web
from multidict import MultiDict

from hub.errors import BadRequestError
from hub.http.context import AppState
from hub.http.errors import STATUS_BY_ERROR
from hub.http.errors import _message as error_message
from hub.http.exchange import JSON, JSON_PATCH, StaRequest, StaResponse, connection
from hub.http.operations import dispatch
from hub.store.write import Change

FAILED_DEPENDENCY = 424
_VERSION_PREFIX = re.compile(r"^/?v1\.[01]/")
_REFERENCE = re.compile(r"^\$([^/?()]+)")


@dataclass(frozen=True)
class Part:
    """One request of a batch."""

    id: str
    method: str
    url: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    group: str | None = None
    depends_on: tuple[str, ...] = ()


@dataclass
class Outcome:
    """One response of a batch, with the changes to announce once its transaction committed."""

    part: Part
    status: int
    entry: dict[str, Any]
    changes: list[Change] = field(default_factory=list)


@dataclass
class _Context:
    """What the requests of one batch share: the root, who created what, who failed."""

    base: str
    created: dict[str, tuple[str, int]] = field(default_factory=dict)  # id -> ("Things(5)", 5)
    status: dict[str, int] = field(default_factory=dict)


def _text(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and key == "id":
        value = str(value)
    if not isinstance(value, str) or not value:
        raise BadRequestError(f"{where}.{key}: expected a non-empty string")
    return value


def _part(index: int, item: object, seen: set[str]) -> Part:
    where = f"$batch.requests[{index}]"
    if not isinstance(item, dict):
        raise BadRequestError(f"{where}: expected an object with id, method and url")
    part_id = _text(item, "id", where)
    if part_id in seen:
        raise BadRequestError(f"{where}.id: {part_id!r} is given twice")
    headers = item.get("headers") or {}
    depends = item.get("dependsOn") or []
    group = item.get("atomicityGroup")
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise BadRequestError(f"{where}.headers: expected an object of strings")
    if not isinstance(depends, list) or not all(isinstance(d, str) and d in seen for d in depends):
        raise BadRequestError(f"{where}.dependsOn: expected ids of earlier requests")
    if group is not None and not isinstance(group, str):
        raise BadRequestError(f"{where}.atomicityGroup: expected a string")
    return Part(
        part_id,
        _text(item, "method", where).upper(),
        _text(item, "url", where),
        item.get("body"),
        {k.lower(): v for k, v in headers.items()},
        group,
        tuple(depends),
    )


def parse_batch(body: object) -> list[Part]:
    """The requests of a JSON batch body (400 when it is not one)."""
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list):
        raise BadRequestError('$batch: expected a JSON batch {"requests": [{"id", "method", "url", ...}]}')
    parts: list[Part] = []
    seen: set[str] = set()
    for index, item in enumerate(requests):
        parts.append(_part(index, item, seen))
        seen.add(parts[-1].id)
    closed: set[str] = set()
    for previous, part in zip([None, *parts], parts, strict=False):
        group = previous.group if previous is not None else None
        if group is not None and group != part.group:
            closed.add(group)
        if part.group in closed:
            raise BadRequestError(f"$batch: the requests of atomicityGroup {part.group!r} must be adjacent")
    return parts


def _units(parts: list[Part]) -> list[list[Part]]:
    """Single requests and whole atomicity groups, in order."""
    units: list[list[Part]] = []
    for part in parts:
        if part.group is not None and units and units[-1][-1].group == part.group:
            units[-1].append(part)
        else:
            units.append([part])
    return units


def reads_only(body: object) -> bool:
    """Whether a batch only reads: every request a GET, none in an atomicity group (change set)."""
    try:
        parts = parse_batch(body)
    except BadRequestError:  # run_batch reports it
        return False
    return all(part.method == "GET" and part.group is None for part in parts)


async def run_batch(
    state: AppState,
    body: object,
    base: str,
    authorize: Callable[[list[Part]], None] | None = None,
    conn: asyncpg.Connection | None = None,
) -> dict[str, Any]:
    """Execute a JSON batch; the {"responses": [...]} document. `authorize` sees all the requests
    before any runs, and raises to refuse the batch; `conn`: run on it (a read-only snapshot)."""
    outcomes = await run_parts(state, parse_batch(body), base, authorize, conn)
    return {"responses": [outcome.entry for outcome in outcomes]}


async def run_parts(
    state: AppState,
    parts: list[Part],
    base: str,
    authorize: Callable[[list[Part]], None] | None = None,
    conn: asyncpg.Connection | None = None,
) -> list[Outcome]:
    """Execute the requests of a batch of either form, in order; one Outcome per request."""
    if authorize is not None:
        authorize(parts)
    context = _Context(base)
    results: list[Outcome] = []
    async with connection(state, conn) as db:
        for unit in _units(parts):
            if unit[0].group is None:
                outcomes = [await _run(state, db, unit[0], context)]
            else:
                outcomes = await _run_group(state, db, unit, context)
            for outcome in outcomes:
                state.committed(outcome.changes)
                results.append(outcome)
    return results


class _Rollback(Exception):
    """Raised inside an atomicity group's transaction to undo it."""


async def _run_group(
    state: AppState, conn: asyncpg.Connection, parts: list[Part], context: _Context
) -> list[Outcome]:
    """All members in one transaction; when one fails, none of them takes effect."""
    outcomes: list[Outcome] = []
    try:
        async with conn.transaction():
            for part in parts:
                outcomes.append(await _run(state, conn, part, context))
                if outcomes[-1].status >= 400:
                    raise _Rollback
    except _Rollback:
        failed = outcomes[-1]
        message = f"rolled back: request {failed.part.id!r} of atomicityGroup {failed.part.group!r} failed"
        result = []
        for part in parts:
            context.created.pop(part.id, None)
            if part is failed.part:
                result.append(failed)
                continue
            context.status[part.id] = FAILED_DEPENDENCY
            result.append(Outcome(part, FAILED_DEPENDENCY, _error_entry(part.id, FAILED_DEPENDENCY, message)))
        return result
    return outcomes


async def _run(state: AppState, conn: asyncpg.Connection, part: Part, context: _Context) -> Outcome:
    """One request; its error becomes its response (unexpected errors end the batch with a 500)."""
    failed = [d for d in part.depends_on if context.status.get(d, 500) >= 400]
    if failed:
        message = f"not run: it depends on the failed request(s) {', '.join(failed)}"
        context.status[part.id] = FAILED_DEPENDENCY
        return Outcome(part, FAILED_DEPENDENCY, _error_entry(part.id, FAILED_DEPENDENCY, message))
    try:
        response = await dispatch(state, _request(part, context), conn)
    except Exception as error:
        status, message, headers = error_of(error)
        context.status[part.id] = status
        return Outcome(part, status, _error_entry(part.id, status, message, headers))
    context.status[part.id] = response.status
    location = response.headers.get("Location")
    if response.status == 201 and location and location.startswith(context.base + "/"):
        entity = response.data if isinstance(response.data, dict) else {}
        context.created[part.id] = (location[len(context.base) + 1 :], int(entity.get("@iot.id", 0)))
    return Outcome(part, response.status, _entry(part.id, response), response.changes)


def _request(part: Part, context: _Context) -> StaRequest:
    """The StaRequest of a part, with `$<id>` references resolved."""
    url = urlsplit(part.url)
    path = unquote(url.path)
    base_path = urlsplit(context.base).path
    if url.scheme and not path.startswith(base_path + "/"):
        raise BadRequestError(f"url {part.url!r} is not below this service ({context.base})")
    if path.startswith(base_path + "/"):  # absolute, or an absolute path (OData 4.0 Part 1 §11.7.2)
        path = path[len(base_path) + 1 :]
    path = _VERSION_PREFIX.sub("", path).lstrip("/")
    match = _REFERENCE.match(path)
    if match and match.group(1) in context.created:
        path = context.created[match.group(1)][0] + path[match.end() :]
    content_type = part.headers.get("content-type", JSON).split(";")[0].strip().lower()
    if part.body is not None and content_type not in (JSON, JSON_PATCH):
        raise web.HTTPUnsupportedMediaType(
            text=f"send the body as {JSON} or {JSON_PATCH}, not {content_type}"
        )
    query: MultiDict[str] = MultiDict(parse_qsl(url.query, keep_blank_values=True))
    body = _resolve(part.body, context)
    return StaRequest(part.method, path, query, context.base, body, content_type)


def _resolve(value: Any, context: _Context) -> Any:
    """Replace {"@iot.id": "$<id>"} by the id of the entity request <id> created."""
    if isinstance(value, list):
        return [_resolve(item, context) for item in value]
    if not isinstance(value, dict):
        return value
    resolved = {key: _resolve(item, context) for key, item in value.items()}
    ref = resolved.get("@iot.id")
    if isinstance(ref, str) and ref.startswith("$") and ref[1:] in context.created:
        resolved["@iot.id"] = context.created[ref[1:]][1]
    return resolved


def error_of(error: Exception) -> tuple[int, str, dict[str, str]]:
    """(status, message, headers) of an exception, as hub/http/errors.py maps it; others re-raised."""
    if isinstance(error, web.HTTPException):
        text = error.text or ""
        message = text if text and not text.startswith(f"{error.status}:") else error.reason
        allow = error.headers.get("Allow")
        return error.status, message, {"allow": allow} if allow else {}
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status, error_message(error), {}
    raise error


def _error_entry(
    part_id: str, status: int, message: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": part_id, "status": status}
    if headers:
        entry["headers"] = headers
    entry["body"] = {"code": status, "type": "error", "message": message}
    return entry


def _entry(part_id: str, response: StaResponse) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": part_id, "status": response.status}
    headers = {name.lower(): value for name, value in response.headers.items()}
    if response.data is not None and not response.is_json and response.content_type:
        headers["content-type"] = response.content_type
    if headers:
        entry["headers"] = headers
    if "location" in headers:
        entry["location"] = headers["location"]  # where FROST's documentation shows it
    if response.data is not None:
        entry["body"] = response.data
    return entry
