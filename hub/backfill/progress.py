# SPDX-License-Identifier: Apache-2.0
"""The import's progress line on stderr: rows, rows/s, and the share done and ETA by bytes read.

The rows of a file are not known before it is read, so the share comes from its bytes; the
generic reporter (hub/progress.py, a count against a known total, into the log) does not fit that.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """Prints at most one line per `interval` seconds while work advances, and a final line."""

    def __init__(
        self,
        label: str,
        total_bytes: int = 0,
        out: TextIO | None = None,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total_bytes = total_bytes
        self.out = out if out is not None else sys.stderr
        self.interval = interval
        self.clock = clock
        self.started = clock()
        self.last_print = self.started
        self.rows = 0
        self.done_bytes = 0

    def update(self, rows: int, done_bytes: int) -> None:
        """Record the rows finished and the bytes read so far; print when the interval has passed."""
        self.rows, self.done_bytes = rows, done_bytes
        now = self.clock()
        if now - self.last_print >= self.interval:
            self.last_print = now
            print(self.line(now), file=self.out, flush=True)

    def finish(self) -> str:
        """Print and return the final line."""
        elapsed = max(self.clock() - self.started, 1e-9)
        text = f"{self.label}: {self.rows:,} rows in {elapsed:.1f} s ({self.rows / elapsed:,.0f} rows/s)"
        print(text, file=self.out, flush=True)
        return text

    def line(self, now: float) -> str:
        """The progress line at time `now`."""
        elapsed = max(now - self.started, 1e-9)
        rate = self.rows / elapsed
        text = f"{self.label}: {self.rows:,} rows, {rate:,.0f} rows/s"
        if self.total_bytes > 0 and self.done_bytes > 0:
            share = min(self.done_bytes / self.total_bytes, 1.0)
            eta = elapsed * (1 - share) / share
            text += f", {share:.0%} done, ETA {eta:,.0f} s"
        return text
