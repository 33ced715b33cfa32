# SPDX-License-Identifier: Apache-2.0
"""Shelly Gen2 RPC notifications (`{shelly-id}/events/rpc`) -> readings.

Only `NotifyStatus` and `NotifyFullStatus` frames carry measurements; other methods
(`NotifyEvent`, RPC responses) give no reading. A `NotifyStatus` frame carries only the keys
that changed since the last one, and a reading is made for each measured key present. The
adapter keeps no status in memory: re-emitting an unchanged value under a new time would claim
a measurement the device did not report. `aenergy.by_minute` is not mapped (minute buckets of
a counter that is already mapped as `aenergy.total`).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from adapters.base import Adapter, AdapterContext, AdapterError, Consumed, Message, instant
from schemas.reading import Reading

NAME = "shelly"
STATUS_METHODS = frozenset({"NotifyStatus", "NotifyFullStatus"})

# field path inside the component -> (quantity, UCUM unit)
Table = dict[str, tuple[str, str]]

SWITCH: Table = {
    "apower": ("active_power", "W"),
    "voltage": ("voltage", "V"),
    "current": ("current", "A"),
    "freq": ("frequency", "Hz"),
    "pf": ("power_factor", "1"),
    "aenergy.total": ("energy", "W.h"),
    "ret_aenergy.total": ("energy_returned", "W.h"),
    "temperature.tC": ("device_temperature", "Cel"),
}

EM1: Table = {
    "current": ("current", "A"),
    "voltage": ("voltage", "V"),
    "act_power": ("active_power", "W"),
    "aprt_power": ("apparent_power", "V.A"),
    "pf": ("power_factor", "1"),
    "freq": ("frequency", "Hz"),
}

EM: Table = {
    **{f"{phase}_{key}": spec for phase in "abc" for key, spec in EM1.items()},
    "n_current": ("current", "A"),
    "total_current": ("current", "A"),
    "total_act_power": ("active_power", "W"),
    "total_aprt_power": ("apparent_power", "V.A"),
}

EM1DATA: Table = {
    "total_act_energy": ("energy", "W.h"),
    "total_act_ret_energy": ("energy_returned", "W.h"),
}

EMDATA: Table = {
    **{f"{phase}_{key}": spec for phase in "abc" for key, spec in EM1DATA.items()},
    "total_act": ("energy", "W.h"),
    "total_act_ret": ("energy_returned", "W.h"),
}

# Sensor components (Plus/Gen3 H&T, the Plus add-on, Plus Smoke, ...)
TEMPERATURE: Table = {"tC": ("air_temperature", "Cel")}
HUMIDITY: Table = {"rh": ("relative_humidity", "%")}
DEVICEPOWER: Table = {"battery.V": ("battery_voltage", "V"), "battery.percent": ("battery", "%")}
ILLUMINANCE: Table = {"lux": ("illuminance", "lx")}
VOLTMETER: Table = {"voltage": ("analog_input", "V")}

# component type (the part of "switch:0" before the colon) -> its table
COMPONENTS: dict[str, Table] = {
    "temperature": TEMPERATURE,
    "humidity": HUMIDITY,
    "devicepower": DEVICEPOWER,
    "illuminance": ILLUMINANCE,
    "voltmeter": VOLTMETER,
    "switch": SWITCH,
    "pm1": SWITCH,
    "em": EM,
    "em1": EM1,
    "emdata": EMDATA,
    "em1data": EM1DATA,
}


def _fail(field: str, message: str) -> AdapterError:
    return AdapterError(NAME, field, message)


def _frame(payload: bytes) -> dict[str, Any]:
    try:
        frame = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise _fail("payload", "is not JSON") from exc
    if not isinstance(frame, dict):
        raise _fail("payload", "is not a JSON object")
    return frame


def _number(value: Any, field: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(field, f"is not a number: {value!r:.40}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(field, "is not finite")
    return value


def _timestamp(params: dict[str, Any]) -> datetime:
    if "ts" not in params:
        raise _fail("params.ts", "is missing")
    seconds = _number(params["ts"], "params.ts")
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise _fail("params.ts", "is out of range") from exc


def _lookup(status: dict[str, Any], path: str) -> Any:
    """The value at a dotted path, None when any level is absent."""
    value: Any = status
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _component(name: str, status: Any, device: str, when: tuple[datetime, datetime]) -> list[Reading]:
    table = COMPONENTS.get(name.partition(":")[0])
    if table is None:
        return []  # sys, wifi, input:0, ...: no measurements
    if not isinstance(status, dict):
        raise _fail(f"params.{name}", "is not a JSON object")
    readings = []
    for path, (quantity, unit) in table.items():
        value = _lookup(status, path)
        if value is None:  # absent (unchanged) or null (not measured, e.g. n_current)
            continue
        readings.append(
            Reading(
                adapter=NAME,
                device=device,
                quantity=quantity,
                value=_number(value, f"params.{name}.{path}"),
                unit=unit,
                phenomenon_time=when,
                stream=f"{name}/{path}",
            )
        )
    return readings


def parse(message: Message, context: AdapterContext) -> list[Reading]:
    """Readings of one RPC notification frame."""
    frame = _frame(message.payload)
    method = frame.get("method")
    if method is not None and not isinstance(method, str):
        raise _fail("method", "is not a string")
    if method not in STATUS_METHODS:
        raise Consumed(f"{method or 'RPC response'} carries no status")  # NotifyEvent, responses, ...
    device = frame.get("src")
    if not isinstance(device, str) or not device:
        raise _fail("src", "is not a device id")
    params = frame.get("params")
    if not isinstance(params, dict):
        raise _fail("params", "is not a JSON object")
    when = instant(_timestamp(params))
    readings: list[Reading] = []
    for name, status in params.items():
        readings.extend(_component(name, status, device, when))
    if not readings and not any(name.partition(":")[0] in COMPONENTS for name in params):
        raise Consumed("status of components that measure nothing (sys, wifi, input, ...)")
    return readings


ADAPTER = Adapter(
    name=NAME,
    topics=("+/events/rpc",),
    parse=parse,
    description="Shelly Gen2 RPC NotifyStatus frames (switch, pm1, em, em1, emdata, em1data)",
)
