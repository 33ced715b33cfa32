# SPDX-License-Identifier: Apache-2.0
"""One table: exception type -> HTTP status; and the middleware that applies it.

Every client error becomes a JSON body {"code", "type", "message"} (FROST's
shape, which stapy and friends json-decode); anything unexpected is logged
with the request id and answered with a JSON 500 that leaks nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import asyncpg
import orjson
from aiohttp import web

from hub.auth.oidc import JwksUnavailableError
from hub.errors import (
    AuthenticationError,
    BadLinkError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    NotSupportedError,
    PermissionDeniedError,
    RateLimitedError,
    StaError,
)
from hub.logs import current_request_id, request_id
from hub.query.path import PathError
from hub.query.sqlexpr import GeometryUnsupportedError
from schemas.entities import ValidationError

log = logging.getLogger("twinhub.http")

STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    # A valid spatial request that needs PostGIS: a QueryError (callers catch it as one), but 501.
    (GeometryUnsupportedError, 501),
    (PathError, 404),
    (NotFoundError, 404),
    (ValidationError, 400),
    (BadLinkError, 400),
    (BadRequestError, 400),
    (ConflictError, 409),
    (NotSupportedError, 501),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (RateLimitedError, 429),
    (JwksUnavailableError, 503),
    # Values validation let through but PostgreSQL refused (e.g. out-of-range numbers, SQLSTATE 22):
    # still the client's input, so a 400 naming the database's reason rather than a 500.
    (asyncpg.QueryCanceledError, 503),  # statement_timeout: the query was too expensive
    (asyncpg.DataError, 400),
    (asyncpg.IntegrityConstraintViolationError, 409),
    # The database went away (restart, failover, network): not the client's fault, and worth a retry.
    (asyncpg.PostgresConnectionError, 503),
    (asyncpg.CannotConnectNowError, 503),
    (asyncpg.exceptions.AdminShutdownError, 503),
    (ConnectionError, 503),
)

UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    ConnectionError,
)

REQUEST_ID = "X-Request-Id"


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON error body with the given status."""
    body = orjson.dumps({"code": status, "type": "error", "message": message})
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def _status_of(error: Exception) -> int | None:
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return None


def _from_http_exception(error: web.HTTPException) -> web.StreamResponse:
    if error.status < 400:
        return error
    headers = {k: v for k, v in error.headers.items() if k.lower() in ("allow", "location")}
    message = error.text if error.text and not error.text.startswith(f"{error.status}:") else error.reason
    return error_response(error.status, message or error.reason, headers)


def _headers_of(error: Exception) -> dict[str, str] | None:
    return dict(error.headers) if isinstance(error, StaError) and error.headers else None


def _message(error: Exception) -> str:
    if isinstance(error, UNAVAILABLE):
        log.warning("database unavailable: %s", error)
        return "the database is unavailable at the moment; try again shortly"
    if isinstance(error, asyncpg.QueryCanceledError):
        return "the query took longer than the server's statement timeout; narrow the $filter or use $top"
    if isinstance(error, asyncpg.PostgresError):
        return f"the database refused the request: {error.args[0] if error.args else error}"
    return str(error)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every exception into a JSON answer; log the unexpected ones."""
    # The observe middleware (outside this one) chose the id; without it, choose it the same way.
    rid = current_request_id() or request_id(request.headers.get(REQUEST_ID))
    try:
        response = await handler(request)
    except web.HTTPException as error:
        response = _from_http_exception(error)
    except Exception as error:
        status = _status_of(error)
        if status is not None:
            response = error_response(status, _message(error), _headers_of(error))
        else:
            log.exception("request %s %s %s failed", rid, request.method, request.path_qs)
            response = error_response(500, f"internal server error (request id {rid})")
    response.headers[REQUEST_ID] = rid
    return response
