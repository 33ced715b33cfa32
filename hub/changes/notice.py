# SPDX-License-Identifier: Apache-2.0
"""A Notice: one changed entity as the snapshot read it, with its topics and rendered payloads."""

from __future__ import annotations

from typing import Any

import orjson

from hub.changes.topics import Publication, plan, version_of
from hub.config import Settings
from hub.render import property_value, render_entity
from schemas.model import EntityType, Property

Row = dict[str, Any]


def base_url_of(settings: Settings) -> str:
    """The absolute base of payload links: settings.base_url, else http://{http_host}:{http_port}."""
    if settings.base_url:
        return settings.base_url.rstrip("/")
    host = settings.http_host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"http://{host}:{settings.http_port}"


class Notice:
    """What every sink gets for one changed entity; topics and JSON are worked out once, on demand.

    A plain class with slots (one per announced entity: 10,000 for a CreateObservations request):
    a dataclass's field factories cost more than the rest of making one."""

    __slots__ = ("_entities", "_payloads", "_plans", "entity_type", "operations", "row")

    def __init__(self, entity_type: EntityType, row: Row, operations: frozenset[str]) -> None:
        self.entity_type = entity_type
        self.row = row
        self.operations = operations
        self._plans: dict[str, list[Publication]] = {}
        self._payloads: dict[str, bytes] = {}
        self._entities: dict[str, dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"Notice({self.entity_type.name}, {self.row.get('id')!r}, {sorted(self.operations)})"

    @property
    def entity_id(self) -> int:
        return int(self.row["id"])

    def publications(self, prefix: str) -> list[Publication]:
        """(topic, retain, property) under a topic prefix such as ``v1.1`` or ``city/v1.1``."""
        found = self._plans.get(prefix)
        if found is None:
            found = self._plans[prefix] = plan(self.entity_type, self.row, self.operations, prefix)
        return found

    def entity(self, base_url: str, prefix: str) -> dict[str, Any]:
        """The entity as GET renders it, with links under `base_url` and the prefix's version."""
        return self.entity_at(f"{base_url}/{version_of(prefix)}")

    def entity_at(self, base: str) -> dict[str, Any]:
        """`entity` under the absolute service root `base` (``http://host/v1.1``)."""
        found = self._entities.get(base)
        if found is None:
            found = self._entities[base] = render_entity(self.entity_type, self.row, base)
        return found

    def body(self, prop: Property | None, base_url: str, prefix: str) -> bytes:
        """The payload of one publication: the entity as GET renders it, or one property of it."""
        if prop is not None:
            return orjson.dumps({prop.name: property_value(self.row, prop)})
        return self.payload_at(f"{base_url}/{version_of(prefix)}")

    def payload_at(self, base: str) -> bytes:
        """The whole entity's payload under the absolute service root `base` (once per root)."""
        payload = self._payloads.get(base)
        if payload is None:
            payload = self._payloads[base] = orjson.dumps(self.entity_at(base))
        return payload
