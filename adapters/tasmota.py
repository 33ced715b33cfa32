# SPDX-License-Identifier: Apache-2.0
"""Tasmota telemetry (`tele/{topic}/SENSOR`) -> readings.

Two kinds of section are read: `ENERGY` (power monitoring) and Smart Meter Interface blocks,
whose name comes from the user's meter script (`SML` by default; more names through the option
`sml_sections`, and any section holding a known SML key counts as one). Other sections
(`AM2301`, `DS18B20`, ...) are not mapped. Unknown numeric keys in a read section become
quantity "value" with stream "<section>/<key>".

`Time` is device-local time without offset; it is read in `context.timezone` (an explicit
offset, `SetOption52`, wins). Before NTP sync Tasmota reports 1970: such a time falls back to
the message's receive time.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, tzinfo
from typing import Any

from adapters.base import Adapter, AdapterContext, AdapterError, Message, instant
from schemas.reading import Reading

NAME = "tasmota"
ENERGY_SECTION = "ENERGY"
DEFAULT_SML_SECTIONS = ("SML",)
UNSYNCED_BEFORE = datetime(2016, 1, 1, tzinfo=UTC)

# key -> (quantity, UCUM unit)
Table = dict[str, tuple[str, str]]

ENERGY: Table = {
    "Power": ("active_power", "W"),
    "ApparentPower": ("apparent_power", "V.A"),
    "ReactivePower": ("reactive_power", "V.A"),  # UCUM has no var
    "Factor": ("power_factor", "1"),
    "Voltage": ("voltage", "V"),
    "Current": ("current", "A"),
    "Frequency": ("frequency", "Hz"),
    "Total": ("energy", "kW.h"),
    "Today": ("energy", "kW.h"),
    "Yesterday": ("energy", "kW.h"),
    "Period": ("energy_delta", "W.h"),
}

SML: Table = {
    "Total_in": ("energy", "kW.h"),
    "Total_out": ("energy_returned", "kW.h"),
    "Power_curr": ("active_power", "W"),
    **{f"power_l{n}": ("active_power", "W") for n in (1, 2, 3)},
    **{f"voltage_l{n}": ("voltage", "V") for n in (1, 2, 3)},
    **{f"current_l{n}": ("current", "A") for n in (1, 2, 3)},
    "Freq": ("frequency", "Hz"),
}

NOT_MEASURED = frozenset({"TotalStartTime", "Meter_Id"})


def _fail(field: str, message: str) -> AdapterError:
    return AdapterError(NAME, field, message)


def _document(payload: bytes) -> dict[str, Any]:
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise _fail("payload", "is not JSON") from exc
    if not isinstance(document, dict):
        raise _fail("payload", "is not a JSON object")
    return document


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not isinstance(value, float) or math.isfinite(value)


def _local_time(value: Any, field: str, zone: tzinfo) -> datetime:
    """A Tasmota time string, local to the device unless it carries an offset, in UTC."""
    if not isinstance(value, str):
        raise _fail(field, "is not a time string")
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise _fail(field, f"is not an ISO 8601 time: {value!r:.40}") from exc


def _values(section: str, key: str, value: Any) -> list[tuple[str, Any]]:
    """(stream suffix, number) pairs: a number, or one per channel of a multi-channel array."""
    if _is_number(value):
        return [("", value)]
    if isinstance(value, list) and value and all(_is_number(item) for item in value):
        return [(f"/{index}", item) for index, item in enumerate(value, start=1)]
    raise _fail(f"{section}.{key}", f"is not a number: {value!r:.40}")


def _section(name: str, block: dict[str, Any], table: Table) -> list[tuple[str, str, str | None, Any]]:
    """(stream, quantity, unit, value) for every measured key of one section."""
    rows: list[tuple[str, str, str | None, Any]] = []
    for key, value in block.items():
        if key in table:
            quantity, unit = table[key]
            rows.extend((key + suffix, quantity, unit, v) for suffix, v in _values(name, key, value))
        elif key not in NOT_MEASURED and _is_number(value):
            rows.append((f"{name}/{key}", "value", None, value))
    return rows


def _sml_device(name: str, block: dict[str, Any], device: str) -> str:
    meter = block.get("Meter_Id", device)
    if isinstance(meter, int) and not isinstance(meter, bool):
        meter = str(meter)
    if not isinstance(meter, str) or not meter:
        raise _fail(f"{name}.Meter_Id", "is not a meter id")
    return meter


def _sml_names(context: AdapterContext) -> frozenset[str]:
    names = context.options.get("sml_sections", DEFAULT_SML_SECTIONS)
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise _fail("options.sml_sections", "is not a list of section names")
    return frozenset(names)


def _energy_properties(block: dict[str, Any], zone: tzinfo) -> dict[str, Any]:
    if "TotalStartTime" not in block:
        return {}
    start = _local_time(block["TotalStartTime"], "ENERGY.TotalStartTime", zone)
    return {"total_start_time": start.isoformat()}


def _device(topic: str) -> str:
    levels = topic.split("/")
    if len(levels) < 3 or not levels[1]:
        raise _fail("topic", f"has no device level: {topic!r:.60}")
    return levels[1]


def _time(document: dict[str, Any], message: Message, zone: tzinfo) -> datetime:
    if "Time" not in document:
        raise _fail("Time", "is missing")
    moment = _local_time(document["Time"], "Time", zone)
    return message.received_at.astimezone(UTC) if moment < UNSYNCED_BEFORE else moment


def parse(message: Message, context: AdapterContext) -> list[Reading]:
    """Readings of one SENSOR telemetry message."""
    document = _document(message.payload)
    topic_device = _device(message.topic)
    when = instant(_time(document, message, context.timezone))
    sml_names = _sml_names(context)
    readings: list[Reading] = []
    for name, block in document.items():
        if not isinstance(block, dict):
            continue  # Time, TempUnit, ...
        if name == ENERGY_SECTION:
            device, table, properties = topic_device, ENERGY, _energy_properties(block, context.timezone)
        elif name in sml_names or any(key in SML for key in block):
            device, table, properties = _sml_device(name, block, topic_device), SML, {}
        else:
            continue
        readings.extend(
            Reading(NAME, device, quantity, value, unit, when, stream, device_properties=dict(properties))
            for stream, quantity, unit, value in _section(name, block, table)
        )
    return readings


ADAPTER = Adapter(
    name=NAME,
    topics=("tele/+/SENSOR",),
    parse=parse,
    description="Tasmota SENSOR telemetry: ENERGY and Smart Meter Interface (SML) sections",
)
