# SPDX-License-Identifier: Apache-2.0
"""Log output: readable text for terminals or one JSON object per line, with the request id.

The request id of the HTTP request being served lives in a context variable (each aiohttp request
runs in its own task, so it never leaks into another request or into the ingest task); every log
record made while it is set carries it, in both formats.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# An incoming X-Request-Id is honoured when it is short printable token text; anything else
# (a log-injection attempt, a 10 kB header) is replaced by a fresh id rather than echoed.
_REQUEST_ID_TEXT = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

request_id_var: ContextVar[str | None] = ContextVar("twinhub_request_id", default=None)

# The attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def request_id(incoming: str | None = None) -> str:
    """The id for a request: its own X-Request-Id when that is sane, else a new random one."""
    if incoming is not None and _REQUEST_ID_TEXT.fullmatch(incoming):
        return incoming
    return os.urandom(8).hex()  # 16 hex digits; a quarter of uuid4()'s cost, on every request


def current_request_id() -> str | None:
    """The id of the HTTP request this code runs for, or None outside a request."""
    return request_id_var.get()


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request id (None outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        return True


def _utc_seconds(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, request_id, extras."""

    def __init__(self) -> None:
        super().__init__()
        self._second: tuple[float, str] = (-1.0, "")  # the date and time text of the last second

    def utc_time(self, created: float) -> str:
        """`datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")`, with the
        date and time text made once per second: the same split and rounding as datetime's."""
        fraction, second = math.modf(created)
        micros = round(fraction * 1_000_000)
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        elif micros < 0:  # before 1970
            second, micros = second - 1, micros + 1_000_000
        cached = self._second
        if cached[0] != second:
            cached = (second, _utc_seconds(int(second)))
            self._second = cached  # one tuple, so another thread never sees half of it
        return f"{cached[1]}.{micros // 1000:03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.utc_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT, with the local time text made once per second rather than once per line (the
    access log writes a line per request); the text is the same as logging.Formatter's."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._second: tuple[int, str] = (-1, "")  # one tuple, so another thread never sees half of it

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached = self._second
        if cached[0] != second:
            cached = (second, time.strftime(self.default_time_format, self.converter(record.created)))
            self._second = cached
        return f"{cached[1]},{int(record.msecs):03d}"  # as logging.Formatter.default_msec_format


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for a `log_format` setting value."""
    if log_format == "json":
        return JsonFormatter()
    return TextFormatter()


def configure_logging(level: str, log_format: str = "text", stream: TextIO | None = None) -> None:
    """Send every log record to `stream` (stderr) in the chosen format.

    Replaces the handler an earlier call installed, and leaves others (pytest's capture) alone.
    """
    handler = _HubHandler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _HubHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


class _HubHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler configure_logging installs (a type of its own, so a second call can find it)."""


__all__ = [
    "JsonFormatter",
    "RequestIdFilter",
    "TextFormatter",
    "configure_logging",
    "current_request_id",
    "formatter",
    "request_id",
    "request_id_var",
]
