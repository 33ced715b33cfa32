# SPDX-License-Identifier: Apache-2.0
"""`twinhub import`: CSV and JSON backfills, bad rows reported by line, extents refreshed once."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import orjson
import pytest
from lifecycle_helpers import utc

from hub.backfill.formats import FormatError, detect_format
from hub.backfill.progress import Progress
from hub.backfill.run import import_files
from hub.store.partitions import ensure_range

CSV_GOOD = '''datastream,phenomenonTime,result,resultTime,parameters
1,2031-03-01T00:00:00Z,21.5,,
1,2031-03-01T00:10:00+01:00,"{""a"": 1}",2031-03-01T00:11:00Z,"{""quality"": ""good""}"
2,2031-03-02T00:00:00Z/2031-03-02T01:00:00Z,open,,
2,2031-04-05T00:00:00Z,"""quoted text""",,
1,2031-03-03T00:00:00Z,true,,
'''


async def rows(conn: asyncpg.Connection) -> list[tuple[object, ...]]:
    records = await conn.fetch(
        "SELECT datastream_id, phenomenon_time_start, phenomenon_time_end, result_time, result::text, "
        "parameters::text, feature_of_interest_id, tableoid::regclass::text AS part "
        "FROM observations ORDER BY phenomenon_time_start"
    )
    return [tuple(r) for r in records]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def test_csv_rows_land_in_new_partitions_with_extents_refreshed(
    conn: asyncpg.Connection, lifecycle_db: str, tmp_path: Path
) -> None:
    out = io.StringIO()
    result = await import_files(lifecycle_db, [write(tmp_path, "a.csv", CSV_GOOD)], progress_out=out)
    assert (result.imported, result.bad, result.streams, result.failed) == (5, [], 2, False)
    assert result.partitions_created == 3  # February (UTC), March and April 2031, as loading tables
    assert "import: 5 rows in" in out.getvalue()
    assert await rows(conn) == [
        (1, utc("2031-02-28T23:10:00Z"), utc("2031-02-28T23:10:00Z"), utc("2031-03-01T00:11:00Z"),
         '{"a": 1}', '{"quality": "good"}', 1, "observations_20310201"),
        (1, utc("2031-03-01T00:00:00Z"), utc("2031-03-01T00:00:00Z"), None, "21.5", None, 1,
         "observations_20310301"),
        (2, utc("2031-03-02T00:00:00Z"), utc("2031-03-02T01:00:00Z"), None, '"open"', None, 1,
         "observations_20310301"),
        (1, utc("2031-03-03T00:00:00Z"), utc("2031-03-03T00:00:00Z"), None, "true", None, 1,
         "observations_20310301"),
        (2, utc("2031-04-05T00:00:00Z"), utc("2031-04-05T00:00:00Z"), None, '"quoted text"', None, 1,
         "observations_20310401"),
    ]  # fmt: skip
    stream = await conn.fetchrow(
        "SELECT observation_count, phenomenon_time_start, phenomenon_time_end, last_result::text, "
        "last_observation_id = (SELECT max(id) FROM observations WHERE datastream_id = 1 "
        "AND result = 'true') AS latest FROM datastreams WHERE id = 1"
    )
    assert tuple(stream) == (3, utc("2031-02-28T23:10:00Z"), utc("2031-03-03T00:00:00Z"), "true", True)
    # The new partitions carry the table's indexes and keys like any other.
    indexes = await conn.fetchval("SELECT count(*) FROM pg_indexes WHERE tablename = 'observations_20310301'")
    assert indexes == 6


async def test_rows_for_existing_partitions_go_through_the_table(
    conn: asyncpg.Connection, lifecycle_db: str, tmp_path: Path
) -> None:
    await ensure_range(conn, utc("2031-03-01T00:00:00Z"), utc("2031-03-01T00:00:00Z"), "month")
    result = await import_files(
        lifecycle_db, [write(tmp_path, "a.csv", CSV_GOOD)], progress_out=io.StringIO()
    )
    assert result.imported == 5
    assert result.partitions_created == 2  # February (clipped gap) and April
    parts = [r[-1] for r in await rows(conn)]
    assert parts.count("observations_20310301") == 3


@pytest.mark.parametrize("layout", ["array", "lines"])
async def test_json_array_and_json_lines(
    conn: asyncpg.Connection, lifecycle_db: str, tmp_path: Path, layout: str
) -> None:
    items = [
        {"datastream": 1, "phenomenonTime": "2031-05-01T10:00:00Z", "result": 1.5},
        {"Datastream": {"@iot.id": 2}, "phenomenonTime": "2031-05-01T11:00:00Z", "result": {"x": [1, 2]},
         "resultTime": "2031-05-01T11:00:05Z", "parameters": {"battery": 80}},
    ]  # fmt: skip
    if layout == "array":
        text = orjson.dumps(items, option=orjson.OPT_INDENT_2).decode()
    else:
        text = "\n".join(orjson.dumps(item).decode() for item in items) + "\n\n"
    path = write(tmp_path, "b.json" if layout == "array" else "b.jsonl", text)
    result = await import_files(lifecycle_db, [path], progress_out=io.StringIO())
    assert (result.imported, result.bad) == (2, [])
    got = await rows(conn)
    assert [(r[0], r[4], r[5]) for r in got] == [(1, "1.5", None), (2, '{"x": [1, 2]}', '{"battery": 80}')]
    assert got[1][3] == utc("2031-05-01T11:00:05Z")


CSV_BAD = """datastream,phenomenonTime,result
1,2031-06-01T00:00:00Z,1
1,2031-06-01 00:00:00,2
x,2031-06-01T00:00:00Z,3
99,2031-06-01T00:00:00Z,4
1,yesterday,5
1,2031-06-01T00:00:00Z
1,2031-06-02T00:00:00Z/2031-06-01T00:00:00Z,6
2,2031-06-03T00:00:00Z,7
"""
BAD_REASONS = [
    (3, "phenomenonTime: needs a UTC offset (Z or +01:00): '2031-06-01 00:00:00'"),
    (4, "datastream: expected a Datastream id (a positive integer), got 'x'"),
    (6, "phenomenonTime: not an ISO 8601 time: 'yesterday'"),
    (7, "expected 3 cells, got 2"),
    (8, "phenomenonTime: the interval ends before it starts: '2031-06-02T00:00:00Z/2031-06-01T00:00:00Z'"),
    (5, "datastream: Datastream 99 does not exist"),
]


async def test_bad_rows_fail_the_import_and_name_their_lines(
    conn: asyncpg.Connection, lifecycle_db: str, tmp_path: Path
) -> None:
    path = write(tmp_path, "bad.csv", CSV_BAD)
    result = await import_files(lifecycle_db, [path], progress_out=io.StringIO())
    assert result.failed
    assert result.imported == 0
    assert sorted((b.line, b.reason) for b in result.bad) == sorted(BAD_REASONS)
    assert str(result.bad[0]).startswith(f"{path}:3: ")
    assert await conn.fetchval("SELECT count(*) FROM observations") == 0


async def test_skip_bad_imports_the_good_rows_and_reports_the_rest(
    conn: asyncpg.Connection, lifecycle_db: str, tmp_path: Path
) -> None:
    result = await import_files(
        lifecycle_db, [write(tmp_path, "bad.csv", CSV_BAD)], skip_bad=True, progress_out=io.StringIO()
    )
    assert not result.failed
    assert result.imported == 2
    assert sorted((b.line, b.reason) for b in result.bad) == sorted(BAD_REASONS)
    assert sorted(await conn.fetchval("SELECT array_agg(result_number) FROM observations")) == [1.0, 7.0]
    assert await conn.fetchval("SELECT observation_count FROM datastreams WHERE id = 2") == 1


async def test_a_stream_without_a_location_is_a_bad_row(
    conn: asyncpg.Connection, lifecycle_db: str, tmp_path: Path
) -> None:
    await conn.execute(
        "INSERT INTO things (name, description) VALUES ('nowhere', 'd');"
        "INSERT INTO datastreams (name, description, unit_of_measurement, observation_type, thing_id, "
        "sensor_id, observed_property_id) VALUES ('x', 'd', '{}', 'm', 2, 1, 1)"
    )
    path = write(
        tmp_path, "c.jsonl", '{"datastream": 3, "phenomenonTime": "2031-06-01T00:00:00Z", "result": 1}\n'
    )
    result = await import_files(lifecycle_db, [path], skip_bad=True, progress_out=io.StringIO())
    assert result.imported == 0
    assert [b.line for b in result.bad] == [1]
    assert "has no Location" in result.bad[0].reason


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stream,phenomenonTime,result\n", "line 1: unknown column 'stream'; missing column 'datastream'"),
        ("datastream,result\n", "missing column 'phenomenonTime'"),
    ],
)
async def test_a_bad_header_names_the_file(
    lifecycle_db: str, tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, "h.csv", text)
    with pytest.raises(FormatError, match=message) as caught:
        await import_files(lifecycle_db, [path], progress_out=io.StringIO())
    assert str(caught.value).startswith(str(path))


def test_format_comes_from_the_extension_or_the_option(tmp_path: Path) -> None:
    assert detect_format(tmp_path / "x.CSV") == "csv"
    assert detect_format(tmp_path / "x.ndjson") == "json"
    assert detect_format(tmp_path / "x.txt", "json") == "json"
    with pytest.raises(FormatError, match="--format"):
        detect_format(tmp_path / "x.txt")


def test_progress_reports_rate_share_and_eta() -> None:
    now = [100.0]
    out = io.StringIO()
    progress = Progress("import", total_bytes=1000, out=out, interval=1.0, clock=lambda: now[0])
    now[0] = 102.0
    progress.update(rows=20_000, done_bytes=250)
    assert out.getvalue().strip() == "import: 20,000 rows, 10,000 rows/s, 25% done, ETA 6 s"
    progress.update(rows=30_000, done_bytes=300)  # within the interval: no new line
    assert out.getvalue().count("\n") == 1
    now[0] = 104.0
    assert progress.finish() == "import: 30,000 rows in 4.0 s (7,500 rows/s)"


def test_twinhub_import_command(lifecycle_db: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINHUB_")}
    env |= {"TWINHUB_DATABASE_URL": lifecycle_db, "TWINHUB_MIGRATE_ON_START": "false"}
    good = write(tmp_path, "good.csv", CSV_GOOD)
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "import", str(good)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "imported 5 Observation(s) into 2 Datastream(s); 3 new partition(s)" in done.stdout
    bad = write(tmp_path, "bad.csv", CSV_BAD)
    failed = subprocess.run(
        [sys.executable, "-m", "hub.cli", "import", str(bad)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1
    assert f"bad row: {bad}:3: phenomenonTime: needs a UTC offset" in failed.stderr
    assert "twinhub: nothing imported: 6 bad row(s); fix them or pass --skip-bad" in failed.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "hub.cli", "import", str(tmp_path / "nope.csv")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1
    assert "no such file" in missing.stderr


async def test_times_at_the_ends_of_the_calendar(
    conn: asyncpg.Connection, lifecycle_db: str, tmp_path: Path
) -> None:
    text = (
        "datastream,phenomenonTime,result\n"
        "1,0001-01-01T00:00:01Z,1\n"
        "1,9999-12-31T23:59:59Z,2\n"
        "1,0001-01-01T00:30:00+01:00,3\n"
        "1,0001-01-01T00:00:00Z,4\n"
    )
    result = await import_files(
        lifecycle_db, [write(tmp_path, "ends.csv", text)], skip_bad=True, progress_out=io.StringIO()
    )
    assert result.imported == 2
    assert [(b.line, b.reason) for b in result.bad] == [
        (4, "phenomenonTime: out of the years 1-9999 in UTC: '0001-01-01T00:30:00+01:00'"),
        (5, "phenomenonTime: out of the years 1-9999 in UTC: '0001-01-01T00:00:00Z'"),
    ]
    # Year 9999 gets its partition (PostgreSQL's times go further than Python's); the first month of
    # year 1 cannot be named to the driver, so its row waits in the default partition.
    parts = sorted(r[-1] for r in await rows(conn))
    assert parts == ["observations_99991201", "observations_default"]
