"""Created Observations are announced from the rows their writer stored, not read back.

The change feed renders an Observation created by this process from the row its insert stored
(Change.stored) instead of reading it back in a snapshot. These tests hold that to what the read
back gives: the same topics (retained or not) and byte for byte the same payloads, including JSON
values jsonb rewrites (object key order, -0.0, floats numeric spells out), which fall back to the
read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import orjson

from hub.changes.load import held_of, load_notices, observation_row, wanted_of
from hub.changes.notice import Notice
from hub.http.context import STATE
from hub.store.observations import (
    UNSURE,
    ObservationRow,
    StoredObservation,
    features_for_streams,
    insert_stored,
    jsonb_value,
)
from hub.store.write import Change
from schemas.model import OBSERVATION

BASE = "http://hub.example"
PREFIX = "v1.1"

VALUES: list[Any] = [
    0, -5, 2**63 - 1, 1.0, 0.1, -0.0, 2.5e-5, 1e-7, 1e15, 1e16, -1.5e16, 1e22, 3.14,
    "a", "é😀 \n\t\"", True, False, None,
    [1, 2.0, "x"], {"b": 1, "a": 2}, {"aa": 1, "b": 2, "é": 3, "z": 4}, {"x": {"z": 1, "y": [1e16]}},
    [], {},
]  # fmt: skip


async def _populate(client: Any) -> tuple[int, int]:
    """A Thing at a Location with a Datastream: the Datastream's id and its derived feature's."""
    location = {"name": "Roof", "description": "Roof", "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [10.0, 53.5]}}  # fmt: skip
    body = {
        "name": "T",
        "description": "T",
        "unitOfMeasurement": {"name": "degree Celsius", "symbol": "°C", "definition": "ucum:Cel"},
        "observationType": "om:Measurement",
        "Thing": {"name": "Station", "description": "Station", "Locations": [location]},
        "Sensor": {"name": "PT100", "description": "PT100", "encodingType": "text/html", "metadata": "x"},
        "ObservedProperty": {"name": "T", "definition": "urn:t", "description": "T"},
    }
    response = await client.post("/v1.1/Datastreams", json=body)
    assert response.status == 201, await response.text()
    stream = int((await response.json())["@iot.id"])
    async with client.server.app[STATE].pool.acquire() as conn:
        return stream, (await features_for_streams(conn, "datastreams", [stream]))[stream]


def _payloads(notice: Notice) -> list[tuple[str, bool, bytes]]:
    return [(t, r, notice.body(p, BASE, PREFIX)) for t, r, p in notice.publications(PREFIX)]


async def _both(pool: asyncpg.Pool, stored: Sequence[StoredObservation]) -> tuple[list[Notice], list[Notice]]:
    """The Notices from the held rows, and from reading the same Observations back."""
    held = [Change(OBSERVATION, s.id, "create", s) for s in stored]
    read = [Change(OBSERVATION, s.id, "create") for s in stored]
    mine, theirs = await load_notices(pool, [held, read])
    return mine, theirs


async def test_held_rows_render_what_the_read_back_renders(client: Any) -> None:
    pool = client.server.app[STATE].pool
    stream, feature = await _populate(client)
    start = datetime(2030, 1, 1, tzinfo=UTC)
    plus2 = timezone(timedelta(hours=2))
    rows = []
    for i, value in enumerate(VALUES):
        when = (start + timedelta(minutes=i, microseconds=1000 * i + i % 2)).astimezone(plus2)
        rows.append(
            ObservationRow(
                when, when if i % 3 else when + timedelta(hours=1), value, feature,
                datastream_id=stream,
                result_time=None if i % 2 else when,
                result_quality=None if i % 4 else {"q": value, "a": 1},
                valid_time_start=when if i % 5 == 0 else None,
                valid_time_end=when + timedelta(days=1) if i % 5 == 0 else None,
                parameters={"zz": i, "a": [value]} if i % 2 else None,
            )
        )  # fmt: skip
    async with pool.acquire() as conn:
        stored = await insert_stored(conn, rows)
    assert [s.latest for s in stored] == [False] * (len(rows) - 1) + [True]  # the last is the newest
    mine, theirs = await _both(pool, stored)
    assert len(mine) == len(theirs) == len(rows)
    for held, read in zip(mine, theirs, strict=True):
        assert _payloads(held) == _payloads(read), held.row
    # The retained collection topic: only the newest is its stream's latest.
    retained = [n.entity_id for n in mine for _, retain, _ in n.publications(PREFIX) if retain]
    assert retained == [stored[-1].id]
    # Most were rendered from the held rows; those whose values jsonb rewrites were read back.
    changes = [Change(OBSERVATION, s.id, "create", s) for s in stored]
    held_keys = held_of(changes, wanted_of(changes))
    unsure = {i for i, value in enumerate(VALUES) if jsonb_value(value) is UNSURE}
    assert unsure == {VALUES.index(1e16), VALUES.index(-1.5e16), VALUES.index(1e22), len(VALUES) - 3}
    assert {(OBSERVATION, s.id) for i, s in enumerate(stored) if i not in unsure} == set(held_keys)


async def test_an_older_observation_is_not_its_streams_latest(client: Any) -> None:
    pool = client.server.app[STATE].pool
    stream, feature = await _populate(client)
    new, old = datetime(2031, 1, 2, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)
    async with pool.acquire() as conn:
        (first,) = await insert_stored(conn, [ObservationRow(new, new, 1, feature, datastream_id=stream)])
        (second,) = await insert_stored(conn, [ObservationRow(old, old, 2, feature, datastream_id=stream)])
    assert first.latest
    assert not second.latest
    mine, theirs = await _both(pool, [second])
    assert _payloads(mine[0]) == _payloads(theirs[0])
    assert not any(retain for _, retain, _ in mine[0].publications(PREFIX))


def test_an_update_in_the_same_batch_is_read_back() -> None:
    when = datetime(2030, 1, 1, tzinfo=UTC)
    stored = StoredObservation(7, ObservationRow(when, when, 1.5, 1, datastream_id=1), True)
    changes = [Change(OBSERVATION, 7, "create", stored), Change(OBSERVATION, 7, "update")]
    assert held_of(changes, wanted_of(changes)) == {}
    alone = [changes[0]]
    assert held_of(alone, wanted_of(alone)) == {(OBSERVATION, 7): observation_row(stored)}


async def test_jsonb_value_is_what_jsonb_returns_or_unsure(client: Any) -> None:
    pool = client.server.app[STATE].pool
    for value in VALUES:
        expected = jsonb_value(value)
        if value is None or expected is UNSURE:
            continue
        back = await pool.fetchval("SELECT $1::text::jsonb", orjson.dumps(value).decode())
        assert orjson.dumps(back) == orjson.dumps(expected), value


async def test_create_observations_hands_over_rows_that_render_what_the_read_back_renders(
    client: Any,
) -> None:
    """CreateObservations hands its stored rows to the feed (Change.stored): every component form,
    values jsonb rewrites (read back instead), and only each stream's newest retained."""
    state = client.server.app[STATE]
    stream, feature = await _populate(client)
    heard: list[Change] = []
    state.change_listeners.append(heard.extend)
    values = [v for v in VALUES if not isinstance(v, dict)]  # a dict is a parameters value below
    rows = []
    for i, value in enumerate(values):
        when = datetime(2032, 1, 1, tzinfo=UTC) + timedelta(minutes=i, microseconds=1000 * i + i % 2)
        local = when.astimezone(timezone(timedelta(hours=2))).isoformat()
        interval = f"{when.isoformat()}/{(when + timedelta(hours=1)).isoformat()}"
        rows.append(
            [
                local if i % 3 else interval,
                value,
                None if i % 2 else local,
                None if i % 4 else {"q": value, "b": 1},
                interval if i % 5 == 0 else None,
                {"zz": i, "a": [value]} if i % 2 else None,
                feature,
            ]
        )
    components = ["phenomenonTime", "result", "resultTime", "resultQuality", "validTime", "parameters",
                  "FeatureOfInterest/id"]  # fmt: skip
    body = [
        {"Datastream": {"@iot.id": stream}, "components": components, "dataArray": rows},
        {
            "Datastream": {"@iot.id": stream},
            "components": ["result"],
            "dataArray": [[1], [2]],
        },  # arrival time
    ]
    response = await client.post("/v1.1/CreateObservations", json=body)
    assert response.status == 201, await response.text()
    assert "error" not in await response.json()
    created = [change for change in heard if change.operation == "create"]
    assert len(created) == len(rows) + 2
    assert all(change.stored is not None for change in created)
    read = [Change(OBSERVATION, change.entity_id, "create") for change in created]
    mine, theirs = await load_notices(state.pool, [created, read])
    assert len(mine) == len(theirs) == len(created)
    for held, back in zip(mine, theirs, strict=True):
        assert _payloads(held) == _payloads(back), held.row
    retained = [n.entity_id for n in mine for _, retain, _ in n.publications(PREFIX) if retain]
    assert retained == [n.entity_id for n in theirs for _, retain, _ in n.publications(PREFIX) if retain]
    assert len(retained) == 1
    held_keys = held_of(created, wanted_of(created))
    assert 0 < len(held_keys) < len(created)  # the values jsonb rewrites are read back
