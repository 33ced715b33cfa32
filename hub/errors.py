# SPDX-License-Identifier: Apache-2.0
"""The short family of domain errors; http/errors.py maps each to a status."""

from __future__ import annotations


class StaError(Exception):
    """Base of every error a client can cause; the message is shown to the client."""

    headers: dict[str, str] = {}  # response headers the answer carries (WWW-Authenticate, Retry-After)


class NotFoundError(StaError):
    """The addressed entity does not exist."""


class BadLinkError(StaError):
    """A request body links to a missing entity or leaves out a required link (§10.2)."""


class ConflictError(StaError):
    """The request conflicts with the current state (e.g. removing a required link)."""


class BadRequestError(StaError):
    """The request is malformed in a way no more specific error names."""


class NotSupportedError(StaError):
    """A valid request for a feature twinhub does not offer (yet)."""


class AuthenticationError(StaError):
    """No credentials where they are needed, or credentials that do not verify (401)."""

    def __init__(self, message: str, *, invalid: bool = False) -> None:
        super().__init__(message)
        # RFC 6750 §3: the challenge; error="invalid_token" when credentials were sent but refused.
        challenge = 'Bearer realm="twinhub"'
        if invalid:
            reason = message.replace('"', "'").replace("\\", "/")
            challenge += f', error="invalid_token", error_description="{reason}"'
        self.headers = {"WWW-Authenticate": challenge}


class PermissionDeniedError(StaError):
    """Valid credentials without the role the request needs (403)."""


class RateLimitedError(StaError):
    """The client sent more requests than its rate limit allows (429)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}
