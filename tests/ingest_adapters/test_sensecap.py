# SPDX-License-Identifier: Apache-2.0
"""SenseCAP measurement lists and codec lists: what the corpus cases do not already pin down."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters import codec, sensecap


def _doc(*items: object) -> dict[str, object]:
    return {"err": 0, "valid": True, "payload": "00", "messages": list(items)}


def _item(number: object, value: object, kind: str = "x", **extra: object) -> dict[str, object]:
    return {"measurementId": number, "measurementValue": value, "type": kind, **extra}


def test_an_unknown_id_becomes_a_value_reading_named_by_its_type() -> None:
    [value] = codec.values(_doc(_item("4999", 3.5, "Snow Depth")))
    assert (value.term.quantity, value.term.unit, value.stream, value.value) == (
        "value",
        None,
        "snow_depth",
        3.5,
    )


def test_a_second_value_of_one_quantity_gets_its_own_stream() -> None:
    first, second = codec.values(
        _doc(_item("4097", 20.5, "Air Temperature"), _item("4097", 21.0, "Air Temperature"))
    )
    assert first.stream is None
    assert second.stream == "air_temperature_4097"
    assert second.term.quantity == "air_temperature"


def test_numeric_text_and_integer_ids_are_read_and_scans_are_not() -> None:
    found = codec.values(
        _doc(_item(4098, "55.5"), _item("5001", [{"mac": "AA:BB:CC:DD:EE:01", "rssi": "-68"}], "Wi-Fi Scan"))
    )
    assert [(v.term.quantity, v.value) for v in found] == [("relative_humidity", 55.5)]


def test_a_leak_is_a_boolean_reading_and_other_flags_are_not_read() -> None:
    found = codec.values(_doc(_item("4116", True, "Water Leak"), _item("4097", False)))
    assert [(v.term.quantity, v.value) for v in found] == [("leak", True)]


def test_an_items_timestamp_in_milliseconds_is_its_time() -> None:
    [value] = codec.values(_doc([_item("4097", 7.0, timestamp=1772704800000)]))
    assert value.time == datetime(2026, 3, 5, 10, 0, tzinfo=UTC)


def test_a_decoder_that_reports_failure_gives_no_readings() -> None:
    assert codec.values({"valid": False, "err": -1, "payload": "", "messages": []}) == []
    assert not sensecap.is_sensecap({"messages": ["not an object"]})


def test_a_tracker_position_needs_both_coordinates_in_range() -> None:
    assert codec.position(_doc(_item("4197", 9.99), _item("4198", 53.55))) == {
        "type": "Point",
        "coordinates": [9.99, 53.55],
    }
    assert codec.position(_doc(_item("4197", 9.99))) is None
    assert codec.position(_doc(_item("4197", 200.0), _item("4198", 53.55))) is None


def test_lists_of_objects_and_numbers_keep_their_index_in_the_stream() -> None:
    found = codec.values({"probes": [{"temperature": 4.0}, {"temperature": 5.0}], "co2": [400, 410]})
    assert [(v.stream, v.term.quantity, v.value) for v in found] == [
        ("probes[0].temperature", "air_temperature", 4.0),
        ("probes[1].temperature", "air_temperature", 5.0),
        ("co2[0]", "co2", 400),
        ("co2[1]", "co2", 410),
    ]


def test_settings_that_end_in_interval_are_not_measurements() -> None:
    assert codec.values({"gpsInterval": 86400, "report_interval": 60, "temperature": 20.0}) == [
        codec.values({"temperature": 20.0})[0]
    ]
