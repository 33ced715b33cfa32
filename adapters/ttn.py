# SPDX-License-Identifier: Apache-2.0
"""The Things Stack (TTN v3) uplink messages (`v3/{app}@{tenant}/devices/{device}/up`) -> readings.

The Thing is the end device's DevEUI (the device id when an ABP device has none). The
`decoded_payload` keys are mapped by a table chosen by `version_ids.model_id`; keys the table
does not know, and every key of an unknown model, become `value` readings named by the key
(numbers only; strings, booleans and objects are skipped). The best gateway's (highest RSSI)
`rssi`/`snr` go into the parameters. pT is the gateway time when one was reported, else the
network server's `uplink_message.received_at`; resultTime is the top-level `received_at`.
"""

from __future__ import annotations

from typing import Any

from adapters.base import Adapter, AdapterContext, Message, instant
from adapters.fields import Fields, is_number
from adapters.lorawan import Gateway, best_first
from schemas.reading import Reading

NAME = "ttn"
DECODED = "uplink_message.decoded_payload"

# decoded_payload key -> (quantity, UCUM unit, stream)
Table = dict[str, tuple[str, str | None, str | None]]

DRAGINO_LHT65: Table = {
    "TempC_SHT": ("air_temperature", "Cel", None),
    "Hum_SHT": ("relative_humidity", "%", None),
    "TempC_DS": ("temperature", "Cel", "TempC_DS"),
    "BatV": ("battery_voltage", "V", None),
}

# version_ids.model_id -> table
MODELS: dict[str, Table] = {
    "lht65n": DRAGINO_LHT65,
    "lht65": DRAGINO_LHT65,
}


_FIELDS = Fields(NAME)
_fail, _decode, _object, _text = _FIELDS.fail, _FIELDS.decode, _FIELDS.object, _FIELDS.text
_number, _time, _maybe, _is_number = _FIELDS.number, _FIELDS.time, _FIELDS.maybe, is_number


def _gateways(uplink: dict[str, Any]) -> list[Gateway]:
    """The rx_metadata entries, best reception (highest RSSI, then SNR) first."""
    entries = uplink.get("rx_metadata")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise _fail("uplink_message.rx_metadata", "is not a list")
    gateways = []
    for index, raw in enumerate(entries):
        at = f"uplink_message.rx_metadata[{index}]"
        entry = _object(raw, at)
        ids = _maybe(entry.get("gateway_ids"), f"{at}.gateway_ids", _object) or {}
        gateways.append(
            Gateway(
                _maybe(ids.get("gateway_id"), f"{at}.gateway_ids.gateway_id", _text),
                _maybe(entry.get("rssi"), f"{at}.rssi", _number),
                _maybe(entry.get("snr"), f"{at}.snr", _number),
                _maybe(entry.get("time"), f"{at}.time", _time),
            )
        )
    return best_first(gateways)


def _link_quality(gateways: list[Gateway]) -> dict[str, Any] | None:
    if not gateways:
        return None
    best = gateways[0]
    found = {"gateway_id": best.gateway_id, "rssi": best.rssi, "snr": best.snr}
    return {key: value for key, value in found.items() if value is not None} or None


def _location(uplink: dict[str, Any]) -> dict[str, Any] | None:
    """uplink_message.locations.user as a GeoJSON Point, when the user set one."""
    locations = _maybe(uplink.get("locations"), "uplink_message.locations", _object) or {}
    user = _maybe(locations.get("user"), "uplink_message.locations.user", _object)
    if user is None:
        return None
    latitude = _number(user.get("latitude"), "uplink_message.locations.user.latitude")
    longitude = _number(user.get("longitude"), "uplink_message.locations.user.longitude")
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise _fail("uplink_message.locations.user", "is not a WGS84 position")
    return {"type": "Point", "coordinates": [longitude, latitude]}


def _values(decoded: dict[str, Any], table: Table) -> list[tuple[str, str | None, str | None, Any]]:
    """(quantity, unit, stream, value) per mapped or numeric decoded_payload key."""
    values: list[tuple[str, str | None, str | None, Any]] = []
    for key, raw in decoded.items():
        if key in table:
            if raw is not None:
                values.append((*table[key], _number(raw, f"{DECODED}.{key}")))
        elif _is_number(raw):
            values.append(("value", None, key, raw))
    return values


def _properties(versions: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """device_properties and the sensor model from version_ids."""
    properties = {key: value for key, value in versions.items() if isinstance(value, str)}
    parts = [properties.get("brand_id"), properties.get("model_id")]
    return properties, "/".join(part for part in parts if part) or None


def parse(message: Message, context: AdapterContext) -> list[Reading]:
    """A TTN v3 uplink -> one reading per decoded_payload value."""
    root = _object(_decode(message.payload), "payload")
    ids = _object(root.get("end_device_ids"), "end_device_ids")
    uplink = _object(root.get("uplink_message"), "uplink_message")
    decoded = _object(uplink.get("decoded_payload"), DECODED)
    device_name = _maybe(ids.get("device_id"), "end_device_ids.device_id", _text)
    device = _maybe(ids.get("dev_eui"), "end_device_ids.dev_eui", _text) or device_name
    if device is None:
        raise _fail("end_device_ids.dev_eui", "missing")
    versions = _maybe(uplink.get("version_ids"), "uplink_message.version_ids", _object) or {}
    properties, model = _properties(versions)
    gateways = _gateways(uplink)
    moment = next((g.time for g in gateways if g.time is not None), None)
    if moment is None:
        moment = _time(uplink.get("received_at"), "uplink_message.received_at")
    common: dict[str, Any] = {
        "phenomenon_time": instant(moment),
        "result_time": _maybe(root.get("received_at"), "received_at", _time),
        "device_name": device_name,
        "device_properties": properties,
        "sensor_model": model,
        "location": _location(uplink),
        "parameters": _link_quality(gateways),
    }
    table = MODELS.get(str(versions.get("model_id", "")).lower(), {})
    return [
        Reading(NAME, device, quantity, value, unit, stream=stream, **common)
        for quantity, unit, stream, value in _values(decoded, table)
    ]


ADAPTER = Adapter(
    name=NAME,
    topics=("v3/+/devices/+/up",),
    parse=parse,
    description="The Things Stack (TTN v3) uplinks: decoded_payload mapped per device model",
)
