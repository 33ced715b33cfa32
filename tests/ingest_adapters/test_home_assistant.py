# SPDX-License-Identifier: Apache-2.0
"""Home Assistant MQTT discovery configs and state messages -> readings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from adapter_helpers import JSON, RECEIVED_AT, context, message, mutated, sample_bytes, sample_topic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.base import AdapterContext, AdapterError, Consumed, Message, instant
from adapters.home_assistant import ADAPTER, topics_to_subscribe
from schemas.reading import Reading

CONFIG = "homeassistant_discovery_config.json"
STATE = "homeassistant_state.json"
STATE_TOPIC = "zigbee2mqtt/balcony_climate"
DEVICE = "zigbee2mqtt_0x00158d0008a1b2c3"
MODEL = "Temperature and humidity sensor (WSDCGQ11LM)"
PROPERTIES = {"manufacturer": "Aqara", "model": MODEL, "sw_version": "3000-0001"}


def abbreviated(key: str, device_class: Any, unit: str, **extra: Any) -> bytes:
    """A Zigbee2MQTT-style config in HA's abbreviated form."""
    config = {
        "dev": {"ids": [DEVICE], "mf": "Aqara", "mdl": MODEL, "name": "balcony_climate", "sw": "3000-0001"},
        "dev_cla": device_class,
        "stat_cla": "measurement",
        "stat_t": STATE_TOPIC,
        "uniq_id": f"0x00158d0008a1b2c3_{key}_zigbee2mqtt",
        "unit_of_meas": unit,
        "val_tpl": f"{{{{ value_json.{key} }}}}",
        **extra,
    }
    return json.dumps(config).encode()


def discover(ctx: AdapterContext, key: str, device_class: str, unit: str, **extra: Any) -> None:
    topic = f"homeassistant/sensor/0x00158d0008a1b2c3/{key}/config"
    payload = abbreviated(key, device_class, unit, **extra)
    consume(message(CONFIG, topic=topic, payload=payload), ctx)


def consume(config: Message, ctx: AdapterContext) -> None:
    """A discovery config is remembered and acknowledged as consumed: it holds no observation."""
    with pytest.raises(Consumed):
        ADAPTER.parse(config, ctx)


def reading(key: str, quantity: str, value: float, unit: str) -> Reading:
    return Reading(
        "home_assistant",
        DEVICE,
        quantity,
        value,
        unit,
        instant(RECEIVED_AT),
        f"0x00158d0008a1b2c3_{key}_zigbee2mqtt",
        device_name="balcony_climate",
        device_properties=PROPERTIES,
        sensor_model=MODEL,
        parameters={"state_class": "measurement"},
    )


def test_config_is_remembered_then_state_is_read() -> None:
    ctx = context()
    consume(message(CONFIG), ctx)
    assert topics_to_subscribe(ctx.memory) == [STATE_TOPIC]
    assert ADAPTER.parse(message(STATE), ctx) == [reading("temperature", "air_temperature", 7.91, "Cel")]


def test_one_state_feeds_every_discovered_entity() -> None:
    ctx = context()
    consume(message(CONFIG), ctx)
    discover(ctx, "humidity", "humidity", "%")
    discover(ctx, "pressure", "pressure", "hPa")
    discover(ctx, "battery", "battery", "%")
    discover(ctx, "humidity", "humidity", "%")  # republished: replaces, does not duplicate
    assert ADAPTER.parse(message(STATE), ctx) == [
        reading("temperature", "air_temperature", 7.91, "Cel"),
        reading("pressure", "air_pressure", 1013.4, "hPa"),
        reading("battery", "battery", 91, "%"),
        reading("humidity", "relative_humidity", 62.38, "%"),
    ]


def test_empty_config_forgets_the_entity() -> None:
    ctx = context()
    consume(message(CONFIG), ctx)
    consume(message(CONFIG, payload=b""), ctx)
    assert topics_to_subscribe(ctx.memory) == []


def test_raw_value_base_topic_and_non_sensor_components() -> None:
    ctx = context()
    config = {
        "~": "esp/attic",
        "stat_t": "~/temp",
        "uniq_id": "attic-t",
        "dev_cla": "temperature",
        "unit_of_meas": "°C",
    }
    consume(
        message(CONFIG, topic="homeassistant/sensor/attic/config", payload=json.dumps(config).encode()), ctx
    )
    switch = {"stat_t": "esp/attic/relay", "uniq_id": "attic-relay"}
    consume(
        message(CONFIG, topic="homeassistant/switch/relay/config", payload=json.dumps(switch).encode()), ctx
    )
    assert topics_to_subscribe(ctx.memory) == ["esp/attic/temp"]
    [raw] = ADAPTER.parse(message(STATE, topic="esp/attic/temp", payload=b"21.5"), ctx)
    assert (raw.device, raw.stream, raw.quantity, raw.value, raw.unit) == (
        "attic-t",
        "attic-t",
        "air_temperature",
        21.5,
        "Cel",
    )


def test_missing_key_skips_that_entity_only() -> None:
    ctx = context()
    consume(message(CONFIG), ctx)
    discover(ctx, "co2", "carbon_dioxide", "ppm")
    assert ADAPTER.parse(message(STATE), ctx) == [reading("temperature", "air_temperature", 7.91, "Cel")]
    with pytest.raises(AdapterError) as error:
        ADAPTER.parse(message(STATE, payload=b'{"humidity": 50}'), ctx)
    assert error.value.field == "value_template"
    assert "value_json.temperature" in str(error.value)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"{", "payload"),
        (b"[]", "payload"),
        (abbreviated("temperature", "temperature", "°C", stat_t=None), "state_topic"),
        (abbreviated("temperature", "temperature", "°C", stat_t="zigbee2mqtt/+"), "state_topic"),
        (
            abbreviated("temperature", "temperature", "°C", val_tpl="{{ value_json.temperature | lower }}"),
            "value_template",
        ),
        (
            abbreviated("temperature", "temperature", "°C", val_tpl="{{ states('sensor.x') }}"),
            "value_template",
        ),
        (abbreviated("temperature", "temperature", "°C", val_tpl=3), "value_template"),
        (abbreviated("temperature", "temperature", "°C", dev=["x"]), "device"),
        (abbreviated("temperature", "temperature", "°C", dev={"ids": [7]}), "device.identifiers"),
        (abbreviated("temperature", ["temperature"], "°C"), "device_class"),
        (abbreviated("temperature", "temperature", "°C", uniq_id=5), "unique_id"),
    ],
)
def test_malformed_configs_name_the_field(payload: bytes, field: str) -> None:
    ctx = context()
    with pytest.raises(AdapterError) as error:
        ADAPTER.parse(message(CONFIG, payload=payload), ctx)
    assert (error.value.adapter, error.value.field) == ("home_assistant", field)
    assert topics_to_subscribe(ctx.memory) == []


@pytest.mark.parametrize(
    ("topic", "payload", "field"),
    [
        ("zigbee2mqtt/unknown", b"{}", "topic"),
        (STATE_TOPIC, b"not json", "value_template"),
        (STATE_TOPIC, b"\xff", "payload"),
        (STATE_TOPIC, b'{"temperature": {"v": 1}}', "value_template"),
        (STATE_TOPIC, b'{"temperature": NaN}', "value_template"),
        (STATE_TOPIC, b'{"humidity": 50}', "value_template"),
    ],
)
def test_malformed_states_name_the_field(topic: str, payload: bytes, field: str) -> None:
    ctx = context()
    consume(message(CONFIG), ctx)
    with pytest.raises(AdapterError) as error:
        ADAPTER.parse(message(STATE, topic=topic, payload=payload), ctx)
    assert (error.value.adapter, error.value.field) == ("home_assistant", field)


def outcome(name: str, payload: bytes) -> None:
    ctx = context()
    consume(message(CONFIG), ctx)
    try:
        readings = ADAPTER.parse(message(name, payload=payload), ctx)
    except (AdapterError, Consumed):
        return
    assert all(isinstance(r, Reading) for r in readings)
    assert all(isinstance(topic, str) for topic in topics_to_subscribe(ctx.memory))


FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = st.sampled_from([CONFIG, STATE])
RANDOM = st.one_of(JSON.map(lambda d: json.dumps(d).encode()), st.binary(max_size=64))


@FUZZ
@given(NAMES, RANDOM)
def test_random_payloads_only_read_or_fail_cleanly(name: str, payload: bytes) -> None:
    outcome(name, payload)


@FUZZ
@given(NAMES.flatmap(lambda n: st.tuples(st.just(n), st.integers(0, len(sample_bytes(n))))))
def test_truncated_samples_only_read_or_fail_cleanly(cut: tuple[str, int]) -> None:
    outcome(cut[0], sample_bytes(cut[0])[: cut[1]])


@FUZZ
@given(NAMES.flatmap(lambda n: st.tuples(st.just(n), mutated(sample_bytes(n)))))
def test_mutated_samples_only_read_or_fail_cleanly(case: tuple[str, bytes]) -> None:
    outcome(*case)


def test_sample_topics_agree() -> None:
    assert sample_topic(STATE) == STATE_TOPIC
