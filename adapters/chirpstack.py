# SPDX-License-Identifier: Apache-2.0
"""ChirpStack v4 `up` events (`application/{app}/device/{devEui}/event/up`) -> readings.

The Thing is `deviceInfo.devEui` (name `deviceName`, `tags` -> properties, the device profile
name -> Sensor). `object`, the device-profile codec's output, is flattened (nested objects to
dotted paths, `sensors.temperature`, the path kept in the Datastream's properties) and read
through the field vocabulary (adapters.keys): ids, link counters, versions and flags are not
read, unknown numeric keys become `value` readings named by their path. A latitude/longitude
pair in `object` is the device's position. An event without `object` (no codec configured,
only base64 `data`) is an error. pT is the best gateway's
`gwTime`, else the event `time` (also the resultTime). `deduplicationId` and the best
gateway's `rssi`/`snr` go into the parameters. ChirpStack v3 events on the same topic are read
too, mapped into this shape by adapters.chirpstack_v3.
"""

from __future__ import annotations

from typing import Any

from adapters import chirpstack_v3, codec
from adapters.base import Adapter, AdapterContext, Message, instant
from adapters.fields import Fields
from adapters.lorawan import NO_GATEWAY, Gateway, best_first
from schemas.reading import Reading

NAME = "chirpstack"

_FIELDS = Fields(NAME)
_fail, _decode, _object, _text = _FIELDS.fail, _FIELDS.decode, _FIELDS.object, _FIELDS.text
_number, _time, _maybe = _FIELDS.number, _FIELDS.time, _FIELDS.maybe


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
    if chirpstack_v3.is_v3(event):
        event = chirpstack_v3.as_v4(event)
    device, described = _device(event)
    if event.get("object") is None:
        raise _fail("object", "missing (no device-profile codec decoded the payload)")
    decoded = _object(event["object"], "object")
    gateways = _gateways(event)
    event_time = _maybe(event.get("time"), "time", _time)
    moment = next((g.time for g in gateways if g.time is not None), event_time)
    if moment is None:
        raise _fail("time", "missing")
    parameters = _parameters(event, gateways)
    location = codec.position(decoded)
    return [
        Reading(
            NAME,
            device,
            value.term.quantity,
            value.value,
            value.term.unit,
            instant(value.time or moment),
            stream=value.stream,
            result_time=event_time,
            parameters=parameters,
            location=location,
            stream_properties={"path": value.path},
            **described,
        )
        for value in codec.values(decoded)
    ]


ADAPTER = Adapter(
    name=NAME,
    topics=("application/+/device/+/event/up",),
    parse=parse,
    description="ChirpStack v4 up events: the codec's object (nested paths flattened) via the vocabulary",
)
