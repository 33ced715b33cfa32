# SPDX-License-Identifier: Apache-2.0
"""The route table: the service root and one STA catch-all per method, under /v1.1 and /v1.0."""

from __future__ import annotations

from aiohttp import web

from hub.http import handlers, health, openapi

# {version} accepts the two STA versions; v1.0 clients get the same model (§2 of 18-088 lists the changes).
VERSION = r"{version:v1\.[01]}"

METHODS = (
    ("GET", handlers.handle_get),
    ("POST", handlers.handle_post),
    ("PATCH", handlers.handle_patch),
    ("PUT", handlers.handle_put),
    ("DELETE", handlers.handle_delete),
)


async def _to_root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(f"{request.path.rstrip('/')}/v1.1")


def add_routes(app: web.Application) -> None:
    """Register every STA route on `app`."""
    app.router.add_get("/", _to_root)
    app.router.add_get("/health", health.handle_health)
    app.router.add_get("/ready", health.handle_ready)
    app.router.add_get(f"/{VERSION}", handlers.handle_root)
    app.router.add_get(f"/{VERSION}/", handlers.handle_root)
    # Before the catch-all, which would take `api` for a (missing) entity set.
    app.router.add_get(f"/{VERSION}/api", openapi.handle_openapi)
    for method, handler in METHODS:
        app.router.add_route(method, f"/{VERSION}/{{tail:.+}}", handler)
