# SPDX-License-Identifier: Apache-2.0
"""ResourcePath + Query -> parameterised SQL.

Every value travels as a $n bind; every identifier comes from schemas.model.
A path becomes nested id subqueries, one per navigation hop, so a request is
one round trip however deep its path (OGC 18-088 §9.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hub.query.ast import Query
from hub.query.path import ResourcePath, Segment
from schemas.model import EntityType, Join


@dataclass
class Binds:
    """Collects bind values and hands out their $n placeholders."""

    values: list[object] = field(default_factory=list)

    def add(self, value: object) -> str:
        """Bind `value` and return its placeholder."""
        self.values.append(value)
        return f"${len(self.values)}"


@dataclass(frozen=True)
class Sql:
    """SQL text with its bind values."""

    text: str
    args: tuple[object, ...]


def select_list(entity_type: EntityType, alias: str = "e") -> str:
    """The columns needed to render `entity_type`: id, properties, to-one link ids."""
    columns = ["id"]
    for prop in entity_type.properties:
        columns.extend(prop.columns)
    columns.extend(n.column for n in entity_type.navigation if n.join is Join.FORWARD)
    return ", ".join(f"{alias}.{c}" for c in columns)


def _ids(segments: Sequence[Segment], binds: Binds) -> tuple[str, bool]:
    """SQL for the ids the segments address; True when it is one bound id."""
    last = segments[-1]
    if len(segments) == 1:
        if last.key is not None:
            return binds.add(last.key), True
        return f"SELECT id FROM {last.entity_type.table}", False
    parent, single = _ids(segments[:-1], binds)
    sql = _hop(segments[-2].entity_type, last, "= " + parent if single else f"IN ({parent})")
    if last.key is not None:
        key = binds.add(last.key)
        sql = f"SELECT k.id FROM {last.entity_type.table} k WHERE k.id = {key} AND k.id IN ({sql})"
    return sql, False


def _hop(source: EntityType, segment: Segment, parent_in: str) -> str:
    """SQL selecting the ids reached from the parent ids over segment.via."""
    nav = segment.via
    assert nav is not None
    if nav.join is Join.FORWARD:
        return f"SELECT s.{nav.column} FROM {source.table} s WHERE s.id {parent_in}"
    if nav.join is Join.REVERSE:
        return f"SELECT t.id FROM {segment.entity_type.table} t WHERE t.{nav.column} {parent_in}"
    assert nav.link is not None
    link = nav.link
    return f"SELECT l.{link.target_column} FROM {link.table} l WHERE l.{link.source_column} {parent_in}"


def target_condition(segments: Sequence[Segment], binds: Binds, alias: str = "e") -> str:
    """A condition on `alias` (the last segment's table) selecting what the path addresses."""
    last = segments[-1]
    if len(segments) == 1 and last.key is None:
        return "TRUE"
    nav = last.via
    if nav is not None and nav.join is Join.REVERSE and last.key is None:
        # Datastreams(1)/Observations -> e.datastream_id = $1: straight onto the index.
        parent, single = _ids(segments[:-1], binds)
        return f"{alias}.{nav.column} " + ("= " + parent if single else f"IN ({parent})")
    ids, single = _ids(segments, binds)
    return f"{alias}.id " + ("= " + ids if single else f"IN ({ids})")


def compile_read(path: ResourcePath, query: Query) -> tuple[Sql, Sql | None]:
    """The page query (one row more than $top, to know if a next page exists) and the count query."""
    entity_type = path.target.entity_type
    binds = Binds()
    where = target_condition(path.segments, binds)
    count = None
    if query.count and path.is_collection:
        count = Sql(f"SELECT count(*) FROM {entity_type.table} e WHERE {where}", tuple(binds.values))
    text = f"SELECT {select_list(entity_type)} FROM {entity_type.table} e WHERE {where} ORDER BY e.id"
    if path.is_collection:
        text += f" LIMIT {binds.add(query.top + 1)} OFFSET {binds.add(query.skip)}"
    else:
        text += " LIMIT 2"
    return Sql(text, tuple(binds.values)), count


def compile_exists(segments: Sequence[Segment]) -> Sql:
    """SQL answering one row when every keyed entity along the segments exists."""
    binds = Binds()
    where = target_condition(segments, binds)
    table = segments[-1].entity_type.table
    return Sql(f"SELECT 1 FROM {table} e WHERE {where} LIMIT 1", tuple(binds.values))
