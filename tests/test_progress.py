# SPDX-License-Identifier: Apache-2.0
"""hub.progress: count, rate and ETA of a long operation, on a clock the test turns by hand."""

from __future__ import annotations

import logging

import pytest

from hub.progress import Progress


class Clock:
    """A clock that moves only when told (the reporter's time source, injected)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "twinhub.progress"]


def test_reports_at_most_every_interval_with_rate_and_eta(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "twinhub.progress")
    with Progress("import", total=1000, unit="observations", every=5.0, clock=clock) as progress:
        for _ in range(4):  # 4 chunks of 50 in 4 s: no line yet
            clock.now += 1.0
            progress.advance(50)
        assert _messages(caplog) == []
        clock.now += 1.0
        progress.advance(50)  # 250 in 5 s: 50/s, 750 to go: 15 s
        clock.now += 1.0
        progress.advance(50)  # too soon for another line
        clock.now += 74.0
        progress.advance(700)  # 1000 in 80 s
    assert _messages(caplog) == [
        "import: 250/1000 observations (25.0 %), 50 observations/s, ETA 15 s",
        "import: 1000/1000 observations (100.0 %), 12 observations/s, ETA 0 s",
        "import: done, 1000 observations in 80.0 s, 12 observations/s",
    ]
    first = next(r for r in caplog.records if r.name == "twinhub.progress")
    fields = {name: getattr(first, name) for name in ("progress", "count", "total", "rate", "eta_seconds")}
    assert fields == {"progress": "import", "count": 250, "total": 1000, "rate": 50.0, "eta_seconds": 15.0}


def test_without_a_total_there_is_no_share_or_eta(clock: Clock) -> None:
    progress = Progress("backfill", clock=clock)
    clock.now += 2.0
    progress.advance(300)
    figures = progress.snapshot()
    assert (figures.count, figures.rate, figures.eta, figures.fraction) == (300, 150.0, None, None)
    assert progress.describe(figures) == "backfill: 300 rows, 150 rows/s"


def test_long_etas_read_in_minutes_and_hours(clock: Clock) -> None:
    progress = Progress("import", total=1_000_000, clock=clock)
    clock.now += 10.0
    progress.advance(1000)  # 100/s: 999,000 to go = 9990 s
    assert progress.describe(progress.snapshot()).endswith("ETA 2 h 46 min")
    progress.advance(99_000)  # 10,000/s: 900,000 to go = 90 s
    assert progress.describe(progress.snapshot()).endswith("ETA 1 min 30 s")


def test_a_failed_block_says_it_stopped(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "twinhub.progress")

    def import_until_the_disk_is_full() -> None:
        with Progress("import", total=10, clock=clock) as progress:
            clock.now += 1.0
            progress.advance(4)
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        import_until_the_disk_is_full()
    assert _messages(caplog) == ["import: stopped after 4 rows in 1.0 s, 4 rows/s"]
