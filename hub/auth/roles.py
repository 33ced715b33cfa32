# SPDX-License-Identifier: Apache-2.0
"""Roles (FROST-Server's model) and the principal a request acts as.

read = GET, create = POST, update = PATCH/PUT, delete = DELETE; admin holds every role
(and is what `twinhub keys` needs no role for: key management is a shell command).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["read", "create", "update", "delete", "admin"]
ROLES: tuple[Role, ...] = ("read", "create", "update", "delete", "admin")
WRITE_ROLES: frozenset[Role] = frozenset({"create", "update", "delete"})

ROLE_BY_METHOD: dict[str, Role] = {
    "GET": "read",
    "HEAD": "read",
    "POST": "create",
    "PATCH": "update",
    "PUT": "update",
    "DELETE": "delete",
}

# What each role lets a client do, for error messages.
VERB_BY_ROLE: dict[Role, str] = {
    "read": "read",
    "create": "create",
    "update": "update",
    "delete": "delete",
    "admin": "administer",
}


def role_for(method: str) -> Role:
    """The role an HTTP method needs; methods the hub does not serve need admin (and then 405)."""
    return ROLE_BY_METHOD.get(method.upper(), "admin")


def parse_roles(text: str | list[str] | tuple[str, ...]) -> frozenset[Role]:
    """`create,read` (or a list) -> roles; ValueError naming an unknown one."""
    names = text.split(",") if isinstance(text, str) else list(text)
    roles: set[Role] = set()
    for name in (n.strip().lower() for n in names):
        if not name:
            continue
        role = next((r for r in ROLES if r == name), None)
        if role is None:
            raise ValueError(f"unknown role {name!r}; roles are {', '.join(ROLES)}")
        roles.add(role)
    return frozenset(roles)


@dataclass(frozen=True)
class Principal:
    """An authenticated client: an API key (`key:<id>`) or a token's subject (`oidc:<sub>`)."""

    name: str
    roles: frozenset[Role]

    def holds(self, role: Role) -> bool:
        """Whether this principal has `role`; admin holds them all."""
        return role in self.roles or "admin" in self.roles
