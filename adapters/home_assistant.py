# SPDX-License-Identifier: Apache-2.0
"""Home Assistant MQTT discovery (as published by Zigbee2MQTT, ESPHome, ...) -> readings.

A discovery config (`homeassistant/<component>/[<node_id>/]<object_id>/config`) carries no
observation: it is checked, its abbreviations expanded, and it is remembered in
`context.memory` as `{state_topic: [entity, ...]}` (plain JSON, so the memory may be persisted).
An empty config payload removes the entity. Only `sensor` and `binary_sensor` entities are
remembered. A config whose `value_template` is not a plain `{{ value_json.<path> }}` (or
`{{ value }}`) is rejected when it arrives, so it cannot take the other entities of its state
topic down with it later.

A message on a remembered state topic gives one reading per entity (pT = receive time). An
entity whose key is absent from the state is skipped; if no entity could be read, that is an
error naming the first missing path.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from adapters.base import Adapter, AdapterContext, AdapterError, Message, instant
from schemas.reading import Reading

NAME = "home_assistant"
PREFIX = "homeassistant"
COMPONENTS = frozenset({"sensor", "binary_sensor"})

ABBREVIATIONS = {
    "stat_t": "state_topic",
    "unit_of_meas": "unit_of_measurement",
    "val_tpl": "value_template",
    "uniq_id": "unique_id",
    "dev": "device",
    "dev_cla": "device_class",
    "stat_cla": "state_class",
    "obj_id": "object_id",
    "sug_dsp_prc": "suggested_display_precision",
}

DEVICE_ABBREVIATIONS = {
    "ids": "identifiers",
    "mf": "manufacturer",
    "mdl": "model",
    "mdl_id": "model_id",
    "sw": "sw_version",
    "hw": "hw_version",
    "sa": "suggested_area",
    "cns": "connections",
}

QUANTITIES = {
    "temperature": "air_temperature",
    "humidity": "relative_humidity",
    "pressure": "air_pressure",
    "atmospheric_pressure": "air_pressure",
    "battery": "battery",
    "power": "active_power",
    "apparent_power": "apparent_power",
    "reactive_power": "reactive_power",
    "power_factor": "power_factor",
    "energy": "energy",
    "voltage": "voltage",
    "current": "current",
    "frequency": "frequency",
    "illuminance": "illuminance",
    "carbon_dioxide": "co2",
    "co2": "co2",
    "pm10": "pm10",
    "pm25": "pm2_5",
    "nitrogen_dioxide": "no2",
    "signal_strength": "signal_strength",
}

UNITS = {
    "°C": "Cel",
    "%": "%",
    "hPa": "hPa",
    "Pa": "Pa",
    "W": "W",
    "kW": "kW",
    "Wh": "W.h",
    "kWh": "kW.h",
    "V": "V",
    "mV": "mV",
    "A": "A",
    "Hz": "Hz",
    "VA": "V.A",
    "var": "V.A",
    "lx": "lx",
    "ppm": "[ppm]",
    "µg/m³": "ug/m3",
    "dBm": "dB[mW]",
    "dB": "dB",
}

# {{ value }} or {{ value_json.a.b }} / {{ value_json['a'] }}; group "path" holds the accessors
TEMPLATE = re.compile(
    r"\{\{\s*(?:value|value_json(?P<path>(?:\.\w+|\[(?:'[^']*'|\"[^\"]*\"|\d+)\])+))\s*\}\}"
)
ACCESSOR = re.compile(r"\.(\w+)|\[(?:'([^']*)'|\"([^\"]*)\"|(\d+))\]")


def _fail(field: str, message: str) -> AdapterError:
    return AdapterError(NAME, field, message)


def _config_topic(topic: str) -> tuple[str, str] | None:
    """(component, object_id) of a discovery topic, None for any other topic."""
    levels = topic.split("/")
    if levels[0] != PREFIX or levels[-1] != "config" or len(levels) not in (4, 5):
        return None
    return levels[1], levels[-2]


def _expand(raw: dict[str, Any]) -> dict[str, Any]:
    config = {ABBREVIATIONS.get(key, key): value for key, value in raw.items()}
    device = config.get("device", {})
    if not isinstance(device, dict):
        raise _fail("device", "is not a JSON object")
    config["device"] = {DEVICE_ABBREVIATIONS.get(key, key): value for key, value in device.items()}
    base, topic = config.get("~"), config.get("state_topic")
    if isinstance(base, str) and isinstance(topic, str):  # "~" abbreviates a base topic
        if topic.startswith("~"):
            config["state_topic"] = base + topic[1:]
        elif topic.endswith("~"):
            config["state_topic"] = topic[:-1] + base
    return config


def _path(template: Any) -> list[str | int] | None:
    """The JSON path of a plain template; None for `{{ value }}` (the raw payload)."""
    if template is None:
        return None
    match = TEMPLATE.fullmatch(template.strip()) if isinstance(template, str) else None
    if match is None:
        raise _fail("value_template", f"is not supported (only plain value_json paths): {template!r:.60}")
    accessors = ACCESSOR.findall(match.group("path") or "")
    return [
        int(index) if index else dotted or single or double for dotted, single, double, index in accessors
    ]


def _text(config: dict[str, Any], key: str) -> str | None:
    value = config.get(key)
    if value is not None and not isinstance(value, str):
        raise _fail(key, "is not a string")
    return value


def _device_id(device: dict[str, Any], fallback: str) -> str:
    ids = device.get("identifiers", [])
    first = ids[0] if isinstance(ids, list) and ids else ids
    if isinstance(first, str) and first:
        return first
    if first in ([], None):
        return fallback
    raise _fail("device.identifiers", "is not a list of strings")


def _unit(config: dict[str, Any]) -> str | None:
    unit = _text(config, "unit_of_measurement")
    if unit is None:
        return None
    if unit not in UNITS:
        raise _fail("unit_of_measurement", f"has no UCUM mapping: {unit!r:.20}")
    return UNITS[unit]


def _entity(config: dict[str, Any], config_topic: str, object_id: str) -> dict[str, Any]:
    """The remembered form of one discovery config."""
    state_topic = _text(config, "state_topic")
    if not state_topic or any(char in state_topic for char in "+#"):
        raise _fail("state_topic", "is not a topic name")
    device = config["device"]
    stream = _text(config, "unique_id") or object_id
    properties = {
        k: device[k] for k in ("manufacturer", "model", "sw_version") if isinstance(device.get(k), str)
    }
    device_class = _text(config, "device_class")
    return {
        "config_topic": config_topic,
        "state_topic": state_topic,
        "path": _path(config.get("value_template")),
        "stream": stream,
        "device": _device_id(device, stream),
        "device_name": device.get("name") if isinstance(device.get("name"), str) else None,
        "device_properties": properties,
        "sensor_model": properties.get("model"),
        "quantity": QUANTITIES.get(device_class or "", "value"),
        "unit": _unit(config),
        "state_class": _text(config, "state_class"),
    }


def _forget(memory: dict[str, Any], config_topic: str) -> None:
    for state_topic in list(memory):
        entities = memory[state_topic]
        if isinstance(entities, list):
            kept = [e for e in entities if not isinstance(e, dict) or e.get("config_topic") != config_topic]
            if kept:
                memory[state_topic] = kept
            else:
                del memory[state_topic]


def _discover(message: Message, component: str, object_id: str, memory: dict[str, Any]) -> list[Reading]:
    _forget(memory, message.topic)
    if not message.payload.strip() or component not in COMPONENTS:
        return []  # removal, or an entity that observes nothing (switch, light, button, ...)
    raw = _json(message.payload)
    if not isinstance(raw, dict):
        raise _fail("payload", "is not a JSON object")
    entity = _entity(_expand(raw), message.topic, object_id)
    memory.setdefault(entity["state_topic"], []).append(entity)
    return []


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise _fail("payload", "is not JSON") from exc


def _raw_value(payload: bytes) -> Any:
    """`{{ value }}`: the payload as a number when it is one, else as text."""
    try:
        text = payload.decode()
    except UnicodeDecodeError as exc:
        raise _fail("payload", "is not UTF-8 text") from exc
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def _resolve(document: Any, path: list[Any]) -> tuple[bool, Any]:
    """(found, value) of a value_json path."""
    value = document
    for step in path:
        in_list = isinstance(step, int) and isinstance(value, list) and step < len(value)
        in_object = isinstance(step, str) and isinstance(value, dict) and step in value
        if not (in_list or in_object):
            return False, None
        value = value[step]
    return True, value


def _result(value: Any, field: str) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(field, "is not finite")
    if isinstance(value, dict | list):
        raise _fail(field, "is not a scalar state")
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return value


def _reading(entity: dict[str, Any], value: Any, message: Message) -> Reading:
    return Reading(
        adapter=NAME,
        device=entity["device"],
        quantity=entity["quantity"],
        value=value,
        unit=entity["unit"],
        phenomenon_time=instant(message.received_at),
        stream=entity["stream"],
        device_name=entity["device_name"],
        device_properties=dict(entity["device_properties"]),
        sensor_model=entity["sensor_model"],
        parameters={"state_class": entity["state_class"]} if entity["state_class"] else None,
    )


def _state(message: Message, entities: list[dict[str, Any]]) -> list[Reading]:
    document: Any = None
    if any(entity["path"] is not None for entity in entities):
        document = _json(message.payload)
    readings: list[Reading] = []
    missing: list[str] = []
    for entity in entities:
        if entity["path"] is None:
            readings.append(_reading(entity, _raw_value(message.payload), message))
            continue
        field = "value_json" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in entity["path"])
        found, value = _resolve(document, entity["path"])
        if not found:
            missing.append(field)
        elif value is not None:  # null: the device does not know the value yet
            readings.append(_reading(entity, _result(value, field), message))
    if missing and not readings:
        raise _fail(missing[0], "is missing from the state")
    return readings


def parse(message: Message, context: AdapterContext) -> list[Reading]:
    """Remember a discovery config, or read a state message of remembered entities."""
    discovery = _config_topic(message.topic)
    if discovery is not None:
        return _discover(message, *discovery, context.memory)
    entities = context.memory.get(message.topic)
    if not isinstance(entities, list) or not entities:
        raise _fail("topic", f"has no discovered config: {message.topic!r:.60}")
    return _state(message, entities)


def topics_to_subscribe(memory: dict[str, Any]) -> list[str]:
    """The state topics learnt from discovery configs, for the pipeline to subscribe to."""
    return sorted(topic for topic, entities in memory.items() if isinstance(entities, list) and entities)


ADAPTER = Adapter(
    name=NAME,
    topics=(f"{PREFIX}/+/+/config", f"{PREFIX}/+/+/+/config"),
    parse=parse,
    description="Home Assistant MQTT discovery configs and the state messages they describe",
)
