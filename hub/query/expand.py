# SPDX-License-Identifier: Apache-2.0
"""SQL for one $expand level, for all parents at once (one round trip per level, never per row).

To-many levels page per parent with LATERAL subqueries, which walk the
(parent, order) indexes instead of sorting every child as a window function
would; to-one levels fetch the targets by id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from hub.query.compile import Binds, Sql, filter_condition, order_clause, select_list, stream_order
from hub.query.filter import Dialect
from hub.query.plan import ExpandPlan
from schemas.model import Join, NavigationProperty

PARENT = "_parent"


def _link_condition(nav: NavigationProperty, parent: str) -> str:
    """Children of the parent id `parent` over a to-many navigation, as a condition on `e`."""
    if nav.join is Join.REVERSE:
        return f"e.{nav.column} = {parent}"
    assert nav.link is not None
    link = nav.link
    return (
        f"e.id IN (SELECT l.{link.target_column} FROM {link.table} l WHERE l.{link.source_column} = {parent})"
    )


def compile_to_many(
    plan: ExpandPlan, parent_ids: Sequence[int], dialect: Dialect, extra: Sequence[str] = ()
) -> tuple[Sql, Sql | None]:
    """Each parent's page of children (one more than $top) and, with $count, each parent's total."""
    plan = dataclasses.replace(plan, query=stream_order(plan.nav, plan.query))
    target = plan.nav.target
    binds = Binds()
    ids = binds.add(list(parent_ids))
    where = f"{_link_condition(plan.nav, 'p.id')} AND {filter_condition(target, plan.query, binds, dialect)}"
    count = None
    if plan.query.count:
        count = Sql(
            f"SELECT p.id AS {PARENT}, (SELECT count(*) FROM {target.table} e WHERE {where}) AS n "
            f"FROM unnest({ids}::bigint[]) AS p(id)",
            tuple(binds.values),
        )
    order = order_clause(target, plan.query, binds, dialect)
    columns = select_list(target, plan.selection, extra=extra)
    limit, offset = binds.add(plan.query.top + 1), binds.add(plan.query.skip)
    page = (
        f"SELECT p.id AS {PARENT}, c.* FROM unnest({ids}::bigint[]) AS p(id) CROSS JOIN LATERAL ("
        f"SELECT {columns} FROM {target.table} e WHERE {where} "
        f"ORDER BY {order} LIMIT {limit} OFFSET {offset}) c"
    )
    return Sql(page, tuple(binds.values)), count


def compile_by_ids(
    plan: ExpandPlan, target_ids: Sequence[int], dialect: Dialect, extra: Sequence[str] = ()
) -> Sql:
    """To-one targets (and the stored latest Observations) by id, filtered by the level's $filter."""
    target = plan.nav.target
    binds = Binds()
    ids = binds.add(list(target_ids))
    condition = filter_condition(target, plan.query, binds, dialect)
    columns = select_list(target, plan.selection, extra=extra)
    text = f"SELECT {columns} FROM {target.table} e WHERE e.id = ANY({ids}::bigint[]) AND {condition}"
    return Sql(text, tuple(binds.values))
