# SPDX-License-Identifier: Apache-2.0
"""Shelly Gen1 topics the corpus does not cover: what is consumed, what is rejected and why."""

from __future__ import annotations

import pytest
from adapter_helpers import RECEIVED_AT, context

from adapters.base import AdapterError, Consumed, Message
from adapters.shelly_gen1 import ADAPTER

DEVICE = "shellies/shellyem-AA8900"


def _parse(topic: str, payload: bytes, options: dict[str, object] | None = None) -> list:  # type: ignore[type-arg]
    return ADAPTER.parse(Message(topic, payload, RECEIVED_AT), context(options))


@pytest.mark.parametrize(
    "rest",
    [
        "relay/0",
        "relay/0/command",
        "online",
        "announce",
        "info",
        "input/0",
        "input_event/1",
        "longpush/0",
        "sensor/act_reasons",
        "sensor/error",
        "roller/0/pos",
        "light/0/set",
        "overpower",
    ],
)
def test_states_commands_and_metadata_are_consumed_with_a_reason(rest: str) -> None:
    with pytest.raises(Consumed, match="not a measurement"):
        _parse(f"{DEVICE}/{rest}", b"on")


def test_the_fleet_announcement_topic_is_consumed() -> None:
    with pytest.raises(Consumed):
        _parse("shellies/announce", b'{"id": "shellyem-AA8900"}')


def test_an_unknown_topic_is_rejected_naming_it() -> None:
    with pytest.raises(AdapterError, match="emeter/0/frequency"):
        _parse(f"{DEVICE}/emeter/0/frequency", b"50")


@pytest.mark.parametrize("payload", [b"n/a", b"nan", b"", b"\xff"])
def test_a_measurement_topic_without_a_number_is_rejected(payload: bytes) -> None:
    with pytest.raises(AdapterError):
        _parse(f"{DEVICE}/emeter/0/power", payload)


def test_a_binary_topic_with_another_word_is_rejected() -> None:
    with pytest.raises(AdapterError, match="sensor/flood"):
        _parse("shellies/shellyflood-1/sensor/flood", b"maybe")


def test_fahrenheit_devices_are_read_in_fahrenheit_when_configured() -> None:
    [reading] = _parse("shellies/shellyht-1/sensor/temperature", b"70.2", {"fahrenheit": True})
    assert (reading.unit, reading.value) == ("[degF]", 70.2)
    with pytest.raises(AdapterError, match="fahrenheit"):
        _parse("shellies/shellyht-1/sensor/temperature", b"70.2", {"fahrenheit": "yes"})


def test_the_receive_time_is_the_phenomenon_time_and_the_device_is_the_topic_id() -> None:
    [reading] = _parse(f"{DEVICE}/emeter/0/voltage", b"231.23")
    assert reading.phenomenon_time == (RECEIVED_AT, RECEIVED_AT)
    assert reading.device == "shellyem-AA8900"
    assert (reading.quantity, reading.unit, reading.stream) == ("voltage", "V", "emeter/0/voltage")


def test_a_motion_status_with_a_wrong_type_is_rejected() -> None:
    with pytest.raises(AdapterError, match=r"status\.lux"):
        _parse("shellies/shellymotionsensor-1/status", b'{"motion": false, "lux": "dark"}')
