# SPDX-License-Identifier: Apache-2.0
"""ChirpStack v3 events: ids in either encoding, objectJSON, and clear rejections."""

from __future__ import annotations

import json

import pytest
from adapter_helpers import RECEIVED_AT, context

from adapters.base import AdapterError, Message
from adapters.chirpstack import ADAPTER

TOPIC = "application/1/device/0101010101010101/event/up"


def _event(**fields: object) -> dict[str, object]:
    event: dict[str, object] = {
        "applicationID": "1",
        "deviceName": "probe",
        "devEUI": "0101010101010101",
        "rxInfo": [
            {"gatewayID": "0303030303030303", "time": "2026-03-05T11:00:00Z", "rssi": -60, "loRaSNR": 7}
        ],
        "object": {"temperature": 20.5},
    }
    event.update(fields)
    return event


def _parse(event: dict[str, object]) -> list:  # type: ignore[type-arg]
    return ADAPTER.parse(Message(TOPIC, json.dumps(event).encode(), RECEIVED_AT), context())


def test_hex_and_base64_dev_euis_name_the_same_thing() -> None:
    [hexed] = _parse(_event())
    [based] = _parse(_event(devEUI="AQEBAQEBAQE="))
    assert hexed.device == based.device == "0101010101010101"


def test_gateway_quality_and_time_come_from_v3_field_names() -> None:
    [reading] = _parse(_event())
    assert reading.parameters == {"gateway_id": "0303030303030303", "rssi": -60, "snr": 7}
    assert reading.phenomenon_time[0].isoformat() == "2026-03-05T11:00:00+00:00"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"object": None, "objectJSON": "{not json"}, "objectJSON"),
        ({"devEUI": "not an eui!"}, "devEUI"),
        ({"object": None, "objectJSON": ""}, "object"),
    ],
)
def test_a_broken_v3_event_is_rejected_naming_the_field(fields: dict[str, object], named: str) -> None:
    event = _event(**fields)
    if event.get("object") is None:
        del event["object"]
    with pytest.raises(AdapterError, match=named):
        _parse(event)
