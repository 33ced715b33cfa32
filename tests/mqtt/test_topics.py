# SPDX-License-Identifier: Apache-2.0
"""Topic filters, matching and the STA create topics (no broker, no database)."""

from __future__ import annotations

import pytest

from hub.config import Settings
from hub.query.topics import TopicError, TopicFilter, dead_letter_topic, parse_create_topic


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("v1.1/+/Observations", "v1.1/Datastreams(1)/Observations", True),
        ("v1.1/+/Observations", "v1.1/Observations", False),
        ("v1.1/Observations", "v1.1/Observations", True),
        ("sensors/#", "sensors", True),
        ("sensors/#", "sensors/a/b", True),
        ("#", "$SYS/broker", False),
        ("+/x", "a/x/y", False),
    ],
)
def test_matching(pattern: str, topic: str, expected: bool) -> None:
    assert TopicFilter(pattern).matches(topic) is expected


@pytest.mark.parametrize("bad", ["", "a/#/b", "a+/b", "a/b#"])
def test_invalid_filters(bad: str) -> None:
    with pytest.raises(TopicError):
        TopicFilter(bad)


def test_shared_subscription() -> None:
    assert TopicFilter("v1.1/Observations").subscription("g") == "$share/g/v1.1/Observations"
    assert TopicFilter("v1.1/Observations").subscription(None) == "v1.1/Observations"


@pytest.mark.parametrize(
    ("topic", "parent"),
    [
        ("v1.1/Observations", None),
        ("v1.0/Datastreams(7)/Observations", ("Datastreams", 7)),
        ("v1.1/MultiDatastreams(2)/Observations", ("MultiDatastreams", 2)),
        ("v1.1/FeaturesOfInterest(3)/Observations", ("FeaturesOfInterest", 3)),
    ],
)
def test_create_topics(topic: str, parent: tuple[str, int] | None) -> None:
    assert parse_create_topic(topic).parent == parent


@pytest.mark.parametrize(
    "topic",
    [
        "v2/Observations",
        "v1.1/Things(1)/Observations",
        "v1.1/Observations(1)",
        "v1.1/Datastreams/Observations",
    ],
)
def test_not_create_topics(topic: str) -> None:
    with pytest.raises(TopicError):
        parse_create_topic(topic)


def test_dead_letter_topic_and_settings() -> None:
    assert dead_letter_topic("twinhub/errors", "v1.1/Observations") == "twinhub/errors/v1.1/Observations"
    with pytest.raises(ValueError, match="mqtt_protocol"):
        Settings(mqtt_protocol="4")
    assert Settings(dead_letter_prefix="/dl/").dead_letter_prefix == "dl"
