# SPDX-License-Identifier: Apache-2.0
"""The generated row renderers and the table-driven format_instant against plain references."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.query.ast import Path
from hub.query.plan import Selection, plan_selection
from hub.render import _pick, format_instant, property_value, render_entity
from schemas.model import ALL_TYPES, EntityType, Join, Kind

BASE = "http://hub.example/v1.1"
T1 = datetime(2026, 12, 7, 8, 9, 10, tzinfo=UTC)
T2 = datetime(2026, 12, 7, 8, 9, 10, 250_000, tzinfo=UTC)


def reference_instant(moment: datetime) -> str:
    """The format as docs and STA-NOTES describe it, spelled out slowly."""
    moment = moment.astimezone(UTC)
    text = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
    text += f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    if moment.microsecond % 1000:
        text += f".{moment.microsecond:06d}"
    elif moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    return text + "Z"


MOMENTS = [
    datetime(2026, 1, 1, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(2026, 6, 15, 12, 30, 45, 100_000, tzinfo=UTC),
    datetime(2026, 6, 15, 12, 30, 45, 1_000, tzinfo=UTC),
    datetime(2026, 6, 15, 12, 30, 45, 1, tzinfo=UTC),
    datetime(2026, 6, 15, 12, 30, 45, 120_500, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(999, 3, 4, 5, 6, 7, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    # Other offsets are converted to UTC (a written row may still carry the client's offset).
    datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))),
    datetime(2026, 3, 29, 2, 30, 5, 5_000, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
    datetime(2026, 7, 1, 1, 0, tzinfo=ZoneInfo("Europe/Berlin")),
    datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(0))),
]


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_format_instant_matches_the_reference(moment: datetime) -> None:
    assert format_instant(moment) == reference_instant(moment)


def test_format_instant_over_every_second_of_a_day_and_many_days() -> None:
    start = datetime(2024, 2, 28, tzinfo=UTC)
    moments = [start + timedelta(seconds=s, microseconds=(s * 7919) % 1_000_000) for s in range(0, 86_400, 7)]
    moments += [start + timedelta(days=d, milliseconds=d) for d in range(5000)]  # over the day cache's size
    assert [format_instant(m) for m in moments] == [reference_instant(m) for m in moments]


def sample_row(entity_type: EntityType, variant: int) -> dict[str, Any]:
    """A row with every column the renderer may read; `variant` picks nulls and equal times."""
    row: dict[str, Any] = {"id": 40 + variant}
    for prop in entity_type.properties:
        if prop.kind is Kind.INSTANT:
            row[prop.column] = None if variant == 1 else T1
        elif prop.kind in (Kind.TIME, Kind.INTERVAL):
            start, end = prop.columns
            row[start], row[end] = [(T1, T2), (None, None), (T1, T1), (T1, None)][variant]
        elif prop.kind is Kind.TEXT:
            row[prop.column] = None if variant == 1 else f"text {variant}"
        else:
            row[prop.column] = None if variant == 1 else {"a": {"b": variant, "c": [1]}, "d": "x"}
    for nav in entity_type.navigation:
        if nav.join is Join.FORWARD:
            row[nav.column] = None if variant in (1, 3) else 7
    return row


def reference_entity(entity_type: EntityType, row: dict[str, Any], selection: Selection) -> dict[str, Any]:
    """What render_entity must give, from property_value and the selection, one key at a time."""
    link = f"{BASE}/{entity_type.set_name}({row['id']})"
    entity: dict[str, Any] = {}
    if selection.id:
        entity["@iot.id"] = row["id"]
    if selection.self_link:
        entity["@iot.selfLink"] = link
    for prop in entity_type.properties:
        if not selection.wants_property(prop):
            continue
        value = property_value(row, prop)
        paths = selection.paths_for(prop.name)
        if paths is not None:
            value = _pick(value, paths)  # unchanged by the generated code
        if value is not None or prop.render_null:
            entity[prop.name] = value
    for nav in entity_type.navigation:
        if selection.wants_link(nav) and (nav.join is not Join.FORWARD or row[nav.column] is not None):
            entity[f"{nav.name}@iot.navigationLink"] = f"{link}/{nav.name}"
    return entity


def selections(entity_type: EntityType) -> list[Selection]:
    names = [p.name for p in entity_type.properties]
    navigation = [n.name for n in entity_type.navigation]
    chosen = [
        None,
        ("id",),
        ("@iot.selfLink", names[-1]),
        tuple(reversed(names)),
        (names[0], *navigation[:1]),
        ("id", *navigation),
    ]
    objects = [p.name for p in entity_type.properties if p.kind in (Kind.OBJECT, Kind.JSON)]
    if objects:
        chosen.append((f"{objects[0]}/a/b", f"{objects[0]}/d", "id"))
    return [
        plan_selection(
            entity_type, None if names_ is None else tuple(Path(tuple(n.split("/"))) for n in names_)
        )
        for names_ in chosen
    ]


@pytest.mark.parametrize("entity_type", ALL_TYPES, ids=lambda t: t.name)
def test_rendered_entities_match_the_reference(entity_type: EntityType) -> None:
    for selection in selections(entity_type):
        for variant in range(4):
            row = sample_row(entity_type, variant)
            rendered = render_entity(entity_type, row, BASE, selection)
            expected = reference_entity(entity_type, row, selection)
            assert rendered == expected
            assert list(rendered) == list(expected)  # key order is part of the output
