# SPDX-License-Identifier: Apache-2.0
"""Backfill files -> validated Observation rows, each with the line it came from (no I/O but reading).

Formats (docs/storage.md "Importing"):
- CSV: a header row naming the columns `datastream`, `phenomenonTime`, `result` (required) and
  `resultTime`, `parameters` (optional); RFC 4180 quoting.
- JSON: an array of objects, or JSON lines (one object per line), with the same keys;
  `"Datastream": {"@iot.id": 1}` is accepted in place of `"datastream": 1`.

Times are ISO 8601 with a UTC offset (`Z` or `+01:00`); phenomenonTime may be an interval
`start/end`. A CSV result cell is read as JSON when it is valid JSON (`21.5`, `true`, `"text"`,
`{"a": 1}`), otherwise as a string.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, NamedTuple

import orjson

CSV_REQUIRED = ("datastream", "phenomenonTime", "result")
CSV_OPTIONAL = ("resultTime", "parameters")
FORMATS = ("csv", "json")
_MIN, _MAX = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


class FormatError(ValueError):
    """The file as a whole cannot be read (unknown format, bad header); the message names it."""


class Row(NamedTuple):
    """One valid row, its result and parameters as JSON text (a tuple: a million of them are made)."""

    line: int
    datastream_id: int
    start: datetime
    end: datetime
    result_time: datetime | None
    result: str
    parameters: str | None


@dataclass(frozen=True)
class BadRow:
    """A row that was not imported, with its line (or JSON array item) and the reason."""

    line: int
    reason: str


class RowError(ValueError):
    """A row's value is invalid; the message is the reason."""


def detect_format(path: Path, given: str | None = None) -> str:
    """The format of a file: as given, else by extension (.csv, .json, .jsonl, .ndjson)."""
    if given is not None:
        if given not in FORMATS:
            raise FormatError(f"unknown format {given!r}; use csv or json")
        return given
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".json", ".jsonl", ".ndjson"):
        return "json"
    raise FormatError(f"{path}: cannot tell the format from the extension; give --format csv or json")


def read_rows(stream: IO[str], fmt: str) -> Iterator[Row | BadRow]:
    """Every row of an open text stream in order, valid or not."""
    if fmt == "csv":
        return _csv_rows(stream)
    return _json_rows(stream)


# ---- values ------------------------------------------------------------------------------------


def _time(text: object, name: str) -> datetime:
    if not isinstance(text, str):
        raise RowError(f"{name}: expected an ISO 8601 time string, got {_show(text)}")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise RowError(f"{name}: not an ISO 8601 time: {_show(text)}") from None
    if value.tzinfo is None:
        raise RowError(f"{name}: needs a UTC offset (Z or +01:00): {_show(text)}")
    if value.year in (1, 9999):  # the offset may push it out of the representable years
        try:
            utc = value.astimezone(UTC)
        except OverflowError:
            utc = _MIN  # reported below
        if utc in (_MIN, _MAX):  # the driver stores these two as -infinity and infinity
            raise RowError(f"{name}: out of the years 1-9999 in UTC: {_show(text)}")
    return value


def _phenomenon_time(text: object) -> tuple[datetime, datetime]:
    if isinstance(text, str) and "/" in text:
        first, _, second = text.partition("/")
        start, end = _time(first, "phenomenonTime"), _time(second, "phenomenonTime")
        if end < start:
            raise RowError(f"phenomenonTime: the interval ends before it starts: {_show(text)}")
        return start, end
    start = _time(text, "phenomenonTime")
    return start, start


def _datastream(value: object) -> int:
    if isinstance(value, dict):
        value = value.get("@iot.id")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RowError(f"datastream: expected a Datastream id (a positive integer), got {_show(value)}")
    return value


def _csv_datastream(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise RowError(f"datastream: expected a Datastream id (a positive integer), got {_show(text)}")
    return value


def _json_text(value: Any, name: str) -> str:
    text = orjson.dumps(value).decode()
    if "\\u0000" in text:  # PostgreSQL's jsonb cannot hold NUL
        raise RowError(f"{name}: contains a NUL character")
    return text


def _parameters(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RowError(f"parameters: expected a JSON object, got {_show(value)}")
    return _json_text(value, "parameters")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---- CSV ---------------------------------------------------------------------------------------


def _csv_rows(stream: IO[str]) -> Iterator[Row | BadRow]:
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        return
    names = [name.strip() for name in header]
    unknown = [name for name in names if name not in CSV_REQUIRED + CSV_OPTIONAL]
    missing = [name for name in CSV_REQUIRED if name not in names]
    if unknown or missing:
        problems = [f"unknown column {name!r}" for name in unknown]
        problems += [f"missing column {name!r}" for name in missing]
        raise FormatError(
            f"line 1: {'; '.join(problems)} (columns: {', '.join(CSV_REQUIRED + CSV_OPTIONAL)})"
        )
    ds, pt, res = (names.index(name) for name in CSV_REQUIRED)
    rt = names.index("resultTime") if "resultTime" in names else None
    pa = names.index("parameters") if "parameters" in names else None
    width = len(names)
    for cells in reader:
        line = reader.line_num
        if not cells:
            continue  # blank line
        try:
            if len(cells) != width:
                raise RowError(f"expected {width} cells, got {len(cells)}")
            start, end = _phenomenon_time(cells[pt])
            text = cells[res]
            try:
                orjson.loads(text)
            except orjson.JSONDecodeError:
                text = _json_text(text, "result")  # plain text: a string result
            else:
                if "\\u0000" in text:
                    raise RowError("result: contains a NUL character")
            result_time = _time(cells[rt], "resultTime") if rt is not None and cells[rt] else None
            parameters = None
            if pa is not None and cells[pa]:
                try:
                    parameters = _parameters(orjson.loads(cells[pa]))
                except orjson.JSONDecodeError:
                    raise RowError(f"parameters: not JSON: {_show(cells[pa])}") from None
            yield Row(line, _csv_datastream(cells[ds]), start, end, result_time, text, parameters)
        except RowError as error:
            yield BadRow(line, str(error))


# ---- JSON --------------------------------------------------------------------------------------

_JSON_KEYS = {"datastream", "Datastream", "phenomenonTime", "result", "resultTime", "parameters"}


def _json_rows(stream: IO[str]) -> Iterator[Row | BadRow]:
    first = stream.read(1)
    while first and first.isspace():
        first = stream.read(1)
    if first == "[":
        try:
            items = orjson.loads(first + stream.read())
        except orjson.JSONDecodeError as error:
            raise FormatError(f"not a valid JSON array: {error}") from None
        for index, item in enumerate(items, start=1):
            yield _json_row(index, item)
        return
    for number, line in enumerate(_lines(first, stream), start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            yield BadRow(number, f"not valid JSON: {error}")
            continue
        yield _json_row(number, item)


def _lines(first: str, stream: IO[str]) -> Iterator[str]:
    """The stream's lines, the already-read first character put back."""
    yield first + stream.readline()
    yield from stream


def _json_row(line: int, item: object) -> Row | BadRow:
    try:
        if not isinstance(item, dict):
            raise RowError(f"expected a JSON object, got {_show(item)}")
        unknown = [key for key in item if key not in _JSON_KEYS]
        if unknown:
            raise RowError(f"unknown key {unknown[0]!r}")
        if "result" not in item:
            raise RowError("result: is required")
        if "phenomenonTime" not in item:
            raise RowError("phenomenonTime: is required")
        stream = item.get("datastream", item.get("Datastream"))
        if stream is None:
            raise RowError("datastream: is required")
        start, end = _phenomenon_time(item["phenomenonTime"])
        result_time = item.get("resultTime")
        return Row(
            line,
            _datastream(stream),
            start,
            end,
            None if result_time is None else _time(result_time, "resultTime"),
            _json_text(item["result"], "result"),
            _parameters(item.get("parameters")),
        )
    except RowError as error:
        return BadRow(line, str(error))
