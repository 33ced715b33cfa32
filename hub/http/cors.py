# SPDX-License-Identifier: Apache-2.0
"""CORS for browser viewers on other origins (Fetch standard, "CORS protocol").

Off unless `cors_origins` is set. Reads (GET, HEAD) are allowed to the listed origins;
POST, PATCH, PUT and DELETE only with `cors_allow_writes`. Preflight OPTIONS requests are
answered here, before routing.
"""

from __future__ import annotations

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

from hub.config import Settings
from hub.http.compression import Handler, add_vary
from hub.http.errors import error_response

READ_METHODS = ("GET", "HEAD", "OPTIONS")
WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")
# Headers a browser script may read besides the CORS-safelisted ones.
EXPOSED = ("ETag", "Last-Modified", "Location", "X-Request-Id", "Content-Encoding", "TwinHub-Database")
# Request headers viewers and clients send beyond the safelisted ones.
ALLOWED_HEADERS = (
    "Content-Type",
    "Authorization",
    "If-None-Match",
    "If-Modified-Since",
    "X-Request-Id",
    "TwinHub-Consistency",  # read-after-write from the primary (hub/http/reads.py)
)


def _allowed_origin(settings: Settings, origin: str | None) -> str | None:
    if origin is None:
        return None
    if "*" in settings.cors_origins or origin.rstrip("/") in settings.cors_origins:
        return origin
    return None


def _methods(settings: Settings) -> tuple[str, ...]:
    return READ_METHODS + WRITE_METHODS if settings.cors_allow_writes else READ_METHODS


def _preflight(settings: Settings, request: web.Request, origin: str | None) -> web.StreamResponse:
    methods = _methods(settings)
    wanted = request.headers[hdrs.ACCESS_CONTROL_REQUEST_METHOD].upper()
    if origin is None:
        return error_response(
            403, f"origin {request.headers.get(hdrs.ORIGIN)!r} is not allowed (cors_origins)"
        )
    if wanted not in methods:
        return error_response(
            403, f"{wanted} is not allowed cross-origin; allowed: {', '.join(methods)} (cors_allow_writes)"
        )
    response = web.Response(status=204)
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = ", ".join(methods)
    requested = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS)
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = requested or ", ".join(ALLOWED_HEADERS)
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
    response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = str(settings.cors_max_age)
    add_vary(response, hdrs.ORIGIN)
    return response


def cors_middleware(settings: Settings) -> Middleware:
    """The CORS middleware of `settings` (a pass-through when cors_origins is empty)."""

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not settings.cors_origins:
            return await handler(request)
        origin = _allowed_origin(settings, request.headers.get(hdrs.ORIGIN))
        if request.method == "OPTIONS" and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
            return _preflight(settings, request, origin)
        response = await handler(request)
        add_vary(response, hdrs.ORIGIN)
        if origin is not None and request.method in _methods(settings):
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
            response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = ", ".join(EXPOSED)
        return response

    return cors
