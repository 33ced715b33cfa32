# SPDX-License-Identifier: Apache-2.0
"""OIDC bearer tokens: JWTs signed with a locally generated RSA key, verified against a JWKS file
or a JWKS served over HTTP (as Keycloak serves its certs)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from auth_helpers import BODIES, bearer, hub, send
from cryptography.hazmat.primitives.asymmetric import rsa

from hub.auth.oidc import JwksSource, TokenError, TokenVerifier
from hub.config import Settings

ISSUER = "https://keycloak.example.org/realms/city"
AUDIENCE = "twinhub"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "use": "sig", "alg": "RS256"}


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    return {"k1": rsa_key(), "k2": rsa_key(), "rogue": rsa_key()}


@pytest.fixture
def jwks_file(tmp_path: Path, keys: dict[str, rsa.RSAPrivateKey]) -> Path:
    path = tmp_path / "jwks.json"
    # An encryption key next to the signing key, as Keycloak publishes one: it must be ignored.
    encryption = {**jwk(keys["k2"], "enc-1"), "use": "enc", "alg": "RSA-OAEP"}
    path.write_text(json.dumps({"keys": [jwk(keys["k1"], "k1"), encryption]}))
    return path


def token(key: Any, kid: str | None = "k1", algorithm: str = "RS256", **changes: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "3f1e",
        "preferred_username": "operator",
        "iat": now,
        "exp": now + 300,
        "realm_access": {"roles": ["create", "offline_access"]},
    }
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


@pytest.fixture
async def secured(clean_db: str, settings: Settings, jwks_file: Path) -> AsyncIterator[Any]:
    changes = {"auth_anonymous_write": False, "auth_jwks_file": jwks_file, "auth_issuer": ISSUER}
    async with hub(settings, **changes, auth_audience=AUDIENCE) as client:
        yield client


async def test_a_valid_token_with_the_role_may_create(secured: Any, keys: dict[str, Any]) -> None:
    status, body = await send(
        secured, "POST", "Things", BODIES["Things"] | {"Locations": []}, bearer(token(keys["k1"]))
    )
    assert status == 201, body


async def test_a_valid_token_without_the_role_is_403(secured: Any, keys: dict[str, Any]) -> None:
    status, body = await send(secured, "DELETE", "Things(1)", None, bearer(token(keys["k1"])))
    assert status == 403, body
    assert "oidc:operator" in body["message"]
    assert "delete" in body["message"]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda k: token(k["k1"], exp=int(time.time()) - 120), "has expired"),
        (lambda k: token(k["k1"], nbf=int(time.time()) + 600), "not valid yet"),
        (lambda k: token(k["k1"], iss="https://evil.example.org/realms/city"), "another issuer"),
        (lambda k: token(k["k1"], aud="another-client"), "another audience"),
        (lambda k: token(k["k1"], exp=None), "lacks a required claim"),
        (lambda k: token(k["rogue"]), "signature does not verify"),
        (lambda k: token(k["rogue"], kid="k9"), "does not publish"),
        (lambda k: token(k["k1"], kid="enc-1"), "does not publish"),
        (lambda k: token(b"a shared secret of enough length!", algorithm="HS256"), "algorithm 'HS256'"),
        (lambda k: token(None, algorithm="none"), "algorithm 'none'"),
        (lambda k: "not.a.jwt", "neither an API key nor a well-formed JWT"),
    ],
    ids=[
        "expired",
        "nbf",
        "issuer",
        "audience",
        "no exp",
        "signature",
        "unknown kid",
        "encryption key",
        "HMAC",
        "none",
        "garbage",
    ],
)
async def test_a_bad_token_is_401_saying_why(
    secured: Any, keys: dict[str, Any], make: Any, reason: str
) -> None:
    response = await secured.request(
        "POST", "/v1.1/Things", json=BODIES["Things"], headers=bearer(make(keys))
    )
    assert response.status == 401
    body = await response.json()
    assert reason in body["message"], body
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="twinhub", error="invalid_token", error_description="')


async def test_a_bad_token_is_refused_on_reads_too(secured: Any, keys: dict[str, Any]) -> None:
    expired = token(keys["k1"], exp=int(time.time()) - 120)
    status, body = await send(secured, "GET", "Things", None, bearer(expired))
    assert status == 401, body
    status, body = await send(secured, "GET", "Things")
    assert status == 200, body


async def test_roles_from_a_configured_claim_path(
    clean_db: str, settings: Settings, jwks_file: Path, keys: Any
) -> None:
    changes = {"auth_jwks_file": jwks_file, "auth_issuer": ISSUER, "auth_anonymous_write": False}
    async with hub(settings, **changes, auth_roles_claim="resource_access.twinhub.roles") as client:
        client_roles = {"twinhub": {"roles": ["create"]}, "other": {"roles": ["admin"]}}
        realm_only = token(keys["k1"], aud=None)
        status, _ = await send(client, "POST", "Sensors", BODIES["Sensors"], bearer(realm_only))
        assert status == 403
        scoped = token(keys["k1"], aud=None, realm_access=None, resource_access=client_roles)
        status, body = await send(client, "POST", "Sensors", BODIES["Sensors"], bearer(scoped))
        assert status == 201, body
        status, _ = await send(client, "DELETE", "Sensors(1)", None, bearer(scoped))
        assert status == 403


# ---- a JWKS over HTTP ----------------------------------------------------------------------------


@pytest.fixture
async def jwks_server(keys: dict[str, Any]) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A JWKS served over HTTP; the test changes `document` to rotate keys."""
    document: dict[str, Any] = {"keys": [jwk(keys["k1"], "k1")]}

    async def certs(request: web.Request) -> web.Response:
        return web.json_response(document)

    app = web.Application()
    app.router.add_get("/certs", certs)
    async with TestServer(app) as server:
        yield str(server.make_url("/certs")), document


async def test_a_token_verifies_against_a_jwks_url(
    clean_db: str, settings: Settings, jwks_server: tuple[str, dict[str, Any]], keys: Any
) -> None:
    url, _ = jwks_server
    changes = {"auth_jwks_url": url, "auth_issuer": ISSUER, "auth_anonymous_write": False}
    async with hub(settings, **changes) as client:
        status, body = await send(client, "POST", "Sensors", BODIES["Sensors"], bearer(token(keys["k1"])))
        assert status == 201, body


async def test_an_unknown_kid_reloads_the_jwks(jwks_server: tuple[str, dict[str, Any]], keys: Any) -> None:
    url, document = jwks_server
    source = JwksSource(url, None, min_refresh=0)
    verifier = TokenVerifier(source, ISSUER, None, "realm_access.roles")
    assert (await verifier.verify(token(keys["k1"]))).roles == {"create"}
    assert source.loads == 1
    await verifier.verify(token(keys["k1"]))
    assert source.loads == 1  # cached
    document["keys"].append(jwk(keys["k2"], "k2"))  # the provider rotates in a new key
    principal = await verifier.verify(token(keys["k2"], kid="k2"))
    assert principal.name == "oidc:operator"
    assert source.loads == 2


async def test_unknown_kids_do_not_reload_more_often_than_allowed(
    jwks_server: tuple[str, dict[str, Any]], keys: Any
) -> None:
    url, _ = jwks_server
    source = JwksSource(url, None, min_refresh=3600)
    verifier = TokenVerifier(source, ISSUER, None, "realm_access.roles")
    await verifier.verify(token(keys["k1"]))
    for kid in ("x1", "x2", "x3"):
        with pytest.raises(TokenError, match="does not publish"):
            await verifier.verify(token(keys["k1"], kid=kid))
    assert source.loads == 1


async def test_an_unreachable_jwks_is_503(
    clean_db: str, settings: Settings, keys: Any, tmp_path: Path
) -> None:
    changes = {"auth_jwks_file": tmp_path / "missing.json", "auth_issuer": ISSUER}
    async with hub(settings, **changes) as client:
        status, body = await send(client, "POST", "Sensors", BODIES["Sensors"], bearer(token(keys["k1"])))
    assert status == 503
    assert "cannot load the identity provider's keys" in body["message"]


async def test_a_verified_token_is_remembered_until_it_expires(
    jwks_server: tuple[str, dict[str, Any]], keys: Any
) -> None:
    url, document = jwks_server
    source = JwksSource(url, None, min_refresh=0, max_age=0)  # every key lookup reloads the set
    verifier = TokenVerifier(source, ISSUER, None, "realm_access.roles")
    remembered = token(keys["k1"])
    await verifier.verify(remembered)
    document["keys"] = []  # the provider withdraws the key
    assert (await verifier.verify(remembered)).name == "oidc:operator"  # no second verification
    assert source.loads == 1
    with pytest.raises(TokenError, match="does not publish"):
        await verifier.verify(token(keys["k1"], sub="another", preferred_username="another"))
