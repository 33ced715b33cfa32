# SPDX-License-Identifier: Apache-2.0
"""The STA resource-path parser (OGC 18-088 §9.2): `Things(1)/Datastreams`, `Things(1)/name/$value`,
and members of complex and JSON properties, `Datastreams(1)/unitOfMeasurement/symbol/$value`
(OData 4.0 Part 2 §4.6, "addressing a property": a complex property's members are path segments)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from schemas.model import ENTITY_SETS, EntityType, Kind, NavigationProperty, Property

# Ids are bigint serials (STA-NOTES 16): anything past a signed 64-bit integer cannot exist.
MAX_KEY = 2**63 - 1

VALUE = "$value"
REF = "$ref"

# `Name` or `Name(key)`; the key is checked separately so its error can name it.
_SEGMENT = re.compile(r"(?P<name>[A-Za-z][A-Za-z0-9_]*)(?:\((?P<key>[^()]*)\))?")
_DIGITS = re.compile(r"[0-9]+")

# Property kinds whose value is a JSON object, so that its members can be addressed by name.
MEMBER_KINDS = frozenset({Kind.UNIT, Kind.OBJECT, Kind.JSON, Kind.GEOJSON})

# Case-insensitive hints for the most common mistake, `things` for `Things`.
_SET_HINTS = {name.lower(): name for name in ENTITY_SETS}


class PathError(ValueError):
    """A resource path that does not address anything in the data model."""


@dataclass(frozen=True)
class Segment:
    """One entity step of a path: an entity set or a navigation, with an optional key."""

    entity_type: EntityType
    key: int | None
    via: NavigationProperty | None  # None for the first segment (an entity set)

    @property
    def name(self) -> str:
        """The segment's name as written in a URL: the set name or the navigation name."""
        return self.via.name if self.via is not None else self.entity_type.set_name

    @property
    def is_single(self) -> bool:
        """Whether the segment addresses one entity (a key, or a to-one navigation)."""
        return self.key is not None or (self.via is not None and not self.via.many)

    def __str__(self) -> str:
        """The segment as written in a URL, e.g. `Things(1)`."""
        return self.name if self.key is None else f"{self.name}({self.key})"


@dataclass(frozen=True)
class ResourcePath:
    """A parsed resource path below the version root."""

    # The methods come before the fields: the field named `property` shadows the builtin decorator.
    @property
    def target(self) -> Segment:
        """The last entity segment: the entity or collection the path addresses."""
        return self.segments[-1]

    @property
    def is_collection(self) -> bool:
        """Whether the path addresses a collection of entities rather than one entity or a property."""
        return self.property is None and not self.target.is_single

    def __str__(self) -> str:
        """The canonical path text, e.g. `Things(1)/Datastreams` (used for selfLinks and MQTT topics)."""
        parts = [str(s) for s in self.segments]
        if self.property is not None:
            parts.append(self.property.name)
            parts.extend(self.members)
        if self.value:
            parts.append(VALUE)
        if self.ref:
            parts.append(REF)
        return "/".join(parts)

    segments: tuple[Segment, ...]
    property: Property | None = None  # Things(1)/name (§9.2, "address to a property")
    value: bool = False  # Things(1)/name/$value ("address to the value of a property")
    ref: bool = False  # .../$ref ("address to an association link")
    members: tuple[str, ...] = ()  # Things(1)/properties/owner/name -> ("owner", "name")


# Paths up to this length are remembered (a request parses its path two or three times: routing,
# the operation, the handler; a result is immutable). Longer ones are parsed each time, so that
# clients cannot fill the cache with large keys.
_CACHED_LENGTH = 200


def parse_path(text: str) -> ResourcePath:
    """Parse a resource path such as `Datastreams(1)/Thing/Locations` against the data model."""
    return _parse_cached(text) if len(text) <= _CACHED_LENGTH else _parse(text)


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str) -> ResourcePath:
    return _parse(text)


def _parse(text: str) -> ResourcePath:
    parts = _split(text)
    ref = _pop_suffix(parts, REF)
    value = _pop_suffix(parts, VALUE)
    for part in parts[1:]:
        _reject_misplaced_suffix(part)
    segments = [_first_segment(parts[0])]
    prop: Property | None = None
    members: tuple[str, ...] = ()
    for index, part in enumerate(parts[1:], start=1):
        step = _step(segments[-1], part)
        if isinstance(step, Segment):
            segments.append(step)
            continue
        prop, members = step, tuple(parts[index + 1 :])
        if members and step.kind not in MEMBER_KINDS:
            raise PathError(f"nothing but {VALUE} may follow property '{step.name}': '{members[0]}'")
        break
    if value and prop is None:
        raise PathError(f"{VALUE} must follow a property: '{text}'")
    if ref and prop is not None:
        raise PathError(f"{REF} cannot follow property '{prop.name}'")
    return ResourcePath(tuple(segments), prop, value, ref, members)


def _split(text: str) -> list[str]:
    """Split on '/', tolerating a leading slash and trailing slashes but not empty inner segments."""
    parts = text.removeprefix("/").rstrip("/").split("/")
    if parts == [""]:
        raise PathError("empty resource path: it must start with an entity set such as 'Things'")
    if "" in parts:
        raise PathError(f"empty segment in '{text}'")
    return parts


def _pop_suffix(parts: list[str], suffix: str) -> bool:
    """Remove `suffix` when it is the last segment (after at least one entity segment)."""
    if len(parts) > 1 and parts[-1] == suffix:
        parts.pop()
        return True
    return False


def _reject_misplaced_suffix(part: str) -> None:
    """`$ref` and `$value` are only valid as the last segments; other `$` segments are not STA."""
    if part == REF:
        raise PathError(f"{REF} must be the last segment")
    if part == VALUE:
        raise PathError(f"{VALUE} must follow a property and be the last segment apart from {REF}")
    if part.startswith("$"):
        raise PathError(f"unsupported path segment '{part}'")


def _first_segment(part: str) -> Segment:
    """The first segment must be an entity set (§9.2, "address to a collection of entities")."""
    if part.startswith("$"):
        raise PathError(f"a resource path starts with an entity set such as 'Things', not '{part}'")
    name, key = _name_and_key(part)
    entity_type = ENTITY_SETS.get(name)
    if entity_type is None:
        hint = _SET_HINTS.get(name.lower())
        suffix = f" (did you mean '{hint}'?)" if hint else ""
        raise PathError(f"unknown entity set '{name}'{suffix}")
    return Segment(entity_type, key, None)


def _step(current: Segment, part: str) -> Segment | Property:
    """Resolve `part` below `current`: a navigation property, or a property of a single entity."""
    name, key = _name_and_key(part)
    if not current.is_single:
        example = f"{current.name}(1)"
        raise PathError(f"{current.name} is a collection: give a key, e.g. '{example}', before '{name}'")
    nav = current.entity_type.navigation_by_name.get(name)
    if nav is not None:
        if key is not None and not nav.many:
            owner = current.entity_type.name
            raise PathError(f"{owner}.{name} is a to-one navigation property and takes no key: '{part}'")
        return Segment(nav.target, key, nav)
    prop = current.entity_type.property_by_name.get(name)
    if prop is None:
        kind = "navigation property" if key is not None else "property or navigation property"
        raise PathError(f"{current.name} has no {kind} '{name}'")
    if key is not None:
        raise PathError(f"'{name}' is a property and takes no key: '{part}'")
    return prop


def _name_and_key(part: str) -> tuple[str, int | None]:
    """Split `Name(key)` into its name and integer key."""
    match = _SEGMENT.fullmatch(part)
    if match is None:
        raise PathError(f"malformed segment '{part}'")
    raw = match["key"]
    return match["name"], None if raw is None else _key(raw)


def _key(raw: str) -> int:
    """Entity ids are non-negative integers (STA-NOTES 16); no quoted strings, signs or spaces."""
    if not _DIGITS.fullmatch(raw):
        raise PathError(f"entity ids are integers: {raw!r}")
    key = int(raw)
    if key > MAX_KEY:
        raise PathError(f"entity id out of range: '{raw}'")
    return key
