# SPDX-License-Identifier: Apache-2.0
"""Query benchmark of the hub: the read shapes of issue #3 and of real viewers over 10M Observations.

It loads its own database `twinhub_bench_query` with COPY (500 Things in Hamburg, Leipzig and München,
1,000 Datastreams, 10,000,000 Observations), starts the hub in a separate process and times each
request shape over HTTP, checking every answer against the loaded data so that a broken query cannot
look fast. The SQL each shape runs is captured in-process with auto_explain.

    .venv/bin/python -m bench.query [--observations 10000000] [--keep | --reuse] [--output FILE]

See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import itertools
import math
import os
import platform
import random
import re
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import asyncpg
import orjson
from yarl import URL

from bench import core
from bench.core import API, BenchError, CpuMeter, Hub, Phase, say

DB_NAME = "twinhub_bench_query"
LAYOUT = 1  # bump when the generated data changes, so that --reuse reloads

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)
THINGS = 500
STREAMS_PER_THING = 2
SERVICES = 10  # Datastream properties.serviceName svc-0 .. svc-9
LAYERS = 20  # Datastream properties.layerName layer-0 .. layer-19
COPY_STEPS = 200  # time steps (x 1,000 streams) per COPY statement

# (name, west, south, east, north)
CITIES = (
    ("Hamburg", 9.73, 53.39, 10.33, 53.74),
    ("Leipzig", 12.24, 51.24, 12.54, 51.45),
    ("München", 11.36, 48.06, 11.72, 48.25),
)
TOPICS = ("Luftqualität", "Wetter", "Energie", "Verkehr")
# (ObservedProperty name, definition, unit name, unit symbol)
OBSERVED_PROPERTIES = (
    ("NO2", "http://vocab.nerc.ac.uk/collection/P01/current/CONCNO2X/", "microgram per cubic metre", "ug/m3"),
    (
        "PM10",
        "http://vocab.nerc.ac.uk/collection/P01/current/PM10XXXX/",
        "microgram per cubic metre",
        "ug/m3",
    ),
    ("Temperature", "http://qudt.org/vocab/quantitykind/Temperature", "degree Celsius", "degC"),
    ("Humidity", "http://qudt.org/vocab/quantitykind/RelativeHumidity", "percent", "%"),
    ("Power", "http://qudt.org/vocab/quantitykind/Power", "kilowatt", "kW"),
)
OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"

# issue #3's targets, p50 at concurrency 1
TARGET_SMALL_MS = 20.0
TARGET_PAGE_MS = 30.0
TARGET_COUNT_MS = 1000.0

DEFAULT_TOP = 100  # the hub's default page size (Settings.default_top)
PLAN_WARM_RUNS = 6  # PostgreSQL picks a prepared statement's generic plan after 5 custom ones


# ---- the dataset -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rect:
    """An axis-aligned lon/lat rectangle, sent as a WKT polygon."""

    west: float
    south: float
    east: float
    north: float

    def contains(self, lon: float, lat: float) -> bool:
        return self.west < lon < self.east and self.south < lat < self.north

    def wkt(self, space: bool = False) -> str:
        ring = [
            (self.west, self.south),
            (self.east, self.south),
            (self.east, self.north),
            (self.west, self.north),
            (self.west, self.south),
        ]
        points = ", ".join(f"{x:.5f} {y:.5f}" for x, y in ring)
        return f"POLYGON{' ' if space else ''}(({points}))"

    def jittered(self, rng: random.Random, by: float) -> Rect:
        dx, dy = rng.uniform(-by, by), rng.uniform(-by, by)
        return Rect(self.west + dx, self.south + dy, self.east + dx, self.north + dy)


CITY_RECTS = {name: Rect(w, s, e, n) for name, w, s, e, n in CITIES}


@dataclass(frozen=True)
class Station:
    """A Thing as the checks need it: where it is and what its Datastreams are tagged with."""

    thing_id: int
    lon: float
    lat: float
    services: frozenset[str]
    layers: frozenset[str]
    observed: frozenset[str]


@dataclass(frozen=True)
class Dataset:
    """What is in the database, read back from it (so that --reuse needs no generator state)."""

    stations: list[Station]
    stream_ids: list[int]
    per_stream: int
    observations: int
    locations: int
    first: datetime  # phenomenonTime of every stream's first Observation
    step: timedelta

    @property
    def last(self) -> datetime:
        return self.first + (self.per_stream - 1) * self.step

    def steps_between(self, start: datetime, end: datetime) -> int:
        """Observations of one stream with start <= phenomenonTime <= end."""
        low = max(0, math.ceil((start - self.first) / self.step))
        high = min(self.per_stream - 1, math.floor((end - self.first) / self.step))
        return max(0, high - low + 1)


@dataclass
class LoadFigures:
    """How long the load took, also stored on the database so that a --reuse run can report it."""

    observations: int = 0
    copy_s: float = 0.0
    entities_s: float = 0.0
    index_s: float = 0.0
    extents_s: float = 0.0
    vacuum_s: float = 0.0
    fk_checks: bool = False
    load_before: str = ""
    load_after: str = ""
    loaded_at: str = ""
    reused: bool = False

    @property
    def total_s(self) -> float:
        return self.entities_s + self.copy_s + self.index_s + self.extents_s + self.vacuum_s

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "reused"}


def _stream_layout(thing_index: int, slot: int) -> tuple[int, str, str, int]:
    """(stream number j from 0, serviceName, layerName, ObservedProperty index) of a Thing's stream."""
    j = thing_index * STREAMS_PER_THING + slot
    return j, f"svc-{j % SERVICES}", f"layer-{j % LAYERS}", j % len(OBSERVED_PROPERTIES)


def _location_json(lon: float, lat: float, as_feature: bool) -> dict[str, Any]:
    point = {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}
    # Hamburg's FROST stores Features (STA-NOTES); QGIS probes both forms (shape 4).
    return {"type": "Feature", "geometry": point, "properties": {}} if as_feature else point


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def entity_records(seed: int) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Rows of every table but observations: table -> (columns, records). Ids are explicit, from 1."""
    rng = random.Random(seed)
    things, locations, thing_locations, features = [], [], [], []
    historical, location_historical, streams = [], [], []
    for index in range(THINGS):
        ident = index + 1
        city, west, south, east, north = CITIES[index % len(CITIES)]
        lon, lat = rng.uniform(west, east), rng.uniform(south, north)
        name = f"Station {ident} {city}"
        location = _dumps(_location_json(lon, lat, as_feature=ident % 2 == 0))
        things.append(
            (ident, name, "benchmark station", _dumps({"city": city, "topic": TOPICS[index % len(TOPICS)]}))
        )
        locations.append((ident, f"{name} site", f"{city}", "application/geo+json", location))
        thing_locations.append((ident, ident))
        historical.append((ident, T0, ident))
        location_historical.append((ident, ident))
        features.append(
            (ident, f"{name} site", "generated from its Location", "application/geo+json", location, ident)
        )
        for slot in range(STREAMS_PER_THING):
            j, service, layer, op = _stream_layout(index, slot)
            op_name, _, unit, symbol = OBSERVED_PROPERTIES[op]
            streams.append(
                (
                    j + 1,
                    f"{op_name} {name}",
                    f"{op_name} at {name}",
                    _dumps({"name": unit, "symbol": symbol, "definition": "http://unitsofmeasure.org"}),
                    OM_MEASUREMENT,
                    _dumps({"serviceName": service, "layerName": layer}),
                    ident,
                    op + 1,
                    op + 1,
                )
            )
    sensors = [
        (
            i + 1,
            f"{name} sensor",
            f"measures {name}",
            "application/pdf",
            _dumps(f"https://example.org/{name}.pdf"),
        )
        for i, (name, *_rest) in enumerate(OBSERVED_PROPERTIES)
    ]
    observed = [
        (i + 1, name, definition, f"{name} (benchmark)")
        for i, (name, definition, *_rest) in enumerate(OBSERVED_PROPERTIES)
    ]
    return {
        "things": (["id", "name", "description", "properties"], things),
        "locations": (["id", "name", "description", "encoding_type", "location"], locations),
        "thing_locations": (["thing_id", "location_id"], thing_locations),
        "historical_locations": (["id", "time", "thing_id"], historical),
        "location_historical_locations": (["location_id", "historical_location_id"], location_historical),
        "features_of_interest": (
            ["id", "name", "description", "encoding_type", "feature", "location_id"],
            features,
        ),
        "sensors": (["id", "name", "description", "encoding_type", "metadata"], sensors),
        "observed_properties": (["id", "name", "definition", "description"], observed),
        "datastreams": (
            [
                "id",
                "name",
                "description",
                "unit_of_measurement",
                "observation_type",
                "properties",
                "thing_id",
                "sensor_id",
                "observed_property_id",
            ],
            streams,
        ),
    }


OBSERVATION_COLUMNS = [
    "id",
    "phenomenon_time_start",
    "phenomenon_time_end",
    "result",
    "datastream_id",
    "feature_of_interest_id",
]


def observation_records(
    first_step: int, last_step: int, streams: Sequence[tuple[int, int]], results: Sequence[str]
) -> Iterator[tuple[Any, ...]]:
    """Time-major rows: every stream's Observation at one step, then the next step, as live ingest
    writes them (a stream's rows are spread over the heap, not clustered)."""
    n_streams, n_results = len(streams), len(results)
    for step in range(first_step, last_step):
        moment = T0 + step * STEP
        base = step * n_streams
        for k, (stream, feature) in enumerate(streams):
            yield base + k + 1, moment, moment, results[(step * 7 + k * 13) % n_results], stream, feature


# Aggregates in one pass over the table (HashAggregate); the latest row per stream by a LATERAL
# probe of (datastream_id, phenomenon_time_start, id) backwards, never DISTINCT ON (LIMITS.md).
EXTENTS_SQL = """
UPDATE datastreams d SET
    phenomenon_time_start = x.ps, phenomenon_time_end = x.pe,
    result_time_start = x.rs, result_time_end = x.re,
    last_observation_id = x.last_id, last_phenomenon_time = x.last_time, last_result = x.last_result
FROM (
    SELECT s.id, a.ps, a.pe, a.rs, a.re, l.id AS last_id, l.phenomenon_time_start AS last_time,
           l.result AS last_result
    FROM datastreams s
    LEFT JOIN (
        SELECT datastream_id, min(phenomenon_time_start) AS ps, max(phenomenon_time_end) AS pe,
               min(result_time) AS rs, max(result_time) AS re
        FROM observations WHERE datastream_id IS NOT NULL GROUP BY datastream_id
    ) a ON a.datastream_id = s.id
    LEFT JOIN LATERAL (
        SELECT o.id, o.phenomenon_time_start, o.result FROM observations o
        WHERE o.datastream_id = s.id ORDER BY o.phenomenon_time_start DESC, o.id DESC LIMIT 1
    ) l ON TRUE
) x
WHERE d.id = x.id"""

_SECONDARY_INDEXES_SQL = """
SELECT i.relname AS name, pg_get_indexdef(i.oid) AS definition
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = 'observations'::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
ORDER BY i.relname"""


def _loadavg() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "?"
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


async def _reusable(maintenance: str, observations: int) -> LoadFigures | None:
    """The load figures of an existing, fully loaded database of the same layout and size, else None."""
    conn = await asyncpg.connect(maintenance, timeout=10)
    try:
        comment = await conn.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", DB_NAME
        )
    finally:
        await conn.close()
    if not comment:
        return None
    try:
        meta = orjson.loads(comment)
    except orjson.JSONDecodeError:
        return None
    if meta.get("layout") != LAYOUT or meta.get("observations") != observations:
        return None
    figures = LoadFigures(
        **{k: v for k, v in meta.get("load", {}).items() if k in LoadFigures.__dataclass_fields__}
    )
    figures.reused = True
    return figures


async def load(dsn: str, maintenance: str, observations: int, seed: int) -> LoadFigures:
    """Create, migrate and fill the database; mark it complete with a COMMENT at the very end."""
    from hub.store.migrate import migrate_dsn

    figures = LoadFigures(observations=observations, load_before=_loadavg())
    await core.create_database(maintenance)
    await migrate_dsn(dsn, log=lambda message: say(f"  migrate: {message}"))
    streams_total = THINGS * STREAMS_PER_THING
    per_stream = observations // streams_total
    if per_stream < 2:
        raise BenchError(f"--observations must be at least {2 * streams_total}")
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        t0 = time.perf_counter()
        tables = entity_records(seed)
        for table, (columns, records) in tables.items():
            await conn.copy_records_to_table(table, records=records, columns=columns)
        for table in (
            "things",
            "locations",
            "historical_locations",
            "sensors",
            "observed_properties",
            "datastreams",
            "features_of_interest",
            "observations",
        ):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"greatest((SELECT max(id) FROM {table}), 1))"
            )
        figures.entities_s = time.perf_counter() - t0

        # Bulk-load as pg_restore does: secondary indexes built afterwards, FK triggers off for COPY
        # (the generated rows only reference rows made above). The primary key stays: ids ascend.
        indexes = await conn.fetch(_SECONDARY_INDEXES_SQL)
        for row in indexes:
            await conn.execute(f'DROP INDEX "{row["name"]}"')
        try:
            await conn.execute("SET session_replication_role = replica")
        except asyncpg.InsufficientPrivilegeError:
            figures.fk_checks = True
        rng = random.Random(seed + 1)
        results = [_dumps(round(rng.uniform(0, 100), 2)) for _ in range(4093)]
        # (stream id, FeatureOfInterest id): a Thing, its Location and its feature share one id
        pairs = [(record[0], record[6]) for record in tables["datastreams"][1]]
        say(f"COPY {per_stream * streams_total:,} observations ({per_stream:,} per Datastream) ...")
        t0 = time.perf_counter()
        reported = t0
        for first in range(0, per_stream, COPY_STEPS):
            last = min(per_stream, first + COPY_STEPS)
            await conn.copy_records_to_table(
                "observations",
                records=observation_records(first, last, pairs, results),
                columns=OBSERVATION_COLUMNS,
            )
            now = time.perf_counter()
            if now - reported >= 10 or last == per_stream:
                rows = last * streams_total
                say(f"  {rows:,} rows in {now - t0:.0f} s ({rows / (now - t0):,.0f} rows/s)")
                reported = now
        figures.copy_s = time.perf_counter() - t0
        figures.observations = per_stream * streams_total
        await conn.execute("RESET session_replication_role")
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('observations', 'id'), (SELECT max(id) FROM observations))"
        )

        say(f"building {len(indexes)} indexes on observations ...")
        t0 = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '1GB'")
        for row in indexes:
            await conn.execute(row["definition"])
        figures.index_s = time.perf_counter() - t0

        say("setting every Datastream's extents and latest Observation ...")
        t0 = time.perf_counter()
        await conn.execute(EXTENTS_SQL)
        figures.extents_s = time.perf_counter() - t0

        say("VACUUM (ANALYZE) ...")
        t0 = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE)")
        figures.vacuum_s = time.perf_counter() - t0
    finally:
        await conn.close()
    figures.load_after = _loadavg()
    figures.loaded_at = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    meta = {"layout": LAYOUT, "observations": observations, "load": figures.as_json()}
    conn = await asyncpg.connect(maintenance, timeout=10)
    try:
        literal = _dumps(meta).replace("'", "''")
        await conn.execute(f"COMMENT ON DATABASE {DB_NAME} IS '{literal}'")
    finally:
        await conn.close()
    return figures


_STATIONS_SQL = """
SELECT t.id, ST_X(l.geom) AS lon, ST_Y(l.geom) AS lat,
       array_agg(d.properties->>'serviceName') AS services,
       array_agg(d.properties->>'layerName') AS layers,
       array_agg(op.name) AS observed
FROM things t
JOIN thing_locations tl ON tl.thing_id = t.id
JOIN locations l ON l.id = tl.location_id
JOIN datastreams d ON d.thing_id = t.id
JOIN observed_properties op ON op.id = d.observed_property_id
GROUP BY t.id, l.geom ORDER BY t.id"""


async def read_dataset(dsn: str) -> Dataset:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        stations = [
            Station(
                r["id"],
                r["lon"],
                r["lat"],
                frozenset(r["services"]),
                frozenset(r["layers"]),
                frozenset(r["observed"]),
            )
            for r in await conn.fetch(_STATIONS_SQL)
        ]
        streams = await conn.fetch(
            "SELECT id, phenomenon_time_start AS first, last_phenomenon_time AS last "
            "FROM datastreams ORDER BY id"
        )
        # Exact, once: the hub's exact $count is checked against it (the estimate within 10 %).
        observations = await conn.fetchval("SELECT count(*) FROM observations")
        locations = await conn.fetchval("SELECT count(*) FROM locations")
    finally:
        await conn.close()
    firsts = {r["first"] for r in streams}
    lasts = {r["last"] for r in streams}
    if len(firsts) != 1 or len(lasts) != 1 or None in firsts or None in lasts:
        raise BenchError("the Datastreams' extents are not set (or differ): reload without --reuse")
    first, last = firsts.pop(), lasts.pop()
    per_stream = round((last - first) / STEP) + 1
    return Dataset(
        stations, [r["id"] for r in streams], per_stream, int(observations), int(locations), first, STEP
    )


# ---- request shapes ----------------------------------------------------------------------------


class Mismatch(Exception):
    """An answer that is not what the loaded data says it must be."""


Check = Callable[[dict[str, Any]], int]  # validates a body, returns the number of entities in it


@dataclass(frozen=True)
class Probe:
    """One request: the path below /v1.1/ (with query) and how to check its answer."""

    path: str
    check: Check
    encoded: bool = False  # True for nextLinks, which the hub already percent-encoded


@dataclass
class Shape:
    key: str
    title: str
    probe: Callable[[int], Probe]
    target_ms: float | None = None
    target_note: str = ""
    high: bool = False  # also measured at the higher concurrencies
    requests: int | None = None  # overrides --requests (the slow $count)
    hub: str = "exact"  # which hub answers it: TWINHUB_COUNT_MODE


def iso(moment: datetime) -> str:
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def _values(body: dict[str, Any], expected: int, more: bool) -> list[dict[str, Any]]:
    value = body["value"]
    if not isinstance(value, list) or len(value) != expected:
        raise Mismatch(f"{len(value)} entities, expected {expected}")
    if ("@iot.nextLink" in body) != more:
        raise Mismatch(f"nextLink {'missing' if more else 'unexpected'}")
    return value


def _things_check(expected: int, top: int, check_thing: Callable[[dict[str, Any]], int]) -> Check:
    def check(body: dict[str, Any]) -> int:
        things = _values(body, min(expected, top), expected > top)
        return sum(1 + check_thing(thing) for thing in things)

    return check


def _latest_expanded(thing: dict[str, Any]) -> int:
    """A Thing with its Location and both Datastreams, each with exactly its latest Observation."""
    locations, streams = thing["Locations"], thing["Datastreams"]
    if len(locations) != 1 or len(streams) != STREAMS_PER_THING:
        raise Mismatch(f"Thing {thing['@iot.id']}: {len(locations)} Locations, {len(streams)} Datastreams")
    for stream in streams:
        if len(stream["Observations"]) != 1:
            raise Mismatch(
                f"Datastream {stream['@iot.id']}: {len(stream['Observations'])} latest Observations"
            )
    return len(locations) + 2 * len(streams)


def build_shapes(data: Dataset, seed: int, page2_links: list[tuple[str, int]]) -> list[Shape]:
    """The shapes of issue #3 and of the viewers (STA-NOTES), each drawing fresh ids and times."""
    rngs = {key: random.Random(f"{seed}-{key}") for key in ("1", "2", "3", "5", "7a", "7b", "7c", "7d")}
    hamburg = CITY_RECTS["Hamburg"]

    def stations(rect: Rect, tags: str, tag: str) -> int:
        """Things with a Datastream tagged `tag` (in Station.<tags>) inside `rect`."""
        return sum(1 for s in data.stations if tag in getattr(s, tags) and rect.contains(s.lon, s.lat))

    def shape1(_i: int) -> Probe:
        rng = rngs["1"]
        while True:
            service, rect = f"svc-{rng.randrange(SERVICES)}", hamburg.jittered(rng, 0.1)
            expected = stations(rect, "services", service)
            if expected:
                break
        path = (
            f"Things?$filter=Datastreams/properties/serviceName eq '{service}' and "
            f"st_intersects(Locations/location, geography'{rect.wkt()}')"
            "&$expand=Locations,Datastreams($expand=Observations($orderby=phenomenonTime desc;$top=1))"
        )
        return Probe(path, _things_check(expected, DEFAULT_TOP, _latest_expanded))

    span = min(1200, data.per_stream - 1)

    def shape2(_i: int) -> Probe:
        rng = rngs["2"]
        stream = rng.choice(data.stream_ids)
        start = data.first + rng.randrange(0, data.per_stream - span) * data.step
        end = start + span * data.step
        path = (
            f"Datastreams({stream})/Observations?$filter=phenomenonTime ge {iso(start)} and "
            f"phenomenonTime lt {iso(end)}&$orderby=phenomenonTime asc&$select=result,phenomenonTime"
            "&$top=1000"
        )

        def check(body: dict[str, Any]) -> int:
            rows = _values(body, min(span, 1000), span > 1000)
            if set(rows[0]) != {"result", "phenomenonTime"} or rows[0]["phenomenonTime"] != iso(start):
                raise Mismatch(f"first row {rows[0]}, expected phenomenonTime {iso(start)} and result only")
            if span > 1000:
                page2_links.append((body["@iot.nextLink"], span - 1000))
            return len(rows)

        return Probe(path, check)

    def shape2b(i: int) -> Probe:
        if not page2_links:
            raise BenchError("shape 2 produced no nextLink to follow")
        link, remaining = page2_links[i % len(page2_links)]
        parts = urlsplit(link)
        path = parts.path.split(f"{API}/", 1)[1] + "?" + parts.query

        def check(body: dict[str, Any]) -> int:
            return len(_values(body, remaining, False))

        return Probe(path, check, encoded=True)

    def shape3(_i: int) -> Probe:
        rng = rngs["3"]
        a, b = rng.sample(data.stream_ids, 2)
        since = rng.randint(1, 150)  # Observations after T
        moment = data.last - since * data.step
        path = (
            f"Datastreams?$filter=@iot.id eq {a} or @iot.id eq {b}&$expand=Observations("
            "$select=result,phenomenonTime;$orderby=phenomenonTime desc;"
            f"$filter=phenomenonTime gt {iso(moment)})"
        )

        def check(body: dict[str, Any]) -> int:
            streams = _values(body, 2, False)
            total = 2
            for stream in streams:
                rows = stream["Observations"]
                if len(rows) != min(since, DEFAULT_TOP) or rows[0]["phenomenonTime"] != iso(data.last):
                    raise Mismatch(
                        f"Datastream {stream['@iot.id']}: {len(rows)} Observations, expected {since}"
                    )
                total += len(rows)
            return total

        return Probe(path, check)

    def shape4(_i: int) -> Probe:
        def check(body: dict[str, Any]) -> int:
            _values(body, 0, False)
            if body.get("@iot.count") != data.locations:
                raise Mismatch(f"@iot.count {body.get('@iot.count')}, expected {data.locations}")
            return 1

        return Probe(
            "Locations?$top=0&$count=true"
            "&$filter=location/type eq 'Point' or location/geometry/type eq 'Point'",
            check,
        )

    def shape5(_i: int) -> Probe:
        stream = rngs["5"].choice(data.stream_ids)

        def check(body: dict[str, Any]) -> int:
            rows = _values(body, 1, data.per_stream > 1)
            if rows[0]["phenomenonTime"] != iso(data.last):
                raise Mismatch(
                    f"latest phenomenonTime {rows[0]['phenomenonTime']}, expected {iso(data.last)}"
                )
            return 1

        return Probe(f"Datastreams({stream})/Observations?$orderby=phenomenonTime desc&$top=1", check)

    def shape6(exact: bool) -> Callable[[int], Probe]:
        def probe(_i: int) -> Probe:
            def check(body: dict[str, Any]) -> int:
                _values(body, 1, True)
                count = body.get("@iot.count")
                if not isinstance(count, int) or (
                    count != data.observations
                    if exact
                    else abs(count - data.observations) > data.observations / 10
                ):
                    raise Mismatch(f"@iot.count {count}, expected {'' if exact else '~'}{data.observations}")
                return 1

            return Probe("Observations?$count=true&$top=1", check)

        return probe

    def shape7a(_i: int) -> Probe:
        rng = rngs["7a"]
        while True:
            layer, rect = f"layer-{rng.randrange(LAYERS)}", hamburg.jittered(rng, 0.1)
            expected = stations(rect, "layers", layer)
            if expected:
                break
        path = (
            f"Things?$filter=Datastreams/properties/layerName eq '{layer}' and "
            f"st_intersects(Locations/location, geography'{rect.wkt()}')"
            "&$expand=Locations,Datastreams/Observations($orderby=phenomenonTime desc;$top=1)"
        )
        return Probe(path, _things_check(expected, DEFAULT_TOP, _latest_expanded))

    def grafana(key: str, shortest: timedelta, longest: timedelta) -> Callable[[int], Probe]:
        span = data.last - data.first
        shortest, longest = min(shortest, span), min(longest, span)

        def probe(_i: int) -> Probe:
            return grafana_probe(rngs[key], shortest, longest)

        return probe

    def grafana_probe(rng: random.Random, shortest: timedelta, longest: timedelta) -> Probe:
        stream = rng.choice(data.stream_ids)
        length = timedelta(seconds=rng.uniform(shortest.total_seconds(), longest.total_seconds()))
        start = data.first + rng.uniform(0, 1) * (data.last - data.first - length)
        start, end = start.replace(microsecond=start.microsecond // 1000 * 1000), start + length
        end = end.replace(microsecond=end.microsecond // 1000 * 1000)
        expected = data.steps_between(start, end)
        path = (
            f"Datastreams({stream})/Observations?$filter=phenomenonTime ge {iso(start)} and "
            f"phenomenonTime le {iso(end)}&$orderby=phenomenonTime asc&$select=phenomenonTime,result"
            "&$top=1000"
        )

        def check(body: dict[str, Any]) -> int:
            return len(_values(body, min(expected, 1000), expected > 1000))

        return Probe(path, check)

    def shape7c(_i: int) -> Probe:
        rng = rngs["7c"]
        while True:
            observed = rng.choice(OBSERVED_PROPERTIES)[0]
            rect = CITY_RECTS[rng.choice(CITIES)[0]].jittered(rng, 0.05)
            expected = stations(rect, "observed", observed)
            if expected:
                break
        path = (
            f"Things?$top=1000&$filter=Datastreams/ObservedProperty/name eq '{observed}' and "
            f"st_within(Locations/location, geography'{rect.wkt(space=True)}')&$expand=Locations($top=1)"
        )

        def thing(entity: dict[str, Any]) -> int:
            if len(entity["Locations"]) != 1:
                raise Mismatch(f"Thing {entity['@iot.id']}: {len(entity['Locations'])} Locations")
            return 1

        return Probe(path, _things_check(expected, 1000, thing))

    small = f"p50 < {TARGET_SMALL_MS:g} ms"
    page = f"p50 < {TARGET_PAGE_MS:g} ms"
    count = f"p50 < {TARGET_COUNT_MS / 1000:g} s"
    shapes = [
        Shape(
            "1",
            "Things by serviceName + st_intersects, $expand Locations, Datastreams(latest Observation)",
            shape1,
            TARGET_SMALL_MS,
            small,
            high=True,
        ),
        Shape(
            "2",
            f"Datastream Observations in a time window ({span:,} rows), $top=1000, page 1",
            shape2,
            TARGET_PAGE_MS,
            page,
            high=True,
        ),
        Shape(
            "2b",
            f"... its nextLink (page 2, {max(span - 1000, 0)} rows)",
            shape2b,
            TARGET_PAGE_MS,
            page,
            high=True,
        ),
        Shape(
            "3",
            "2 Datastreams by @iot.id, $expand Observations($filter=phenomenonTime gt T)",
            shape3,
            TARGET_SMALL_MS,
            small,
        ),
        Shape(
            "4",
            "QGIS geometry probe: Locations $top=0&$count=true, location/type eq 'Point' or ...",
            shape4,
            TARGET_SMALL_MS,
            small,
        ),
        Shape(
            "5",
            "latest Observation of a Datastream ($orderby=phenomenonTime desc&$top=1)",
            shape5,
            TARGET_SMALL_MS,
            small,
            high=True,
        ),
        Shape("6", "Observations?$count=true&$top=1, count_mode=exact", shape6(True), TARGET_COUNT_MS, count),
        Shape(
            "6e",
            "Observations?$count=true&$top=1, count_mode=estimate",
            shape6(False),
            TARGET_COUNT_MS,
            count,
            hub="estimate",
        ),
        Shape(
            "7a",
            "Masterportal: Things by layerName + st_intersects, $expand=Locations,"
            "Datastreams/Observations(latest)",
            shape7a,
            None,
            "(none; cf. 1)",
            high=True,
        ),
        Shape(
            "7b",
            "Grafana: Observations ge/le window (1 h - 3 days), $top=1000",
            grafana("7b", timedelta(hours=1), timedelta(days=3)),
            None,
            "(none; cf. 2)",
            high=True,
        ),
        Shape(
            "7d",
            "Grafana, wide: the same over a 30-day window (up to 8,640 rows), first 1,000",
            grafana("7d", timedelta(days=30), timedelta(days=30)),
            None,
            "(none; cf. 2)",
        ),
        Shape(
            "7c",
            "VC Map: Things $top=1000 by ObservedProperty/name + st_within, $expand=Locations($top=1)",
            shape7c,
            None,
            "(none)",
        ),
    ]
    # A window of 1,000 rows or fewer has no page 2.
    return [s for s in shapes if s.key != "2b" or span > 1000]


# ---- load generation ---------------------------------------------------------------------------


@dataclass
class Result:
    shape: Shape
    phase: Phase
    entities: list[int] = field(default_factory=list)
    sample: str = ""

    @property
    def verdict(self) -> str:
        if self.phase.errors:
            return "BROKEN"
        if self.shape.target_ms is None or self.phase.concurrency != 1:
            return ""
        p50 = self.phase.pct_ms(50)
        return "ok" if p50 is not None and p50 < self.shape.target_ms else "MISSED"


async def run_shape(
    base: str, shape: Shape, concurrency: int, count: int, meter: CpuMeter, first: int = 0
) -> Result:
    """`count` requests of a shape from `concurrency` workers; only checked answers count as ok."""
    latencies: list[float] = []
    entities: list[int] = []
    samples: list[str] = []
    ok = errors = 0
    issued = itertools.count(first)
    sample = ""
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=core.REQUEST_TIMEOUT) as session:
        started = meter.snapshot()

        async def worker() -> None:
            nonlocal ok, errors, sample
            while (i := next(issued)) < first + count:
                probe = shape.probe(i)
                sample = sample or probe.path
                url = URL(f"{base}{API}/{probe.path}", encoded=probe.encoded)
                t0 = time.perf_counter()
                try:
                    async with session.get(url) as resp:
                        payload = await resp.read()
                        status = resp.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    errors += 1
                    if len(samples) < core.ERROR_SAMPLES:
                        samples.append(f"{type(exc).__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - t0
                problem = None
                if status != 200:
                    problem = f"HTTP {status}: {payload[:300].decode(errors='replace')}"
                else:
                    try:
                        n = probe.check(orjson.loads(payload))
                    except (Mismatch, KeyError, TypeError, IndexError, orjson.JSONDecodeError) as exc:
                        problem = f"wrong answer ({type(exc).__name__}: {exc}) to {probe.path[:200]}"
                if problem is not None:
                    errors += 1
                    if len(samples) < core.ERROR_SAMPLES:
                        samples.append(problem)
                    continue
                ok += 1
                latencies.append(elapsed)
                entities.append(n)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu = meter.measure(started)
        wall = time.perf_counter() - started.wall
    phase = Phase(f"{shape.key}", concurrency, ok, errors, wall, latencies, cpu, samples)
    return Result(shape, phase, entities, sample)


@asynccontextmanager
async def running_hub(dsn: str, args: argparse.Namespace, count_mode: str) -> AsyncIterator[Hub]:
    """A hub process with TWINHUB_COUNT_MODE set (Hub.start passes the environment on)."""
    previous = os.environ.get("TWINHUB_COUNT_MODE")
    os.environ["TWINHUB_COUNT_MODE"] = count_mode
    hub = Hub(
        dsn,
        args.port or core._free_port(),
        args.server_log_level,
        Path(args.workdir) / f"hub-{count_mode}.log",
    )
    try:
        say(f"starting the hub on {hub.base} (TWINHUB_COUNT_MODE={count_mode}; log {hub.log})")
        await hub.start()
        yield hub
    finally:
        hub.stop()
        if previous is None:
            os.environ.pop("TWINHUB_COUNT_MODE", None)
        else:
            os.environ["TWINHUB_COUNT_MODE"] = previous


def describe(result: Result) -> str:
    p = result.phase
    text = (
        f"shape {result.shape.key} c={p.concurrency}: {p.ok} ok, {p.errors} errors, {p.rps:,.1f} req/s, "
        f"p50 {core._ms(p.pct_ms(50))} p95 {core._ms(p.pct_ms(95))} ms {result.verdict}"
    )
    return text + "".join(f"\n    error: {s}" for s in p.error_samples)


async def measure(hub: Hub, shapes: Sequence[Shape], args: argparse.Namespace, results: list[Result]) -> None:
    meter = CpuMeter(hub.pid)
    for shape in shapes:
        requests = shape.requests or args.requests
        levels = args.concurrency if shape.high else args.concurrency[:1]
        position = 0
        for concurrency in levels:
            if args.warmup:
                await run_shape(
                    hub.base, shape, concurrency, min(args.warmup, requests), CpuMeter(None), position
                )
                position += min(args.warmup, requests)
            result = await run_shape(hub.base, shape, concurrency, requests, meter, position)
            position += requests
            results.append(result)
            say(describe(result))


# ---- SQL plans ---------------------------------------------------------------------------------


@dataclass
class Plans:
    """The statements one request ran, as auto_explain logged them (duration, plan text)."""

    statements: list[tuple[float, str]] = field(default_factory=list)
    error: str = ""

    @property
    def total_ms(self) -> float:
        return sum(ms for ms, _ in self.statements)

    def summary(self) -> str:
        if self.error:
            return self.error
        parts = []
        for ms, text in self.statements:
            scans = list(dict.fromkeys(_SCAN.findall(text)))
            extras = []
            if "Sort Method: external" in text:
                extras.append("sort spills to disk")
            if "JIT:" in text:
                extras.append("JIT")
            planned = re.search(r"Workers Planned: (\d+)", text)
            if planned and "Workers Launched: 0" in text:
                extras.append(f"**{planned[1]} parallel workers planned, 0 launched**")
            if _GENERIC.search(text):
                extras.append("generic plan")
            parts.append(f"{core._ms(ms)} ms: " + ", ".join(scans[:4] + extras))
        return "; ".join(parts)


_SCAN = re.compile(
    r"(Seq Scan on \w+|Parallel Seq Scan on \w+|Index Only Scan(?: Backward)? using \w+|"
    r"Index Scan(?: Backward)? using \w+|Bitmap Heap Scan on \w+|Bitmap Index Scan on \w+)"
)
# A generic plan keeps the $n placeholders in its conditions; a custom plan shows the values.
_GENERIC = re.compile(r"(?:Cond|Filter): .*\$\d")
_DURATION = re.compile(r"duration: ([0-9.]+) ms\s+plan:\s*")


class _Recorder:
    """Stands in for the asyncpg connection read_page gets, as the hub's pool connection would."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        rows: list[Any] = await self.conn.fetch(sql, *args)
        return rows

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self.conn.fetchval(sql, *args)


async def capture_plans(dsn: str, targets: dict[str, tuple[str, bool]]) -> dict[str, Plans]:
    """Run each target's read in-process through the hub's own compiler and store code, 7 times on one
    connection (prepared statements, as the hub's pool runs them, so a generic plan shows up), and keep
    auto_explain's (ANALYZE, BUFFERS) plans of the last run. Internal API: failures only cost the plans."""
    from multidict import MultiDict

    from hub.config import Settings
    from hub.query.filter import Dialect
    from hub.query.parse import parse_query
    from hub.query.path import parse_path
    from hub.query.plan import plan_expands, plan_selection
    from hub.store.read import read_page

    settings = Settings.model_validate({})
    out: dict[str, Plans] = {}
    conn = await asyncpg.connect(dsn, timeout=10)
    messages: list[str] = []
    conn.add_log_listener(lambda _c, m: messages.append(m.message))
    try:
        await conn.execute("LOAD 'auto_explain'")
        await conn.execute(
            "SET auto_explain.log_analyze = on; SET auto_explain.log_buffers = on; "
            "SET auto_explain.log_nested_statements = on; SET auto_explain.log_min_duration = -1; "
            "SET client_min_messages = log"
        )
        # As hub.store.pool.detect_dialect decides, on this one connection (it wants a pool).
        postgis = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = 'locations' AND column_name = 'geom')"
        )
        dialect = Dialect(postgis=bool(postgis))
        # count_mode=estimate reaches read_page as estimate_count (where this hub has it).
        estimates = "estimate_count" in inspect.signature(read_page).parameters
        for key, (target, estimate) in targets.items():
            plans = out[key] = Plans()
            try:
                tail, _, text = target.partition("?")
                path = parse_path(tail)
                query = parse_query(
                    MultiDict(parse_qsl(text, keep_blank_values=True)), settings.default_top, settings.max_top
                )
                entity_type = path.target.entity_type
                selection = plan_selection(entity_type, query.select)
                expands = plan_expands(entity_type, query.expand, settings.default_top)
                recorder: Any = _Recorder(conn)
                for run in range(PLAN_WARM_RUNS + 1):
                    if run == PLAN_WARM_RUNS:
                        await conn.execute("SET auto_explain.log_min_duration = 0")
                        messages.clear()
                    extra = {"estimate_count": estimate} if estimates else {}
                    await read_page(recorder, path, query, dialect, selection, expands, **extra)
                await conn.execute("SET auto_explain.log_min_duration = -1")
                await asyncio.sleep(0.05)  # log listeners run via call_soon
                for message in messages:
                    match = _DURATION.match(message)
                    if match is not None:
                        plans.statements.append((float(match[1]), message[match.end() :].rstrip()))
            except Exception as exc:  # the plan is a diagnostic; the timings stand without it
                plans.error = f"(no plan: {type(exc).__name__}: {exc})"
    except asyncpg.PostgresError as exc:
        for key in targets:
            out.setdefault(key, Plans(error=f"(no plans: auto_explain unavailable: {exc})"))
    finally:
        await conn.close()
    return out


# ---- report ------------------------------------------------------------------------------------


@dataclass
class Report:
    machine: dict[str, str] = field(default_factory=dict)
    load: LoadFigures | None = None
    data: Dataset | None = None
    results: list[Result] = field(default_factory=list)
    plans: dict[str, Plans] = field(default_factory=dict)
    load_before_queries: str = ""
    load_after_queries: str = ""


def _entities(values: list[int]) -> str:
    if not values:
        return "-"
    low, high = min(values), max(values)
    return f"{low:,}" if low == high else f"{low:,}-{high:,} (med {statistics.median(values):,.0f})"


def render(report: Report, args: argparse.Namespace) -> str:
    lines = [f"## twinhub query benchmark (issue #3 shapes), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", ""]
    lines += [f"- {key}: {value}" for key, value in report.machine.items()]
    data, figures = report.data, report.load
    if data is not None:
        lines.append(
            f"- dataset `{DB_NAME}`: {len(data.stations)} Things (Hamburg, Leipzig, München), "
            f"{data.locations} Locations (half GeoJSON Features, half Points) and FeaturesOfInterest, "
            f"{len(OBSERVED_PROPERTIES)} Sensors and ObservedProperties, "
            f"{len(data.stream_ids):,} Datastreams, {data.observations:,} Observations "
            f"({data.per_stream:,} per Datastream, every {data.step.total_seconds() / 60:g} min "
            f"from {iso(data.first)} to {iso(data.last)}), rows in time order across streams "
            "as live ingest writes them"
        )
    if figures is not None:
        rate = figures.observations / figures.copy_s if figures.copy_s else 0
        reused = " (by an earlier run; database reused)" if figures.reused else ""
        lines.append(
            f"- load{reused}: {figures.total_s:.0f} s in all, at {figures.loaded_at}: "
            f"entities {figures.entities_s:.1f} s; COPY of {figures.observations:,} Observations "
            f"{figures.copy_s:.1f} s = **{rate:,.0f} rows/s** (secondary indexes dropped, "
            f"FK triggers {'on' if figures.fk_checks else 'off'}); rebuilding the observation indexes "
            f"{figures.index_s:.1f} s; extents + latest Observation of all Datastreams (one UPDATE) "
            f"{figures.extents_s:.1f} s; VACUUM (ANALYZE) {figures.vacuum_s:.1f} s. "
            f"Load average before / after: {figures.load_before} / {figures.load_after}"
        )
    lines += [
        f"- load average (1, 5, 15 min) before / after the queries: {report.load_before_queries} / "
        f"{report.load_after_queries}; the 'other CPU' column is what processes other than this client, "
        "the hub and PostgreSQL used during each row (other sessions on this shared machine)",
        f"- {args.requests} requests per row ({args.count_requests} for $count over the whole table), "
        f"after {args.warmup} untimed ones; ids, windows and polygons drawn at random per request; every "
        "answer checked against the loaded data (entity count, nextLink, times), a wrong one counts as an "
        "error",
        "",
        "| # | shape | conc. | ok | errors | entities per answer | req/s | p50 ms | p95 ms | hub CPU ms/req "
        "| PostgreSQL CPU ms/req | other CPU | target | |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|",
    ]
    for r in report.results:
        p = r.phase
        cells = [
            r.shape.key,
            r.shape.title,
            str(p.concurrency),
            f"{p.ok:,}",
            f"{p.errors:,}",
            _entities(r.entities),
            f"{p.rps:,.1f}",
            core._ms(p.pct_ms(50)),
            core._ms(p.pct_ms(95)),
            core._ms(p.cpu_ms_per_request(p.cpu.server)),
            core._ms(p.cpu_ms_per_request(p.cpu.postgres)),
            core._pct(p.cpu.other),
            r.shape.target_note if p.concurrency == 1 else "",
            r.verdict,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Targets (issue #3) apply to p50 at concurrency 1. CPU columns: CPU time per ok request of the hub "
        "process and of PostgreSQL (all its processes for this database); other CPU: share of one core used "
        f"by everything else (the machine has {report.machine.get('nproc', '?')} cores).",
    ]
    errors = [(r, s) for r in report.results for s in r.phase.error_samples]
    if errors:
        lines += ["", "Error samples:", ""] + [
            f"- {r.shape.key} c={r.phase.concurrency}: `{s}`" for r, s in errors
        ]
    samples = {r.shape.key: r.sample for r in report.results}
    lines += ["", "### Sample requests (the first of each row)", ""]
    lines += [f"- {key}: `GET {API}/{sample}`" for key, sample in samples.items()]
    if report.plans:
        lines += [
            "",
            "### SQL per shape",
            "",
            "Captured in-process: the hub's own parser, compiler and `read_page` run each shape's first "
            f"sample request {PLAN_WARM_RUNS + 1} times on one connection (prepared statements like the "
            "hub's pool, so a generic plan shows where PostgreSQL switches to one) and `auto_explain` "
            "(loaded per session) logs the last run with ANALYZE and BUFFERS. 'PG ms' is the sum of the "
            "statements' execution times, to compare with the HTTP p50.",
            "",
            "| # | statements | PG ms | plan summary (per statement: time, scans) |",
            "|---|--:|--:|---|",
        ]
        for key, plans in report.plans.items():
            lines.append(
                f"| {key} | {len(plans.statements)} "
                f"| {core._ms(plans.total_ms) if plans.statements else '-'} | {plans.summary()} |"
            )
        # Full plans of the shapes that missed or broke, and of those that used half their budget.
        wanted = {
            r.shape.key: "" for r in report.results if args.all_plans or r.verdict in ("MISSED", "BROKEN")
        }
        for r in report.results:
            p50 = r.phase.pct_ms(50)
            if r.verdict == "ok" and r.shape.target_ms and p50 is not None and p50 >= r.shape.target_ms / 2:
                wanted[r.shape.key] = f" (p50 {core._ms(p50)} ms: over half its target)"
        if wanted:
            lines += ["", "### Plans of the shapes that missed their target or used over half of it"]
        for key, why in wanted.items():
            found = report.plans.get(key)
            if found is None or not found.statements:
                continue
            lines += ["", f"#### Shape {key}{why}: `GET {API}/{samples.get(key, '')}`", "", "```"]
            for ms, text in found.statements:
                lines += [f"-- {core._ms(ms)} ms", text, ""]
            lines[-1] = "```"
    return "\n".join(lines).rstrip() + "\n"


# ---- main --------------------------------------------------------------------------------------


async def benchmark(args: argparse.Namespace, report: Report) -> None:
    maintenance = args.dsn
    core.check_loopback(maintenance)
    dsn = core.bench_dsn(maintenance)
    figures = await _reusable(maintenance, args.observations) if args.reuse else None
    if figures is None:
        if args.reuse:
            say(f"no complete {DB_NAME} with {args.observations:,} observations: loading it")
        figures = await load(dsn, maintenance, args.observations, args.seed)
        rate = figures.observations / figures.copy_s if figures.copy_s else 0
        say(
            f"loaded {figures.observations:,} observations: "
            f"COPY {figures.copy_s:.1f} s ({rate:,.0f} rows/s), "
            f"indexes {figures.index_s:.1f} s, extents {figures.extents_s:.1f} s, "
            f"VACUUM ANALYZE {figures.vacuum_s:.1f} s; {figures.total_s:.0f} s in all"
        )
    else:
        say(f"reusing {DB_NAME} (loaded {figures.loaded_at})")
    report.load = figures
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        version = await conn.fetchval("SHOW server_version")
        settings = await conn.fetch(
            "SELECT name, current_setting(name) AS setting FROM pg_settings WHERE name = ANY($1::text[]) "
            "ORDER BY name",
            ["fsync", "synchronous_commit", "shared_buffers", "work_mem", "jit", "random_page_cost"],
        )
    finally:
        await conn.close()
    report.machine.update(
        nproc=str(os.cpu_count()),
        cpu=core._cpu_model(),
        python=platform.python_version(),
        aiohttp=aiohttp.__version__,
        postgresql=f"{version} ({', '.join(f'{r[0]}={r[1]}' for r in settings)})",
        hub=f"{core._git_revision()}, 1 process, TWINHUB_LOG_LEVEL={args.server_log_level}, "
        "other settings default",
    )
    data = report.data = await read_dataset(dsn)
    links: list[tuple[str, int]] = []
    shapes = [s for s in build_shapes(data, args.seed, links) if not args.shapes or s.key in args.shapes]
    for shape in shapes:
        if shape.key.startswith("6"):
            shape.requests = args.count_requests
    report.load_before_queries = _loadavg()
    try:
        for mode in ("exact", "estimate"):
            mine = [s for s in shapes if s.hub == mode]
            if mine:
                async with running_hub(dsn, args, mode) as hub:
                    await measure(hub, mine, args, report.results)
        report.load_after_queries = _loadavg()
        say("capturing the SQL plans ...")
        targets = {
            shape.key: (shape.probe(0).path, shape.hub == "estimate")
            for shape in shapes
            if shape.key != "2b" or links
        }
        try:
            report.plans = await capture_plans(dsn, targets)
        except Exception as exc:  # internal API of the hub: a change there costs the plans, not the run
            report.plans = {key: Plans(error=f"(no plan: {type(exc).__name__}: {exc})") for key in targets}
    finally:
        if args.keep or args.reuse:
            say(f"kept database {DB_NAME} (rerun with --reuse)")
        else:
            await core.drop_database(maintenance)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench.query", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--dsn",
        default=os.environ.get(core.DSN_ENV) or core.DEFAULT_DSN,
        help=f"maintenance database URL on a local server (default ${core.DSN_ENV} or {core.DEFAULT_DSN}); "
        f"the benchmark creates its own database {DB_NAME} there",
    )
    p.add_argument(
        "--observations",
        type=core._positive(int),
        default=10_000_000,
        help="Observations to load, spread over 1,000 Datastreams (10000000)",
    )
    p.add_argument(
        "--requests", type=core._positive(int), default=200, help="requests per shape and level (200)"
    )
    p.add_argument(
        "--count-requests",
        type=core._positive(int),
        default=20,
        help="requests for the $count over all Observations (20)",
    )
    p.add_argument(
        "--concurrency",
        type=core._concurrency,
        default=[1, 8],
        help="concurrency levels (1,8); the higher ones only for shapes 1, 2, 2b, 5, 7a, 7b",
    )
    p.add_argument("--warmup", type=int, default=10, help="untimed requests before each row (10)")
    p.add_argument(
        "--shapes",
        type=lambda t: {s.strip() for s in t.split(",") if s.strip()},
        help="only these shapes, e.g. 1,2,2b,5 (2b needs 2)",
    )
    p.add_argument("--port", type=int, default=0, help="hub HTTP port on 127.0.0.1 (default: a free port)")
    p.add_argument("--server-log-level", default="WARNING", help="hub log level (WARNING)")
    p.add_argument("--seed", type=int, default=3, help="random seed of the data and the requests (3)")
    p.add_argument("--keep", action="store_true", help=f"keep the database {DB_NAME} afterwards")
    p.add_argument(
        "--reuse",
        action="store_true",
        help=f"skip loading when {DB_NAME} exists complete with as many observations (implies --keep)",
    )
    p.add_argument(
        "--all-plans", action="store_true", help="print full plans of all shapes, not only missed ones"
    )
    p.add_argument("--output", type=Path, help="also write the markdown report to this file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # core's database helpers and its CPU meter (which counts PostgreSQL backends of the bench
    # database only) read this module global: point them at this benchmark's own database.
    core.BENCH_DB = DB_NAME
    report = Report()
    with tempfile.TemporaryDirectory(prefix="twinhub-bench-query-") as workdir:
        args.workdir = workdir
        try:
            asyncio.run(benchmark(args, report))
        except BenchError as exc:
            say(f"bench.query: {exc}")
            return 1
        except KeyboardInterrupt:
            return 130
    text = render(report, args)
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
