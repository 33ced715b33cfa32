# SPDX-License-Identifier: Apache-2.0
"""Which addresses listen on a TCP port, read from the kernel's socket table (Linux /proc/net/tcp{,6}).

The demo checks its broker with it: mosquitto 2.0 hands a WebSocket listener's address to
libwebsockets, which can bind wider than the config says (see broker.py).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

PROC_NET = Path("/proc/net")
LISTEN = "0A"  # TCP_LISTEN in include/net/tcp_states.h
WILDCARDS = frozenset({ipaddress.ip_address("0.0.0.0"), ipaddress.ip_address("::")})

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(hex_address: str) -> Address:
    """A /proc/net address: 32-bit words in host (little-endian) byte order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words)


def listening(port: int, proc_net: Path = PROC_NET) -> set[Address] | None:
    """The local addresses listening on TCP `port`, or None where the table cannot be read."""
    found: set[Address] = set()
    readable = False
    for name in ("tcp", "tcp6"):
        try:
            lines = (proc_net / name).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            address, _, hex_port = local.partition(":")
            if state == LISTEN and int(hex_port, 16) == port:
                found.add(_address(address))
    return found if readable else None


def wider_than(port: int, host: Address) -> set[Address]:
    """Addresses on `port` that listen on every interface although only `host` was asked for."""
    if host in WILDCARDS:
        return set()
    return {address for address in listening(port) or set() if address in WILDCARDS}
