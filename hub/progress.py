# SPDX-License-Identifier: Apache-2.0
"""Progress of a long operation (a bulk import, a backfill): count, rate and ETA, logged now and then.

    with Progress("import", total=rows, unit="observations") as progress:
        for chunk in chunks:
            ...write chunk...
            progress.advance(len(chunk))

logs at most one line every `every` seconds, e.g.
`import: 120000/1000000 observations (12.0 %), 95000 observations/s, ETA 9 s`, and a last line on
leaving the block (`import: done, 1000000 observations in 10.5 s, 95238 observations/s`, or
`import: stopped after ...` when the block raised). Each line also carries the figures as log
`extra` fields (progress, count, total, rate, eta_seconds), so JSON logs can be graphed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

log = logging.getLogger("twinhub.progress")

Clock = Callable[[], float]


@dataclass(frozen=True)
class Snapshot:
    """Where an operation stands: items done, of how many, how fast, and how long still to go."""

    count: int
    total: int | None
    elapsed: float  # seconds since the start
    rate: float  # items per second since the start (0 before any time passed)
    eta: float | None  # seconds still to go at the current rate; None without a total or a rate

    @property
    def fraction(self) -> float | None:
        """Share done, 0..1; None without a total."""
        if not self.total:
            return None
        return min(self.count / self.total, 1.0)


class Progress:
    """Counts the items of one operation and reports them through `log` (see the module docstring)."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        unit: str = "rows",
        every: float = 5.0,
        logger: logging.Logger = log,
        clock: Clock = time.monotonic,
    ) -> None:
        self.label, self.total, self.unit, self.every = label, total, unit, every
        self.logger = logger
        self.clock = clock
        self.count = 0
        self.started = clock()
        self._last_report = self.started

    def advance(self, items: int = 1) -> None:
        """Count `items` more done; log a line if the last one is `every` seconds old."""
        self.count += items
        now = self.clock()
        if now - self._last_report >= self.every:
            self._last_report = now
            self.report()

    def snapshot(self) -> Snapshot:
        """The figures now."""
        elapsed = self.clock() - self.started
        rate = self.count / elapsed if elapsed > 0 else 0.0
        eta = None
        if self.total is not None and rate > 0:
            eta = max(self.total - self.count, 0) / rate
        return Snapshot(self.count, self.total, elapsed, rate, eta)

    def report(self) -> Snapshot:
        """Log one progress line now and return its figures."""
        figures = self.snapshot()
        self.logger.info(self.describe(figures), extra=_fields(self.label, figures))
        return figures

    def describe(self, figures: Snapshot) -> str:
        """The progress line for `figures`."""
        unit = self.unit
        done = (
            f"{figures.count}/{figures.total} {unit}"
            if figures.total is not None
            else f"{figures.count} {unit}"
        )
        if figures.fraction is not None:
            done += f" ({figures.fraction * 100:.1f} %)"
        text = f"{self.label}: {done}, {figures.rate:.0f} {unit}/s"
        if figures.eta is not None:
            text += f", ETA {_duration(figures.eta)}"
        return text

    def finish(self, completed: bool = True) -> Snapshot:
        """Log the closing line: how many, how long, how fast."""
        figures = self.snapshot()
        outcome = "done," if completed else "stopped after"
        text = (
            f"{self.label}: {outcome} {figures.count} {self.unit} in {figures.elapsed:.1f} s, "
            f"{figures.rate:.0f} {self.unit}/s"
        )
        self.logger.info(text, extra=_fields(self.label, figures))
        return figures

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.finish(completed=kind is None)


def _fields(label: str, figures: Snapshot) -> dict[str, object]:
    """The figures as log `extra` fields (names that do not clash with LogRecord's)."""
    return {
        "progress": label,
        "count": figures.count,
        "total": figures.total,
        "rate": round(figures.rate, 1),
        "eta_seconds": None if figures.eta is None else round(figures.eta, 1),
    }


def _duration(seconds: float) -> str:
    """12 s, 4 min 05 s, 2 h 03 min."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


__all__ = ["Progress", "Snapshot"]
