# SPDX-License-Identifier: Apache-2.0
"""Frozen value objects for the query options of a request (OGC 18-088 §9.3)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Query:
    """The system query options of one request.

    `top` is the page size actually served (the client's $top, or the
    default, clamped to the configured maximum); `top_given` remembers whether
    the client asked for it, so that links can repeat it.
    """

    top: int = 100
    skip: int = 0
    count: bool = False
    top_given: bool = False
