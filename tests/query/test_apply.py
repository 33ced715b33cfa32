# SPDX-License-Identifier: Apache-2.0
"""$apply: parser, bucket calendar and the planner's choice of source (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.query.apply_parse import Aggregate, parse_apply
from hub.query.apply_plan import bucket_spec, plan_apply
from hub.query.parse import QueryError

AGG = "aggregate(result with average as mean,$count as n)"


@pytest.mark.parametrize(
    ("text", "groupby", "methods", "bucket"),
    [
        (AGG, (), ("average", "$count"), None),
        (f"groupby((Datastream/@iot.id),{AGG})", ("Datastream/@iot.id",), ("average", "$count"), None),
        (
            f"filter(result gt 1)/compute(twinhub.bucket(phenomenonTime,'P1D','Europe/Berlin') as day)/"
            f"groupby((day,Datastream/id),{AGG})",
            ("day", "Datastream/id"),
            ("average", "$count"),
            ("P1D", "Europe/Berlin", "day"),
        ),
        (
            "compute(twinhub.bucket(phenomenonTime,'PT15M') as q)/groupby((q),aggregate("
            "result with twinhub.first as o,result with countdistinct as d))",
            ("q",),
            ("twinhub.first", "countdistinct"),
            ("PT15M", "UTC", "q"),
        ),
    ],
)
def test_parse_accepts_the_subset(
    text: str, groupby: tuple[str, ...], methods: tuple[str, ...], bucket: tuple[str, str, str] | None
) -> None:
    apply = parse_apply(text)
    assert apply.groupby == groupby
    assert tuple(a.method for a in apply.aggregates) == methods
    assert (
        None if apply.bucket is None else (apply.bucket.width, apply.bucket.zone, apply.bucket.alias)
    ) == bucket


@pytest.mark.parametrize(
    ("text", "mention"),
    [
        ("", "end of input"),
        ("concat(aggregate($count as n))", "'concat' is not supported"),
        (f"{AGG}/filter(result gt 1)", "last transformation"),
        (f"compute(twinhub.bucket(phenomenonTime,'PT1H') as h)/filter(result gt 1)/{AGG}", "cannot follow"),
        ("compute(round(result) as r)/aggregate($count as n)", "only twinhub.bucket"),
        (
            "compute(twinhub.bucket(resultTime,'PT1H') as h)/groupby((h),aggregate($count as n))",
            "phenomenonTime",
        ),
        ("aggregate(result with avg as m)", "'avg' is not supported"),
        ("aggregate(result as m)", "expected 'with'"),
        ("aggregate($count as n,result with max as n)", "twice"),
        ("groupby((Datastream/@iot.id))", "needs aggregate"),
        ("filter(result gt)/aggregate($count as n)", "$apply"),
    ],
)
def test_parse_refuses_with_a_message(text: str, mention: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_apply(text)
    assert mention in str(caught.value)
    assert str(caught.value).startswith("$apply")


@pytest.mark.parametrize(
    ("width", "zone", "start", "end"),
    [
        ("PT15M", "UTC", datetime(2026, 1, 1, 10, 15, tzinfo=UTC), "2026-01-01T10:30:00+00:00"),
        ("P1D", "Europe/Berlin", datetime(2026, 3, 28, 23, tzinfo=UTC), "2026-03-30T00:00:00+02:00"),
        ("P1D", "Europe/Berlin", datetime(2026, 10, 24, 22, tzinfo=UTC), "2026-10-26T00:00:00+01:00"),
        ("P1M", "Europe/Berlin", datetime(2026, 11, 30, 23, tzinfo=UTC), "2027-01-01T00:00:00+01:00"),
        ("P1Y", "UTC", datetime(2026, 1, 1, tzinfo=UTC), "2027-01-01T00:00:00+00:00"),
        ("P1W", "UTC", datetime(2026, 1, 5, tzinfo=UTC), "2026-01-12T00:00:00+00:00"),
    ],
)
def test_bucket_end_follows_the_local_calendar(width: str, zone: str, start: datetime, end: str) -> None:
    assert bucket_spec(width, zone, "b").end(start).isoformat() == end


@pytest.mark.parametrize(
    ("bucket", "filter_", "methods", "source"),
    [
        ("'P1D'", "", "result with average as m", "day"),
        ("'P1M'", "", "result with max as m", "day"),
        ("'PT1H'", "", "result with max as m", "hour"),
        ("'PT6H'", "", "result with max as m", "hour"),
        ("'P1D','Europe/Berlin'", "", "result with max as m", "hour"),  # local days: whole UTC hours
        ("'P1M','Europe/Berlin'", "", "result with max as m", "hour"),
        ("'P1D','Asia/Kolkata'", "", "result with max as m", None),  # +05:30: off the hour grid
        ("'PT1H','Asia/Kolkata'", "", "result with max as m", None),
        ("'PT15M'", "", "result with max as m", None),
        ("'PT90M'", "", "result with max as m", None),
        ("'P1D'", "", "result with countdistinct as m", None),  # needs every value
        ("'P1D'", "filter(result gt 5)/", "result with max as m", None),  # a condition on the rows
        (
            "'P1D'",
            "filter(Datastream/ObservedProperty/name eq 'NO2' and phenomenonTime ge 2026-01-01T00:30:00Z)/",
            "result with max as m",
            "day",
        ),
    ],
)
def test_planner_uses_rollups_only_where_they_are_exact(
    bucket: str, filter_: str, methods: str, source: str | None
) -> None:
    text = f"{filter_}compute(twinhub.bucket(phenomenonTime,{bucket}) as b)/groupby((b),aggregate({methods}))"
    assert plan_apply(parse_apply(text)).source == source
    assert plan_apply(parse_apply(text), rollups_allowed=False).source is None


@pytest.mark.parametrize(
    ("width", "zone", "mention"),
    [
        ("P1DT1H", "UTC", "mixes"),
        ("1 day", "UTC", "not an ISO 8601 duration"),
        ("PT0S", "UTC", "is zero"),
        ("P1D", "Europe/Nowhere", "unknown time zone"),
        ("P1D", "../etc/passwd", "unknown time zone"),
    ],
)
def test_bad_buckets_name_the_problem(width: str, zone: str, mention: str) -> None:
    with pytest.raises(QueryError, match=mention):
        bucket_spec(width, zone, "b")


def test_grouping_by_anything_else_is_refused() -> None:
    with pytest.raises(QueryError, match="cannot group by 'Datastream/name'"):
        plan_apply(parse_apply("groupby((Datastream/name),aggregate($count as n))"))
    assert plan_apply(parse_apply("aggregate($count as n)")).aggregates == (Aggregate("$count", "n"),)
