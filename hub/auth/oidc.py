# SPDX-License-Identifier: Apache-2.0
"""OIDC bearer tokens: JWTs verified against a JWKS (a URL such as Keycloak's, or a file).

The key set is cached; a token signed with a key id the cache does not know makes it reload
(at most once per `min_refresh` seconds, so random key ids cannot make the hub hammer the
provider), and it is reloaded anyway after `max_age` seconds so that withdrawn keys go.
Only asymmetric algorithms are accepted: a JWKS publishes public keys, and `none` or HMAC
with a public key as secret are the classic forgeries.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import jwt

from hub.auth.roles import ROLES, Principal, Role
from hub.errors import StaError

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
CLOCK_SKEW_SECONDS = 30  # leeway for exp/nbf/iat between the provider's clock and ours
FETCH_TIMEOUT_SECONDS = 10
VERIFIED_CACHE_SIZE = 10_000


class TokenError(Exception):
    """The bearer token is not acceptable; the message says why (answered 401)."""


class JwksUnavailableError(StaError):
    """The JWKS could not be loaded (answered 503: not the client's fault)."""


class JwksSource:
    """The signing keys of the identity provider by key id, loaded on demand."""

    def __init__(
        self, url: str | None, file: Path | None, min_refresh: float = 30.0, max_age: float = 3600.0
    ) -> None:
        self.url, self.file = url, file
        self.min_refresh, self.max_age = min_refresh, max_age
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()
        self.loads = 0  # how often the set was (re)loaded

    async def key_for(self, kid: str | None) -> jwt.PyJWK:
        """The key a token's header names (or the only key when it names none)."""
        now = time.monotonic()
        stale = self._loaded_at is None or now - self._loaded_at > self.max_age
        unknown = self._find(kid) is None
        may_reload = self._loaded_at is None or now - self._loaded_at >= self.min_refresh
        if stale or (unknown and may_reload):
            async with self._lock:
                if self._loaded_at is None or self._loaded_at <= now:  # nobody reloaded meanwhile
                    self._keys = parse_jwks(await self._load())
                    self._loaded_at = time.monotonic()
                    self.loads += 1
        key = self._find(kid)
        if key is None:
            raise TokenError(
                f"the token is signed with a key the identity provider does not publish (kid {kid!r})"
            )
        return key

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _load(self) -> Mapping[str, Any]:
        try:
            if self.file is not None:
                document = json.loads(self.file.read_text(encoding="utf-8"))
            else:
                assert self.url is not None
                timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_SECONDS)
                async with aiohttp.ClientSession(timeout=timeout) as session, session.get(self.url) as answer:
                    answer.raise_for_status()
                    document = await answer.json(content_type=None)
        except (OSError, ValueError, aiohttp.ClientError, TimeoutError) as error:
            where = self.file or self.url
            raise JwksUnavailableError(
                f"cannot load the identity provider's keys from {where}: {error}"
            ) from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise JwksUnavailableError(f'{self.file or self.url} is not a JWKS (no "keys" list)')
        return document


def parse_jwks(document: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
    """Signing keys by kid; encryption keys and keys of unsupported types are left out."""
    keys: dict[str, jwt.PyJWK] = {}
    for index, entry in enumerate(document.get("keys", [])):
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK.from_dict(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError):
            continue
        keys[str(entry.get("kid", f"#{index}"))] = key
    return keys


def roles_of(claims: Mapping[str, Any], path: str) -> frozenset[Role]:
    """The hub roles listed at a dotted claim path (a list, or a space-separated string)."""
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    names = value.split() if isinstance(value, str) else value if isinstance(value, list) else []
    return frozenset(role for role in ROLES if role in names)


# PyJWT's exceptions -> what the client is told; the first matching row wins.
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet (nbf or iat lies in the future)"),
    (jwt.InvalidIssuerError, "the token was issued by another issuer (iss)"),
    (jwt.InvalidAudienceError, "the token is meant for another audience (aud)"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.MissingRequiredClaimError, "the token lacks a required claim"),
    (jwt.DecodeError, "the token is not a well-formed JWT"),
)


class TokenVerifier:
    """Verifies bearer JWTs: signature, exp, nbf, iss, aud; then reads the roles."""

    def __init__(self, jwks: JwksSource, issuer: str, audience: str | None, roles_claim: str) -> None:
        self.jwks, self.issuer, self.audience, self.roles_claim = jwks, issuer, audience, roles_claim
        # Verified tokens until they expire: an RSA verification per request halves a hub's reads.
        self._verified: dict[bytes, tuple[Principal, float]] = {}

    async def verify(self, token: str) -> Principal:
        """The principal a valid token names; TokenError saying what is wrong otherwise."""
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._verified.get(digest)
        if cached is not None and time.time() < cached[1]:
            return cached[0]
        principal, expires = await self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            now = time.time()
            self._verified = {k: v for k, v in self._verified.items() if v[1] > now}
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.clear()
        self._verified[digest] = (principal, expires)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise TokenError("the bearer credential is neither an API key nor a well-formed JWT") from None
        algorithm = header.get("alg")
        if algorithm not in ASYMMETRIC:
            raise TokenError(
                f"the token's algorithm {algorithm!r} is not accepted (only signatures "
                "with the identity provider's public keys)"
            )
        key = await self.jwks.key_for(header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                issuer=self.issuer,
                audience=self.audience,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iss"], "verify_aud": self.audience is not None},
            )
        except jwt.InvalidTokenError as error:
            reason = next(
                (text for kind, text in _REASONS if isinstance(error, kind)), "the token is invalid"
            )
            raise TokenError(f"{reason}: {error}") from None
        subject = claims.get("preferred_username") or claims.get("sub") or "?"
        principal = Principal(f"oidc:{subject}", roles_of(claims, self.roles_claim))
        return principal, float(claims["exp"])  # required above; no leeway for a cached token
