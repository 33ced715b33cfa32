# SPDX-License-Identifier: Apache-2.0
"""ResourcePath + Query -> parameterised SQL.

Every value travels as a $n bind; every identifier comes from schemas.model.
A path becomes nested id subqueries, one per navigation hop, so a request is
one round trip however deep its path (OGC 18-088 §9.2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from hub.query.ast import OrderBy, Path, Query
from hub.query.filter import Dialect, compile_filter, compile_order
from hub.query.parse import QueryError
from hub.query.path import ResourcePath, Segment
from hub.query.plan import Selection
from schemas.entities import ValidationError, parse_instant
from schemas.model import EntityType, Join, NavigationProperty


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


def select_list(
    entity_type: EntityType, selection: Selection | None = None, alias: str = "e", extra: Sequence[str] = ()
) -> str:
    """The columns needed to render `entity_type`: id, (selected) properties, to-one link ids, extras."""
    columns = ["id"]
    for prop in entity_type.properties:
        if selection is None or selection.wants_property(prop):
            columns.extend(prop.columns)
    columns.extend(n.column for n in entity_type.navigation if n.join is Join.FORWARD)
    columns.extend(c for c in extra if c not in columns)
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


@dataclass(frozen=True)
class Keyset:
    """A page continuation by the last row's sort key (cost independent of the page number)."""

    column: str  # e.g. phenomenon_time_start, or id
    descending: bool


# Orderings that can continue by keyset: one plain NOT NULL column (plus the id tiebreak).
_KEYSET_PATHS: dict[tuple[str, ...], str] = {
    ("phenomenonTime",): "phenomenon_time_start",
    ("id",): "id",
    ("@iot.id",): "id",
}


def keyset_of(entity_type: EntityType, query: Query) -> Keyset | None:
    """The keyset of a query's ordering, when it has one."""
    if not query.orderby:
        return Keyset("id", False)
    if len(query.orderby) != 1 or not isinstance(query.orderby[0].expr, Path):
        return None
    order = query.orderby[0]
    assert isinstance(order.expr, Path)
    column = _KEYSET_PATHS.get(order.expr.segments)
    if column is None or order.expr.variable is not None:
        return None
    if column != "id" and entity_type.property_by_name.get("phenomenonTime") is None:
        return None
    if column != "id" and entity_type.property_by_name["phenomenonTime"].read_only:
        return None  # Datastream extents may be NULL
    return Keyset(column, order.descending)


TIME_ORDER = (OrderBy(Path(("phenomenonTime",))),)


def stream_order(nav: NavigationProperty | None, query: Query) -> Query:
    """The Observations of one stream are served in time order unless $orderby says otherwise.

    The standard leaves the default order open. Time order is what time-series clients want,
    it continues by keyset, and only the (stream, time, id) index delivers it, so the planner
    cannot walk the primary key through other streams' rows instead (a skewed table made
    that 50x slower in bench/core.py)."""
    if query.orderby or nav is None or nav.name != "Observations" or nav.join is not Join.REVERSE:
        return query
    return dataclasses.replace(query, orderby=TIME_ORDER)


def order_clause(
    entity_type: EntityType, query: Query, binds: Binds, dialect: Dialect, alias: str = "e"
) -> str:
    """ORDER BY keys plus the id tiebreak, which follows the last key's direction so that
    `phenomenonTime desc` walks the (stream, time, id) index backwards."""
    keyset = keyset_of(entity_type, query)
    if keyset is not None:
        direction = " DESC" if keyset.descending else ""
        if keyset.column == "id":
            return f"{alias}.id{direction}"
        return f"{alias}.{keyset.column}{direction}, {alias}.id{direction}"
    keys = [compile_order(order, entity_type, alias, binds, dialect) for order in query.orderby]
    last_descending = query.orderby[-1].descending
    return ", ".join([*keys, f"{alias}.id" + (" DESC" if last_descending else "")])


def keyset_condition(keyset: Keyset, token: str, binds: Binds, alias: str = "e") -> str:
    """Rows after the $skiptoken position, as a row comparison the index can use."""
    value, _, last_id = token.rpartition("~")
    if not last_id.isdigit():
        raise QueryError(f"$skiptoken: {token!r} is not a continuation token of this server")
    op = "<" if keyset.descending else ">"
    if keyset.column == "id":
        return f"{alias}.id {op} {binds.add(int(last_id))}"
    try:
        moment = parse_instant(value, "$skiptoken")
    except ValidationError:
        raise QueryError(f"$skiptoken: {token!r} is not a continuation token of this server") from None
    return f"({alias}.{keyset.column}, {alias}.id) {op} ({binds.add(moment)}, {binds.add(int(last_id))})"


def filter_condition(
    entity_type: EntityType, query: Query, binds: Binds, dialect: Dialect, alias: str = "e"
) -> str:
    """The compiled $filter, or TRUE."""
    if query.filter is None:
        return "TRUE"
    return compile_filter(query.filter, entity_type, alias, binds, dialect)


@dataclass(frozen=True)
class ReadSql:
    """The page query (one row more than $top, to know if a next page exists) and the count query."""

    page: Sql
    count: Sql | None
    keyset: Keyset | None


def compile_read(
    path: ResourcePath,
    query: Query,
    dialect: Dialect,
    selection: Selection | None = None,
    extra: Sequence[str] = (),
) -> ReadSql:
    """SQL for the entities a path addresses, filtered, ordered and paged."""
    entity_type = path.target.entity_type
    if len(path.segments) == 2 and path.segments[0].key is not None:
        query = stream_order(path.target.via, query)
    binds = Binds()
    where = target_condition(path.segments, binds)
    if path.is_collection:
        where += " AND " + filter_condition(entity_type, query, binds, dialect)
    count = None
    if query.count and path.is_collection:
        count = Sql(f"SELECT count(*) FROM {entity_type.table} e WHERE {where}", tuple(binds.values))
    keyset = keyset_of(entity_type, query) if path.is_collection else None
    if keyset is not None:
        extra = (*extra, keyset.column)  # the nextLink's $skiptoken needs it even when $select leaves it out
    columns = select_list(entity_type, selection, extra=extra)
    if not path.is_collection:
        text = f"SELECT {columns} FROM {entity_type.table} e WHERE {where} LIMIT 2"
        return ReadSql(Sql(text, tuple(binds.values)), None, None)
    skip = query.skip
    if query.skiptoken is not None and keyset is not None:
        where += " AND " + keyset_condition(keyset, query.skiptoken, binds)
        skip = 0  # the token already says where the page starts
    order = order_clause(entity_type, query, binds, dialect)
    text = (
        f"SELECT {columns} FROM {entity_type.table} e WHERE {where} ORDER BY {order} "
        f"LIMIT {binds.add(query.top + 1)} OFFSET {binds.add(skip)}"
    )
    return ReadSql(Sql(text, tuple(binds.values)), count, keyset)


def compile_exists(segments: Sequence[Segment]) -> Sql:
    """SQL answering one row when every keyed entity along the segments exists."""
    binds = Binds()
    where = target_condition(segments, binds)
    table = segments[-1].entity_type.table
    return Sql(f"SELECT 1 FROM {table} e WHERE {where} LIMIT 1", tuple(binds.values))
