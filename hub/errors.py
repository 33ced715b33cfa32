# SPDX-License-Identifier: Apache-2.0
"""The short family of domain errors; http/errors.py maps each to a status."""

from __future__ import annotations


class StaError(Exception):
    """Base of every error a client can cause; the message is shown to the client."""


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
