# SPDX-License-Identifier: Apache-2.0
"""GET/POST/PATCH/PUT/DELETE over a ResourcePath, generic over schemas.model (OGC 18-088 §9, §10)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from hub.errors import BadLinkError, BadRequestError, NotFoundError, NotSupportedError
from hub.http.context import AppState, service_root
from hub.http.render import format_instant, property_value, render_entity, render_node, self_link
from hub.jsonpatch import apply_patch
from hub.query.ast import Query
from hub.query.links import format_query, next_page
from hub.query.parse import parse_query
from hub.query.path import ResourcePath, Segment, parse_path
from hub.query.plan import plan_expands, plan_selection
from hub.store.observations import observation_columns
from hub.store.read import Page, path_exists, read_page
from hub.store.write import Change, ParentLink, Writer, reference_id
from schemas.model import ENTITY_SETS, OBSERVATION

JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
# Features of §9-§10 that are valid requests but arrive with later issues.
PENDING_PATHS = {"$batch": "batch requests", "CreateObservations": "the dataArray extension"}


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type=JSON, headers=headers)


def _path(request: web.Request) -> ResourcePath:
    tail = request.match_info["tail"]
    if tail.strip("/") in PENDING_PATHS:
        raise NotSupportedError(
            f"{PENDING_PATHS[tail.strip('/')]} ({tail}) are not supported by this server yet"
        )
    return parse_path(tail)


# ---- GET ---------------------------------------------------------------------------------------


async def handle_get(request: web.Request) -> web.StreamResponse:
    """Read a collection, an entity, a property, $value or $ref."""
    state = AppState.of(request)
    path = _path(request)
    query = parse_query(request.query, state.settings.default_top, state.settings.max_top)
    base = service_root(request, state.settings)
    entity_type = path.target.entity_type
    selection = plan_selection(entity_type, query.select)
    expands = plan_expands(entity_type, query.expand, state.settings.default_top)
    if path.property is not None or path.ref:
        selection, expands = plan_selection(entity_type, None), ()
    async with state.pool.acquire() as conn:
        page = await read_page(conn, path, query, state.dialect, selection, expands)
    if path.property is not None:
        value = property_value(page.rows[0], path.property)
        if path.value:
            text = value if isinstance(value, str) else orjson.dumps(value).decode()
            return web.Response(text=text, content_type="text/plain")
        return _json({path.property.name: value})
    if path.ref:
        links = [{"@iot.selfLink": self_link(base, entity_type, row["id"])} for row in page.rows]
        if not path.is_collection:
            return _json(links[0])
        return _json(_collection(base, path, query, page, links))
    entities = [render_node(entity_type, node, base, selection) for node in page.nodes]
    if not path.is_collection:
        return _json(entities[0])
    return _json(_collection(base, path, query, page, entities))


def _continuation(query: Query, page: Page) -> Query:
    """The next page's Query: $skip for every client, plus a keyset $skiptoken when the order has one."""
    following = next_page(query)
    if page.keyset is None or not page.nodes:
        return following
    last = page.nodes[-1].row
    value = last[page.keyset.column]
    position = "" if page.keyset.column == "id" else format_instant(value)
    return dataclasses.replace(following, skiptoken=f"{position}~{last['id']}")


def _collection(base: str, path: ResourcePath, query: Query, page: Page, items: list[Any]) -> dict[str, Any]:
    """{"@iot.count", "@iot.nextLink", "value"} in FROST's key order."""
    body: dict[str, Any] = {}
    if page.count is not None:
        body["@iot.count"] = page.count
    if page.has_more:
        # Absolute and complete in itself: some clients append only its query string (STA-NOTES 1).
        body["@iot.nextLink"] = f"{base}/{path}?{format_query(_continuation(query, page))}"
    body["value"] = items
    return body


# ---- POST --------------------------------------------------------------------------------------


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
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BadRequestError(f"the request body is not valid JSON: {error}") from None


def _now() -> datetime:
    return datetime.now(UTC)


async def handle_post(request: web.Request) -> web.StreamResponse:
    """Create an entity (deep insert, links by @iot.id) or add a link with $ref."""
    state = AppState.of(request)
    path = _path(request)
    body = await read_body(request)
    base = service_root(request, state.settings)
    if path.ref:
        return await _change_link(state, path, body)
    if not path.is_collection or path.property is not None:
        raise web.HTTPMethodNotAllowed(
            "POST", ["GET", "PATCH", "PUT", "DELETE"], text=f"cannot POST to {path}"
        )
    entity_type = path.target.entity_type
    if entity_type is OBSERVATION and state.group_commit is not None and _flat_observation(body):
        return await _post_observation(state, path, body, base)
    async with state.pool.acquire() as conn, conn.transaction():
        parent = await _parent_link(conn, path)
        writer = Writer(conn, _now())
        entity_id = await writer.create(entity_type, body, parent)
        await writer.record_moves()
        page = await read_page(conn, parse_path(f"{entity_type.set_name}({entity_id})"), Query())
    state.committed(writer.changes)
    entity = render_entity(entity_type, page.rows[0], base)
    return _json(entity, status=201, headers={"Location": entity["@iot.selfLink"]})


def _flat_observation(body: object) -> bool:
    """An Observation whose links are all references: nothing but the row itself gets written."""
    if not isinstance(body, dict):
        return False
    return all(
        not isinstance(body.get(nav), dict) or "@iot.id" in body[nav]
        for nav in OBSERVATION.navigation_by_name
    )


async def _post_observation(
    state: AppState, path: ResourcePath, body: object, base: str
) -> web.StreamResponse:
    """The hot path: validate, resolve links, then share a transaction with concurrent POSTs."""
    assert state.group_commit is not None
    now = _now()
    async with state.pool.acquire() as conn:
        parent = await _parent_link(conn, path, check=False)
        try:
            row = await Writer(conn, now).observation_row(body, parent)
        except BadLinkError:
            if parent is not None and not await Writer(conn, now).exists(
                path.segments[0].entity_type, parent.parent_id
            ):
                raise NotFoundError(f"{path.segments[0]} does not exist") from None
            raise
    entity_id = await state.group_commit.insert(row)
    state.committed([Change(OBSERVATION, entity_id, "create")])
    columns = {name: getattr(row, name) for name in observation_columns()}
    entity = render_entity(OBSERVATION, {"id": entity_id, **columns}, base)
    return _json(entity, status=201, headers={"Location": entity["@iot.selfLink"]})


async def _parent_link(conn: asyncpg.Connection, path: ResourcePath, check: bool = True) -> ParentLink | None:
    """For Things(1)/Datastreams: the Thing the new Datastream belongs to (404 when missing).

    With check=False a keyed parent (Datastreams(1)/Observations) is taken on trust: the
    Observation's own stream lookup reports a missing one."""
    if len(path.segments) == 1:
        return None
    owner = path.segments[-2]
    nav = path.target.via
    assert nav is not None
    if not check and len(path.segments) == 2 and owner.key is not None:
        parent_id = owner.key
    else:
        parent_id = await _single_id(conn, path.segments[:-1])
    if owner.entity_type.inverse(nav) is None:
        raise BadRequestError(f"cannot create a {nav.target_name} through {path}")
    return ParentLink(owner.entity_type, nav, parent_id)


async def _single_id(conn: asyncpg.Connection, segments: tuple[Segment, ...]) -> int:
    """The id of the one entity a path prefix addresses (404 when it does not exist)."""
    prefix = ResourcePath(segments)
    page = await read_page(conn, prefix, Query(top=1))
    return int(page.rows[0]["id"])


# ---- $ref --------------------------------------------------------------------------------------


async def _change_link(state: AppState, path: ResourcePath, body: object) -> web.StreamResponse:
    """POST/PUT .../Nav/$ref {"@iot.id": n}: link an existing entity (§10.3)."""
    nav = path.target.via
    if nav is None or path.target.key is not None:
        raise BadRequestError(f"{path}/$ref: address a navigation property, e.g. Things(1)/Locations/$ref")
    async with state.pool.acquire() as conn, conn.transaction():
        source_id = await _single_id(conn, path.segments[:-1])
        writer = Writer(conn, _now())
        await writer.add_link(path.segments[-2].entity_type, source_id, nav, body)
        await writer.record_moves()
    state.committed(writer.changes)
    return web.Response(status=204)


async def _remove_link(state: AppState, request: web.Request, path: ResourcePath) -> web.StreamResponse:
    """DELETE Things(1)/Locations(2)/$ref or Things(1)/Locations/$ref?$id=.../Locations(2)."""
    nav = path.target.via
    if nav is None:
        raise BadRequestError(f"{path}/$ref: address a navigation property")
    target_id = path.target.key
    if target_id is None and "$id" in request.query:
        target_id = reference_id(nav.target, {"@iot.selfLink": request.query["$id"]}, "$id")
    if target_id is None and nav.many:
        raise BadRequestError("DELETE of a $ref needs the linked entity's id: Things(1)/Locations(2)/$ref")
    async with state.pool.acquire() as conn, conn.transaction():
        source_id = await _single_id(conn, path.segments[:-1])
        writer = Writer(conn, _now())
        await writer.remove_link(path.segments[-2].entity_type, source_id, nav, target_id or 0)
    state.committed(writer.changes)
    return web.Response(status=200)


# ---- PATCH / PUT / DELETE ----------------------------------------------------------------------


def _entity_address(path: ResourcePath, method: str) -> tuple[Any, int]:
    """The (entity type, id) an update or delete is for; only Set(id) or .../Nav(id) qualify."""
    if path.property is not None or path.target.key is None:
        raise web.HTTPMethodNotAllowed(
            method, ["GET", "POST"], text=f"{method} needs an entity address such as Things(1)"
        )
    return path.target.entity_type, path.target.key


async def handle_patch(request: web.Request) -> web.StreamResponse:
    """PATCH: merge properties (application/json) or apply a JSON Patch (RFC 6902)."""
    state = AppState.of(request)
    path = _path(request)
    entity_type, entity_id = _entity_address(path, "PATCH")
    body = await read_body(request, (JSON, JSON_PATCH))
    base = service_root(request, state.settings)
    async with state.pool.acquire() as conn, conn.transaction():
        await _check_address(conn, path)
        writer = Writer(conn, _now())
        if request.content_type == JSON_PATCH:
            current = (await read_page(conn, _own_path(entity_type, entity_id), Query())).rows[0]
            document = {p.name: property_value(current, p) for p in entity_type.properties if not p.read_only}
            patched = apply_patch(document, body)
            await writer.update(
                entity_type, entity_id, {k: v for k, v in patched.items() if v is not None}, True
            )
        else:
            await writer.update(entity_type, entity_id, body)
        await writer.record_moves()
        page = await read_page(conn, _own_path(entity_type, entity_id), Query())
    state.committed(writer.changes)
    return _json(render_entity(entity_type, page.rows[0], base))


async def handle_put(request: web.Request) -> web.StreamResponse:
    """PUT: replace all properties (frost-sta-client updates this way); PUT on a to-one $ref relinks."""
    state = AppState.of(request)
    path = _path(request)
    body = await read_body(request)
    if path.ref:
        return await _change_link(state, path, body)
    entity_type, entity_id = _entity_address(path, "PUT")
    base = service_root(request, state.settings)
    async with state.pool.acquire() as conn, conn.transaction():
        await _check_address(conn, path)
        writer = Writer(conn, _now())
        await writer.update(entity_type, entity_id, body, replace=True)
        await writer.record_moves()
        page = await read_page(conn, _own_path(entity_type, entity_id), Query())
    state.committed(writer.changes)
    return _json(render_entity(entity_type, page.rows[0], base))


async def handle_delete(request: web.Request) -> web.StreamResponse:
    """DELETE an entity with the standard's cascades, or a link with $ref; 200 with no body (FROST)."""
    state = AppState.of(request)
    path = _path(request)
    if path.ref:
        return await _remove_link(state, request, path)
    entity_type, entity_id = _entity_address(path, "DELETE")
    async with state.pool.acquire() as conn, conn.transaction():
        await _check_address(conn, path)
        writer = Writer(conn, _now())
        await writer.delete(entity_type, entity_id)
    state.committed(writer.changes)
    return web.Response(status=200)


def _own_path(entity_type: Any, entity_id: int) -> ResourcePath:
    return parse_path(f"{entity_type.set_name}({entity_id})")


async def _check_address(conn: asyncpg.Connection, path: ResourcePath) -> None:
    """Things(1)/Datastreams(2) must really be linked, not just both exist."""
    if len(path.segments) > 1 and not await path_exists(conn, path):
        raise NotFoundError(f"{path} does not exist")


# ---- service root ------------------------------------------------------------------------------

CONFORMANCE = (
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/update-entity-put",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/update-entity-jsonpatch",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/historical-location-auto-creation",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/multi-datastream",
)


async def handle_root(request: web.Request) -> web.StreamResponse:
    """The service root document (§9.2.1) with serverSettings.conformance."""
    state = AppState.of(request)
    base = service_root(request, state.settings)
    sets = [{"name": name, "url": f"{base}/{name}"} for name in ENTITY_SETS]
    return _json({"value": sets, "serverSettings": {"conformance": list(CONFORMANCE)}})
