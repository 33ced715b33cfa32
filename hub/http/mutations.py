# SPDX-License-Identifier: Apache-2.0
"""POST/PATCH/PUT/DELETE and $ref over a StaRequest (OGC 18-088 §10), generic over schemas.model."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import asyncpg
from aiohttp import web

from hub.errors import BadLinkError, BadRequestError, NotFoundError
from hub.http.context import AppState
from hub.http.exchange import JSON_PATCH, StaRequest, StaResponse, created, transaction
from hub.ingest.sta import PARENT_SETS, pending_observation
from hub.jsonpatch import apply_patch
from hub.query.ast import Query
from hub.query.path import ResourcePath, Segment, parse_path
from hub.render import property_value, render_entity
from hub.store.observations import observation_columns
from hub.store.read import path_exists, read_page
from hub.store.write import Change, ParentLink, Writer, reference_id
from schemas.model import OBSERVATION, EntityType


def now() -> datetime:
    """The time of a write."""
    return datetime.now(UTC)


async def post(state: AppState, request: StaRequest, conn: asyncpg.Connection | None = None) -> StaResponse:
    """Create an entity (deep insert, links by @iot.id) or add a link with $ref."""
    path = parse_path(request.tail)
    body = request.body
    if path.ref:
        return await _change_link(state, path, body, conn)
    if not path.is_collection or path.property is not None:
        raise web.HTTPMethodNotAllowed(
            "POST", ["GET", "HEAD", "PATCH", "PUT", "DELETE"], text=f"cannot POST to {path}"
        )
    entity_type = path.target.entity_type
    # Group commit shares a transaction of its own: never inside a caller's ($batch) transaction.
    if entity_type is OBSERVATION and conn is None and state.group_commit is not None and _flat(body):
        shortcut, named_parent = _observation_parent(path)
        if shortcut:
            return await _post_observation(state, path, named_parent, body, request.base)
    async with transaction(state, conn) as db:
        parent = await _parent_link(db, path)
        writer = Writer(db, now())
        entity_id = await writer.create(entity_type, body, parent)
        await writer.record_moves()
        page = await read_page(db, own_path(entity_type, entity_id), Query())
    return created(render_entity(entity_type, page.rows[0], request.base), writer.changes)


def _flat(body: object) -> bool:
    """An Observation whose links are all references: nothing but the row itself gets written."""
    if not isinstance(body, dict):
        return False
    return all(
        not isinstance(body.get(nav), dict) or "@iot.id" in body[nav]
        for nav in OBSERVATION.navigation_by_name
    )


def _observation_parent(path: ResourcePath) -> tuple[bool, tuple[str, int] | None]:
    """Whether the group-commit path serves this POST, and the parent its path names.

    It takes `Observations` and `<Stream or FeatureOfInterest>(id)/Observations`; deeper paths go
    the general way, which resolves them."""
    if len(path.segments) == 1:
        return True, None
    owner = path.segments[0]
    if len(path.segments) == 2 and owner.key is not None and owner.entity_type.set_name in PARENT_SETS:
        return True, (owner.entity_type.set_name, owner.key)
    return False, None


async def _post_observation(
    state: AppState, path: ResourcePath, parent: tuple[str, int] | None, body: object, base: str
) -> StaResponse:
    """The hot path: validate, resolve links, then share a transaction with concurrent POSTs."""
    assert state.group_commit is not None
    # no database work before the shared batch
    observation = pending_observation(*_by_stream(body, parent))
    try:
        stored = await state.group_commit.insert(observation, time.time())
    except BadLinkError:
        if parent is not None and not await _exists(state, path.segments[0]):
            raise NotFoundError(f"{path.segments[0]} does not exist") from None
        raise
    row = stored.row
    entity = render_entity(OBSERVATION, {"id": stored.id, **{c: getattr(row, c) for c in _COLUMNS}}, base)
    # With its row: the change feed announces it without reading it back.
    return created(entity, [Change(OBSERVATION, stored.id, "create", stored)])


_COLUMNS = observation_columns()
_STREAM_LINKED = frozenset({"Datastream", "result", "phenomenonTime"})


def _by_stream(body: object, parent: tuple[str, int] | None) -> tuple[object, tuple[str, int] | None]:
    """`POST Observations` of {"Datastream": {"@iot.id": n}, "result": .., "phenomenonTime": ..}
    is the Observation `POST Datastreams(n)/Observations` of the rest makes, which
    pending_observation builds without the full create model (~25 µs less a request). Any other
    body goes as it came; so do a missing Datastream's errors (400, not the path's 404)."""
    if (
        parent is not None
        or type(body) is not dict
        or "result" not in body
        or not _STREAM_LINKED.issuperset(body)
    ):
        return body, parent
    link = body.get("Datastream")
    if (
        type(link) is not dict
        or len(link) != 1
        or type(stream := link.get("@iot.id")) is not int
        or stream < 0
    ):
        return body, parent
    return {k: v for k, v in body.items() if k != "Datastream"}, ("Datastreams", stream)


async def _exists(state: AppState, segment: Segment) -> bool:
    assert segment.key is not None
    async with state.pool.acquire() as conn:
        return await Writer(conn, now()).exists(segment.entity_type, segment.key)


async def _parent_link(conn: asyncpg.Connection, path: ResourcePath) -> ParentLink | None:
    """For Things(1)/Datastreams: the Thing the new Datastream belongs to (404 when missing)."""
    if len(path.segments) == 1:
        return None
    owner = path.segments[-2]
    nav = path.target.via
    assert nav is not None
    parent_id = await _single_id(conn, path.segments[:-1])
    if owner.entity_type.inverse(nav) is None:
        raise BadRequestError(f"cannot create a {nav.target_name} through {path}")
    return ParentLink(owner.entity_type, nav, parent_id)


async def _single_id(conn: asyncpg.Connection, segments: tuple[Segment, ...]) -> int:
    """The id of the one entity a path prefix addresses (404 when it does not exist)."""
    page = await read_page(conn, ResourcePath(segments), Query(top=1))
    return int(page.rows[0]["id"])


# ---- $ref --------------------------------------------------------------------------------------


async def _change_link(
    state: AppState, path: ResourcePath, body: object, conn: asyncpg.Connection | None
) -> StaResponse:
    """POST/PUT .../Nav/$ref {"@iot.id": n}: link an existing entity (§10.3)."""
    nav = path.target.via
    if nav is None or path.target.key is not None:
        raise BadRequestError(f"{path}/$ref: address a navigation property, e.g. Things(1)/Locations/$ref")
    async with transaction(state, conn) as db:
        source_id = await _single_id(db, path.segments[:-1])
        writer = Writer(db, now())
        await writer.add_link(path.segments[-2].entity_type, source_id, nav, body)
        await writer.record_moves()
    return StaResponse(204, None, None, changes=writer.changes)


async def _remove_link(
    state: AppState, request: StaRequest, path: ResourcePath, conn: asyncpg.Connection | None
) -> StaResponse:
    """DELETE Things(1)/Locations(2)/$ref or Things(1)/Locations/$ref?$id=.../Locations(2)."""
    nav = path.target.via
    if nav is None:
        raise BadRequestError(f"{path}/$ref: address a navigation property")
    target_id = path.target.key
    if target_id is None and "$id" in request.query:
        target_id = reference_id(nav.target, {"@iot.selfLink": request.query["$id"]}, "$id")
    if target_id is None and nav.many:
        raise BadRequestError("DELETE of a $ref needs the linked entity's id: Things(1)/Locations(2)/$ref")
    async with transaction(state, conn) as db:
        source_id = await _single_id(db, path.segments[:-1])
        writer = Writer(db, now())
        await writer.remove_link(path.segments[-2].entity_type, source_id, nav, target_id or 0)
    return StaResponse(200, None, None, changes=writer.changes)


# ---- PATCH / PUT / DELETE ----------------------------------------------------------------------


def _entity_address(path: ResourcePath, method: str) -> tuple[EntityType, int]:
    """The (entity type, id) an update or delete is for; only Set(id) or .../Nav(id) qualify."""
    if path.property is not None or path.target.key is None:
        raise web.HTTPMethodNotAllowed(
            method, ["GET", "HEAD", "POST"], text=f"{method} needs an entity address such as Things(1)"
        )
    return path.target.entity_type, path.target.key


async def patch(state: AppState, request: StaRequest, conn: asyncpg.Connection | None = None) -> StaResponse:
    """PATCH: merge properties (application/json) or apply a JSON Patch (RFC 6902)."""
    path = parse_path(request.tail)
    entity_type, entity_id = _entity_address(path, "PATCH")
    body = request.body
    async with transaction(state, conn) as db:
        await _check_address(db, path)
        writer = Writer(db, now())
        if request.content_type == JSON_PATCH:
            current = (await read_page(db, own_path(entity_type, entity_id), Query())).rows[0]
            document = {p.name: property_value(current, p) for p in entity_type.properties if not p.read_only}
            patched = apply_patch(document, body)
            merged = {k: v for k, v in patched.items() if v is not None}
            await writer.update(entity_type, entity_id, merged, True)
        else:
            await writer.update(entity_type, entity_id, body)
        await writer.record_moves()
        page = await read_page(db, own_path(entity_type, entity_id), Query())
    return StaResponse(200, render_entity(entity_type, page.rows[0], request.base), changes=writer.changes)


async def put(state: AppState, request: StaRequest, conn: asyncpg.Connection | None = None) -> StaResponse:
    """PUT: replace all properties (frost-sta-client updates this way); PUT on a to-one $ref relinks."""
    path = parse_path(request.tail)
    if path.ref:
        return await _change_link(state, path, request.body, conn)
    entity_type, entity_id = _entity_address(path, "PUT")
    async with transaction(state, conn) as db:
        await _check_address(db, path)
        writer = Writer(db, now())
        await writer.update(entity_type, entity_id, request.body, replace=True)
        await writer.record_moves()
        page = await read_page(db, own_path(entity_type, entity_id), Query())
    return StaResponse(200, render_entity(entity_type, page.rows[0], request.base), changes=writer.changes)


async def delete(state: AppState, request: StaRequest, conn: asyncpg.Connection | None = None) -> StaResponse:
    """DELETE an entity with the standard's cascades, or a link with $ref; 200 with no body (FROST)."""
    path = parse_path(request.tail)
    if path.ref:
        return await _remove_link(state, request, path, conn)
    entity_type, entity_id = _entity_address(path, "DELETE")
    async with transaction(state, conn) as db:
        await _check_address(db, path)
        writer = Writer(db, now())
        await writer.delete(entity_type, entity_id)
    return StaResponse(200, None, None, changes=writer.changes)


def own_path(entity_type: EntityType, entity_id: int) -> ResourcePath:
    """The canonical path of one entity."""
    return parse_path(f"{entity_type.set_name}({entity_id})")


async def _check_address(conn: asyncpg.Connection, path: ResourcePath) -> None:
    """Things(1)/Datastreams(2) must really be linked, not just both exist."""
    if len(path.segments) > 1 and not await path_exists(conn, path):
        raise NotFoundError(f"{path} does not exist")
