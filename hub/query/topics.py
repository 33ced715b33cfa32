# SPDX-License-Identifier: Apache-2.0
"""MQTT topic filters and matching, and the STA create topics (OGC 18-088 §14.2) as resource paths."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from hub.query.path import PathError, ResourcePath, parse_path
from schemas.model import OBSERVATION

STA_VERSIONS = ("v1.0", "v1.1")

# The parents an Observation may be created under by publishing to `<version>/<Parent>(id)/Observations`.
CREATE_PARENTS = ("Datastreams", "MultiDatastreams", "FeaturesOfInterest")


class TopicError(ValueError):
    """A topic or topic filter that is not valid MQTT, or not an STA create topic."""


@dataclass(frozen=True)
class TopicFilter:
    """An MQTT topic filter such as `v1.1/+/Observations` or `sensors/#`.

    `shared`: subscribed in the share group, when there is one (each message reaches one member);
    False for filters every member must receive whole (discovery configs: a config published
    while the replicas run would otherwise reach one of them only; and MQTT 5 §4.8.2 lets a
    broker withhold retained messages from shared subscriptions)."""

    text: str
    shared: bool = True

    def __post_init__(self) -> None:
        levels = self.text.split("/")
        if not self.text:
            raise TopicError("a topic filter must not be empty")
        for index, level in enumerate(levels):
            if "#" in level and (level != "#" or index != len(levels) - 1):
                raise TopicError(f"'#' must be a whole last level: '{self.text}'")
            if "+" in level and level != "+":
                raise TopicError(f"'+' must be a whole level: '{self.text}'")

    @property
    def levels(self) -> tuple[str, ...]:
        """The filter split at '/'."""
        return tuple(self.text.split("/"))

    def matches(self, topic: str) -> bool:
        """Whether a concrete topic matches (MQTT 3.1.1 §4.7; `$` topics never match wildcards)."""
        return _matches(self.levels, tuple(topic.split("/")))

    def subscription(self, share_group: str | None) -> str:
        """The filter to subscribe to, as `$share/<group>/<filter>` in a share group."""
        return f"$share/{share_group}/{self.text}" if share_group and self.shared else self.text


def _matches(pattern: tuple[str, ...], levels: tuple[str, ...]) -> bool:
    if levels and levels[0].startswith("$") and pattern and pattern[0] in ("+", "#"):
        return False
    for index, part in enumerate(pattern):
        if part == "#":
            return True
        if index >= len(levels) or (part != "+" and part != levels[index]):
            return False
    return len(levels) == len(pattern)


# Every STA create topic is one of these two shapes per version.
STA_CREATE_FILTERS = tuple(
    TopicFilter(f"{version}/{shape}")
    for version in STA_VERSIONS
    for shape in ("Observations", "+/Observations")
)


@dataclass(frozen=True)
class CreateTopic:
    """An STA create topic: the version and the resource path of the Observations collection."""

    version: str
    path: ResourcePath

    @property
    def parent(self) -> tuple[str, int] | None:
        """(entity set, id) of the parent in the topic, e.g. ('Datastreams', 7); None for `Observations`."""
        if len(self.path.segments) == 1:
            return None
        first = self.path.segments[0]
        assert first.key is not None
        return first.entity_type.set_name, first.key


@lru_cache(maxsize=4096)
def parse_create_topic(topic: str) -> CreateTopic:
    """Parse `v1.1/Observations` or `v1.1/Datastreams(7)/Observations`; raise TopicError otherwise."""
    version, _, rest = topic.partition("/")
    if version not in STA_VERSIONS:
        raise TopicError(f"'{topic}' does not start with {' or '.join(STA_VERSIONS)}")
    try:
        path = parse_path(rest)
    except PathError as error:
        raise TopicError(f"'{topic}': {error}") from None
    segments = path.segments
    wrong_target = path.property is not None or path.ref or segments[-1].entity_type is not OBSERVATION
    if wrong_target or segments[-1].key is not None:
        raise TopicError(f"'{topic}' is not an Observations collection to create in")
    if len(segments) == 2 and (segments[0].name not in CREATE_PARENTS or segments[0].key is None):
        raise TopicError(f"'{topic}': Observations can be created under {', '.join(CREATE_PARENTS)}(id)")
    if len(segments) > 2:
        raise TopicError(f"'{topic}': only <Parent>(id)/Observations is a create topic")
    return CreateTopic(version, path)


def dead_letter_topic(prefix: str, topic: str) -> str:
    """Where a rejected message on `topic` is republished: `<prefix>/<topic>`."""
    return f"{prefix}/{topic.lstrip('/')}"
