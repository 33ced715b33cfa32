# SPDX-License-Identifier: Apache-2.0
"""The route table: the service root and one STA catch-all per method, under /v1.1 and /v1.0."""

from __future__ import annotations

from aiohttp import web

from hub.http import handlers, health, openapi, viewer

# {version} accepts the two STA versions; v1.0 clients get the same model (§2 of 18-088 lists the changes).
VERSION = r"{version:v1\.[01]}"

# HEAD wherever GET works (RFC 9110 §9.3.2): aiohttp sends its headers, Content-Length included,
# and drops the body; add_get registers HEAD for the fixed routes below by itself.
METHODS = (
    ("GET", handlers.handle_get),
    ("HEAD", handlers.handle_get),
    ("POST", handlers.handle_post),
    ("PATCH", handlers.handle_patch),
    ("PUT", handlers.handle_put),
    ("DELETE", handlers.handle_delete),
)


def add_routes(app: web.Application) -> None:
    """Register every STA route on `app`."""
    viewer.add_viewer_routes(app)  # / is the map viewer (or a page saying how to build it)
    app.router.add_get("/health", health.handle_health)
    app.router.add_get("/ready", health.handle_ready)
    app.router.add_get(f"/{VERSION}", handlers.handle_root)
    app.router.add_get(f"/{VERSION}/", handlers.handle_root)
    # Before the catch-all, which would take `api` for a (missing) entity set.
    app.router.add_get(f"/{VERSION}/api", openapi.handle_openapi)
    for method, handler in METHODS:
        app.router.add_route(method, f"/{VERSION}/{{tail:.+}}", handler)
