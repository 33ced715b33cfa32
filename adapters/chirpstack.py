# SPDX-License-Identifier: Apache-2.0
"""ChirpStack v4 `up` events (`application/{app}/device/{devEui}/event/up`) -> readings.

The Thing is `deviceInfo.devEui` (name `deviceName`, `tags` -> properties, the device profile
name -> Sensor). Each key of `object`, the device-profile codec's output, becomes a reading:
known keys by the table, other numeric keys as `value` named by the key. An event without
`object` (no codec configured, only base64 `data`) is an error. pT is the best gateway's
`gwTime`, else the event `time` (also the resultTime). `deduplicationId` and the best
gateway's `rssi`/`snr` go into the parameters.
"""

from __future__ import annotations

from typing import Any

from adapters.base import Adapter, AdapterContext, Message, instant
from adapters.fields import Fields, is_number
from adapters.lorawan import NO_GATEWAY, Gateway, best_first
from adapters.vocabulary import COUNT_UNITS
from schemas.reading import Reading

NAME = "chirpstack"

# object key -> (quantity, UCUM unit)
OBJECT_KEYS: dict[str, tuple[str, str]] = {
    "temperature": ("air_temperature", "Cel"),
    "humidity": ("relative_humidity", "%"),
    "light": ("illuminance", "lx"),
    "co2": ("co2", "[ppm]"),
    "motion": ("motion", "{count}"),
    "vdd": ("battery_voltage", "mV"),
}


_FIELDS = Fields(NAME)
_fail, _decode, _object, _text = _FIELDS.fail, _FIELDS.decode, _FIELDS.object, _FIELDS.text
_number, _time, _maybe, _is_number = _FIELDS.number, _FIELDS.time, _FIELDS.maybe, is_number


def _gateways(event: dict[str, Any]) -> list[Gateway]:
    """The rxInfo entries, best reception (highest RSSI, then SNR) first."""
    entries = event.get("rxInfo")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise _fail("rxInfo", "is not a list")
    gateways = []
    for index, raw in enumerate(entries):
        at = f"rxInfo[{index}]"
        entry = _object(raw, at)
        gateways.append(
            Gateway(
                _maybe(entry.get("gatewayId"), f"{at}.gatewayId", _text),
                _maybe(entry.get("rssi"), f"{at}.rssi", _number),
                _maybe(entry.get("snr"), f"{at}.snr", _number),
                _maybe(entry.get("gwTime"), f"{at}.gwTime", _time),
            )
        )
    return best_first(gateways)


def _parameters(event: dict[str, Any], gateways: list[Gateway]) -> dict[str, Any] | None:
    best = gateways[0] if gateways else NO_GATEWAY
    found = {
        "deduplicationId": _maybe(event.get("deduplicationId"), "deduplicationId", _text),
        "gateway_id": best.gateway_id,
        "rssi": best.rssi,
        "snr": best.snr,
    }
    return {key: value for key, value in found.items() if value is not None} or None


def _value(key: str, raw: Any) -> tuple[str, str | None, str | None, Any] | None:
    """(quantity, unit, stream, value) of one object key; None for a non-numeric unknown key."""
    if key not in OBJECT_KEYS:
        return ("value", None, key, raw) if _is_number(raw) else None
    quantity, unit = OBJECT_KEYS[key]
    value = _number(raw, f"object.{key}")
    if unit in COUNT_UNITS and float(value).is_integer():
        value = int(value)  # Protobuf JSON gives every number as a double
    return quantity, unit, None, value


def _device(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The device key and the Reading fields describing the device."""
    info = _object(event.get("deviceInfo"), "deviceInfo")
    tags = _maybe(info.get("tags"), "deviceInfo.tags", _object) or {}
    return _text(info.get("devEui"), "deviceInfo.devEui"), {
        "device_name": _maybe(info.get("deviceName"), "deviceInfo.deviceName", _text),
        "device_properties": {key: value for key, value in tags.items() if isinstance(value, str)},
        "sensor_model": _maybe(info.get("deviceProfileName"), "deviceInfo.deviceProfileName", _text),
    }


def parse(message: Message, context: AdapterContext) -> list[Reading]:
    """A ChirpStack v4 up event -> one reading per decoded `object` value."""
    event = _object(_decode(message.payload), "payload")
    device, described = _device(event)
    if event.get("object") is None:
        raise _fail("object", "missing (no device-profile codec decoded the payload)")
    decoded = _object(event["object"], "object")
    gateways = _gateways(event)
    event_time = _maybe(event.get("time"), "time", _time)
    moment = next((g.time for g in gateways if g.time is not None), event_time)
    if moment is None:
        raise _fail("time", "missing")
    values = [value for key, raw in decoded.items() if (value := _value(key, raw)) is not None]
    parameters = _parameters(event, gateways)
    return [
        Reading(
            NAME,
            device,
            quantity,
            value,
            unit,
            instant(moment),
            stream=stream,
            result_time=event_time,
            parameters=parameters,
            **described,
        )
        for quantity, unit, stream, value in values
    ]


ADAPTER = Adapter(
    name=NAME,
    topics=("application/+/device/+/event/up",),
    parse=parse,
    description="ChirpStack v4 up events: the device-profile codec's object mapped to quantities",
)
