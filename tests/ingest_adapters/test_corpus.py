# SPDX-License-Identifier: Apache-2.0
"""The device corpus through the adapters' pure functions: every payload gives exactly the
readings, units and times its case states (the same cases run end to end in tests/mqtt)."""

from __future__ import annotations

from collections import Counter

import pytest
from corpus_cases import (
    RECEIVED_AT,
    Case,
    expected_time,
    load_cases,
    mismatches,
    read,
    same_value,
    sta_message,
)

from adapters.vocabulary import QUANTITIES, UNITS
from hub.ingest.sta import create_observation

CASES = load_cases()
ADAPTER_CASES = [case for case in CASES if case.family != "sta"]


@pytest.mark.parametrize("case", ADAPTER_CASES, ids=[case.id for case in ADAPTER_CASES])
def test_corpus_payload_gives_its_readings(case: Case) -> None:
    readings = read(case)
    assert mismatches(readings, case) == []
    for r in readings:
        assert r.quantity in QUANTITIES
        assert r.unit is None or r.unit in UNITS
        numeric = isinstance(r.value, int | float) and not isinstance(r.value, bool)
        if numeric and r.quantity != "value":  # a quantity the vocabulary knows always has its unit
            assert r.unit is not None, f"{r.stream or r.quantity} has no unit"


def test_every_family_has_ten_different_devices() -> None:
    families = Counter(case.family for case in CASES)
    expected = {"ttn", "chirpstack", "tasmota", "home_assistant", "senml", "shelly", "shelly_gen1"}
    expected |= {"sensor_community", "telraam", "sta"}
    assert set(families) == expected
    assert all(count >= 10 for count in families.values()), families
    for family in families:
        names = [case.name for case in CASES if case.family == family]
        assert len(names) == len(set(names))


STA_CASES = [case for case in CASES if case.family == "sta"]


@pytest.mark.parametrize("case", STA_CASES, ids=[case.id for case in STA_CASES])
def test_corpus_sta_create_gives_its_observation(case: Case) -> None:
    topic, payload = sta_message(case, 7)
    [pending] = create_observation(topic, payload, RECEIVED_AT)
    [want] = case.expected
    assert pending.datastream_id == 7
    assert same_value(pending.result, want["result"])
    if want["phenomenonTime"] == "received":
        assert pending.phenomenon_time is None  # the writer stamps the receive time
    else:
        assert pending.phenomenon_time == tuple(expected_time(t) for t in want["phenomenonTime"])
    if "resultTime" in want:
        assert pending.result_time == expected_time(want["resultTime"])
    assert pending.parameters == want.get("parameters", pending.parameters)
