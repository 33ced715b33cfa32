# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the viewer tests: a headless Chromium for the browser tests (see chromium.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from chromium import chromium


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium under Selenium; the test module marks itself with requires_chromium."""
    with chromium() as driver:
        yield driver
