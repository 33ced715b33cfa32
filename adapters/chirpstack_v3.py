# SPDX-License-Identifier: Apache-2.0
"""ChirpStack v3 `up` events, rewritten into the v4 shape the chirpstack adapter reads.

ChirpStack v3 (still run by many city networks) publishes on the same topic as v4,
`application/{id}/device/{devEUI}/event/up`, but another document: the device at the top
(`devEUI`, `deviceName`, `tags`), the codec's output as `object` (the `json_v3` marshaler) or as
a JSON *string* `objectJSON` (the `json` marshaler, which also writes ids as base64), the
gateways' `gatewayID`, `loRaSNR` and `time`, and `publishedAt`. `as_v4` maps exactly these
fields; everything else of the adapter (vocabulary, positions, parameters) stays one code path.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from adapters.base import AdapterError

NAME = "chirpstack"
EUI_BYTES = 8


def is_v3(event: dict[str, Any]) -> bool:
    """Whether an up event is ChirpStack v3's (no deviceInfo, the device at the top)."""
    return "deviceInfo" not in event and ("devEUI" in event or "applicationID" in event)


def _hex_id(raw: Any, field: str) -> Any:
    """A v3 id as v4 writes it: lower-case hex (the `json` marshaler writes base64)."""
    if not isinstance(raw, str) or not raw:
        return raw  # the v4 reader names the field when it is missing or not text
    text = raw.strip()
    if len(text) == 2 * EUI_BYTES and all(c in "0123456789abcdefABCDEF" for c in text):
        return text.lower()
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise AdapterError(NAME, field, f"is neither hex nor base64: {text!r:.30}") from None
    return decoded.hex()


def _object(event: dict[str, Any]) -> Any:
    if "object" in event:
        return event["object"]
    text = event.get("objectJSON")
    if text is None or text == "":
        return None  # no codec: the v4 reader says so
    if not isinstance(text, str):
        raise AdapterError(NAME, "objectJSON", "is not a JSON string")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise AdapterError(NAME, "objectJSON", "is not JSON") from None


def _gateway(raw: Any, index: int) -> Any:
    if not isinstance(raw, dict):
        return raw
    return {
        "gatewayId": _hex_id(raw.get("gatewayID"), f"rxInfo[{index}].gatewayID"),
        "rssi": raw.get("rssi"),
        "snr": raw.get("loRaSNR"),
        "gwTime": raw.get("time"),
    }


def as_v4(event: dict[str, Any]) -> dict[str, Any]:
    """The v3 event in the v4 shape (deviceInfo, object, rxInfo, time)."""
    rx = event.get("rxInfo")
    return {
        "deviceInfo": {
            "devEui": _hex_id(event.get("devEUI"), "devEUI"),
            "deviceName": event.get("deviceName"),
            "tags": event.get("tags"),
            "deviceProfileName": event.get("deviceProfileName"),
        },
        "object": _object(event),
        "rxInfo": [_gateway(g, i) for i, g in enumerate(rx)] if isinstance(rx, list) else rx,
        "time": event.get("publishedAt"),
    }
