# SPDX-License-Identifier: Apache-2.0
"""A declarative JSON mapping, configured without code (`context.options`):

    {"mappings": [{
        "topic": "city/{device}/weather",        # {name} matches within one topic level
        "device": "{device}",                    # a template over the topic's names, or a JSON pointer
        "readings": [{"pointer": "/temp", "quantity": "air_temperature", "unit": "Cel",
                      "scale": 0.1, "offset": 0, "stream": "temp"}],
        "time": "/ts", "time_format": "unix"     # unix | unix_ms | iso; no time: receive time
    }]}

Pointers are RFC 6901. The first mapping whose topic matches is used. A value of null gives
no reading; a scaled value must be a number (or a numeric string). An ISO time without an
offset is read in `context.timezone`. `check_options` validates options up front.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, tzinfo
from typing import Any

from adapters.base import Adapter, AdapterContext, AdapterError, Message, instant
from adapters.vocabulary import QUANTITIES, UNITS
from schemas.reading import Reading

NAME = "generic"
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
TIME_FORMATS = {"unix": 1.0, "unix_ms": 1000.0, "iso": 0.0}  # -> units per second (0: a string)
MAPPING_KEYS = frozenset({"topic", "device", "readings", "time", "time_format"})
READING_KEYS = frozenset({"pointer", "quantity", "unit", "scale", "offset", "stream"})
MISSING = object()


# --- options -----------------------------------------------------------------


def _require(condition: bool, key: str, problem: str) -> None:
    if not condition:
        raise ValueError(f"{key}: {problem}")


def _check_pointer(pointer: Any, key: str) -> None:
    _require(isinstance(pointer, str), key, "is not a string")
    _require(pointer == "" or pointer.startswith("/"), key, "is not a JSON pointer (RFC 6901)")
    _require(re.search(r"~(?![01])", pointer) is None, key, "has a '~' not followed by 0 or 1")


def _topic_names(topic: Any, key: str) -> set[str]:
    _require(isinstance(topic, str) and topic != "", key, "is not a topic pattern")
    _require(not any(c in topic for c in "+#"), key, "uses MQTT wildcards; name them: {name}")
    names = PLACEHOLDER.findall(topic)
    _require(len(names) == len(set(names)), key, "names a wildcard twice")
    literal = PLACEHOLDER.sub("", topic)
    _require("{" not in literal and "}" not in literal, key, "has a stray brace")
    return set(names)


def _check_reading(reading: Any, key: str) -> str:
    """Check one reading spec; its stream key within the mapping."""
    _require(isinstance(reading, dict), key, "is not an object")
    unknown = sorted(str(k) for k in set(reading) - READING_KEYS)
    _require(not unknown, f"{key}.{unknown[0] if unknown else ''}", "is not a known key")
    _check_pointer(reading.get("pointer"), f"{key}.pointer")
    quantity = reading.get("quantity")
    _require(
        isinstance(quantity, str) and quantity in QUANTITIES,
        f"{key}.quantity",
        "is not a vocabulary quantity",
    )
    unit = reading.get("unit")
    _require(
        unit is None or (isinstance(unit, str) and unit in UNITS), f"{key}.unit", "is not a known UCUM unit"
    )
    for name in ("scale", "offset"):
        number = reading.get(name, 0)
        valid = isinstance(number, int | float) and not isinstance(number, bool) and math.isfinite(number)
        _require(valid, f"{key}.{name}", "is not a finite number")
    stream = reading.get("stream")
    _require(stream is None or (isinstance(stream, str) and stream != ""), f"{key}.stream", "is not a name")
    return str(stream or reading["quantity"])


def _check_mapping(mapping: Any, key: str) -> None:
    _require(isinstance(mapping, dict), key, "is not an object")
    unknown = sorted(str(k) for k in set(mapping) - MAPPING_KEYS)
    _require(not unknown, f"{key}.{unknown[0] if unknown else ''}", "is not a known key")
    names = _topic_names(mapping.get("topic"), f"{key}.topic")
    device = mapping.get("device")
    _require(isinstance(device, str) and device != "", f"{key}.device", "is not a template or pointer")
    if device.startswith("/"):
        _check_pointer(device, f"{key}.device")
    _require(set(PLACEHOLDER.findall(device)) <= names, f"{key}.device", "uses a name the topic lacks")
    readings = mapping.get("readings")
    _require(isinstance(readings, list) and readings != [], f"{key}.readings", "is not a non-empty list")
    streams = [_check_reading(reading, f"{key}.readings[{i}]") for i, reading in enumerate(readings)]
    _require(len(streams) == len(set(streams)), f"{key}.readings", "has two readings of one stream")
    if "time" in mapping:
        _check_pointer(mapping["time"], f"{key}.time")
    time_format = mapping.get("time_format", "iso")
    valid = isinstance(time_format, str) and time_format in TIME_FORMATS
    _require(valid, f"{key}.time_format", f"is not one of {sorted(TIME_FORMATS)}")


def check_options(options: Any) -> None:
    """Raise ValueError naming the first bad key of the generic adapter's options."""
    _require(isinstance(options, dict), "options", "is not an object")
    unknown = sorted(str(k) for k in set(options) - {"mappings"})
    _require(not unknown, unknown[0] if unknown else "", "is not a known key")
    mappings = options.get("mappings")
    _require(isinstance(mappings, list) and mappings != [], "mappings", "is not a non-empty list")
    for index, mapping in enumerate(mappings):
        _check_mapping(mapping, f"mappings[{index}]")


# --- parsing -----------------------------------------------------------------


def _fail(field: str, message: str) -> AdapterError:
    return AdapterError(NAME, field, message)


def _topic_regex(pattern: str) -> re.Pattern[str]:
    parts = PLACEHOLDER.split(pattern)  # literal, name, literal, name, ...
    return re.compile(
        "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts))
    )


def _match(mappings: list[dict[str, Any]], topic: str) -> tuple[dict[str, Any], dict[str, str]]:
    for mapping in mappings:
        found = _topic_regex(mapping["topic"]).fullmatch(topic)
        if found is not None:
            return mapping, found.groupdict()
    raise _fail("topic", f"no mapping for topic {topic!r:.80}")


def _resolve(document: Any, pointer: str) -> Any:
    """The value at an RFC 6901 pointer, MISSING when it does not resolve."""
    value = document
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list) and re.fullmatch(r"0|[1-9]\d{0,8}", token) and int(token) < len(value):
            value = value[int(token)]
        else:
            return MISSING
    return value


def _at(document: Any, pointer: str) -> Any:
    value = _resolve(document, pointer)
    if value is MISSING:
        raise _fail(pointer or "/", "does not resolve in the payload")
    return value


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _fail(field, f"is not a number: {value!r:.40}")
    try:
        number = float(value)
    except (ValueError, OverflowError) as exc:
        raise _fail(field, f"is not a number: {value!r:.40}") from exc
    if not math.isfinite(number):
        raise _fail(field, "is not finite")
    return number


def _time(document: Any, mapping: dict[str, Any], message: Message, zone: tzinfo) -> datetime:
    if "time" not in mapping:
        return message.received_at
    pointer = mapping["time"]
    value = _at(document, pointer)
    per_second = TIME_FORMATS[mapping.get("time_format", "iso")]
    try:
        if per_second:
            return datetime.fromtimestamp(_number(value, pointer) / per_second, UTC)
        if not isinstance(value, str):
            raise _fail(pointer, "is not an ISO 8601 time string")
        moment = datetime.fromisoformat(value)
        return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(UTC)
    except (ValueError, OverflowError, OSError) as exc:
        if isinstance(exc, AdapterError):
            raise
        raise _fail(pointer, f"is not a time: {value!r:.40}") from exc


def _device(document: Any, template: str, names: dict[str, str]) -> str:
    if not template.startswith("/"):
        return PLACEHOLDER.sub(lambda found: names[found.group(1)], template)
    device = _at(document, template)
    if isinstance(device, int) and not isinstance(device, bool):
        device = str(device)
    if not isinstance(device, str) or not device:
        raise _fail(template, "is not a device id")
    return device


def _value(document: Any, spec: dict[str, Any]) -> Any:
    value = _at(document, spec["pointer"])
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(spec["pointer"], "is not finite")
    if value is None or ("scale" not in spec and "offset" not in spec):
        return value
    result = _number(value, spec["pointer"]) * spec.get("scale", 1) + spec.get("offset", 0)
    if not math.isfinite(result):
        raise _fail(spec["pointer"], "is out of range after scaling")
    return result


def _document(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise _fail("payload", "is not JSON") from exc


def parse(message: Message, context: AdapterContext) -> list[Reading]:
    """Readings of one message, by the first configured mapping whose topic matches."""
    try:
        check_options(context.options)
    except ValueError as exc:
        raise _fail("options", str(exc)) from exc
    mapping, names = _match(context.options["mappings"], message.topic)
    document = _document(message.payload)
    device = _device(document, mapping["device"], names)
    when = instant(_time(document, mapping, message, context.timezone))
    readings = []
    for spec in mapping["readings"]:
        value = _value(document, spec)
        if value is not None:
            quantity, unit = spec["quantity"], spec.get("unit")
            readings.append(Reading(NAME, device, quantity, value, unit, when, spec.get("stream")))
    return readings


ADAPTER = Adapter(
    name=NAME,
    topics=(),
    parse=parse,
    description="Declarative JSON mapping (topic pattern, JSON pointers, scale/offset), configured only",
)
