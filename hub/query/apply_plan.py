# SPDX-License-Identifier: Apache-2.0
"""Apply -> ApplyPlan: checked names, the bucket's calendar, the filter split into what rollups
can serve, and the choice of source (hour rollup, day rollup or raw Observations).

Rules (docs/aggregates.md): rollups serve a request when every bucket is a whole number of
rollup buckets aligned to them, every method derives from them, and the filter is only
phenomenonTime bounds and conditions on the Datastream; bounds off the rollup grid are served
from raw rows at the edges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.query.apply_parse import COUNT, Aggregate, Apply
from hub.query.ast import BinOp, BoolOp, Call, Compare, Constant, Expr, In, Lambda, Negate, Not, Path
from hub.query.parse import query_error

OPTION = "$apply"
BY_DATASTREAM = frozenset({"Datastream/@iot.id", "Datastream/id"})
# Methods the rollups cannot give (they need every value).
RAW_ONLY_METHODS = frozenset({"countdistinct"})
_DURATION = re.compile(
    r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?\Z"
)
# Weeks start on Monday: day buckets and clock buckets count from local midnight of Monday 2000-01-03.
ORIGIN = datetime(2000, 1, 3)
Unit = Literal["hour", "day"]
UNIT_SECONDS: dict[Unit, int] = {"hour": 3600, "day": 86400}
SOURCES: tuple[Unit, ...] = ("day", "hour")  # coarsest first: fewer rows to read
_BOUND_OPS: dict[str, Literal["ge", "gt", "le", "lt"]] = {"ge": "ge", "gt": "gt", "le": "le", "lt": "lt"}
_FLIPPED = {"ge": "le", "gt": "lt", "le": "ge", "lt": "gt", "eq": "eq", "ne": "ne"}


@dataclass(frozen=True)
class BucketSpec:
    """A time bucket: `clock` (seconds of absolute time), `days` or `months` of the zone's calendar."""

    kind: Literal["clock", "days", "months"]
    amount: int
    zone: str
    alias: str

    @property
    def tz(self) -> ZoneInfo:
        """The zone."""
        return ZoneInfo(self.zone)

    def origin(self) -> datetime:
        """Local midnight of 2000-01-03 in the zone, as an instant (the clock buckets' origin)."""
        return ORIGIN.replace(tzinfo=self.tz).astimezone(UTC)

    def end(self, start: datetime) -> datetime:
        """The end of the bucket starting at `start`, in the zone."""
        local = start.astimezone(self.tz)
        if self.kind == "clock":
            return (local.astimezone(UTC) + timedelta(seconds=self.amount)).astimezone(self.tz)
        if self.kind == "days":
            return (local.replace(tzinfo=None) + timedelta(days=self.amount)).replace(tzinfo=self.tz)
        index = local.year * 12 + local.month - 1 + self.amount
        return local.replace(year=index // 12, month=index % 12 + 1)

    def aligned(self, unit: Unit) -> bool:
        """Whether every bucket is a whole number of UTC `unit`s, starting on one."""
        seconds = UNIT_SECONDS[unit]
        if self.kind == "clock":
            offset = self.origin() - datetime(2000, 1, 3, tzinfo=UTC)
            return self.amount % seconds == 0 and offset.total_seconds() % seconds == 0
        # Calendar buckets start at local midnights: on a UTC grid when the zone's offsets are.
        return all(offset % seconds == 0 for offset in zone_offsets(self.zone))


@lru_cache(maxsize=64)
def zone_offsets(zone: str) -> frozenset[int]:
    """The UTC offsets (seconds) the zone uses 1900-2100, sampled every fortnight."""
    tz = ZoneInfo(zone)
    start = datetime(1900, 1, 1, tzinfo=UTC)
    offsets = set()
    for step in range(0, 200 * 365, 14):
        offset = (start + timedelta(days=step)).astimezone(tz).utcoffset()
        offsets.add(int(offset.total_seconds()) if offset is not None else 0)
    return frozenset(offsets)


def bucket_spec(width: str, zone: str, alias: str) -> BucketSpec:
    """Check an ISO 8601 width and an IANA zone name."""
    match = _DURATION.match(width.strip().upper())
    if match is None or not any(match.groups()):
        raise query_error(
            OPTION, f"bucket width {width!r} is not an ISO 8601 duration such as 'PT15M' or 'P1D'"
        )
    years, months, weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    calendar_months, calendar_days = years * 12 + months, weeks * 7 + days
    clock = hours * 3600 + minutes * 60 + seconds
    if not (calendar_months or calendar_days or clock):
        raise query_error(OPTION, f"bucket width {width!r} is zero")
    if sum(1 for part in (calendar_months, calendar_days, clock) if part) != 1:
        raise query_error(
            OPTION, f"bucket width {width!r} mixes months, days and hours; use one of them (P1M, P1D, PT36H)"
        )
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise query_error(
            OPTION, f"unknown time zone {zone!r}; use an IANA name such as 'Europe/Berlin'"
        ) from None
    if calendar_months:
        return BucketSpec("months", calendar_months, zone, alias)
    if calendar_days:
        return BucketSpec("days", calendar_days, zone, alias)
    return BucketSpec("clock", clock, zone, alias)


@dataclass(frozen=True)
class Bound:
    """One phenomenonTime bound at the top level of the filter: `start <op> value`."""

    op: Literal["ge", "gt", "le", "lt"]
    value: datetime


@dataclass(frozen=True)
class ApplyPlan:
    """What compile needs: grouping, aggregates, the split filter and the source."""

    by_datastream: bool
    bucket: BucketSpec | None
    aggregates: tuple[Aggregate, ...]
    lower: Bound | None
    upper: Bound | None
    stream_conditions: tuple[Expr, ...]  # only Datastream/... paths: rollups can take them
    other_conditions: tuple[Expr, ...]  # anything else: raw only
    source: Unit | None  # the rollup to read, or None for raw Observations

    @property
    def numeric(self) -> bool:
        """Whether some method needs numeric results."""
        return any(a.method != COUNT for a in self.aggregates)


def plan_apply(apply: Apply, rollups_allowed: bool = True) -> ApplyPlan:
    """Check the grouping and choose the source; rollups_allowed=False forces raw (tests compare both)."""
    bucket = bucket_spec(apply.bucket.width, apply.bucket.zone, apply.bucket.alias) if apply.bucket else None
    by_datastream = False
    for name in apply.groupby:
        if name in BY_DATASTREAM:
            by_datastream = True
        elif bucket is None or name != bucket.alias:
            raise query_error(
                OPTION, f"cannot group by {name!r}; group by Datastream/@iot.id or the alias of compute(...)"
            )
    if bucket is not None and bucket.alias not in apply.groupby:
        raise query_error(
            OPTION, f"compute(... as {bucket.alias}) needs groupby(({bucket.alias}),aggregate(...))"
        )
    lower, upper, streams, others = split_filter(apply.filter)
    plan = ApplyPlan(by_datastream, bucket, apply.aggregates, lower, upper, streams, others, None)
    return _with_source(plan) if rollups_allowed else plan


def _with_source(plan: ApplyPlan) -> ApplyPlan:
    if plan.other_conditions or any(a.method in RAW_ONLY_METHODS for a in plan.aggregates):
        return plan
    for unit in SOURCES:
        if plan.bucket is None or plan.bucket.aligned(unit):
            return ApplyPlan(**{**plan.__dict__, "source": unit})
    return plan


def conjuncts(expr: Expr | None) -> list[Expr]:
    """The terms of a top-level `and` chain."""
    if expr is None:
        return []
    if isinstance(expr, BoolOp) and expr.op == "and":
        return conjuncts(expr.left) + conjuncts(expr.right)
    return [expr]


def _bound(expr: Expr) -> Bound | None:
    """`phenomenonTime ge 2026-01-01T00:00:00Z` (either way round) as a Bound."""
    if not isinstance(expr, Compare) or expr.op not in _FLIPPED:
        return None
    left, right, op = expr.left, expr.right, str(expr.op)
    if isinstance(left, Constant):
        left, right, op = right, left, _FLIPPED[op]
    is_time = isinstance(left, Path) and left.segments == ("phenomenonTime",) and left.variable is None
    if (
        not is_time
        or not isinstance(right, Constant)
        or right.kind != "datetime"
        or op not in ("ge", "gt", "le", "lt")
    ):
        return None
    assert isinstance(right.value, datetime)
    return Bound(_BOUND_OPS[op], right.value)


def _children(expr: Expr) -> tuple[Expr, ...]:
    if isinstance(expr, (Compare, BoolOp, BinOp)):
        return (expr.left, expr.right)
    if isinstance(expr, (Not, Negate)):
        return (expr.operand,)
    if isinstance(expr, Call):
        return expr.args
    if isinstance(expr, In):
        return (expr.operand, *expr.values)
    if isinstance(expr, Lambda):
        return (expr.path, expr.predicate)
    return ()


def _only_datastream(expr: Expr) -> bool:
    """Whether every path of `expr` starts at the Observation's Datastream (or a lambda variable)."""
    if isinstance(expr, Path):
        return expr.variable is not None or (len(expr.segments) > 1 and expr.segments[0] == "Datastream")
    return all(_only_datastream(child) for child in _children(expr))


def split_filter(expr: Expr | None) -> tuple[Bound | None, Bound | None, tuple[Expr, ...], tuple[Expr, ...]]:
    """(lower bound, upper bound, Datastream-only conditions, other conditions)."""
    lower = upper = None
    streams: list[Expr] = []
    others: list[Expr] = []
    for term in conjuncts(expr):
        bound = _bound(term)
        if bound is not None and bound.op in ("ge", "gt") and lower is None:
            lower = bound
        elif bound is not None and bound.op in ("le", "lt") and upper is None:
            upper = bound
        elif _only_datastream(term):
            streams.append(term)
        else:
            others.append(term)
    return lower, upper, tuple(streams), tuple(others)
