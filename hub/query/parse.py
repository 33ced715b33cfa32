# SPDX-License-Identifier: Apache-2.0
"""Query-option text -> Query (OGC 18-088 §9.3).

This issue's scope is paging ($top, $skip, $count); the other options are
recognised and answered with a clear "not supported yet" until the query
language lands, never silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping

from hub.errors import BadRequestError, NotSupportedError
from hub.query.ast import Query

# Options of §9.3 that a later stage implements; asking for them is valid STA.
PENDING_OPTIONS = frozenset({"$filter", "$expand", "$select", "$orderby", "$resultFormat"})
# Options outside the STA request-data class that clients may still send.
TOLERATED_OPTIONS = frozenset({"$id", "$format"})

_BOOLEANS = {"true": True, "false": False}


def _non_negative_int(option: str, text: str) -> int:
    try:
        number = int(text.strip())
    except ValueError:
        raise BadRequestError(f"{option} must be a non-negative integer, got {text!r}") from None
    if number < 0:
        raise BadRequestError(f"{option} must be a non-negative integer, got {text!r}")
    return number


def parse_query(params: Mapping[str, str], default_top: int, max_top: int) -> Query:
    """Read the system query options of one request into a Query."""
    top, top_given, skip, count = default_top, False, 0, False
    for raw_name, text in params.items():
        name = raw_name.strip()
        if not name.startswith("$"):
            continue  # not a system query option: other parameters are the client's business
        if name == "$top":
            top, top_given = _non_negative_int(name, text), True
        elif name == "$skip":
            skip = _non_negative_int(name, text)
        elif name == "$count":
            value = _BOOLEANS.get(text.strip().lower())
            if value is None:
                raise BadRequestError(f"$count must be true or false, got {text!r}")
            count = value
        elif name in PENDING_OPTIONS:
            raise NotSupportedError(f"the query option {name} is not supported by this server yet")
        elif name not in TOLERATED_OPTIONS:
            raise BadRequestError(f"unknown query option {name!r}")
    return Query(top=min(top, max_top), skip=skip, count=count, top_given=top_given)
