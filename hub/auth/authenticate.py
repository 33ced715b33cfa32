# SPDX-License-Identifier: Apache-2.0
"""Credentials -> Principal: API keys (configuration first, then the database) and OIDC tokens.

A key found in the database is remembered for KEY_CACHE_SECONDS, so a client that sends its key
with every read does not cost a query each time; a revoked key therefore stops working within
that time on every replica. Unknown keys are never remembered.

A key that verified is also remembered by its SHA-256 (its stored form, never the key itself) with
its principal, until the record it was checked against is KEY_CACHE_SECONDS old: a client's next
request then costs one hash and a lookup rather than the id parse, the comparison and the roles,
and a revoked key still stops working at the same moment.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import asyncpg

from hub.auth.keys import digest_matches, hash_key, key_id_of, looks_like_key
from hub.auth.oidc import JwksSource, TokenError, TokenVerifier
from hub.auth.roles import Principal, parse_roles
from hub.config import Settings
from hub.store.api_keys import StoredKey, active_key

KEY_CACHE_SECONDS = 10.0
KEY_CACHE_SIZE = 10_000
SCHEME = "bearer"
KEY_HEADER = "X-API-Key"


def credential_of(headers: Mapping[str, str]) -> str | None:
    """The credential a request carries: `Authorization: Bearer <x>` or `X-API-Key: <x>`.

    Other Authorization schemes are not the hub's: a reverse proxy doing Basic authentication
    passes its header on, and that must not break anonymous reads."""
    authorization = headers.get("Authorization")
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == SCHEME:
            if not value.strip():
                raise TokenError("the Authorization header says Bearer but carries no credential")
            return value.strip()
    key = headers.get(KEY_HEADER)
    if key is not None:
        if not key.strip():
            raise TokenError(f"the {KEY_HEADER} header is empty")
        return key.strip()
    return None


class Authenticator:
    """Turns a presented credential into a Principal, or raises TokenError saying why not."""

    def __init__(self, settings: Settings, verifier: TokenVerifier | None = None) -> None:
        self.settings = settings
        self.verifier = verifier
        self._keys: dict[str, tuple[StoredKey, float]] = {}  # key id -> (database record, fetched at)
        # SHA-256 of a key that verified -> (its principal, when the record it matched was read)
        self._verified: dict[str, tuple[Principal, float]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        """With a token verifier when a JWKS is configured."""
        verifier = None
        if settings.auth_jwks_url or settings.auth_jwks_file:
            assert settings.auth_issuer is not None  # the settings refuse a JWKS without an issuer
            jwks = JwksSource(settings.auth_jwks_url, settings.auth_jwks_file)
            verifier = TokenVerifier(
                jwks, settings.auth_issuer, settings.auth_audience, settings.auth_roles_claim
            )
        return cls(settings, verifier)

    async def principal(self, credential: str, pool: asyncpg.Pool) -> Principal:
        """Who the credential belongs to."""
        if looks_like_key(credential):
            return await self._key_principal(credential, pool)
        if self.verifier is None:
            raise TokenError(
                "the credential is not an API key (thk_...), and bearer tokens are not accepted: "
                "the hub has no auth_jwks_url or auth_jwks_file"
            )
        return await self.verifier.verify(credential)

    async def _key_principal(self, key: str, pool: asyncpg.Pool) -> Principal:
        digest = hash_key(key)
        now = time.monotonic()
        verified = self._verified.get(digest)
        if verified is not None and now - verified[1] < KEY_CACHE_SECONDS:
            return verified[0]
        key_id = key_id_of(key)
        if key_id is None:
            raise TokenError(
                "the API key is malformed (expected thk_<id>_<secret> as `twinhub keys create` prints)"
            )
        configured = self.settings.auth_api_keys.get(key_id)
        if configured is not None and digest_matches(digest, configured.sha256):
            principal = Principal(f"key:{key_id}", parse_roles(configured.roles))
            checked = now  # the configuration does not change while the hub runs
        else:
            stored, checked = await self._stored(key_id, pool, now)
            if stored is None or not digest_matches(digest, stored.sha256):
                raise TokenError(f"the API key {key_id} is unknown, revoked or wrong")
            principal = Principal(f"key:{key_id}", parse_roles(stored.roles))
        if len(self._verified) >= KEY_CACHE_SIZE:
            self._verified.clear()
        self._verified[digest] = (principal, checked)
        return principal

    async def _stored(self, key_id: str, pool: asyncpg.Pool, now: float) -> tuple[StoredKey | None, float]:
        """The database's record of the key (remembered for KEY_CACHE_SECONDS) and when it was read."""
        cached = self._keys.get(key_id)
        if cached is not None and now - cached[1] < KEY_CACHE_SECONDS:
            return cached
        async with pool.acquire() as conn:
            stored = await active_key(conn, key_id)
        if stored is None:
            self._keys.pop(key_id, None)
            return None, now
        if len(self._keys) >= KEY_CACHE_SIZE:
            self._keys.clear()
        self._keys[key_id] = (stored, now)
        return stored, now
