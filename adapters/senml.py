# SPDX-License-Identifier: Apache-2.0
"""SenML JSON packs (RFC 8428, units from RFC 8798) -> readings.

Base fields (`bn`, `bt`, `bu`, `bv`, `bs`) apply to their record and every later one until
replaced. The Thing is the base name without its trailing separator (`urn:dev:mac:…:` ->
`urn:dev:mac:…`); a pack without `bn` names its device by the topic below `senml/`. The record
name `n` picks the quantity (an unknown name: the quantity of its unit's dimension, else `value`)
and is the stream. A resolved time
below 2**28 is relative to the receive time. `s` (sum) is a cumulative counter: a sum of a
power (`W`, RFC 8428: unit x seconds) becomes `W.h`, an energy-unit sum (`Wh`) stays as it is.
`vb`/`vs`/`vd` give boolean/string results without unit.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.base import Adapter, AdapterContext, AdapterError, Message, instant
from adapters.keys import QUANTITY_OF_DIMENSION, term
from adapters.units import DIMENSIONS
from schemas.reading import Reading

NAME = "senml"
RELATIVE_LIMIT = 2**28  # RFC 8428 §4.5.3: smaller resolved times are relative to "now"
VALID_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9:./_-]*")
SEPARATORS = ":/._-"

# SenML unit -> UCUM code
UNITS: dict[str, str] = {
    "Cel": "Cel",
    "%RH": "%",
    "%": "%",
    "%EL": "%",
    "/": "1",
    "ppm": "[ppm]",
    "ug/m3": "ug/m3",
    "Pa": "Pa",
    "lx": "lx",
    "W": "W",
    "kW": "kW",
    "VA": "V.A",
    "Wh": "W.h",
    "kWh": "kW.h",
    "V": "V",
    "mV": "mV",
    "A": "A",
    "Hz": "Hz",
    "dB": "dB",
    "dBm": "dB[mW]",
    "km/h": "km/h",
    "count": "{count}",
}

# A sum is in "unit x seconds" (RFC 8428 §4.2): power sums become energies.
SUM_UNITS: dict[str, tuple[str, float]] = {"W": ("W.h", 3600.0), "kW": ("kW.h", 3600.0)}
ENERGY_UNITS = frozenset({"W.h", "kW.h"})

# record name (lower case) -> quantity
QUANTITY_BY_NAME: dict[str, str] = {
    "temperature": "air_temperature",
    "temp": "air_temperature",
    "humidity": "relative_humidity",
    "pressure": "air_pressure",
    "co2": "co2",
    "no2": "no2",
    "pm10": "pm10",
    "pm2.5": "pm2_5",
    "pm25": "pm2_5",
    "pm2_5": "pm2_5",
    "light": "illuminance",
    "illuminance": "illuminance",
    "motion": "motion",
    "power": "active_power",
    "apparent-power": "apparent_power",
    "reactive-power": "reactive_power",
    "power-factor": "power_factor",
    "voltage": "voltage",
    "current": "current",
    "frequency": "frequency",
    "energy": "energy",
    "battery": "battery",
    "battery-voltage": "battery_voltage",
    "rssi": "signal_strength",
    "snr": "signal_to_noise",
}


@dataclass
class _Base:
    """The base fields in force for the current record."""

    name: str = ""
    time: float = 0
    unit: str | None = None
    value: float = 0
    sum: float = 0


def _fail(field: str, message: str) -> AdapterError:
    return AdapterError(NAME, field, message)


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(field, "is not a number")
    try:
        finite = math.isfinite(value)
    except OverflowError:
        finite = False
    if not finite:
        raise _fail(field, "is not a finite number")
    return value


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise _fail(field, "is not a string")
    return value


# base label -> (attribute of _Base, check)
BASE_FIELDS = {
    "bn": ("name", _text),
    "bt": ("time", _number),
    "bu": ("unit", _text),
    "bv": ("value", _number),
    "bs": ("sum", _number),
    "bver": (None, _number),
}


def _decode(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):
        raise _fail("payload", "is not JSON") from None


def _update_base(base: _Base, record: dict[str, Any], at: str) -> None:
    for label, (attribute, check) in BASE_FIELDS.items():
        if label in record:
            value = check(record[label], f"{at}.{label}")
            if attribute:
                setattr(base, attribute, value)
    for label in record:
        if label.endswith("_"):  # RFC 8428 §4.4: must-understand extension
            raise _fail(f"{at}.{label}", "is an extension this adapter does not understand")


def _names(base_name: str, name: str, topic: str, at: str) -> tuple[str, str]:
    """(device, measurement name) of a record."""
    resolved = base_name + name
    if not VALID_NAME.fullmatch(resolved):
        raise _fail(f"{at}.n", f"resolves to an invalid SenML name {resolved[:64]!r}")
    if not base_name:
        return topic.partition("/")[2] or topic, name
    if len(base_name) > 1 and base_name[-1] in SEPARATORS:
        return base_name[:-1], name
    return base_name, name


def _time(resolved: float, received_at: datetime, at: str) -> datetime:
    try:
        if resolved < RELATIVE_LIMIT:
            return received_at.astimezone(UTC) + timedelta(seconds=resolved)
        return datetime.fromtimestamp(resolved, UTC)
    except (OverflowError, ValueError, OSError):
        raise _fail(f"{at}.t", "resolves to a time out of range") from None


def _value(record: dict[str, Any], base: _Base, at: str) -> tuple[Any, bool] | None:
    """The record's one value and whether it is a number, or None without a value."""
    present = [label for label in ("v", "vs", "vb", "vd") if label in record]
    if len(present) > 1:
        raise _fail(at, f"has more than one value ({', '.join(present)})")
    if not present:
        return None
    label = present[0]
    raw = record[label]
    if label == "v":
        value = _number(raw, f"{at}.v")
        return (_number(value + base.value, f"{at}.v") if base.value else value), True
    if label == "vb":
        if not isinstance(raw, bool):
            raise _fail(f"{at}.vb", "is not a boolean")
        return raw, False
    return _text(raw, f"{at}.{label}"), False


def _unit(code: str | None, at: str) -> str | None:
    if code is None:
        return None
    if code not in UNITS:
        raise _fail(f"{at}.u", f"is an unknown SenML unit {code[:32]!r}")
    return UNITS[code]


def _sum(record: dict[str, Any], base: _Base, code: str | None, at: str) -> tuple[float, str | None] | None:
    """The record's sum (plus base sum) and its UCUM unit, or None without a sum."""
    if "s" not in record:
        return None
    total = _number(_number(record["s"], f"{at}.s") + base.sum, f"{at}.s")
    if code in SUM_UNITS:
        unit, seconds = SUM_UNITS[code]
        return total / seconds, unit
    return total, _unit(code, at)


def _vocabulary_quantity(measurement: str) -> str:
    """The quantity the field vocabulary gives a record name (`urn:dev:ow:...:voltage`)."""
    found = term(measurement)
    return found.quantity if found is not None else "value"


def _stream(measurement: str, quantity: str) -> str | None:
    return measurement if measurement and measurement != quantity else None


def _record_readings(record: dict[str, Any], base: _Base, message: Message, at: str) -> list[Reading]:
    device, measurement = _names(base.name, _text(record.get("n", ""), f"{at}.n"), message.topic, at)
    code = _text(record["u"], f"{at}.u") if "u" in record else base.unit
    offset = _number(record["t"], f"{at}.t") if "t" in record else 0
    moment = instant(_time(_number(base.time + offset, f"{at}.t"), message.received_at, at))
    value, total = _value(record, base, at), _sum(record, base, code, at)
    if value is None and total is None:
        raise _fail(at, "has neither a value nor a sum")
    quantity = QUANTITY_BY_NAME.get(measurement.lower()) or _vocabulary_quantity(measurement)
    readings: list[Reading] = []
    if value is not None:
        result, numeric = value
        unit = _unit(code, at) if numeric else None
        if quantity == "value" and unit is not None:  # an unknown name: the unit tells the quantity
            quantity = QUANTITY_OF_DIMENSION.get(DIMENSIONS.get(unit, ""), "value")
        readings.append(
            Reading(NAME, device, quantity, result, unit, moment, stream=_stream(measurement, quantity))
        )
    if total is not None:
        result, unit = total
        sum_quantity = "energy" if unit in ENERGY_UNITS else quantity
        name = f"{measurement}_sum" if value is not None else measurement
        readings.append(
            Reading(NAME, device, sum_quantity, result, unit, moment, stream=_stream(name, sum_quantity))
        )
    return readings


def parse(message: Message, context: AdapterContext) -> list[Reading]:
    """A SenML JSON pack -> one reading per record value and per record sum."""
    pack = _decode(message.payload)
    if not isinstance(pack, list):
        raise _fail("payload", "is not a SenML pack (JSON array)")
    base = _Base()
    readings: list[Reading] = []
    for index, record in enumerate(pack):
        at = f"[{index}]"
        if not isinstance(record, dict):
            raise _fail(at, "is not a SenML record (JSON object)")
        _update_base(base, record, at)
        readings.extend(_record_readings(record, base, message, at))
    return readings


ADAPTER = Adapter(
    name=NAME,
    topics=("senml/#",),
    parse=parse,
    description="SenML JSON packs (RFC 8428): base name/time/unit/value/sum, relative times",
)
