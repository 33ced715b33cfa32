# SPDX-License-Identifier: Apache-2.0
"""Home Assistant MQTT discovery (as published by Zigbee2MQTT, ESPHome, ...) -> readings.

A discovery config (`homeassistant/<component>/[<node_id>/]<object_id>/config`) carries no
observation: it is checked, its abbreviations expanded, and it is remembered in
`context.memory` as `{state_topic: [entity, ...]}` (plain JSON, so the memory may be persisted).
An empty config payload removes the entity. Only `sensor` and `binary_sensor` entities are
remembered. Abbreviated keys (HA's abbreviation table) are expanded and `~` is replaced in every
`*_topic`. The `value_template` is compiled by adapters.templates (`value_json.x`,
`value_json['x']`, `value`, filters `float`/`int`/`round(n)`/`abs`, arithmetic); any other
template is rejected when its config arrives, naming the template, so it cannot take the other
entities of its state topic down with it later. The quantity comes from `device_class`, else
from the template's JSON key through the field vocabulary; the unit from
`unit_of_measurement` through the unit table (an unknown unit is kept in the Datastream's
properties and stated as unknown). A binary_sensor's state is a boolean (`payload_on`/`_off`).

A message on a remembered state topic gives one reading per entity (pT = receive time). An
entity whose key is absent from the state is skipped; if no entity could be read, that is an
error naming the first missing path.
"""

from __future__ import annotations

import json
import math
from typing import Any

from adapters.base import Adapter, AdapterContext, AdapterError, Consumed, Message, instant
from adapters.keys import term
from adapters.templates import MISSING, TemplateError, compile_template, evaluate, json_paths, parse_json
from adapters.units import ucum
from schemas.reading import Reading

NAME = "home_assistant"
PREFIX = "homeassistant"
COMPONENTS = frozenset({"sensor", "binary_sensor"})

ABBREVIATIONS = {
    "stat_t": "state_topic",
    "avty_t": "availability_topic",
    "json_attr_t": "json_attributes_topic",
    "json_attr_tpl": "json_attributes_template",
    "exp_aft": "expire_after",
    "frc_upd": "force_update",
    "ent_cat": "entity_category",
    "ic": "icon",
    "pl_on": "payload_on",
    "pl_off": "payload_off",
    "pl_avail": "payload_available",
    "pl_not_avail": "payload_not_available",
    "en": "enabled_by_default",
    "def_ent_id": "default_entity_id",
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
    "sn": "serial_number",
    "cu": "configuration_url",
    "via_dev": "via_device",
}

# device_class -> quantity (HA's sensor and binary_sensor device classes)
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
    "carbon_monoxide": "co",
    "ozone": "o3",
    "pm1": "pm1",
    "pm10": "pm10",
    "pm25": "pm2_5",
    "nitrogen_dioxide": "no2",
    "volatile_organic_compounds": "tvoc",
    "volatile_organic_compounds_parts": "tvoc",
    "signal_strength": "signal_strength",
    "distance": "distance",
    "speed": "speed",
    "wind_speed": "wind_speed",
    "precipitation": "rainfall",
    "precipitation_intensity": "rainfall",
    "moisture": "soil_moisture",
    "water": "water_volume",
    "gas": "gas_volume",
    "sound_pressure": "sound_level",
    "ph": "ph",
    "motion": "presence",
    "occupancy": "presence",
    "presence": "presence",
    "door": "contact_state",
    "window": "contact_state",
    "opening": "contact_state",
}
BINARY_QUANTITIES = {"moisture": "leak"}  # a binary moisture sensor detects leaks


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
    base = config.get("~")
    if isinstance(base, str):  # "~" abbreviates a base topic in every *_topic option
        for key, topic in list(config.items()):
            if key.endswith("_topic") and isinstance(topic, str):
                if topic.startswith("~"):
                    config[key] = base + topic[1:]
                elif topic.endswith("~"):
                    config[key] = topic[:-1] + base
    return config


def _template(template: Any) -> str | None:
    """The value_template, checked to be a supported form; None for the raw payload."""
    if template is None:
        return None
    if not isinstance(template, str):
        raise _fail("value_template", "is not a string")
    try:
        compile_template(template)
    except TemplateError as error:
        raise _fail("value_template", f"is not supported ({error}): {template!r:.80}") from None
    return template


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


def _unit(config: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The UCUM unit, and the Datastream properties keeping a unit the table does not know."""
    unit = _text(config, "unit_of_measurement")
    if unit is None or not unit.strip():
        return None, {}
    code = ucum(unit)
    return code, ({} if code is not None else {"unit_of_measurement": unit})


def _quantity(config: dict[str, Any], component: str, template: str | None) -> str:
    """From device_class, else from the template's JSON key through the vocabulary."""
    device_class = _text(config, "device_class") or ""
    if component == "binary_sensor" and device_class in BINARY_QUANTITIES:
        return BINARY_QUANTITIES[device_class]
    if device_class in QUANTITIES:
        return QUANTITIES[device_class]
    paths = json_paths(compile_template(template)) if template else []
    keys = [step for step in paths[0] if isinstance(step, str)] if paths else []
    found = term(keys[-1]) if keys else None
    return found.quantity if found is not None else "value"


def _entity(config: dict[str, Any], config_topic: str, component: str, object_id: str) -> dict[str, Any]:
    """The remembered form of one discovery config."""
    state_topic = _text(config, "state_topic")
    if not state_topic or any(char in state_topic for char in "+#"):
        raise _fail("state_topic", "is not a topic name")
    device = config["device"]
    stream = _text(config, "unique_id") or object_id
    properties = {
        k: device[k] for k in ("manufacturer", "model", "sw_version") if isinstance(device.get(k), str)
    }
    template = _template(config.get("value_template"))
    unit, stream_properties = _unit(config)
    binary = component == "binary_sensor"
    return {
        "config_topic": config_topic,
        "state_topic": state_topic,
        "template": template,
        "stream": stream,
        "device": _device_id(device, stream),
        "device_name": device.get("name") if isinstance(device.get("name"), str) else None,
        "device_properties": properties,
        "sensor_model": properties.get("model"),
        "quantity": _quantity(config, component, template),
        "unit": None if binary else unit,
        "state_class": _text(config, "state_class"),
        "stream_properties": stream_properties,
        "payload_on": _payload(config, "payload_on", "ON") if binary else None,
        "payload_off": _payload(config, "payload_off", "OFF") if binary else None,
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
        # removal, or an entity that observes nothing (switch, light, button, ...)
        raise Consumed("discovery config removed" if not message.payload.strip() else "not a sensor")
    raw = _json(message.payload)
    if not isinstance(raw, dict):
        raise _fail("payload", "is not a JSON object")
    entity = _entity(_expand(raw), message.topic, component, object_id)
    memory.setdefault(entity["state_topic"], []).append(entity)
    raise Consumed("discovery config remembered")


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


def _payload(config: dict[str, Any], key: str, default: str) -> str | bool:
    """payload_on/payload_off: a string, or a boolean as Zigbee2MQTT announces them."""
    value = config.get(key, default)
    if not isinstance(value, str | bool):
        raise _fail(key, "is not a string or a boolean")
    return value


def _binary(entity: dict[str, Any], value: Any) -> Any:
    """A binary_sensor's state as a boolean when it is payload_on/payload_off."""
    for key, truth in (("payload_on", True), ("payload_off", False)):
        expected = entity.get(key)
        if value == expected or (not isinstance(value, bool) and str(value) == str(expected)):
            return truth
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
        stream_properties=dict(entity.get("stream_properties") or {}),
    )


def _value(entity: dict[str, Any], text: str, document: Any) -> Any:
    """The entity's value of one state message (MISSING when its key is absent)."""
    template = entity.get("template")
    if template is None:
        return _raw_value(text.encode())
    try:
        value = evaluate(compile_template(template), text, document)
    except TemplateError as error:
        raise _fail("value_template", f"{error}: {template!r:.80}") from None
    if value is MISSING:
        return MISSING
    return _result(value, "value_template") if value is not None else None


def _state(message: Message, entities: list[dict[str, Any]]) -> list[Reading]:
    try:
        text = message.payload.decode()
    except UnicodeDecodeError as exc:
        raise _fail("payload", "is not UTF-8 text") from exc
    document = parse_json(text)
    readings: list[Reading] = []
    missing: list[str] = []
    for entity in entities:
        value = _value(entity, text, document)
        if value is MISSING:
            missing.append(str(entity.get("template")))
        elif value is not None:  # null: the device does not know the value yet
            if entity.get("payload_on") is not None:
                value = _binary(entity, value)
            readings.append(_reading(entity, value, message))
    if missing and not readings:
        raise _fail("value_template", f"reads a key missing from the state: {missing[0]!r:.80}")
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
