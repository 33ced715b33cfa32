# SPDX-License-Identifier: Apache-2.0
"""The aiohttp side of STA: thin wrappers that turn a web.Request into a StaRequest for
hub/http/operations.py (OGC 18-088 §9, §10, §14) or a JSON $batch (§12), and the service root."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
from aiohttp import web

from hub.auth.roles import ROLE_BY_METHOD, role_for
from hub.errors import BadRequestError
from hub.http.batch import Part, reads_only, run_batch
from hub.http.batch_multipart import MULTIPART_MIXED, run_multipart
from hub.http.caching import cached_read
from hub.http.context import AppState, service_root
from hub.http.exchange import JSON, JSON_PATCH, StaRequest, StaResponse
from hub.http.operations import BATCH, action_of, dispatch
from hub.http.reads import read_snapshot
from hub.http.security import require
from hub.query.path import parse_path
from schemas.model import ENTITY_SETS

# Methods that read: HEAD is answered as GET, and aiohttp leaves out the body (RFC 9110 §9.3.2).
READS = frozenset({"GET", "HEAD"})

# What each method's body may be; methods missing here take no body.
BODY_TYPES = {"POST": (JSON,), "PUT": (JSON,), "PATCH": (JSON, JSON_PATCH)}


async def read_body(request: web.Request, allowed: tuple[str, ...] = (JSON,)) -> Any:
    """The JSON body; 415 for another media type, 400 for broken JSON."""
    content_type = request.content_type
    # A bare POST from curl says form-urlencoded; aiohttp reports octet-stream when none is given.
    if request.headers.get("Content-Type") and content_type not in allowed:
        raise web.HTTPUnsupportedMediaType(
            text=f"send the body as {' or '.join(allowed)}, not {content_type}"
        )
    raw = await request.read()
    if not raw.strip():
        raise BadRequestError("the request body is empty; a JSON document was expected")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BadRequestError(f"the request body is not valid JSON: {error}") from None
    # PostgreSQL text and jsonb cannot hold NUL: say so instead of letting the database refuse.
    # The byte test keeps the walk off the hot path.
    try:
        nul = b"\\u0000" in raw and _has_nul(body)
    except RecursionError:
        raise BadRequestError("the request body is nested too deeply") from None
    if nul:
        raise BadRequestError("the request body contains a NUL character (\\u0000), which cannot be stored")
    return body


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def to_web(response: StaResponse) -> web.Response:
    """The aiohttp response of an operation's answer."""
    if response.content_type is None or response.data is None:
        return web.Response(status=response.status, headers=response.headers)
    if response.is_json:
        body = orjson.dumps(response.data)
        return web.Response(
            body=body, status=response.status, content_type=response.content_type, headers=response.headers
        )
    return web.Response(
        text=response.data,
        status=response.status,
        content_type=response.content_type,
        headers=response.headers,
    )


async def handle_request(request: web.Request) -> web.StreamResponse:
    """Any STA request below the service root; announces the changes once they are committed."""
    state = AppState.of(request)
    tail = request.match_info["tail"]
    base = service_root(request, state.settings)
    action = action_of(tail)
    if action == BATCH and request.method == "POST":
        return await _handle_batch(request, state, base)
    require(request, [role_for(request.method)])  # before the body is read or anything looked up
    path = None if action is not None else parse_path(tail)  # a bad path is a 404 before the body
    if path is not None and request.method in READS:

        async def answer(conn: asyncpg.Connection) -> web.Response:
            async def read() -> web.Response:
                sta = StaRequest("GET", tail, request.query, base)
                return to_web(await dispatch(state, sta, conn))

            return await cached_read(request, state.settings, conn, path, base, read)

        # One snapshot on one server (a standby when usable): the change clock and the data agree.
        return await read_snapshot(request, answer)
    body: Any = None
    content_type = JSON
    if request.method in BODY_TYPES:
        body = await read_body(request, BODY_TYPES[request.method])
        content_type = JSON_PATCH if request.content_type == JSON_PATCH else JSON
    sta = StaRequest(request.method, tail, request.query, base, body, content_type)
    response = await dispatch(state, sta)
    state.committed(response.changes)
    return to_web(response)


async def _handle_batch(request: web.Request, state: AppState, base: str) -> web.StreamResponse:
    """$batch in either form (§11.2): OData 4.0 multipart/mixed, or the OData 4.01 JSON batch."""

    def authorize(parts: list[Part]) -> None:
        # The batch needs every role its requests need, checked before any of them runs; a method
        # the hub does not serve needs none (its request answers 405).
        require(request, {ROLE_BY_METHOD[part.method] for part in parts if part.method in ROLE_BY_METHOD})

    if request.content_type == MULTIPART_MIXED:
        raw = await request.read()
        content_type = request.headers.get("Content-Type", MULTIPART_MIXED)
        text, media_type = await run_multipart(state, raw, content_type, base, authorize)
        return web.Response(body=text.encode(), status=200, headers={"Content-Type": media_type})
    if request.content_type.startswith("multipart/"):
        raise web.HTTPUnsupportedMediaType(
            text=f"send a batch as {MULTIPART_MIXED} (OData 4.0) or as {JSON} "
            f'({{"requests": [...]}}, OData 4.01), not {request.content_type}'
        )
    body = await read_body(request)
    if reads_only(body):  # GETs without change sets: one snapshot, on a standby when usable

        async def answer(conn: asyncpg.Connection) -> web.Response:
            return to_web(StaResponse(200, await run_batch(state, body, base, authorize, conn)))

        return await read_snapshot(request, answer)
    return to_web(StaResponse(200, await run_batch(state, body, base, authorize)))


# One entry per method for the route table; all of them are the same wrapper.
handle_get = handle_post = handle_patch = handle_put = handle_delete = handle_request


# ---- service root ------------------------------------------------------------------------------

REQ = "http://www.opengis.net/spec/iot_sensing/1.1/req"
CONFORMANCE = (
    f"{REQ}/datamodel",
    f"{REQ}/resource-path/resource-path-to-entities",
    f"{REQ}/request-data",
    f"{REQ}/create-update-delete",
    f"{REQ}/create-update-delete/update-entity-put",
    f"{REQ}/create-update-delete/update-entity-jsonpatch",
    f"{REQ}/create-update-delete/historical-location-auto-creation",
    f"{REQ}/multi-datastream",
    f"{REQ}/data-array/data-array",
    f"{REQ}/batch-request/batch-request",
)


async def handle_root(request: web.Request) -> web.StreamResponse:
    """The service root document (§9.2.1) with serverSettings.conformance."""
    require(request, ["read"])
    state = AppState.of(request)
    base = service_root(request, state.settings)
    body = _root_body(base, state.settings.mqtt_url, state.settings.mqtt_public_urls)
    return web.Response(body=body, status=200, content_type=JSON, headers={})


@functools.lru_cache(maxsize=64)  # one per base URL the clients use (Host, X-Forwarded-*)
def _root_body(base: str, mqtt_url: str | None, mqtt_public_urls: tuple[str, ...] | None) -> bytes:
    """The service root document as JSON, made once per base URL and broker settings."""
    sets = [{"name": name, "url": f"{base}/{name}"} for name in ENTITY_SETS]
    settings: dict[str, Any] = {"conformance": list(CONFORMANCE)}
    if mqtt_url:
        # STA-NOTES 6: the MQTT classes work only with a broker, and say where it is.
        endpoints = list(mqtt_public_urls or ())
        if not endpoints:  # the hub's own broker URL, without credentials
            parts = urlsplit(mqtt_url)
            endpoints = [urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))]
        for uri in MQTT_CONFORMANCE:
            settings["conformance"].append(uri)
            settings[uri] = {"endpoints": endpoints}
    return orjson.dumps({"value": sets, "serverSettings": settings})


MQTT_CONFORMANCE = (
    "http://www.opengis.net/spec/iot_sensing/1.1/req/create-observations-via-mqtt/observations-creation",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates",
)
