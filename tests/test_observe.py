# SPDX-License-Identifier: Apache-2.0
"""/metrics after HTTP requests, route shapes, request ids, and the JSON log lines that carry them."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from observe_helpers import Exposition

from hub.config import ConfigError, load_settings
from hub.http import observe
from hub.http.errors import error_middleware
from hub.http.observe import (
    INVALID,
    MAX_SEGMENTS,
    SHAPE_CACHE_SIZE,
    SHAPE_CACHE_TAIL,
    observe_middleware,
    sta_shape,
)
from hub.ingest.writer import IngestStats
from hub.logs import TEXT_FORMAT, JsonFormatter, TextFormatter, configure_logging
from hub.metrics import HubMetrics
from hub.store.pool import create_pool

THING = {"name": "t", "description": "d"}


@pytest.mark.parametrize(
    ("tail", "shape"),
    [
        ("Things", "Things"),
        ("Things(1)", "Things(id)"),
        ("Things(98765)", "Things(id)"),
        ("Datastreams(7)/Observations", "Datastreams(id)/Observations"),
        ("Datastreams(7)/Observations(3)", "Datastreams(id)/Observations(id)"),
        ("Things(1)/name", "Things(id)/name"),
        ("Things(1)/name/$value", "Things(id)/name/$value"),
        ("Things(1)/Datastreams/$ref", "Things(id)/Datastreams/$ref"),
        ("Observations(1)/Datastream/Thing/Locations(2)", "Observations(id)/Datastream/Thing/Locations(id)"),
        ("CreateObservations", "CreateObservations"),
        ("$batch", "$batch"),
        ("things", INVALID),
        ("Things(abc)", INVALID),
        ("wp-login.php", INVALID),
        ("Things(1)/nosuchproperty", INVALID),
    ],
)
def test_route_shapes_hide_ids_and_unknown_paths(tail: str, shape: str) -> None:
    assert sta_shape(tail) == shape


def test_deep_navigation_paths_share_a_shape() -> None:
    deep = "Things(1)" + "/Datastreams(2)/Thing" * 5
    shape = sta_shape(deep)
    assert shape.endswith("/...")
    assert shape.count("/") == MAX_SEGMENTS
    assert sta_shape(deep + "/Datastreams(9)/Thing") == shape


async def test_metrics_count_requests_by_route_shape_and_status_class(client: Any) -> None:
    for _ in range(2):
        assert (await client.get("/v1.1/Things")).status == 200
    created = await client.post("/v1.1/Things", json=THING)
    assert created.status == 201
    thing_id = (await created.json())["@iot.id"]
    assert (await client.get(f"/v1.1/Things({thing_id})")).status == 200
    assert (await client.get(f"/v1.1/Things({thing_id + 1000})")).status == 404
    assert (await client.get(f"/v1.1/Things({thing_id})/Datastreams")).status == 200
    assert (await client.get("/v1.1/NoSuchSet(5)")).status == 404
    assert (await client.get("/not-a-route/12345")).status == 404
    assert (await client.get("/health")).status == 200

    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    metrics = Exposition(await response.text())

    def requests(method: str, route: str, status: str) -> float:
        return metrics.value("twinhub_http_requests_total", method=method, route=route, status=status)

    assert requests("GET", "/v1.1/Things", "2xx") == 2
    assert requests("POST", "/v1.1/Things", "2xx") == 1
    assert requests("GET", "/v1.1/Things(id)", "2xx") == 1
    assert requests("GET", "/v1.1/Things(id)", "4xx") == 1
    assert requests("GET", "/v1.1/Things(id)/Datastreams", "2xx") == 1
    assert requests("GET", f"/v1.1/{INVALID}", "4xx") == 1
    assert requests("GET", "(unmatched)", "4xx") == 1
    assert requests("GET", "/health", "2xx") == 1
    count = metrics.value("twinhub_http_request_duration_seconds_count", method="GET", route="/v1.1/Things")
    assert count == 2
    assert metrics.value("twinhub_http_request_duration_seconds_sum", method="GET", route="/v1.1/Things") > 0
    routes = metrics.label_values("twinhub_http_requests_total", "route")
    assert not any(re.search(r"\(\d+\)", route) for route in routes), routes  # no raw ids
    assert not any("12345" in route or "NoSuchSet" in route for route in routes)

    assert metrics.value("twinhub_db_pool_max") == 16  # the settings fixture's default db_pool_max
    assert 1 <= metrics.value("twinhub_db_pool_size") <= 16
    assert 0 <= metrics.value("twinhub_db_pool_in_use") <= metrics.value("twinhub_db_pool_size")
    assert metrics.label_values("twinhub_info", "role") == {"serve"}
    assert "process_resident_memory_bytes" in metrics.names()
    assert "python_info" in metrics.names()
    assert not any(name.startswith("twinhub_ingest_") and "batch" not in name for name in metrics.names())
    assert "twinhub_mqtt_connected" not in metrics.names()  # no broker configured


async def test_version_roots_and_versions_are_their_own_shapes(client: Any) -> None:
    for path in ("/v1.1", "/v1.1/", "/v1.0/Things", "/v1.0/Things"):
        assert (await client.get(path)).status == 200
    metrics = Exposition(await (await client.get("/metrics")).text())
    routes = {
        route: metrics.value("twinhub_http_requests_total", method="GET", route=route, status="2xx")
        for route in metrics.label_values("twinhub_http_requests_total", "route")
        if route != "/metrics"
    }
    assert routes == {"/v1.1": 1, "/v1.1/": 1, "/v1.0/Things": 2}


async def test_the_scrape_itself_is_counted_on_the_next_scrape(client: Any) -> None:
    await client.get("/metrics")
    metrics = Exposition(await (await client.get("/metrics")).text())
    assert metrics.value("twinhub_http_requests_total", method="GET", route="/metrics", status="2xx") == 1


async def test_a_request_id_is_echoed_or_made(client: Any) -> None:
    mine = await client.get("/v1.1/Things", headers={"X-Request-Id": "lb-7f3a.42"})
    assert mine.headers["X-Request-Id"] == "lb-7f3a.42"
    made = await client.get("/v1.1/Things")
    assert re.fullmatch(r"[0-9a-f]{16}", made.headers["X-Request-Id"])
    assert made.headers["X-Request-Id"] != (await client.get("/v1.1/Things")).headers["X-Request-Id"]
    error = await client.get("/v1.1/Things(999999)", headers={"X-Request-Id": "err-1"})
    assert error.status == 404
    assert error.headers["X-Request-Id"] == "err-1"
    for hostile in ("x" * 129, "two words", "a;b"):
        replaced = await client.get("/v1.1/Things", headers={"X-Request-Id": hostile})
        assert re.fullmatch(r"[0-9a-f]{16}", replaced.headers["X-Request-Id"])


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The hub's JSON log lines of the test, written to a buffer; the handler is removed after."""
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("INFO", "json", stream)
    try:
        yield stream
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


async def test_json_access_log_lines_carry_the_request_id(client: Any, json_log: io.StringIO) -> None:
    await client.get("/v1.1/Things", headers={"X-Request-Id": "trace-1"})
    await client.get("/v1.1/Things(424242)/Datastreams", headers={"X-Request-Id": "trace-2"})
    access = [line for line in _lines(json_log) if line["logger"] == "twinhub.access"]
    by_id = {line["request_id"]: line for line in access}
    assert by_id["trace-1"]["method"] == "GET"
    assert by_id["trace-1"]["route"] == "/v1.1/Things"
    assert by_id["trace-1"]["status"] == 200
    assert by_id["trace-1"]["path"] == "/v1.1/Things"
    assert by_id["trace-1"]["duration_ms"] >= 0
    assert by_id["trace-2"]["route"] == "/v1.1/Things(id)/Datastreams"
    assert by_id["trace-2"]["path"] == "/v1.1/Things(424242)/Datastreams"
    assert by_id["trace-2"]["status"] == 404
    assert by_id["trace-2"]["level"] == "INFO"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", by_id["trace-2"]["time"])


async def _broken(request: web.Request) -> web.StreamResponse:
    logging.getLogger("twinhub.test").warning("about to fail")
    raise RuntimeError("a bug")


async def test_a_500_names_the_same_request_id_as_its_header_and_log(json_log: io.StringIO) -> None:
    app = web.Application(middlewares=[observe_middleware, error_middleware])
    app.router.add_get("/broken", _broken)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/broken", headers={"X-Request-Id": "boom-1"})
        made = await client.get("/broken")
        assert response.status == 500
        assert (await response.json())["message"] == "internal server error (request id boom-1)"
        assert response.headers["X-Request-Id"] == "boom-1"
        made_id = made.headers["X-Request-Id"]
        assert (await made.json())["message"] == f"internal server error (request id {made_id})"
    lines = [line for line in _lines(json_log) if line.get("request_id") == "boom-1"]
    assert [line["logger"] for line in lines] == ["twinhub.test", "twinhub.http", "twinhub.access"]
    assert "RuntimeError: a bug" in lines[1]["exception"]
    assert lines[2]["status"] == 500
    assert lines[2]["route"] == "/broken"


def test_json_lines_keep_extra_fields_and_outside_requests_have_no_request_id() -> None:
    record = logging.LogRecord("hub.ingest", logging.WARNING, __file__, 1, "rejected %s", ("x",), None)
    record.cause = "bad_json"
    line = orjson.loads(JsonFormatter().format(record))
    assert line["message"] == "rejected x"
    assert line["cause"] == "bad_json"
    assert line["logger"] == "hub.ingest"
    assert "request_id" not in line


def test_text_format_is_the_default_and_readable() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging(load_settings(environ={}).log_level, load_settings(environ={}).log_format, stream)
    try:
        logging.getLogger("twinhub.test").info("plain %d", 1)
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
    assert stream.getvalue().rstrip().endswith("INFO twinhub.test: plain 1")


def test_log_format_setting_is_checked() -> None:
    assert load_settings(environ={"TWINHUB_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError, match="TWINHUB_LOG_FORMAT: must be text or json, got 'yaml'"):
        load_settings(environ={"TWINHUB_LOG_FORMAT": "yaml"})


async def test_every_metric_is_documented_in_the_readme(db_dsn: str) -> None:
    from test_docs import README

    metrics = HubMetrics()
    pool = await create_pool(db_dsn, 1, 2)
    try:
        metrics.watch_pool(pool)
        metrics.watch_ingest(IngestStats())
        names = {family.name for family in metrics.registry.collect() if family.name.startswith("twinhub_")}
    finally:
        await pool.close()
    assert {"twinhub_db_pool_in_use", "twinhub_ingest_dead_letters", "twinhub_http_requests"} <= names
    for name in names:
        assert f"`{name}" in README, f"metric {name} is not documented in README.md"


# Instants where a remembered second could go wrong: whole seconds, just before the next one (the
# microseconds round up into it), the millisecond boundary, before 1970, and a run within one second.
INSTANTS = [
    *(s + f for s in (0.0, 1.0, 1_780_000_000.0, 4_102_444_799.0) for f in (0.0, 0.0005, 0.9995, 0.9999996)),
    -1.5,
    -0.0000004,
    -86_400.25,
    *(1_780_000_123 + k / 997 for k in range(2000)),
]


@pytest.mark.parametrize("created", [INSTANTS, list(reversed(INSTANTS))])
def test_log_times_are_the_text_logging_and_datetime_make(created: list[float]) -> None:
    plain = logging.Formatter(TEXT_FORMAT)
    text, json = TextFormatter(), JsonFormatter()
    for moment in created:
        record = logging.LogRecord("twinhub.test", logging.INFO, __file__, 1, "m", None, None)
        record.created, record.msecs = moment, int((moment - int(moment)) * 1000) + 0.0
        assert text.format(record) == plain.format(record), moment
        assert json.utc_time(moment) == datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def test_remembered_shapes_stay_bounded_and_long_tails_are_not_kept() -> None:
    for n in range(SHAPE_CACHE_SIZE + 10):
        assert sta_shape(f"Datastreams({n})/Observations") == "Datastreams(id)/Observations"
        assert len(observe._shapes) <= SHAPE_CACHE_SIZE
    long_tail = "Things(1)" + "/Datastreams(2)/Thing" * 20
    assert len(long_tail) > SHAPE_CACHE_TAIL
    assert sta_shape(long_tail).endswith("/...")
    assert long_tail not in observe._shapes
    assert sta_shape("things") == INVALID == sta_shape("things")  # refusals are remembered as such
