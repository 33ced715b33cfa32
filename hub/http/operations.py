# SPDX-License-Identifier: Apache-2.0
"""The STA operations over a StaRequest (OGC 18-088 §9, §10): dispatch and GET.

Writes live in hub/http/mutations.py, CreateObservations in hub/http/data_array_create.py.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from hub.errors import NotFoundError
from hub.http import mutations
from hub.http.apply import apply_text, get_aggregates
from hub.http.context import AppState
from hub.http.data_array_create import create_observations
from hub.http.exchange import TEXT, StaRequest, StaResponse, connection
from hub.http.limits import check_filter_text, check_query
from hub.http.result_formats import check_format, format_collection, geometry_expands, geometry_selection
from hub.query.ast import Query
from hub.query.links import format_query, next_page
from hub.query.parse import parse_query
from hub.query.path import ResourcePath, parse_path
from hub.query.plan import plan_expands, plan_selection
from hub.render import format_instant, property_value, render_nodes, self_link
from hub.store.read import Page, read_page

# Service-level resources that are not resource paths, with the methods they accept.
CREATE_OBSERVATIONS = "CreateObservations"
BATCH = "$batch"
ACTIONS = {CREATE_OBSERVATIONS: ("POST",), BATCH: ("POST",)}


def action_of(tail: str) -> str | None:
    """`CreateObservations` or `$batch` when the path names one, else None."""
    name = tail.strip("/")
    return name if name in ACTIONS else None


async def dispatch(
    state: AppState, request: StaRequest, conn: asyncpg.Connection | None = None
) -> StaResponse:
    """Run one STA request; `conn` is an open connection (inside a $batch) or None."""
    action = action_of(request.tail)
    if action is not None:
        if request.method not in ACTIONS[action]:
            raise web.HTTPMethodNotAllowed(
                request.method, list(ACTIONS[action]), text=f"{action} accepts only POST"
            )
        if action == BATCH:
            raise web.HTTPBadRequest(text="a $batch cannot contain another $batch")
        return await create_observations(state, request, conn)
    handler = _HANDLERS.get(request.method)
    if handler is None:
        raise web.HTTPMethodNotAllowed(
            request.method, sorted(_HANDLERS), text=f"{request.method} is not supported"
        )
    return await handler(state, request, conn)


async def get(state: AppState, request: StaRequest, conn: asyncpg.Connection | None = None) -> StaResponse:
    """Read a collection, an entity, a property, $value or $ref."""
    if apply_text(request.query) is not None:
        return await get_aggregates(state, request, conn)
    path = parse_path(request.tail)
    check_filter_text(request.query, state.settings)
    query = parse_query(request.query, state.settings.default_top, state.settings.max_top)
    check_query(query, state.settings)
    base = request.base
    entity_type = path.target.entity_type
    selection = plan_selection(entity_type, query.select)
    expands = plan_expands(entity_type, query.expand, state.settings.default_top)
    if path.property is not None or path.ref:
        selection, expands = plan_selection(entity_type, None), ()
    hidden: str | None = None
    check_format(path, query)
    if query.result_format == "GeoJSON":
        expands, hidden = geometry_expands(entity_type, expands, state.settings.default_top)
    fetched = geometry_selection(entity_type, selection) if query.result_format == "GeoJSON" else selection
    async with connection(state, conn) as db:
        estimate = state.settings.count_mode == "estimate"
        page = await read_page(db, path, query, state.dialect, fetched, expands, estimate_count=estimate)
    if path.property is not None:
        return _property_response(path, property_value(page.rows[0], path.property))
    if path.ref:
        links = [{"@iot.selfLink": self_link(base, entity_type, row["id"])} for row in page.rows]
        return StaResponse(
            200, _collection(base, path, query, page, links) if path.is_collection else links[0]
        )
    entities = render_nodes(entity_type, page.nodes, base, selection)
    if not path.is_collection:
        return StaResponse(200, entities[0])
    if query.result_format is not None:
        data, media_type = format_collection(entity_type, query, page, entities, base, hidden)
        if isinstance(data, list):  # dataArray: grouped like a collection
            return StaResponse(200, _collection(base, path, query, page, data))
        return _paged_format(data, media_type, _next_link(base, path, query, page), page.count)
    return StaResponse(200, _collection(base, path, query, page, entities))


def _paged_format(data: Any, media_type: str, following: str | None, total: int | None) -> StaResponse:
    """CSV or GeoJSON of one page, never silently cut short: the next page's link goes into a
    `Link: <…>; rel="next"` header (RFC 8288), and for GeoJSON also into `@iot.nextLink` (and the
    count into `@iot.count`) of the FeatureCollection, as in a JSON collection."""
    headers = {} if following is None else {"Link": f'<{following}>; rel="next"'}
    if isinstance(data, dict):  # GeoJSON: foreign members are allowed (RFC 7946 §6.1)
        extra: dict[str, Any] = {}
        if total is not None:
            extra["@iot.count"] = total
        if following is not None:
            extra["@iot.nextLink"] = following
        data = {**data, **extra}
    return StaResponse(200, data, media_type, headers=headers)


def _property_response(path: ResourcePath, value: Any) -> StaResponse:
    """A property, a member of one, or its $value; 204 No Content when it is null (OData 4.0
    Part 1 §11.2.4.1 and §11.2.4.2: "If the property is single-valued and has the null value,
    the service responds with 204 No Content")."""
    assert path.property is not None
    name = path.property.name
    for member in path.members:
        if not isinstance(value, dict) or member not in value:
            raise NotFoundError(f"{path.target.entity_type.name}.{name} has no member '{member}'")
        value, name = value[member], member
    if value is None:
        return StaResponse(204, None, None)
    if path.value:
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        return StaResponse(200, text, TEXT)
    return StaResponse(200, {name: value})


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
    following = _next_link(base, path, query, page)
    if following is not None:
        body["@iot.nextLink"] = following
    body["value"] = items
    return body


def _next_link(base: str, path: ResourcePath, query: Query, page: Page) -> str | None:
    """The absolute link to the next page, when entities remain."""
    if not page.has_more:
        return None
    # Absolute and complete in itself: some clients append only its query string (STA-NOTES 1).
    return f"{base}/{path}?{format_query(_continuation(query, page))}"


_HANDLERS = {
    "GET": get,
    "POST": mutations.post,
    "PATCH": mutations.patch,
    "PUT": mutations.put,
    "DELETE": mutations.delete,
}
