# SPDX-License-Identifier: Apache-2.0
"""Telraam adapter: the two-hour sample report, bare reports, malformed reports, fuzzing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from adapter_helpers import FUZZ, JSON, RECEIVED_AT, context, message, mutated, parse_or_fail, sample_bytes
from hypothesis import given
from hypothesis import strategies as st

from adapters.base import AdapterError, Message
from adapters.telraam import ADAPTER
from schemas.reading import Reading

SAMPLE = "telraam_traffic_report.json"
SEVEN = datetime(2026, 3, 5, 7, tzinfo=UTC)
EIGHT = SEVEN + timedelta(hours=1)


def answer() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(sample_bytes(SAMPLE))
    return document


def parse(document: Any) -> list[Reading]:
    return ADAPTER.parse(message(SAMPLE, payload=json.dumps(document).encode()), context())


def reading(
    quantity: str, value: Any, unit: str, stream: str | None, start: datetime, uptime: float
) -> Reading:
    return Reading(
        "telraam",
        "9000004263",
        quantity,
        value,
        unit,
        (start, start + timedelta(hours=1)),
        stream=stream,
        device_properties={"timezone": "Europe/Brussels"},
        sensor_model="Telraam",
        parameters={"uptime": uptime},
    )


def hour(
    start: datetime, uptime: float, counts: list[float], v85: float, hists: list[list[float]]
) -> list[Reading]:
    streams = [None] * 4 + [
        f"{mode}{side}" for mode in ("car", "heavy", "bike", "pedestrian") for side in ("_lft", "_rgt")
    ]
    quantities = ["car_count", "heavy_vehicle_count", "bicycle_count", "pedestrian_count"]
    kinds = quantities + [q for q in quantities for _ in (0, 1)]
    return [
        *(reading(q, c, "/h", s, start, uptime) for q, c, s in zip(kinds, counts, streams, strict=True)),
        reading("speed_v85", v85, "km/h", None, start, uptime),
        reading("speed_histogram", hists[0], "%", "car_speed_hist_0to70plus", start, uptime),
        reading("speed_histogram", hists[1], "%", "car_speed_hist_0to120plus", start, uptime),
    ]


def test_sample_report_gives_readings_for_each_hour() -> None:
    reports = answer()["report"]
    expected = [
        *hour(
            SEVEN,
            0.7833,
            [397.06, 14.04, 96.43, 58.72, 188.94, 208.12, 6.38, 7.66, 51.06, 45.37, 26.81, 31.91],
            47.5,
            [reports[0]["car_speed_hist_0to70plus"], reports[0]["car_speed_hist_0to120plus"]],
        ),
        *hour(
            EIGHT,
            0.8167,
            [451.22, 19.59, 132.24, 71.02, 219.18, 232.04, 9.8, 9.79, 74.69, 57.55, 34.28, 36.74],
            48.5,
            [reports[1]["car_speed_hist_0to70plus"], reports[1]["car_speed_hist_0to120plus"]],
        ),
    ]
    assert ADAPTER.parse(message(SAMPLE), context()) == expected
    assert expected[13].value == [0.9, 3.1, 12.6, 38.4, 34.2, 8.9, 1.6, 0.3]


def test_bare_report_with_naive_date_and_gaps() -> None:
    readings = parse({"segment_id": "77", "date": "2026-03-05 09:00:00", "car": 12.5, "v85": None})
    eleven = SEVEN + timedelta(hours=2)
    assert readings == [
        Reading(
            "telraam",
            "77",
            "car_count",
            12.5,
            "/h",
            (eleven, eleven + timedelta(hours=1)),
            sensor_model="Telraam",
        )
    ]


def test_empty_report_list() -> None:
    assert parse({"status_code": 200, "report": []}) == []


def with_report(**changes: Any) -> dict[str, Any]:
    document = answer()
    for key, value in changes.items():
        if value is KeyError:
            del document["report"][0][key]
        else:
            document["report"][0][key] = value
    return document


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("report", "telraam: payload is not an object"),
        (
            {"status_code": 404, "message": "segment not found"},
            "telraam: status_code is 404: segment not found",
        ),
        ({"status_code": 200}, "telraam: report missing"),
        ({"report": {}}, "telraam: report is not a list"),
        ({"report": [3]}, "telraam: report[0] is not an object"),
        (with_report(segment_id=KeyError), "telraam: report[0].segment_id missing"),
        (with_report(segment_id=[1]), "telraam: report[0].segment_id is not a segment id"),
        (with_report(date=KeyError), "telraam: report[0].date missing"),
        (with_report(date=1772694000), "telraam: report[0].date is not a string"),
        (with_report(date="7 o'clock"), "telraam: report[0].date is not an ISO 8601 time"),
        (with_report(date="9999-12-31T23:30:00Z"), "telraam: report[0].date is not an ISO 8601 time"),
        (with_report(interval="daily"), "telraam: report[0].interval is 'daily', not 'hourly'"),
        (with_report(uptime="78%"), "telraam: report[0].uptime is not a finite number"),
        (with_report(car="397"), "telraam: report[0].car is not a finite number"),
        (with_report(v85=True), "telraam: report[0].v85 is not a finite number"),
        (
            with_report(car_speed_hist_0to70plus=5),
            "telraam: report[0].car_speed_hist_0to70plus is not a list",
        ),
        (
            with_report(car_speed_hist_0to70plus=[1, "2"]),
            "telraam: report[0].car_speed_hist_0to70plus[1] is not",
        ),
    ],
)
def test_malformed_reports_name_the_field(document: Any, expected: str) -> None:
    with pytest.raises(AdapterError) as error:
        parse(document)
    assert str(error.value).startswith(expected)


def outcome(payload: bytes) -> None:
    """The only outcomes: readings in the vocabulary, or an AdapterError."""
    readings = parse_or_fail(ADAPTER, Message("telraam/1/traffic", payload, RECEIVED_AT))
    for r in readings:
        assert r.phenomenon_time[1] - r.phenomenon_time[0] == timedelta(hours=1)


@FUZZ
@given(st.one_of(JSON.map(lambda d: json.dumps(d).encode()), st.binary(max_size=64)))
def test_random_payloads_only_read_or_fail_cleanly(payload: bytes) -> None:
    outcome(payload)


@FUZZ
@given(st.integers(0, len(sample_bytes(SAMPLE))))
def test_truncated_sample_only_reads_or_fails_cleanly(cut: int) -> None:
    outcome(sample_bytes(SAMPLE)[:cut])


@FUZZ
@given(mutated(sample_bytes(SAMPLE)))
def test_mutated_sample_only_reads_or_fails_cleanly(payload: bytes) -> None:
    outcome(payload)
