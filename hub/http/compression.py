# SPDX-License-Identifier: Apache-2.0
"""gzip for large responses when the client accepts it (RFC 9110 §12.5.3, §8.4).

Applied to any body of at least `gzip_min_bytes`, whatever its media type: STA JSON,
dataArray, CSV and GeoJSON result formats alike. Validators stay valid: ETags are weak.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

from hub.config import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Level 1 compresses STA JSON (repetitive links and keys) within ~15 % of level 6 at half the
# CPU, and bodies up to this size are compressed on the event loop: aiohttp's
# enable_compression hands every body over 1 KiB to a thread, and that hop cost more than
# compressing a page (measured by bench/deployed.py: ~20 % of a read's samples).
GZIP_LEVEL = 1
INLINE_GZIP_MAX = 1 << 20


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding value allows gzip (by name or `*`, with a non-zero q)."""
    allowed: dict[str, bool] = {}
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if coding.strip():
            allowed[coding.strip()] = quality > 0
    if "gzip" in allowed or "x-gzip" in allowed:
        return allowed.get("gzip", False) or allowed.get("x-gzip", False)
    return allowed.get("*", False)


def add_vary(response: web.StreamResponse, field: str) -> None:
    """Append `field` to the Vary header once."""
    present = [v.strip().lower() for v in response.headers.get(hdrs.VARY, "").split(",") if v.strip()]
    if field.lower() not in present and "*" not in present:
        response.headers[hdrs.VARY] = ", ".join([*filter(None, [response.headers.get(hdrs.VARY)]), field])


def gzip_bytes(body: bytes) -> bytes:
    """A gzip member (RFC 1952) of `body` at GZIP_LEVEL."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 16 + 15: gzip framing
    return compressor.compress(body) + compressor.flush()


def compression_middleware(settings: Settings) -> Middleware:
    """The middleware compressing answers of at least settings.gzip_min_bytes."""

    @web.middleware
    async def compress(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        threshold = settings.gzip_min_bytes
        body = response.body if isinstance(response, web.Response) else None
        if not threshold or not isinstance(body, bytes) or len(body) < threshold:
            return response
        if hdrs.CONTENT_ENCODING in response.headers:
            return response
        add_vary(response, hdrs.ACCEPT_ENCODING)
        assert isinstance(response, web.Response)
        if not accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, "")):
            return response
        if len(body) > INLINE_GZIP_MAX:
            response.enable_compression(web.ContentCoding.gzip)
            return response
        response.body = gzip_bytes(body)
        response.headers[hdrs.CONTENT_ENCODING] = "gzip"
        return response

    return compress
