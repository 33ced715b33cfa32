# SPDX-License-Identifier: Apache-2.0
"""Request ids, access log lines and HTTP metrics (outermost middleware), and the /metrics route.

Metrics are labelled by route *shape* (`/v1.1/Datastreams(id)/Observations`), never by the raw
path: ids, typos and scanners would otherwise create a series each. A shape comes from the parsed
resource path (names the data model knows), so the label set stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg
from aiohttp import web

from hub.http.errors import REQUEST_ID, Handler
from hub.http.operations import action_of
from hub.ingest.writer import IngestStats
from hub.logs import request_id, request_id_var
from hub.metrics import CONTENT_TYPE, HubMetrics
from hub.query.path import PathError, parse_path

access_log = logging.getLogger("twinhub.access")
ACCESS_FORMAT = "%s %s %d %.1f ms [%s]"

METRICS = web.AppKey("metrics", HubMetrics)
METHODS = frozenset({"GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"})
MAX_SEGMENTS = 4  # deeper navigation paths share one shape per first four segments
CLIENT_GONE = 499  # the client closed the connection before the answer (nginx's convention)
UNMATCHED = "(unmatched)"  # no route: 404 from the router (scanners, typos)
INVALID = "(invalid path)"  # below /v1.x but not a resource path of the data model
# Tails whose shape is remembered (parsing the path again cost ~4 µs a request); long ones are not.
SHAPE_CACHE_SIZE = 4096
SHAPE_CACHE_TAIL = 200

_shapes: dict[str, str] = {}


def sta_shape(tail: str) -> str:
    """The shape of a resource path below the version root: keys become `(id)`."""
    shape = _shapes.get(tail)
    if shape is None:
        shape = _parsed_shape(tail)
        if len(tail) <= SHAPE_CACHE_TAIL:
            if len(_shapes) >= SHAPE_CACHE_SIZE:  # ids make the tails unbounded: start over
                _shapes.clear()
            _shapes[tail] = shape
    return shape


def _parsed_shape(tail: str) -> str:
    action = action_of(tail)
    if action is not None:
        return action
    try:
        path = parse_path(tail)
    except PathError:
        return INVALID
    parts = [f"{s.name}(id)" if s.key is not None else s.name for s in path.segments]
    if len(parts) > MAX_SEGMENTS:
        parts = [*parts[:MAX_SEGMENTS], "..."]
    if path.property is not None:
        parts.append(path.property.name)
    if path.value:
        parts.append("$value")
    if path.ref:
        parts.append("$ref")
    return "/".join(parts)


def route_shape(request: web.Request) -> str:
    """The bounded label for the route a request took."""
    info = request.match_info
    route = info.route
    if route.resource is None or info.http_exception is not None:
        return UNMATCHED
    # The route's pattern (/health, /{version}/{tail}) with its bounded parts filled in.
    shape = route.resource.canonical
    if "version" in info:  # v1.0 or v1.1, by the route's regex
        shape = shape.replace("{version}", info["version"])
    if "tail" in info:
        shape = shape.replace("{tail}", sta_shape(info["tail"]))
    return shape


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request its id, then log and count it with its final status and duration."""
    rid = request_id(request.headers.get(REQUEST_ID))
    token = request_id_var.set(rid)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)  # error_middleware (inside) turns failures into responses
        status = response.status
        response.headers[REQUEST_ID] = rid
        return response
    except web.HTTPException as error:  # only without error_middleware (the ingest metrics app)
        status = error.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_GONE
        raise
    finally:
        seconds = time.perf_counter() - started
        method = request.method if request.method in METHODS else "OTHER"
        route = route_shape(request)
        metrics = request.app.get(METRICS)
        if metrics is not None:
            metrics.observe_request(method, route, status, seconds)
        if access_log.isEnabledFor(logging.INFO):
            _log_access(method, route, request.rel_url.raw_path, status, seconds, rid)
        request_id_var.reset(token)


def _log_access(method: str, route: str, path: str, status: int, seconds: float, rid: str) -> None:
    """The access log line: what `access_log.info(...)` makes, without its look for the caller's
    source line (no formatter of the hub shows it), a few µs of every request."""
    # `path` is percent-encoded: no control characters reach the log.
    extra = {
        "method": method,
        "route": route,
        "path": path,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
    }
    args = (method, path, status, seconds * 1000, rid)
    record = access_log.makeRecord(
        access_log.name, logging.INFO, __file__, 0, ACCESS_FORMAT, args, None, "observe_middleware", extra
    )
    access_log.handle(record)


async def handle_metrics(request: web.Request) -> web.StreamResponse:
    """The process's metrics in the Prometheus text exposition format."""
    body = request.app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def _alive(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


def metrics_app(pool: asyncpg.Pool, stats: IngestStats, client_id: str) -> web.Application:
    """The small HTTP app of a `twinhub ingest` process: its own /metrics and /health."""
    app = web.Application(middlewares=[observe_middleware])
    metrics = HubMetrics(role="ingest", client_id=client_id)
    metrics.watch_pool(pool)
    metrics.watch_ingest(stats)
    add_metrics(app, metrics)
    app.router.add_get("/health", _alive)
    return app


def add_metrics(app: web.Application, metrics: HubMetrics) -> None:
    """Serve `metrics` at /metrics of `app` and count its requests (the middleware must be installed)."""
    app[METRICS] = metrics
    app.router.add_get("/metrics", handle_metrics)


__all__ = [
    "METRICS",
    "add_metrics",
    "handle_metrics",
    "metrics_app",
    "observe_middleware",
    "route_shape",
    "sta_shape",
]
