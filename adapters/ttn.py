# SPDX-License-Identifier: Apache-2.0
"""The Things Stack (TTN v3) uplink messages (`v3/{app}@{tenant}/devices/{device}/up`) -> readings.

The Thing is the end device's DevEUI (the device id when an ABP device has none). TTN's
`normalized_payload` (devices of the LoRaWAN Device Repository) is read first: it states its
quantities and units. The `decoded_payload` (the payload formatter's output) then adds what the
normalized payload lacks: its keys go through a per-model table (`version_ids.model_id`) and
else through the field vocabulary (adapters.keys), nested objects flattened to dotted paths;
ids, link counters, versions and flags are not read, and unknown numeric keys become `value`
readings named by the key. The best gateway's (highest RSSI) `rssi`/`snr` go into the
parameters. pT is the measurement's own `time` (normalized payload), else the gateway time when
one was reported, else the network server's `uplink_message.received_at`; resultTime is the
top-level `received_at`. The position is the user-set `locations.user`, else a frame-derived
location, else a position in the payload.
"""

from __future__ import annotations

from typing import Any

from adapters import codec, ttn_normalized
from adapters.base import Adapter, AdapterContext, Message, instant
from adapters.fields import Fields
from adapters.lorawan import Gateway, best_first
from adapters.units import VALUE_WITH_UNIT
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
_number, _time, _maybe = _FIELDS.number, _FIELDS.time, _FIELDS.maybe
LOCATION_SOURCES = ("user", "frm-payload", "frm_payload")  # user-set first, then frame-derived


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
    """The uplink's location (user-set, else frame-derived) as a GeoJSON Point."""
    locations = _maybe(uplink.get("locations"), "uplink_message.locations", _object) or {}
    for source in LOCATION_SOURCES:
        place = _maybe(locations.get(source), f"uplink_message.locations.{source}", _object)
        if place is None:
            continue
        at = f"uplink_message.locations.{source}"
        latitude = _number(place.get("latitude"), f"{at}.latitude")
        longitude = _number(place.get("longitude"), f"{at}.longitude")
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise _fail(at, "is not a WGS84 position")
        return {"type": "Point", "coordinates": [longitude, latitude]}
    return None


Row = tuple[str, str | None, str | None, Any, dict[str, Any]]  # quantity, unit, stream, value, extra


def _table_number(raw: Any, field: str) -> Any:
    """A number, or text holding one (older Dragino formatters write `"21.44"`)."""
    if isinstance(raw, str) and (match := VALUE_WITH_UNIT.fullmatch(raw)) and not match.group(2):
        return float(match.group(1))
    return _number(raw, field)


def _decoded(decoded: dict[str, Any], table: Table) -> list[tuple[Row, Any]]:
    """(row, own time or None) of the decoded_payload: the model's table first, the vocabulary
    (or a SenseCAP measurement list) for the rest."""
    rows: list[tuple[Row, Any]] = []
    rest = {key: value for key, value in decoded.items() if key not in table}
    for key, raw in decoded.items():
        if key in table and raw is not None:
            rows.append(((*table[key], _table_number(raw, f"{DECODED}.{key}"), {}), None))
    for value in codec.values(rest):
        row: Row = (value.term.quantity, value.term.unit, value.stream, value.value, {"path": value.path})
        rows.append((row, value.time))
    return rows


def _properties(versions: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """device_properties and the sensor model from version_ids."""
    properties = {key: value for key, value in versions.items() if isinstance(value, str)}
    parts = [properties.get("brand_id"), properties.get("model_id")]
    return properties, "/".join(part for part in parts if part) or None


def _readings(uplink: dict[str, Any], versions: dict[str, Any]) -> list[tuple[Row, Any]]:
    """(row, own time or None) per value: the normalized payload, then what decoded_payload adds."""
    found: list[tuple[Row, Any]] = []
    normalized = uplink.get("normalized_payload")
    if normalized is not None:
        for n in ttn_normalized.measurements(normalized, _FIELDS):
            found.append(((n.quantity, n.unit, n.stream, n.value, {"path": n.path, **n.qualifiers}), n.time))
    decoded = _maybe(uplink.get("decoded_payload"), DECODED, _object)
    if decoded is None and normalized is None:
        raise _fail(DECODED, "missing (no payload formatter decoded the payload)")
    covered = {row[0] for row, _ in found}
    table = MODELS.get(str(versions.get("model_id", "")).lower(), {})
    for row, own_time in _decoded(decoded or {}, table):
        if row[0] not in covered:
            found.append((row, own_time))
    return found


def _position(uplink: dict[str, Any]) -> dict[str, Any] | None:
    decoded = uplink.get("decoded_payload")
    return (
        _location(uplink)
        or ttn_normalized.position(uplink.get("normalized_payload"))
        or (codec.position(decoded) if isinstance(decoded, dict) else None)
    )


def parse(message: Message, context: AdapterContext) -> list[Reading]:
    """A TTN v3 uplink -> one reading per normalized or decoded value."""
    root = _object(_decode(message.payload), "payload")
    ids = _object(root.get("end_device_ids"), "end_device_ids")
    uplink = _object(root.get("uplink_message"), "uplink_message")
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
        "result_time": _maybe(root.get("received_at"), "received_at", _time),
        "device_name": device_name,
        "device_properties": properties,
        "sensor_model": model,
        "location": _position(uplink),
        "parameters": _link_quality(gateways),
    }
    return [
        Reading(
            NAME,
            device,
            quantity,
            value,
            unit,
            instant(own_time or moment),
            stream=stream,
            stream_properties=extra,
            **common,
        )
        for (quantity, unit, stream, value, extra), own_time in _readings(uplink, versions)
    ]


ADAPTER = Adapter(
    name=NAME,
    topics=("v3/+/devices/+/up",),
    parse=parse,
    description="The Things Stack (TTN v3) uplinks: normalized_payload, else decoded_payload by vocabulary",
)
