# SPDX-License-Identifier: Apache-2.0
"""STA creates over MQTT: echoes seen before any parse, the common body validated fast (issue 11)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from hub.errors import StaError
from hub.ingest.dispatch import Echo, IngestError
from hub.ingest.sta import ECHO_PREFIX, create_observation, pending_observation, validated_observation
from hub.render import render_entity
from schemas.entities import ValidationError
from schemas.model import OBSERVATION

TOPIC = "v1.1/Datastreams(7)/Observations"
NOW = datetime(2026, 12, 7, tzinfo=UTC)


def notification() -> bytes:
    """An Observation notification as the Notifier renders it."""
    row = {
        "id": 5,
        "phenomenon_time_start": NOW,
        "phenomenon_time_end": NOW,
        "result_time": None,
        "result": 21.5,
        "result_quality": None,
        "valid_time_start": None,
        "valid_time_end": None,
        "parameters": None,
        "datastream_id": 7,
        "multi_datastream_id": None,
        "feature_of_interest_id": 3,
    }
    return orjson.dumps(render_entity(OBSERVATION, row, "http://hub.example/v1.1"))


def test_a_rendered_notification_starts_with_the_echo_prefix() -> None:
    assert notification().startswith(ECHO_PREFIX)


@pytest.mark.parametrize(
    "payload",
    [
        notification(),
        # the prefix decides before parsing: a truncated notification is still ours, not a bad message
        notification()[:40],
        # a notification rendered by other means (keys in another order) is recognised after parsing
        orjson.dumps({"result": 1, "@iot.selfLink": "http://x/v1.1/Observations(1)"}),
    ],
)
def test_echoes_are_signalled_not_stored(payload: bytes) -> None:
    with pytest.raises(Echo):
        create_observation(TOPIC, payload, NOW)


@pytest.mark.parametrize(
    ("payload", "stored"),
    [
        (b'{"result": 1, "phenomenonTime": "2026-12-07T00:00:00Z"}', True),
        (b' {"@iot.id":1}', False),  # whitespace first: not the hub's rendering; parsed, then an echo
    ],
)
def test_creates_are_not_taken_for_echoes(payload: bytes, stored: bool) -> None:
    if stored:
        assert len(create_observation(TOPIC, payload, NOW)) == 1
    else:
        with pytest.raises(Echo):
            create_observation(TOPIC, payload, NOW)


def test_a_bad_create_is_still_rejected() -> None:
    with pytest.raises(IngestError):
        create_observation(TOPIC, b'{"result": ', NOW)


FAST_BODIES: list[object] = [
    {"result": 1.5, "phenomenonTime": "2026-12-07T10:00:00Z"},
    {"result": 2, "phenomenonTime": "2026-12-07T10:00:00.123456Z"},
    {"result": 2, "phenomenonTime": "2026-12-07T10:00:00.12Z"},
    {"result": 2, "phenomenonTime": "2026-12-07T10:00:00.1234567Z"},  # past microseconds: parse_time
    {"result": 2, "phenomenonTime": "2026-02-30T10:00:00Z"},  # no such day
    {"result": 2, "phenomenonTime": "2026-12-07T24:00:00Z"},
    {"result": 2, "phenomenonTime": "2026-12-07t10:00:00z"},  # lower case, as RFC 3339 allows
    {"result": 2, "phenomenonTime": "0001-01-01T00:00:00Z"},
    {"phenomenonTime": "2026-12-07T10:00:00.5+01:00/PT1M", "result": {"a": [1]}},
    {"result": None},
    {"result": "x", "phenomenonTime": None},
    {"result": 1, "phenomenonTime": "soon"},
    {"result": 1, "phenomenonTime": 17},
    {"result": 1, "phenomenonTime": "2026-12-07T11:00:00Z/2026-12-07T10:00:00Z"},
    {"phenomenonTime": "2026-12-07T10:00:00Z"},  # no result: the full path says so
    {"result": 1, "resultTime": "2026-12-07T10:00:00Z"},  # another key: the full path
    {"result": 1, "Datastream": {"@iot.id": 9}},
]


@pytest.mark.parametrize("body", FAST_BODIES)
@pytest.mark.parametrize("parent", [("Datastreams", 7), ("MultiDatastreams", 8), ("FeaturesOfInterest", 3)])
def test_the_fast_path_validates_as_the_create_model(body: object, parent: tuple[str, int]) -> None:
    def outcome(check: object) -> object:
        try:
            return check(body, parent)  # type: ignore[operator]
        except (StaError, ValidationError) as error:
            return (type(error).__name__, str(error))

    assert outcome(pending_observation) == outcome(validated_observation)
