# SPDX-License-Identifier: Apache-2.0
"""Shelly Gen2 NotifyStatus frames -> readings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from adapter_helpers import FUZZ, JSON, context, message, mutated, parse_or_fail, sample_bytes
from hypothesis import given
from hypothesis import strategies as st

from adapters.base import AdapterError, Consumed, instant
from adapters.shelly import ADAPTER
from schemas.reading import Reading

PLUG = "shelly_gen2_plugs_notifystatus.json"
PRO3EM = "shelly_gen2_pro3em_notifystatus.json"


def expected(device: str, ts: datetime, rows: list[tuple[str, str, float, str]]) -> list[Reading]:
    return [Reading("shelly", device, q, v, u, instant(ts), stream) for stream, q, v, u in rows]


def test_plug_switch_status() -> None:
    readings = ADAPTER.parse(message(PLUG), context())
    ts = datetime(2026, 3, 5, 10, 15, 2, 420000, tzinfo=UTC)
    assert readings == expected(
        "shellyplusplugs-e86beae1e3c4",
        ts,
        [
            ("switch:0/apower", "active_power", 1843.6, "W"),
            ("switch:0/voltage", "voltage", 229.8, "V"),
            ("switch:0/current", "current", 8.021, "A"),
            ("switch:0/aenergy.total", "energy", 412356.884, "W.h"),
            ("switch:0/temperature.tC", "device_temperature", 41.3, "Cel"),
        ],
    )


def test_pro3em_phases_totals_and_energies() -> None:
    readings = ADAPTER.parse(message(PRO3EM), context())
    ts = datetime(2026, 3, 5, 10, 16, 0, 70000, tzinfo=UTC)
    phases = {
        "a": (3.412, 231.4, 742.9, 789.5, 0.94),
        "b": (1.087, 230.1, 201.3, 250.1, 0.8),
        "c": (6.904, 229.6, -1512.7, 1585.2, -0.95),
    }
    em = [
        row
        for p, (i, u, act, aprt, pf) in phases.items()
        for row in [
            (f"em:0/{p}_current", "current", i, "A"),
            (f"em:0/{p}_voltage", "voltage", u, "V"),
            (f"em:0/{p}_act_power", "active_power", act, "W"),
            (f"em:0/{p}_aprt_power", "apparent_power", aprt, "V.A"),
            (f"em:0/{p}_pf", "power_factor", pf, "1"),
            (f"em:0/{p}_freq", "frequency", 50.0, "Hz"),
        ]
    ]
    totals = [
        ("em:0/total_current", "current", 11.403, "A"),
        ("em:0/total_act_power", "active_power", -568.5, "W"),
        ("em:0/total_aprt_power", "apparent_power", 2624.8, "V.A"),
    ]
    energies = [
        ("emdata:0/a_total_act_energy", "energy", 1834211.42, "W.h"),
        ("emdata:0/a_total_act_ret_energy", "energy_returned", 0.0, "W.h"),
        ("emdata:0/b_total_act_energy", "energy", 955310.07, "W.h"),
        ("emdata:0/b_total_act_ret_energy", "energy_returned", 12.31, "W.h"),
        ("emdata:0/c_total_act_energy", "energy", 402118.6, "W.h"),
        ("emdata:0/c_total_act_ret_energy", "energy_returned", 2210476.95, "W.h"),
        ("emdata:0/total_act", "energy", 3191640.09, "W.h"),
        ("emdata:0/total_act_ret", "energy_returned", 2210489.26, "W.h"),
    ]
    assert readings == expected("shellypro3em-0cb815fcb2e4", ts, em + totals + energies)
    assert len({r.stream_key for r in readings}) == len(readings)  # n_current: null, no reading


def frame(params: dict[str, Any], method: str = "NotifyStatus") -> bytes:
    body = {"src": "shellyplus1pm-a8032ab12345", "method": method, "params": {"ts": 1772705702.0, **params}}
    return json.dumps(body).encode()


def test_partial_status_reads_only_present_keys() -> None:
    payload = frame(
        {"switch:0": {"id": 0, "apower": 12.5}, "em1:1": {"act_power": 3.0}, "sys": {"uptime": 5}}
    )
    readings = ADAPTER.parse(message(PLUG, payload=payload), context())
    assert [(r.stream, r.quantity, r.value) for r in readings] == [
        ("switch:0/apower", "active_power", 12.5),
        ("em1:1/act_power", "active_power", 3.0),
    ]


@pytest.mark.parametrize(
    "payload",
    [
        frame({"events": [{"component": "input:0", "event": "single_push"}]}, "NotifyEvent"),
        b'{"id": 1, "src": "shellyplusplugs-e86beae1e3c4", "result": {}}',
    ],
)
def test_other_frames_are_consumed_without_readings(payload: bytes) -> None:
    with pytest.raises(Consumed, match="carries no status"):
        ADAPTER.parse(message(PLUG, payload=payload), context())


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"", "payload"),
        (b"\xff\xfe", "payload"),
        (b"[1, 2]", "payload"),
        (b'{"method": ["NotifyStatus"]}', "method"),
        (b'{"method": "NotifyStatus", "params": {"ts": 1}}', "src"),
        (b'{"method": "NotifyStatus", "src": 7, "params": {"ts": 1}}', "src"),
        (b'{"method": "NotifyStatus", "src": "x", "params": []}', "params"),
        (b'{"method": "NotifyStatus", "src": "x", "params": {}}', "params.ts"),
        (b'{"method": "NotifyStatus", "src": "x", "params": {"ts": "now"}}', "params.ts"),
        (b'{"method": "NotifyStatus", "src": "x", "params": {"ts": true}}', "params.ts"),
        (b'{"method": "NotifyStatus", "src": "x", "params": {"ts": 1e300}}', "params.ts"),
        (b'{"method": "NotifyStatus", "src": "x", "params": {"ts": NaN}}', "params.ts"),
        (frame({"switch:0": 5}), "params.switch:0"),
        (frame({"switch:0": {"apower": "12 W"}}), "params.switch:0.apower"),
        (frame({"switch:0": {"aenergy": {"total": [1]}}}), "params.switch:0.aenergy.total"),
        (frame({"em:0": {"b_pf": False}}), "params.em:0.b_pf"),
        (
            frame({"emdata:0": {"total_act": float("inf")}}),
            "params.emdata:0.total_act",
        ),
    ],
)
def test_malformed_frames_name_the_field(payload: bytes, field: str) -> None:
    with pytest.raises(AdapterError) as error:
        ADAPTER.parse(message(PLUG, payload=payload), context())
    assert (error.value.adapter, error.value.field) == ("shelly", field)


def outcome(payload: bytes) -> None:
    """The only outcomes: readings in the vocabulary, or an AdapterError."""
    parse_or_fail(ADAPTER, message(PLUG, payload=payload))


@FUZZ
@given(st.one_of(JSON.map(lambda d: json.dumps(d).encode()), st.binary(max_size=64)))
def test_random_payloads_only_read_or_fail_cleanly(payload: bytes) -> None:
    outcome(payload)


@FUZZ
@given(
    st.sampled_from([PLUG, PRO3EM]).flatmap(
        lambda name: st.integers(0, len(sample_bytes(name))).map(lambda n: sample_bytes(name)[:n])
    )
)
def test_truncated_samples_only_read_or_fail_cleanly(payload: bytes) -> None:
    outcome(payload)


@FUZZ
@given(st.sampled_from([PLUG, PRO3EM]).flatmap(lambda name: mutated(sample_bytes(name))))
def test_mutated_samples_only_read_or_fail_cleanly(payload: bytes) -> None:
    outcome(payload)
