# SPDX-License-Identifier: Apache-2.0
"""Shelly Gen1 devices (`shellies/{device-id}/...`, one value per topic) -> readings.

Gen1 firmware (Shelly 1/1PM, 2.5, Plug S, EM, 3EM, H&T, Flood, Door/Window 2, Gas, Smoke,
Motion, Dimmer, RGBW2, add-on probes) publishes every value on its own topic as plain text:
`shellies/shellyem-AA8900/emeter/0/power` -> `34.42`. The topic says what the value is:

- relay/roller/light/white/color `<i>/power` in W; their `<i>/energy` counters are in
  **watt-minutes** (Shelly's unit) and are stored as W.h (divided by 60);
- emeter `<i>/power`, `reactive_power`, `voltage`, `current`, `pf`; `energy`/`returned_energy`
  in watt-minutes (stored as W.h), `total`/`total_returned` in W.h;
- `sensor/temperature|humidity|battery|lux|tilt|concentration`, `sensor/flood|smoke` (true or
  false), `sensor/state` (open or close), `ext_temperature/<i>`, `ext_humidity/<i>`, the device's
  own `temperature`, `voltage`, `adc/<i>`, and Shelly Motion's JSON `status`.

Gen1 values carry no timestamp: pT is the receive time. The sensor temperature is read in
Cel (the device's default; a device set to Fahrenheit publishes `temperature_f` topics only
for its own temperature, so a Fahrenheit H&T needs `adapter_options.shelly_gen1.fahrenheit`).
State, command, announce and settings topics carry no measurement and are consumed with their
reason; a topic under `shellies/` that is neither is rejected, naming it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from adapters.base import Adapter, AdapterContext, AdapterError, Consumed, Message, instant
from schemas.reading import Reading

NAME = "shelly_gen1"
WATT_MINUTES_PER_WH = 60

# topic after `shellies/{device}/`, with channel numbers as <i> -> (quantity, unit, scale)
Spec = tuple[str, str | None, float]
_CHANNELS = ("relay", "roller", "light", "white", "color")
MEASURES: dict[str, Spec] = {
    **{f"{kind}/<i>/power": ("active_power", "W", 1.0) for kind in _CHANNELS},
    **{f"{kind}/<i>/energy": ("energy", "W.h", 1 / WATT_MINUTES_PER_WH) for kind in _CHANNELS},
    "relay/power": ("active_power", "W", 1.0),  # single-meter devices (Shelly 2, 4Pro)
    "relay/energy": ("energy", "W.h", 1 / WATT_MINUTES_PER_WH),
    "emeter/<i>/power": ("active_power", "W", 1.0),
    "emeter/<i>/reactive_power": ("reactive_power", "V.A", 1.0),  # var: UCUM has none
    "emeter/<i>/voltage": ("voltage", "V", 1.0),
    "emeter/<i>/current": ("current", "A", 1.0),
    "emeter/<i>/pf": ("power_factor", "1", 1.0),
    "emeter/<i>/energy": ("energy", "W.h", 1 / WATT_MINUTES_PER_WH),
    "emeter/<i>/returned_energy": ("energy_returned", "W.h", 1 / WATT_MINUTES_PER_WH),
    "emeter/<i>/total": ("energy", "W.h", 1.0),
    "emeter/<i>/total_returned": ("energy_returned", "W.h", 1.0),
    "emeter_n/current": ("current", "A", 1.0),
    "emeter_n/ixsum": ("current", "A", 1.0),
    "temperature": ("device_temperature", "Cel", 1.0),
    "temperature_f": ("device_temperature", "[degF]", 1.0),
    "voltage": ("voltage", "V", 1.0),
    "adc/<i>": ("analog_input", "V", 1.0),
    "sensor/temperature": ("air_temperature", "Cel", 1.0),
    "sensor/humidity": ("relative_humidity", "%", 1.0),
    "sensor/battery": ("battery", "%", 1.0),
    "sensor/lux": ("illuminance", "lx", 1.0),
    "sensor/tilt": ("value", "deg", 1.0),
    "sensor/concentration": ("value", "[ppm]", 1.0),  # Shelly Gas: LPG/methane
    "ext_temperature/<i>": ("temperature", "Cel", 1.0),
    "ext_temperature_f/<i>": ("temperature", "[degF]", 1.0),
    "ext_humidity/<i>": ("relative_humidity", "%", 1.0),
}
# topics holding true/false (or open/close) -> quantity
BINARY: dict[str, str] = {"sensor/flood": "leak", "sensor/smoke": "value", "sensor/state": "contact_state"}
TRUE_WORDS = frozenset({"true", "1", "open", "on"})
FALSE_WORDS = frozenset({"false", "0", "close", "closed", "off"})
# Shelly Motion's `status` JSON: key -> (quantity, unit)
MOTION_STATUS: dict[str, tuple[str, str | None]] = {
    "motion": ("presence", None),
    "lux": ("illuminance", "lx"),
    "bat": ("battery", "%"),
}
# topics (after the device) that carry no measurement: states, events, commands, metadata
NOT_MEASURED = re.compile(
    r"(?:command|announce|info|settings|online|overtemperature|overpower|overload|loaderror"
    r"|temperature_status|relay/[0-9]+|roller/[0-9]+(?:/pos|/stop_reason)?|light/[0-9]+(?:/status)?"
    r"|white/[0-9]+(?:/status)?|color/[0-9]+(?:/status)?|input/[0-9]+|input_event/[0-9]+"
    r"|longpush/[0-9]+|ext_switch/[0-9]+|relay/[0-9]+/overpower_value|light/[0-9]+/overpower_value"
    r"|sensor/(?:act_reasons|error|ext_power|charger|operation|gas|self_test|vibration|mute|unmute"
    r"|start_self_test)|valve/.*|thermostat/.*|.*/command(?:/.*)?|.*/set)"
)


def _fail(field: str, message: str) -> AdapterError:
    return AdapterError(NAME, field, message)


def _shape(rest: str) -> str:
    """`emeter/1/power` -> `emeter/<i>/power`, `adc/0` -> `adc/<i>`."""
    parts = rest.split("/")
    return "/".join("<i>" if part.isdigit() else part for part in parts)


def _text(payload: bytes) -> str:
    try:
        return payload.decode().strip()
    except UnicodeDecodeError as exc:
        raise _fail("payload", "is not UTF-8 text") from exc


def _number(text: str, topic: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _fail("payload", f"{topic} holds {text[:40]!r}, not a number") from None
    if not math.isfinite(value):
        raise _fail("payload", f"{topic} holds a value that is not finite")
    return value


def _binary(text: str, topic: str) -> bool:
    word = text.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise _fail("payload", f"{topic} holds {text[:40]!r}, not true/false or open/close")


def _motion(payload: bytes, device: str, message: Message) -> list[Reading]:
    try:
        status = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise _fail("payload", "status is not JSON") from exc
    if not isinstance(status, dict):
        raise _fail("payload", "status is not a JSON object")
    readings = []
    for key, (quantity, unit) in MOTION_STATUS.items():
        value = status.get(key)
        if isinstance(value, dict):  # Motion 2 firmware nests {"value": n}
            value = value.get("value")
        if value is None:
            continue
        if quantity == "presence":
            if not isinstance(value, bool):
                raise _fail(f"status.{key}", "is not true/false")
        elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise _fail(f"status.{key}", f"is not a number: {value!r:.40}")
        readings.append(_reading(device, quantity, value, unit, f"status/{key}", message))
    if not readings:
        raise Consumed("a status without motion, lux or battery")
    return readings


def _reading(
    device: str, quantity: str, value: Any, unit: str | None, stream: str, message: Message
) -> Reading:
    return Reading(
        adapter=NAME,
        device=device,
        quantity=quantity,
        value=value,
        unit=unit,
        phenomenon_time=instant(message.received_at),
        stream=stream,
    )


def _fahrenheit(context: AdapterContext) -> bool:
    setting = context.options.get("fahrenheit", False)
    if not isinstance(setting, bool):
        raise _fail("adapter_options.shelly_gen1.fahrenheit", "is not true or false")
    return setting


def parse(message: Message, context: AdapterContext) -> list[Reading]:
    """The reading of one Gen1 topic's value."""
    levels = message.topic.split("/")
    if len(levels) < 3 or levels[0] != "shellies":
        if len(levels) == 2 and levels[0] == "shellies":
            raise Consumed(f"shellies/{levels[1]} is an announcement or a command, not a measurement")
        raise _fail("topic", f"{message.topic} is not shellies/<device>/<value>")
    device, rest = levels[1], "/".join(levels[2:])
    if not device:
        raise _fail("topic", "names no device")
    shape = _shape(rest)
    spec = MEASURES.get(shape)
    if spec is not None:
        quantity, unit, scale = spec
        if shape == "sensor/temperature" and _fahrenheit(context):
            unit = "[degF]"
        value = _number(_text(message.payload), rest) * scale
        return [_reading(device, quantity, value, unit, rest, message)]
    if rest in BINARY:
        return [_reading(device, BINARY[rest], _binary(_text(message.payload), rest), None, rest, message)]
    if rest == "status":
        return _motion(message.payload, device, message)
    if NOT_MEASURED.fullmatch(rest):
        raise Consumed(f"{rest} is a state, event, command or metadata topic, not a measurement")
    raise _fail("topic", f"{rest} is not a Shelly Gen1 measurement topic this adapter knows")


ADAPTER = Adapter(
    name=NAME,
    topics=("shellies/#",),
    parse=parse,
    description="Shelly Gen1 devices: one plain value per shellies/<device>/... topic (energy in Wmin -> Wh)",
)
