# SPDX-License-Identifier: Apache-2.0
"""Tasmota telemetry (`tele/{topic}/SENSOR`) -> readings.

Every section is read. `ENERGY` (power monitoring) by its table. Smart Meter Interface blocks,
whose name comes from the user's meter script (`SML` by default; more names through the option
`sml_sections`; any section holding a known SML key or a `Meter_Id` counts as one), are the
meter's own Thing: the usual OBIS-style names by the table (`Total_in`, `E_out`, `Power_curr`,
`P`, per-phase values; negative powers are feed-in), the rest through the field vocabulary,
each stream named by its key. Sensor blocks (`BME280`, `DS18B20-1`, `SHT3X`, `SCD30`, `SR04`,
...) through the field vocabulary, each value a stream `<block>/<key>` (a probe with an `Id`:
`<type>:<Id>/<key>`, so that re-numbered probes keep their streams), temperatures in `TempUnit`,
pressures in `PressureUnit`, speeds in `SpeedUnit`. `ANALOG` and `COUNTER` name an input, not a
sensor: `ANALOG.Temperature1` is a thermistor's temperature, `ANALOG.A0` a raw ADC reading,
`COUNTER.C1` a pulse count. Unknown numeric keys become quantity "value" with stream
"<section>/<key>".

`Time` is device-local time without offset; it is read in `context.timezone` (an explicit
offset, `SetOption52`, wins). Before NTP sync Tasmota reports 1970: such a time falls back to
the message's receive time.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, tzinfo
from typing import Any

from adapters.base import Adapter, AdapterContext, AdapterError, Message, instant
from adapters.keys import UNKNOWN, Term, measurement
from adapters.units import DIMENSIONS, ucum
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
    "E_in": ("energy", "kW.h"),  # OBIS 1.8.0
    "E_out": ("energy_returned", "kW.h"),  # OBIS 2.8.0
    "Verbrauch": ("energy", "kW.h"),
    "Einspeisung": ("energy_returned", "kW.h"),
    "Power_curr": ("active_power", "W"),  # OBIS 16.7.0; negative: feed-in
    "P": ("active_power", "W"),
    "Leistung": ("active_power", "W"),
    **{f"power_l{n}": ("active_power", "W") for n in (1, 2, 3)},
    **{f"voltage_l{n}": ("voltage", "V") for n in (1, 2, 3)},
    **{f"current_l{n}": ("current", "A") for n in (1, 2, 3)},
    "Freq": ("frequency", "Hz"),
}

NOT_MEASURED = frozenset({"TotalStartTime", "Meter_Id", "Id"})

# Units of a Tasmota sensor key beyond the vocabulary's defaults: (block type, key) -> UCUM
BLOCK_UNITS: dict[tuple[str, str], str] = {
    ("SR04", "Distance"): "cm",  # ultrasonic ranging reports centimetres
    ("VL53L0X", "Distance"): "mm",
    ("VL53L1X", "Distance"): "mm",
}
# Blocks whose name is a bus, not a sensor: their keys are not qualified by the block's name
# (`ANALOG.Temperature1` is an NTC thermistor's temperature, not an analog voltage).
UNQUALIFIED_BLOCKS = frozenset({"ANALOG", "COUNTER"})
COUNTER_KEY = re.compile(r"C[0-9]+")  # COUNTER.C1: pulses counted on counter input 1
# The unit settings of the document (SetOption8, PressureUnit, SpeedUnit) by dimension
UNIT_SETTINGS = {"temperature": "TempUnit", "pressure": "PressureUnit", "speed": "SpeedUnit"}
SETTING_UNITS: dict[str, str] = {
    "C": "Cel",
    "F": "[degF]",
    "K": "K",
    "km/h": "km/h",
    "kn": "[kn_i]",
    "ft/s": "[ft_i]/s",
    "yd/s": "[yd_i]/s",
}


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


Row = tuple[str, str, str | None, Any, dict[str, Any]]  # stream, quantity, unit, value, properties


def _section(name: str, block: dict[str, Any], table: Table) -> list[Row]:
    """Rows of ENERGY or SML: the table's keys named by the key, the rest through the vocabulary."""
    rows: list[Row] = []
    for key, value in block.items():
        if key in table:
            quantity, unit = table[key]
            rows.extend((key + suffix, quantity, unit, v, {}) for suffix, v in _values(name, key, value))
        elif key not in NOT_MEASURED and (measured := measurement(key, value)) is not None:
            found, number = measured
            stream = key if found is not UNKNOWN else f"{name}/{key}"
            rows.append((stream, found.quantity, found.unit, number, {}))
    return rows


def _setting_unit(found: Term, settings: dict[str, str]) -> Term:
    """The term in the unit the document's TempUnit/PressureUnit/SpeedUnit says."""
    setting = UNIT_SETTINGS.get(DIMENSIONS.get(found.unit or "", ""))
    stated = settings.get(setting or "")
    if stated is None:
        return found
    unit = SETTING_UNITS.get(stated) or ucum(stated)
    if unit is None:
        raise _fail(setting or "", f"is not a known unit: {stated!r:.20}")
    return Term(found.quantity, unit)


def _sensor(name: str, block: dict[str, Any], settings: dict[str, str]) -> list[Row]:
    """Rows of one sensor block: each numeric key through the vocabulary, in the document's units."""
    kind = name.split("-", 1)[0]
    probe = block.get("Id")
    prefix = f"{kind}:{probe}" if isinstance(probe, str | int) and not isinstance(probe, bool) else name
    extra = {"sensor": kind, **({"sensor_id": str(probe)} if prefix != name else {})}
    rows: list[Row] = []
    for key, value in block.items():
        if key in NOT_MEASURED or isinstance(value, dict):
            continue
        measured = measurement(key, value)
        if measured is None:
            continue
        if kind == "COUNTER" and COUNTER_KEY.fullmatch(key) and measured[0] is UNKNOWN:
            measured = Term("pulse_count", "{count}"), measured[1]
        elif measured[0] is not UNKNOWN and kind not in UNQUALIFIED_BLOCKS:
            # the block qualifies a known key (a DS18B20 is a probe)
            measured = measurement(f"{kind}_{key}", value) or measured
        found, number = measured
        if (kind, key) in BLOCK_UNITS:
            found = Term(found.quantity, BLOCK_UNITS[kind, key])
        rows.append((f"{prefix}/{key}", found.quantity, found.unit, number, extra))
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


def _settings(document: dict[str, Any]) -> dict[str, str]:
    return {key: value for key in UNIT_SETTINGS.values() if isinstance(value := document.get(key), str)}


def _is_sml(name: str, block: dict[str, Any], sml_names: frozenset[str]) -> bool:
    return name in sml_names or "Meter_Id" in block or any(key in SML for key in block)


def parse(message: Message, context: AdapterContext) -> list[Reading]:
    """Readings of one SENSOR telemetry message."""
    document = _document(message.payload)
    topic_device = _device(message.topic)
    when = instant(_time(document, message, context.timezone))
    sml_names = _sml_names(context)
    settings = _settings(document)
    readings: list[Reading] = []
    for name, block in document.items():
        if not isinstance(block, dict):
            continue  # Time, TempUnit, Switch1, ...
        properties: dict[str, Any] = {}
        if name == ENERGY_SECTION:
            device, properties = topic_device, _energy_properties(block, context.timezone)
            rows = _section(name, block, ENERGY)
        elif _is_sml(name, block, sml_names):
            device, rows = _sml_device(name, block, topic_device), _section(name, block, SML)
        else:
            device, rows = topic_device, _sensor(name, block, settings)
        for stream, quantity, unit, value, extra in rows:
            if unit is not None and quantity != "value":
                found = _setting_unit(Term(quantity, unit), settings)
                unit = found.unit
            readings.append(
                Reading(
                    NAME,
                    device,
                    quantity,
                    value,
                    unit,
                    when,
                    stream,
                    device_properties=dict(properties),
                    stream_properties=dict(extra),
                )
            )
    return readings


ADAPTER = Adapter(
    name=NAME,
    topics=("tele/+/SENSOR",),
    parse=parse,
    description="Tasmota SENSOR telemetry: ENERGY, Smart Meter Interface (SML) and sensor blocks",
)
