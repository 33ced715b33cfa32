# SPDX-License-Identifier: Apache-2.0
"""Home Assistant MQTT discovery (as published by Zigbee2MQTT, ESPHome, ...) -> readings.

A discovery config (`homeassistant/<component>/[<node_id>/]<object_id>/config`) carries no
observation: it is read by adapters.ha_discovery (abbreviations expanded, `~` replaced, the
`value_template` checked, quantity and unit found) and remembered in `context.memory` as
`{state_topic: [entity, ...]}` (plain JSON, so the memory may be persisted); the message is
`Consumed`. An empty config payload removes the entity. Only `sensor` and `binary_sensor`
entities are remembered. A config whose template is outside the supported forms is rejected
when it arrives, naming the template, so it cannot take the other entities of its state topic
down with it later.

A message on a remembered state topic gives one reading per entity (pT = receive time), its
value_template evaluated by adapters.templates (never Jinja); a binary_sensor's state is a
boolean (`payload_on`/`payload_off`). An entity whose key is absent from the state is skipped;
if no entity could be read, that is an error naming the template of the first missing one.
"""

from __future__ import annotations

import json
import math
from typing import Any

from adapters.base import Adapter, AdapterContext, AdapterError, Consumed, Message, instant
from adapters.ha_discovery import expand, remembered
from adapters.templates import MISSING, TemplateError, compile_template, evaluate, parse_json
from schemas.reading import Reading

NAME = "home_assistant"
PREFIX = "homeassistant"
COMPONENTS = frozenset({"sensor", "binary_sensor"})


def _fail(field: str, message: str) -> AdapterError:
    return AdapterError(NAME, field, message)


def _config_topic(topic: str) -> tuple[str, str] | None:
    """(component, object_id) of a discovery topic, None for any other topic."""
    levels = topic.split("/")
    if levels[0] != PREFIX or levels[-1] != "config" or len(levels) not in (4, 5):
        return None
    return levels[1], levels[-2]


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
    entity = remembered(expand(raw), message.topic, component, object_id)
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
    remembered=lambda topic_filter: topic_filter.rsplit("/", 1)[-1] == "config",
)
