# SPDX-License-Identifier: Apache-2.0
"""`twinhub keys create | list | revoke`, and the keys it makes working against a hub."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from auth_helpers import BODIES, bearer, hub, send

from hub.config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def twinhub(dsn: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TWINHUB_")}
    if dsn is not None:
        env["TWINHUB_DATABASE_URL"] = dsn
    command = [sys.executable, "-m", "hub.cli", *args]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


async def test_create_list_revoke(clean_db: str, settings: Settings) -> None:
    created = twinhub(clean_db, "keys", "create", "--name", "weather stations", "--roles", "create,read")
    assert created.returncode == 0, created.stderr
    first, key = created.stdout.strip().splitlines()
    assert key.startswith("thk_")
    key_id = key.split("_")[1]
    assert first.startswith(f"created key {key_id}")
    listed = twinhub(clean_db, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith(key_id))
    assert "active" in line
    assert '"weather stations", roles create,read' in line
    assert key.split("_", 2)[2] not in listed.stdout  # the secret is never shown again

    async with hub(settings, auth_anonymous_write=False) as client:
        status, body = await send(client, "POST", "Sensors", BODIES["Sensors"], bearer(key))
        assert status == 201, body

    revoked = twinhub(clean_db, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.strip() == f"revoked key {key_id}"
    assert "already revoked" in twinhub(clean_db, "keys", "revoke", key_id).stdout
    assert "revoked 20" in twinhub(clean_db, "keys", "list").stdout
    async with hub(settings, auth_anonymous_write=False) as client:  # a new hub: nothing cached
        status, body = await send(client, "POST", "Sensors", BODIES["Sensors"], bearer(key))
        assert status == 401, body
        assert "unknown, revoked or wrong" in body["message"]


async def test_the_stored_form_is_a_hash(clean_db: str) -> None:
    import asyncpg

    created = twinhub(clean_db, "keys", "create", "--name", "x", "--roles", "delete")
    key = created.stdout.strip().splitlines()[-1]
    conn = await asyncpg.connect(clean_db)
    try:
        stored = await conn.fetchrow("SELECT * FROM api_keys")
    finally:
        await conn.close()
    assert key not in [str(value) for value in stored.values()]
    assert key.split("_", 2)[2] not in "".join(str(value) for value in stored.values())
    assert len(stored["sha256"]) == 64


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create", "--name", "x", "--roles", "creat"), "--roles: unknown role 'creat'"),
        (("create", "--name", "x", "--roles", ","), "--roles: name at least one of"),
        (("revoke", "0123456789"), "there is no key 0123456789"),
        (("revoke", "nonsense"), "'nonsense' is not a key id"),
    ],
)
def test_bad_arguments_fail_with_one_line(clean_db: str, args: tuple[str, ...], message: str) -> None:
    result = twinhub(clean_db, "keys", *args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("twinhub: ")
    assert message in lines[0]


async def test_a_config_entry_key_works_from_the_toml_it_prints(
    clean_db: str, settings: Settings, tmp_path: Path
) -> None:
    result = twinhub(None, "keys", "create", "--name", "ops", "--roles", "admin", "--config-entry")
    assert result.returncode == 0, result.stderr
    *toml, key = result.stdout.strip().splitlines()
    config = tmp_path / "twinhub.toml"
    config.write_text("\n".join(toml) + "\n")
    loaded = load_settings(config, environ={})
    (entry,) = loaded.auth_api_keys.values()
    assert entry.roles == ("admin",)
    assert entry.name == "ops"
    async with hub(settings, auth_anonymous_write=False, auth_api_keys=loaded.auth_api_keys) as client:
        status, body = await send(client, "POST", "Sensors", BODIES["Sensors"], {"X-API-Key": key})
        assert status == 201, body


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TWINHUB_AUTH_JWKS_URL": "https://idp.example.org/certs"}, "auth_issuer: must be set"),
        ({"TWINHUB_AUTH_JWKS_URL": "ftp://idp/certs", "TWINHUB_AUTH_ISSUER": "x"}, "TWINHUB_AUTH_JWKS_URL"),
        ({"TWINHUB_TRUSTED_PROXIES": "10.0.0.0/8,proxy"}, "'proxy' is not an IP address"),
        ({"TWINHUB_AUTH_API_KEYS": "{nope"}, "TWINHUB_AUTH_API_KEYS: must be a JSON object"),
        (
            {"TWINHUB_AUTH_API_KEYS": '{"abc": {"roles": ["read"], "sha256": "' + "0" * 64 + '"}}'},
            "not 10 hex",
        ),
        (
            {"TWINHUB_AUTH_API_KEYS": '{"0123456789": {"roles": ["reader"], "sha256": "' + "0" * 64 + '"}}'},
            "0123456789.roles: unknown role 'reader'",
        ),
        ({"TWINHUB_AUTH_ROLES_CLAIM": "realm_access..roles"}, "dotted path"),
        ({"TWINHUB_RATE_LIMIT": "-1"}, "TWINHUB_RATE_LIMIT"),
    ],
)
def test_bad_auth_settings_name_the_setting(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_settings(environ=environ)


def test_auth_settings_from_the_environment() -> None:
    hashed = "ab" * 32
    settings = load_settings(
        environ={
            "TWINHUB_AUTH_API_KEYS": '{"0123456789": {"roles": "create,read", "sha256": "' + hashed + '"}}',
            "TWINHUB_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1",
            "TWINHUB_AUTH_ANONYMOUS_READ": "false",
        }
    )
    assert settings.auth_api_keys["0123456789"].roles == ("create", "read")
    assert settings.trusted_proxies == ("10.0.0.0/8", "192.168.1.1")
    assert settings.auth_anonymous_read is False
    assert settings.auth_anonymous_write is False  # the default: writes need credentials
