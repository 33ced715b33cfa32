# SPDX-License-Identifier: Apache-2.0
"""The built-in viewer at ``/``: its built files, its configuration, or a page saying how to build it.

The viewer's source is in viewer/ (npm); ``make viewer`` builds it into VIEWER_DIR, next to this
module so an editable or regular install finds it. The page reads ``/viewer-config.json`` for
where the STA service root and the event stream are and which base map tiles to draw.

Every page goes out with a Content-Security-Policy: scripts only from the hub itself (no inline
script, no eval), so text that devices put into names and results cannot run as script even if a
bug let it become markup (docs/viewer.md, "Data is text").
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from hub.config import Settings
from hub.errors import NotFoundError
from hub.http.context import AppState, external_base

VIEWER_DIR = Path(__file__).parent / "static" / "viewer"

FALLBACK = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>twinhub</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:44em;margin:3em auto;padding:0 1em}}
code{{background:#eee;padding:0 .3em}}</style></head>
<body><h1>twinhub</h1>
<p>The SensorThings API answers at <a href="{base}/v1.1">{base}/v1.1</a>. To look around:</p>
<ul>
<li><a href="{base}/v1.1/Things?$expand=Locations">Things with their Locations</a></li>
<li><a href="{base}/v1.1/Datastreams?$expand=Observations($orderby=phenomenonTime%20desc;$top=1)">Datastreams
with their latest Observation</a></li>
<li><a href="{base}/v1.1/api">the OpenAPI description</a> and <a href="{base}/ready">/ready</a></li>
</ul>
<p>The map viewer is not built in this installation; it needs Node.js 18 or newer with npm. In a clone
of the repository, <code>make viewer</code> builds it (<code>make demo</code> does when npm is there);
an editable install (<code>pip install -e .</code>, what <code>make</code> uses) serves it on the next
reload, a regular one after <code>pip install .</code> again.</p>
</body></html>
"""


# The fallback page has one inline style sheet and nothing else.
FALLBACK_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
CSP = "Content-Security-Policy"


def tile_source(tile_url: str | None) -> str | None:
    """The CSP source of a tile URL template: its origin, ``{s}`` subdomains as ``*``; None for none."""
    if not tile_url or tile_url.startswith("/"):
        return None  # no tiles, or tiles from the hub's own origin ('self')
    parts = urlsplit(tile_url.replace("{s}", "*"))
    return f"{parts.scheme}://{parts.netloc}"


def viewer_policy(settings: Settings) -> str:
    """The viewer's Content-Security-Policy.

    Scripts and styles: the built files only (Leaflet and uPlot set element styles through the
    DOM, which style-src does not govern). Images: the hub, data: URLs (Leaflet's and the page's
    icons) and the base map's tile server. Connections: the hub (API, /live) and https hubs that
    ``?sta=`` names (docs/viewer.md). No plugins, frames, forms or <base>.
    """
    images = " ".join(filter(None, ("'self'", "data:", tile_source(settings.viewer_tile_url))))
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {images}",
            "connect-src 'self' https:",
            "font-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'self'",
        )
    )


async def handle_index(request: web.Request) -> web.StreamResponse:
    """The viewer's page, or the fallback page when it is not built."""
    settings = AppState.of(request).settings
    index = VIEWER_DIR / "index.html"
    if index.is_file():
        headers = {"Cache-Control": "no-cache", CSP: viewer_policy(settings)}
        return web.FileResponse(index, headers=headers)
    base = escape(external_base(request, settings))
    return web.Response(
        text=FALLBACK.format(base=base), content_type="text/html", headers={CSP: FALLBACK_POLICY}
    )


async def handle_asset(request: web.Request) -> web.StreamResponse:
    """A built file below /viewer/ (scripts, styles, images); nothing outside VIEWER_DIR."""
    name = request.match_info["name"]
    root = VIEWER_DIR.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFoundError(f"no viewer file {name!r} (is the viewer built? make viewer)")
    return web.FileResponse(path)


async def handle_config(request: web.Request) -> web.StreamResponse:
    """Where the page finds the hub, and the base map: a small JSON document."""
    settings = AppState.of(request).settings
    base = external_base(request, settings)
    config = {
        "sta": f"{base}/v1.1",
        "live": f"{base}/live",
        "tileUrl": settings.viewer_tile_url,
        "tileAttribution": settings.viewer_tile_attribution,
    }
    return web.Response(
        body=orjson.dumps(config), content_type="application/json", headers={"Cache-Control": "no-cache"}
    )


def add_viewer_routes(app: web.Application) -> None:
    app.router.add_get("/", handle_index)
    app.router.add_get("/viewer-config.json", handle_config)
    app.router.add_get("/viewer/{name:.+}", handle_asset)
