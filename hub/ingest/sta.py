# SPDX-License-Identifier: Apache-2.0
"""Create over MQTT (OGC 18-088 §14.2): an Observation JSON published to an STA create topic.

`v1.1/Observations` (the Datastream or MultiDatastream in the body), `v1.1/Datastreams(id)/Observations`,
`v1.1/MultiDatastreams(id)/Observations` and `v1.1/FeaturesOfInterest(id)/Observations`, and the same
under v1.0. Properties are validated exactly as an HTTP POST validates them. Links are references
({"@iot.id": n}) or, as over HTTP (§10.2.1.2 deep insert; FROST's suite publishes one), new entities:
a Datastream (with its Thing, Sensor, ObservedProperty), MultiDatastream or FeatureOfInterest given
inline is created with the Observation, in the batch's transaction under a savepoint of its own, so
that a message whose entities the database refuses is dead-lettered alone with the reason.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import orjson

from hub.errors import StaError
from hub.ingest.dispatch import (
    BAD_JSON,
    INVALID,
    Dispatcher,
    Echo,
    IngestError,
    Message,
    PendingObservation,
)
from hub.query.topics import STA_CREATE_FILTERS, TopicError, parse_create_topic
from hub.store.write import Change, Writer, reference_id, split_body
from schemas.entities import ValidationError, parse_time, validate_create
from schemas.model import ENTITY_TYPES, OBSERVATION

# Navigation name -> PendingObservation field; parents in the topic use the same names.
_LINKS = {
    "Datastream": "datastream_id",
    "MultiDatastream": "multi_datastream_id",
    "FeatureOfInterest": "feature_of_interest_id",
}
_PARENT_LINKS = {
    "Datastreams": "Datastream",
    "MultiDatastreams": "MultiDatastream",
    "FeaturesOfInterest": "FeatureOfInterest",
}

Item = tuple[Message, list[PendingObservation]]

# A notification (ours or a replica's) starts with these bytes: the hub renders @iot.id first and
# orjson writes no whitespace. The fallback for MQTT 3.1.1, which has no user properties: under
# MQTT 5 every hub notification carries a mark (hub/mqtt/client.py NOTIFICATION_MARK) and the
# writer drops it before dispatch; No Local keeps our own away where the subscription is unshared.
# Checked before parsing, so that an echo costs no JSON parse (docs/mqtt.md "Bad input").
ECHO_PREFIX = b'{"@iot.id":'

# The entity sets whose `(id)/Observations` collections accept creates (STA §14.2).
PARENT_SETS = frozenset(_PARENT_LINKS)


def register_sta(dispatcher: Dispatcher) -> None:
    """Route the STA create topics of both versions to `create_observation`."""
    for topic_filter in STA_CREATE_FILTERS:
        dispatcher.register(topic_filter, create_observation)


def create_observation(topic: str, payload: bytes, received_at: datetime) -> list[PendingObservation]:
    """The STA create handler: one Observation per message."""
    if payload.startswith(ECHO_PREFIX):
        raise Echo()  # counted by the writer as a deliberate echo, never stored or dead-lettered
    try:
        target = parse_create_topic(topic)
    except TopicError as error:
        raise IngestError(INVALID, str(error)) from None
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise IngestError(BAD_JSON, f"not JSON: {error}") from None
    if isinstance(body, dict) and ("@iot.selfLink" in body or "@iot.id" in body):
        raise Echo()  # a notification (ours or a replica's) on the same topic, not a create
    try:
        return [pending_observation(body, target.parent)]
    except (StaError, ValidationError) as error:
        raise IngestError(INVALID, str(error)) from None


# The common body, {"phenomenonTime", "result"} under a (Multi)Datastream's topic or path, skips
# the pydantic model: the same converter for the time (parse_time, whose errors are the model's),
# none for the result (any JSON value). ~25 µs less per Observation (bench/deployed.py profile).
_FAST_KEYS = frozenset({"phenomenonTime", "result"})
_FAST_PARENTS = {"Datastreams": "datastream_id", "MultiDatastreams": "multi_datastream_id"}
_PHENOMENON_TIME = "Observation.phenomenonTime"


def pending_observation(body: object, parent: tuple[str, int] | None) -> PendingObservation:
    """Validate an STA Observation body whose links are references; the writer checks them."""
    if (
        parent is not None
        and parent[0] in _FAST_PARENTS
        and type(body) is dict
        and "result" in body
        and _FAST_KEYS.issuperset(body)
    ):
        when = body.get("phenomenonTime")
        interval = None if when is None else _phenomenon_time(when)
        if parent[0] == "Datastreams":
            return PendingObservation(body["result"], interval, datastream_id=parent[1])
        return PendingObservation(body["result"], interval, multi_datastream_id=parent[1])
    return validated_observation(body, parent)


# The instant most devices send: UTC, "Z", whole or fractional seconds. datetime.fromisoformat
# reads it as parse_time would (aware, UTC) without its case folding, interval split and offset
# conversions: ~0.5 µs less per Observation. Anything else, and any error, goes to parse_time.
_UTC_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z")


def _phenomenon_time(when: object) -> tuple[datetime, datetime]:
    if type(when) is str and _UTC_INSTANT.fullmatch(when):
        try:
            moment = datetime.fromisoformat(when)
        except ValueError:  # e.g. February 30: parse_time words the error
            pass
        else:
            return moment, moment
    return parse_time(when, _PHENOMENON_TIME)


def validated_observation(body: object, parent: tuple[str, int] | None) -> PendingObservation:
    """pending_observation through the full create model, for any body."""
    props, navs = split_body(OBSERVATION, body, "Observation")
    values = validate_create(OBSERVATION, props)
    links, inline = _links(navs, parent)
    streams = {*links, *(_LINKS[name] for name in inline)}
    if ("datastream_id" in streams) == ("multi_datastream_id" in streams):
        raise ValidationError("Observation", "needs exactly one Datastream or MultiDatastream")
    return PendingObservation(
        result=values.get("result"),
        phenomenon_time=_interval(values.get("phenomenonTime")),
        result_time=_instant(values.get("resultTime")),
        result_quality=values.get("resultQuality"),
        valid_time=_interval(values.get("validTime")),
        parameters=_object(values.get("parameters")),
        datastream_id=links.get("datastream_id"),
        multi_datastream_id=links.get("multi_datastream_id"),
        feature_of_interest_id=links.get("feature_of_interest_id"),
        inline=inline or None,
    )


def _links(navs: Mapping[str, Any], parent: tuple[str, int] | None) -> tuple[dict[str, int], dict[str, Any]]:
    """Stream and feature ids from the topic's parent and the body's references, and the bodies of
    the entities given inline (checked here as far as they can be without the database)."""
    links: dict[str, int] = {}
    inline: dict[str, Any] = {}
    parent_nav = _PARENT_LINKS[parent[0]] if parent else None
    for name, field in _LINKS.items():
        body = navs.get(name)
        if parent is not None and name == parent_nav:
            links[field] = parent[1]
        elif isinstance(body, dict) and ("@iot.id" in body or "@iot.selfLink" in body):
            links[field] = reference_id(ENTITY_TYPES[name], body, f"Observation.{name}")
        elif body is not None:
            props, _ = split_body(ENTITY_TYPES[name], body, f"Observation.{name}")
            validate_create(ENTITY_TYPES[name], props)  # the nested entity's own properties
            inline[name] = body
    return links, inline


class InlineOutcome(Protocol):
    """Where create_inline reports: the refused messages, and the Changes of what it created."""

    rejected: list[tuple[Message, IngestError]]
    created: list[Change]


async def create_inline(
    conn: asyncpg.Connection, items: Sequence[Item], outcome: InlineOutcome
) -> list[Item]:
    """Create the entities deep-inserted in STA creates and link their Observations to them; a
    message whose entities cannot be created goes to `outcome.rejected` (its savepoint rolled back)."""
    if not any(p.inline for _, pending in items for p in pending):
        return list(items)
    kept: list[Item] = []
    for message, pending in items:
        if not any(p.inline for p in pending):
            kept.append((message, pending))
            continue
        writer = Writer(conn, datetime.now(UTC))
        try:
            async with conn.transaction():
                kept.append((message, [await _created(writer, p) for p in pending]))
        except _ENTITY_ERRORS as error:
            outcome.rejected.append((message, IngestError(INVALID, f"deep insert refused: {error}")))
            continue
        outcome.created.extend(writer.changes)  # announced once the batch is committed
    return kept


# What a deep-inserted entity can fail with: its own validation, a bad link, a refused value.
_ENTITY_ERRORS = (
    ValidationError,
    StaError,
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
)


async def _created(writer: Writer, pending: PendingObservation) -> PendingObservation:
    """The Observation linked to its inline entities, once they are created."""
    if not pending.inline:
        return pending
    for name, body in pending.inline.items():
        entity_id = await writer.create(ENTITY_TYPES[name], body, where=f"Observation.{name}")
        pending = _LINK_SETTERS[name](pending, entity_id)
    return dataclasses.replace(pending, inline=None)


# Navigation name -> the PendingObservation with that link set to a new entity's id.
_LINK_SETTERS: dict[str, Callable[[PendingObservation, int], PendingObservation]] = {
    "Datastream": lambda p, i: dataclasses.replace(p, datastream_id=i),
    "MultiDatastream": lambda p, i: dataclasses.replace(p, multi_datastream_id=i),
    "FeatureOfInterest": lambda p, i: dataclasses.replace(p, feature_of_interest_id=i),
}


def _interval(value: object) -> tuple[datetime, datetime] | None:
    if isinstance(value, tuple):
        start, end = value
        if isinstance(start, datetime) and isinstance(end, datetime):
            return start, end
    return None


def _instant(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _object(value: object) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None
