# SPDX-License-Identifier: Apache-2.0
"""Server-sent events of committed changes: ``GET /live?topic=v1.1/Observations``.

The browser's EventSource gets the same (topic, entity) pairs the MQTT notifications carry, from
the change feed's /live sink (hub/changes/live.py), filtered by MQTT topic filters given as
``topic`` query parameters (``+`` one level, ``#`` the rest; send ``+`` as ``%2B``). Each event is

    data: {"topic": "v1.1/Datastreams(7)/Observations", "payload": {...the entity as GET renders it}}

It carries the commits of every hub process on the database (this one's directly, the others'
over PostgreSQL LISTEN/NOTIFY, see docs/changes.md), at most once: a client whose queue
overflowed, or that missed changes while the relay was away, gets an ``event: dropped`` with a
count and should reload. A comment line every ``heartbeat`` seconds keeps proxies from closing
idle streams and finds clients that went away. On shutdown every stream ends, so the server does
not wait for them.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from hub.changes.live import VERSION, Event, LiveFanout
from hub.errors import BadRequestError

MAX_FILTERS = 16
MAX_FILTER_LENGTH = 256
RETRY_MS = 3000  # how long EventSource waits before reconnecting

LIVE = web.AppKey("live", LiveFanout)


def check_filter(text: str) -> str:
    """A valid MQTT topic filter below the v1.1 tree, or BadRequestError naming what is wrong."""
    if not text or len(text) > MAX_FILTER_LENGTH or "\0" in text:
        raise BadRequestError(f"topic: must be 1 to {MAX_FILTER_LENGTH} characters, got {len(text)}")
    levels = text.split("/")
    if levels[0] != VERSION or len(levels) < 2:
        raise BadRequestError(f"topic: {text!r} must start with {VERSION}/ (e.g. {VERSION}/Observations)")
    for position, level in enumerate(levels):
        if "#" in level and (level != "#" or position != len(levels) - 1):
            raise BadRequestError(f"topic: {text!r}: '#' must be a whole level and the last one")
        if "+" in level and level != "+":
            raise BadRequestError(f"topic: {text!r}: '+' must be a whole level (send it as %2B)")
    return text


def _encode(event: Event) -> bytes:
    event_id, topic, payload = event
    return (
        b"id: "
        + event_id.encode()
        + b'\ndata: {"topic":'
        + orjson.dumps(topic)
        + b',"payload":'
        + payload
        + b"}\n\n"
    )


async def handle_live(request: web.Request) -> web.StreamResponse:
    """GET /live?topic=FILTER[&topic=FILTER...]: an event stream until the client or server leaves."""
    feed = request.app[LIVE]
    filters = request.query.getall("topic", [])
    if not filters:
        raise BadRequestError(
            f"topic: give at least one topic filter, e.g. /live?topic={VERSION}/Observations"
        )
    if len(filters) > MAX_FILTERS:
        raise BadRequestError(f"topic: at most {MAX_FILTERS} filters, got {len(filters)}")
    filters = [check_filter(f) for f in filters]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    # EventSource sends the id of the last event it saw when it reconnects (HTML, server-sent events).
    subscriber = feed.subscribe(filters, request.headers.get("Last-Event-ID"))
    try:
        await response.write(f"retry: {RETRY_MS}\n: subscribed to {' '.join(filters)}\n\n".encode())
        while not subscriber.closed:
            await subscriber.wait(feed.heartbeat)
            if subscriber.dropped:
                count, subscriber.dropped = subscriber.dropped, 0
                await response.write(b"event: dropped\ndata: " + orjson.dumps({"count": count}) + b"\n\n")
            if subscriber.events:
                chunk = b"".join(_encode(e) for e in subscriber.events)
                subscriber.events.clear()
                await response.write(chunk)
            elif not subscriber.closed:
                await response.write(b": heartbeat\n\n")
    except ConnectionResetError:
        pass  # the client went away
    finally:
        feed.unsubscribe(subscriber)
    return response


async def end_streams(app: web.Application) -> None:
    """on_shutdown: close the open streams so the server need not wait for them."""
    if LIVE in app:
        for subscriber in list(app[LIVE].subscribers):
            subscriber.close()


def setup_live(app: web.Application) -> None:
    """The /live route; the app layer puts the change feed's LiveFanout under LIVE."""
    app.router.add_get("/live", handle_live)
    app.on_shutdown.append(end_streams)
