# SPDX-License-Identifier: Apache-2.0
"""The MQTT sink of the change feed (OGC 18-088 §14.1 "receive updates via MQTT").

The feed (hub/changes/feed.py) loads and plans; the Notifier publishes each Notice's publications
under every topic prefix, the entity rendered exactly as HTTP GET does, through the broker
client's ``publish``. It takes this process's commits only: every hub process publishes its own.
``_send`` is the one place notification publishes happen. Topics: hub/changes/topics.py and
docs/mqtt-subscriptions.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

from hub.changes.notice import Notice
from hub.changes.topics import Members, members, select_forms, select_topics, version_of
from hub.mqtt.wire import Group, Grouped, Run
from schemas.model import EntityType

log = logging.getLogger("twinhub.mqtt.notify")

Publish = Callable[[str, bytes, int, bool], None]  # (topic, payload, qos, retain)
# ([(topic, payload, retain), ...], qos): many publications in one call (MqttClient.publish_notifications)
Item = tuple[str, bytes, bool]  # (topic, payload, retain)
PublishMany = Callable[[Sequence[Item], int], None]

V11 = "v1.1"
V10 = "v1.0"


def version_prefixes(publish_v10: bool = False) -> tuple[str, ...]:
    """Topic trees to publish on: v1.1 always, v1.0 too when asked (default off)."""
    return (V11, V10) if publish_v10 else (V11,)


def _selected_payloads(entity: dict[str, Any], forms: Sequence[tuple[str, Members]]) -> list[bytes]:
    """Each form's payload: orjson.dumps(selected(entity, names)) byte for byte, from each value
    dumped once (the forms mostly name the same properties in another order)."""
    values: dict[str, bytes] = {}
    payloads = []
    for _, keys in forms:
        parts = []
        for key, prefix in keys:
            if key in entity:
                value = values.get(key)
                if value is None:
                    value = values[key] = orjson.dumps(entity[key])
                parts.append(prefix + value)
        payloads.append(b"{" + b",".join(parts) + b"}")
    return payloads


OBSERVATION = "Observation"
_STREAM_SETS = ("Datastreams(", "MultiDatastreams(")


def _stream_collection(topic: str, cut: int) -> bool:
    """Whether `topic` (its prefix `cut` characters long) is ``Datastreams(d)/Observations`` or
    ``MultiDatastreams(d)/Observations``: where a time series is subscribed to."""
    rest = topic[cut:]
    return rest.startswith(_STREAM_SETS) and rest.endswith(")/Observations") and rest.count("/") == 1


class Notifier:
    """Publishes Notices to MQTT subscribers; a sink of the change feed."""

    every_process = False  # the other processes publish their own commits

    def __init__(
        self,
        publish: Publish,
        base_url: str,
        qos: int = 1,
        version_prefixes: tuple[str, ...] = (V11,),
        *,
        selects: Sequence[str] = (),
        log_interval: float = 60.0,
        publish_many: PublishMany | None = None,
        drained: Callable[[], Awaitable[None]] | None = None,
        select_scope: str = "all",
    ) -> None:
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, got {qos!r}")
        self._publish = publish
        self._publish_many = publish_many  # when given, each batch of Notices goes out in one call
        self._drained = drained  # when given, waits (bounded) while the broker client's backlog is high
        self._base_url = base_url.rstrip("/")
        self._qos = qos
        self._prefixes = tuple(p.strip("/") for p in version_prefixes)
        self._selects = select_forms(selects)  # published as `<topic>?$select=<form>` (changes/topics.py)
        # "streams": an Observation's forms on its streams' collection topics only (mqtt_select_scope)
        self._streams_only = select_scope == "streams"
        # (prefix, absolute service root under it) and, per entity type, the `?$select=<form>` marks
        # that apply with the form's names: worked out once, not per Notice.
        self._roots = tuple((prefix, f"{self._base_url}/{version_of(prefix)}") for prefix in self._prefixes)
        self._forms: dict[EntityType, tuple[tuple[str, ...], list[tuple[str, Members]]]] = {}
        self._log_interval = log_interval
        self._last_log = float("-inf")
        self.published = 0  # messages handed to publish
        self.failed = 0  # messages publish refused
        self.gaps = 0  # times the feed lost changes before they reached this sink

    def active(self) -> bool:
        return True  # retained messages and subscribers we cannot see: always publish

    async def drained(self) -> None:
        """Return when the broker client can take more notifications (MqttClient.drained)."""
        if self._drained is not None:
            await self._drained()

    def deliver(self, notices: Sequence[Notice]) -> None:
        """Publish every publication of every Notice under each prefix: per Notice its topics with
        the whole entity (or the one property), then each entity topic's `$select` forms."""
        runs: list[Run] = []
        count = 0
        roots = self._roots
        for notice in notices:
            marks, forms = self._forms_of(notice.entity_type)
            streams_only = self._streams_only and notice.entity_type.name == OBSERVATION
            for prefix, base in roots:
                groups: list[Group] = []
                payload: bytes | None = None  # the entity's, and its forms' below
                marked: tuple[bytes, ...] = ()
                for topic, retain, prop in notice.publications(prefix):
                    if prop is not None:  # property topics have no $select forms
                        groups.append((topic, retain, notice.body(prop, self._base_url, prefix), ()))
                        count += 1
                        continue
                    if payload is None:
                        payload = notice.payload_at(base)
                        if forms:
                            marked = tuple(_selected_payloads(notice.entity_at(base), forms))
                    own = marked if not streams_only or _stream_collection(topic, len(prefix) + 1) else ()
                    groups.append((topic, retain, payload, own))
                    count += 1 + len(own)
                runs.append((marks, groups))
        items = Grouped(runs, count)
        if self._publish_many is None:
            for topic, payload, retain in items:
                self._send(topic, payload, retain)
            return
        try:
            self._publish_many(items, self._qos)
        except Exception as error:  # the broker client's business; count, log, go on
            self._failed(count, next(iter(items))[0] if count else "", error)
        else:
            self.published += count

    def _forms_of(self, entity_type: EntityType) -> tuple[tuple[str, ...], list[tuple[str, Members]]]:
        """The configured `$select` forms that apply to the type (STA §14.1; docs/mqtt-subscriptions.md):
        their topic marks (`?$select=<form>`) and members, worked out once per type."""
        found = self._forms.get(entity_type)
        if found is None:
            applicable = select_topics(entity_type, [("", False)], self._selects, {}) if self._selects else []
            forms = [(mark, members(names)) for mark, _, names in applicable]
            found = self._forms[entity_type] = (tuple(mark for mark, _ in forms), forms)
        return found

    def gap(self) -> None:
        self.gaps += 1  # the feed logs what it dropped; MQTT has no way to tell subscribers

    def _send(self, topic: str, payload: bytes, retain: bool) -> None:
        try:
            self._publish(topic, payload, self._qos, retain)
        except Exception as error:  # the broker client's business; count, log, go on
            self._failed(1, topic, error)
        else:
            self.published += 1

    def _failed(self, count: int, topic: str, error: Exception) -> None:
        self.failed += count
        now = time.monotonic()
        if now - self._last_log >= self._log_interval:
            self._last_log = now
            log.warning("MQTT publish on %s failed (%d failures so far): %s", topic, self.failed, error)
