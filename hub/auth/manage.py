# SPDX-License-Identifier: Apache-2.0
"""`twinhub keys create | list | revoke`: the command's arguments and what each action does."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable

import asyncpg

from hub.auth.keys import generate_key, valid_key_id
from hub.auth.roles import ROLES, parse_roles
from hub.store.api_keys import StoredKey, insert_key, list_keys, revoke_key

Say = Callable[[str], None]


class KeyCommandError(ValueError):
    """Bad arguments to `twinhub keys`; the message names the problem."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The actions of `twinhub keys` and their options."""
    actions = parser.add_subparsers(title="actions", dest="key_action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create an API key and print it once")
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.add_argument("--roles", required=True, help=f"comma-separated roles: {', '.join(ROLES)}")
    create.add_argument(
        "--config-entry",
        action="store_true",
        help="store nothing: print the key and a TOML entry for auth_api_keys instead",
    )
    actions.add_parser("list", help="list the keys in the database (never the keys themselves)")
    revoke = actions.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", metavar="ID", help="the key's id (as `twinhub keys list` shows)")
    parser.set_defaults(with_args=True)


def config_entry(name: str, roles: str, say: Say) -> None:
    """Print a new key and the TOML lines that make the hub accept it, storing nothing."""
    parsed = _roles(roles)
    new = generate_key()
    say("# add to the configuration file (the key itself is below, shown only this once)")
    say(f"[auth_api_keys.{new.key_id}]")
    say(f"name = {json.dumps(name)}")
    say(f"roles = {json.dumps(sorted(parsed))}")
    say(f'sha256 = "{new.sha256}"')
    say(new.key)


async def run_action(dsn: str, args: argparse.Namespace, say: Say) -> None:
    """Create, list or revoke keys in the database at `dsn`."""
    conn = await asyncpg.connect(dsn)
    try:
        if args.key_action == "create":
            new = generate_key()
            stored = await insert_key(conn, new.key_id, args.name, _roles(args.roles), new.sha256)
            say(f"created key {stored.key_id} ({_describe(stored)}); the key is shown only this once:")
            say(new.key)
        elif args.key_action == "list":
            keys = await list_keys(conn)
            for key in keys:
                state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
                say(f"{key.key_id}  {state:<24}  {_describe(key)}, created {key.created_at:%Y-%m-%d %H:%M}")
            if not keys:
                say("no keys in the database (keys of the configuration file are not listed)")
        else:
            await _revoke(conn, args.key_id, say)
    finally:
        await conn.close()


async def _revoke(conn: asyncpg.Connection, key_id: str, say: Say) -> None:
    if not valid_key_id(key_id):
        raise KeyCommandError(f"{key_id!r} is not a key id (10 hex digits, as `twinhub keys list` shows)")
    revoked = await revoke_key(conn, key_id)
    if revoked is None:
        raise KeyCommandError(f"there is no key {key_id}")
    say(f"revoked key {key_id}" if revoked else f"key {key_id} was already revoked")


def _roles(text: str) -> frozenset[str]:
    try:
        roles = parse_roles(text)
    except ValueError as error:
        raise KeyCommandError(f"--roles: {error}") from None
    if not roles:
        raise KeyCommandError(f"--roles: name at least one of {', '.join(ROLES)}")
    return frozenset(roles)


def _describe(key: StoredKey) -> str:
    return f"{json.dumps(key.name)}, roles {','.join(key.roles)}"


def run(dsn: str, args: argparse.Namespace, say: Say) -> None:
    """Blocking wrapper for the command line."""
    asyncio.run(run_action(dsn, args, say))
