# SPDX-License-Identifier: Apache-2.0
"""Home Assistant MQTT discovery configs -> the remembered entities the adapter reads states for.

HA's abbreviation table expanded (also inside `device`), `~` replaced in every `*_topic`, the
`value_template` checked by adapters.templates, the quantity from `device_class` (else the
template's JSON key through the field vocabulary), the unit through the unit table.
"""

from __future__ import annotations

from typing import Any

from adapters.base import AdapterError
from adapters.keys import term
from adapters.templates import TemplateError, compile_template, json_paths
from adapters.units import ucum

NAME = "home_assistant"

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


def expand(raw: dict[str, Any]) -> dict[str, Any]:
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


def _payload(config: dict[str, Any], key: str, default: str) -> str | bool:
    """payload_on/payload_off: a string, or a boolean as Zigbee2MQTT announces them."""
    value = config.get(key, default)
    if not isinstance(value, str | bool):
        raise _fail(key, "is not a string or a boolean")
    return value


def remembered(config: dict[str, Any], config_topic: str, component: str, object_id: str) -> dict[str, Any]:
    """The remembered form of one (expanded) discovery config."""
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
