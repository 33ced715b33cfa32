# SPDX-License-Identifier: Apache-2.0
"""The exception -> status table of hub/http/errors.py."""

from __future__ import annotations

import asyncpg
import pytest

from hub.auth.oidc import JwksUnavailableError
from hub.errors import (
    AuthenticationError,
    BadLinkError,
    ConflictError,
    NotFoundError,
    NotSupportedError,
    PermissionDeniedError,
    RateLimitedError,
)
from hub.http.errors import _message, _status_of
from hub.query.path import PathError
from schemas.entities import ValidationError


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (PathError("unknown entity set 'Thingz'"), 404),
        (NotFoundError("Things(9) does not exist"), 404),
        (ValidationError("Thing.name", "is required"), 400),
        (BadLinkError("Datastream 9 does not exist"), 400),
        (ConflictError("required link"), 409),
        (NotSupportedError("later"), 501),
        (asyncpg.QueryCanceledError("canceling statement due to statement timeout"), 503),
        (asyncpg.ConnectionDoesNotExistError("connection was closed"), 503),
        (ConnectionRefusedError(111, "Connection refused"), 503),
        (AuthenticationError("credentials are needed"), 401),
        (PermissionDeniedError("lacks the role delete"), 403),
        (RateLimitedError("too many requests", 3), 429),
        (JwksUnavailableError("cannot load the keys"), 503),
        (RuntimeError("a bug"), None),  # unexpected: logged and answered 500 by the middleware
    ],
)
def test_status_of(error: Exception, status: int | None) -> None:
    assert _status_of(error) == status


def test_database_outage_message_hides_details() -> None:
    message = _message(ConnectionRefusedError(111, "Connection refused"))
    assert message == "the database is unavailable at the moment; try again shortly"
