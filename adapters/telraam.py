# SPDX-License-Identifier: Apache-2.0
"""Telraam API v1 traffic reports, republished by a poller on `telraam/{segment_id}/traffic` -> readings.

A message holds the API answer (`{"status_code", "message", "report": [...]}`) or one bare
report. Each hourly report gives readings for its road segment (the Thing): the counts per
mode (uptime-corrected, per hour) in total and per direction (`_lft`/`_rgt` as their own
streams), the V85 speed and the car speed histograms (share per speed class, array results).
pT is the hour [date, date + 1 h); `uptime` goes into the parameters.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.base import Adapter, AdapterContext, AdapterError, Message
from schemas.reading import Reading

NAME = "telraam"
HOUR = timedelta(hours=1)
SENSOR_MODEL = "Telraam"

# mode -> count quantity
MODES = {
    "car": "car_count",
    "heavy": "heavy_vehicle_count",
    "bike": "bicycle_count",
    "pedestrian": "pedestrian_count",
}

# report field -> (quantity, UCUM unit, stream)
Table = dict[str, tuple[str, str, str | None]]

SCALARS: Table = {
    **{mode: (quantity, "/h", None) for mode, quantity in MODES.items()},
    **{
        f"{mode}{side}": (quantity, "/h", f"{mode}{side}")
        for mode, quantity in MODES.items()
        for side in ("_lft", "_rgt")
    },
    "v85": ("speed_v85", "km/h", None),
}

HISTOGRAMS: Table = {
    "car_speed_hist_0to70plus": ("speed_histogram", "%", "car_speed_hist_0to70plus"),
    "car_speed_hist_0to120plus": ("speed_histogram", "%", "car_speed_hist_0to120plus"),
}


def _fail(field: str, message: str) -> AdapterError:
    return AdapterError(NAME, field, message)


def _decode(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):
        raise _fail("payload", "is not JSON") from None


def _number(value: Any, field: str) -> float:
    try:
        valid = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    except OverflowError:
        valid = False
    if not valid:
        raise _fail(field, "is not a finite number")
    number: float = value
    return number


def _numbers(value: Any, field: str) -> list[float]:
    if not isinstance(value, list):
        raise _fail(field, "is not a list")
    return [_number(item, f"{field}[{index}]") for index, item in enumerate(value)]


def _reports(root: Any) -> list[tuple[str, dict[str, Any]]]:
    """(field path, report) of each report in the message."""
    if not isinstance(root, dict):
        raise _fail("payload", "is not an object")
    status = root.get("status_code", 200)
    if status != 200:
        text = root.get("message")
        detail = f": {text[:80]}" if isinstance(text, str) else ""
        raise _fail("status_code", f"is {str(status)[:20]}{detail}")
    if "report" not in root:
        if "segment_id" in root:
            return [("", root)]
        raise _fail("report", "missing")
    reports = root["report"]
    if not isinstance(reports, list):
        raise _fail("report", "is not a list")
    for index, report in enumerate(reports):
        if not isinstance(report, dict):
            raise _fail(f"report[{index}]", "is not an object")
    return [(f"report[{index}].", report) for index, report in enumerate(reports)]


def _segment(value: Any, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise _fail(field, "missing" if value is None else "is not a segment id")
    return str(value)


def _hour(report: dict[str, Any], at: str) -> tuple[datetime, datetime]:
    interval = report.get("interval", "hourly")
    if interval != "hourly":
        raise _fail(f"{at}interval", f"is {interval!r}, not 'hourly'")
    date = report.get("date")
    if not isinstance(date, str):
        raise _fail(f"{at}date", "missing" if date is None else "is not a string")
    try:
        start = datetime.fromisoformat(date)
        start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
        return start, start + HOUR
    except (ValueError, OverflowError):
        raise _fail(f"{at}date", f"is not an ISO 8601 time: {date[:40]!r}") from None


def _report_readings(report: dict[str, Any], at: str) -> list[Reading]:
    uptime = report.get("uptime")
    timezone = report.get("timezone")
    common: dict[str, Any] = {
        "adapter": NAME,
        "device": _segment(report.get("segment_id"), f"{at}segment_id"),
        "phenomenon_time": _hour(report, at),
        "sensor_model": SENSOR_MODEL,
        "device_properties": {"timezone": timezone} if isinstance(timezone, str) else {},
        "parameters": None if uptime is None else {"uptime": _number(uptime, f"{at}uptime")},
    }
    readings: list[Reading] = []
    for table, check in ((SCALARS, _number), (HISTOGRAMS, _numbers)):
        for key, (quantity, unit, stream) in table.items():
            if report.get(key) is not None:
                value = check(report[key], f"{at}{key}")
                readings.append(Reading(quantity=quantity, value=value, unit=unit, stream=stream, **common))
    return readings


def parse(message: Message, context: AdapterContext) -> list[Reading]:
    """Telraam traffic report(s) -> readings for every hour of every segment."""
    return [
        reading
        for at, report in _reports(_decode(message.payload))
        for reading in _report_readings(report, at)
    ]


ADAPTER = Adapter(
    name=NAME,
    topics=("telraam/+/traffic",),
    parse=parse,
    description="Telraam API traffic reports: hourly counts per mode and direction, V85, speed histograms",
)
