# SPDX-License-Identifier: Apache-2.0
"""Typed reads of JSON payload fields that name the field at fault, shared by the adapters."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from adapters.base import AdapterError

T = TypeVar("T")


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    try:
        return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    except OverflowError:
        return False


class Fields:
    """Checked field reads for one adapter; every failure is an AdapterError naming the field."""

    def __init__(self, adapter: str) -> None:
        self.adapter = adapter

    def fail(self, field: str, message: str) -> AdapterError:
        """The error for a bad field (to raise)."""
        return AdapterError(self.adapter, field, message)

    def decode(self, payload: bytes) -> Any:
        """The payload as JSON."""
        try:
            return json.loads(payload)
        except (ValueError, RecursionError):
            raise self.fail("payload", "is not JSON") from None

    def object(self, value: Any, field: str) -> dict[str, Any]:
        """A JSON object that must be present."""
        if value is None:
            raise self.fail(field, "missing")
        if not isinstance(value, dict):
            raise self.fail(field, "is not an object")
        return value

    def text(self, value: Any, field: str) -> str:
        """A non-empty string."""
        if not isinstance(value, str) or not value:
            raise self.fail(field, "is not a non-empty string")
        return value

    def number(self, value: Any, field: str) -> float:
        """A finite number."""
        if not is_number(value):
            raise self.fail(field, "is not a finite number")
        number: float = value
        return number

    def time(self, value: Any, field: str) -> datetime:
        """An ISO 8601 time with an offset, in UTC."""
        text = self.text(value, field)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise self.fail(field, "is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise self.fail(field, "has no UTC offset")
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise self.fail(field, "is out of range") from None

    def maybe(self, value: Any, field: str, check: Callable[[Any, str], T]) -> T | None:
        """`check(value)` when the field is present, else None."""
        return None if value is None else check(value, field)
