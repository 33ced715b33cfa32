# SPDX-License-Identifier: Apache-2.0
"""API keys: `thk_<id>_<secret>`. The id is looked up, the whole key is compared by hash.

The secret is 32 random bytes, so a plain SHA-256 of the key is enough to store: nobody can
guess such a secret, and a slow password hash would only make every request slower. Only
the hash is kept (in the database or in the configuration); the key is shown once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "thk"
_KEY = re.compile(rf"^{PREFIX}_(?P<id>[0-9a-f]{{10}})_(?P<secret>[A-Za-z0-9_-]{{20,}})$")
_ID = re.compile(r"^[0-9a-f]{10}$")


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: show `key` once, store `key_id` and `sha256`."""

    key_id: str
    key: str
    sha256: str


def generate_key() -> NewKey:
    """A new random key with its id and hash."""
    key_id = secrets.token_hex(5)
    key = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    return NewKey(key_id, key, hash_key(key))


def hash_key(key: str) -> str:
    """The stored form of a key: SHA-256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(key: str) -> str | None:
    """The id a presented key claims, or None when it does not look like a twinhub key."""
    match = _KEY.match(key)
    return match["id"] if match else None


def looks_like_key(text: str) -> bool:
    """Whether a bearer credential is meant as an API key (rather than a JWT)."""
    return text.startswith(f"{PREFIX}_")


def valid_key_id(text: str) -> bool:
    """Whether `text` has the shape of a key id (10 hex digits)."""
    return bool(_ID.match(text))


def matches(key: str, sha256: str) -> bool:
    """Constant-time comparison of a presented key with a stored hash."""
    return digest_matches(hash_key(key), sha256)


def digest_matches(digest: str, sha256: str) -> bool:
    """Constant-time comparison of a presented key's hash_key with a stored hash."""
    return hmac.compare_digest(digest, sha256.lower())
