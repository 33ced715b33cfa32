# SPDX-License-Identifier: Apache-2.0
"""Who is asking, how often, and whether they may: the security middleware and `require`.

The middleware identifies the client (API key, OIDC token, else its address), applies the
per-client rate limit, refuses credentials that do not verify (401), and leaves the principal
on the request. Handlers then call `require` with the roles an operation needs (403, or 401
when no credentials came). Reads are open to anonymous clients unless auth_anonymous_read is
off; writes need credentials unless auth_anonymous_write is on.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

from hub.auth.authenticate import Authenticator, credential_of
from hub.auth.oidc import TokenError
from hub.auth.roles import VERB_BY_ROLE, WRITE_ROLES, Principal, Role
from hub.config import Settings
from hub.errors import AuthenticationError, PermissionDeniedError, RateLimitedError
from hub.http.context import AppState
from hub.http.errors import Handler
from hub.http.ratelimit import TokenBuckets, retry_after

# Operational endpoints: probes and scrapers must never be throttled or asked for credentials.
UNGUARDED_PATHS = frozenset({"/health", "/ready", "/metrics"})

PRINCIPAL = web.RequestKey("principal", Principal)


@dataclass
class Guard:
    """What the middleware keeps between requests: the authenticator and the rate buckets."""

    settings: Settings
    authenticator: Authenticator
    buckets: TokenBuckets | None
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> Guard:
        """The guard the settings describe."""
        buckets = (
            TokenBuckets(settings.rate_limit, settings.rate_limit_burst) if settings.rate_limit else None
        )
        networks = tuple(ipaddress.ip_network(n, strict=False) for n in settings.trusted_proxies)
        return cls(settings, Authenticator.from_settings(settings), buckets, networks)

    def trusted(self, address: str) -> bool:
        """Whether `address` is one of the configured reverse proxies."""
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client_address(self, request: web.Request) -> str:
        """The client's address: the peer, or, behind trusted proxies, X-Forwarded-For's last
        address that is not a trusted proxy (entries left of it could be forged by the client)."""
        peer = request.remote or "unknown"
        if not self.networks or not self.trusted(peer):
            return peer
        forwarded = [part.strip() for part in request.headers.getall("X-Forwarded-For", [])]
        hops = [hop.strip() for line in forwarded for hop in line.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusted(hop):
                return hop
        return hops[0] if hops else peer


GUARD = web.AppKey("guard", Guard)


@web.middleware
async def security_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate, rate-limit, refuse bad credentials; the handler checks roles with `require`."""
    if request.path in UNGUARDED_PATHS:
        return await handler(request)
    guard = request.app[GUARD]
    principal: Principal | None = None
    failure: str | None = None
    try:
        credential = credential_of(request.headers)
        if credential is not None:
            principal = await guard.authenticator.principal(credential, AppState.of(request).pool)
    except TokenError as error:
        failure = str(error)
    if guard.buckets is not None:
        client = principal.name if principal is not None else f"address:{guard.client_address(request)}"
        wait = guard.buckets.take(client, time.monotonic())
        if wait > 0:
            raise RateLimitedError(
                f"too many requests: this client may send {guard.settings.rate_limit} per second "
                f"(bursts of {guard.settings.rate_limit_burst}); retry after the Retry-After seconds",
                retry_after(wait),
            )
    if failure is not None:
        raise AuthenticationError(failure, invalid=True)
    if principal is not None:
        request[PRINCIPAL] = principal
    return await handler(request)


def anonymous_roles(settings: Settings) -> frozenset[Role]:
    """What a client without credentials may do."""
    return _anonymous_roles(settings.auth_anonymous_read, settings.auth_anonymous_write)


@functools.cache
def _anonymous_roles(read: bool, write: bool) -> frozenset[Role]:
    roles: set[Role] = set()
    if read:
        roles.add("read")
    if write:
        roles |= WRITE_ROLES
    return frozenset(roles)


def check_roles(principal: Principal | None, roles: Iterable[Role], settings: Settings) -> None:
    """Raise 401 (no credentials) or 403 (missing role) unless the roles are all granted."""
    anonymous = anonymous_roles(settings)
    needed = [role for role in roles if role not in anonymous]
    if not needed or (principal is not None and all(principal.holds(role) for role in needed)):
        return
    needed = sorted(set(needed))
    if principal is None:
        verbs = " and ".join(VERB_BY_ROLE[role] for role in needed)
        raise AuthenticationError(
            f"credentials are needed to {verbs}: send an API key or an OIDC token as "
            "'Authorization: Bearer <credential>' (or the key as X-API-Key)"
        )
    missing = [role for role in needed if not principal.holds(role)]
    raise PermissionDeniedError(
        f"{principal.name} may not {' and '.join(VERB_BY_ROLE[r] for r in missing)}: "
        f"it lacks the role{'s' * (len(missing) > 1)} {', '.join(missing)}"
    )


def require(request: web.Request, roles: Iterable[Role]) -> None:
    """Check that the request's principal (or anyone, per the settings) holds `roles`."""
    check_roles(request.get(PRINCIPAL), roles, AppState.of(request).settings)
