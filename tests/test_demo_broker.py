# SPDX-License-Identifier: Apache-2.0
"""The demo's broker binds what its config says: the socket table shows no listener on every
interface for either port, WebSocket included (issue 11; mosquitto 2.0 with libwebsockets bound
`listener 9001 127.0.0.1` on all interfaces)."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from hub.demo.broker import bind_address, running_broker
from hub.demo.sockets import WILDCARDS, listening, wider_than

LOCAL = ipaddress.ip_address("127.0.0.1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ss_listeners(port: int) -> set[str]:
    """Local addresses `ss -ltn` shows on `port` (the same table, read by another tool)."""
    lines = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout.splitlines()
    found = set()
    for line in lines:
        local = line.split()[3]
        address, _, listen_port = local.rpartition(":")
        if listen_port == str(port):
            found.add(address.strip("[]").removeprefix("::ffff:"))
    return found


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
async def test_demo_broker_listens_only_on_its_host(tmp_path: Path, kind: str) -> None:
    if kind == "mosquitto" and shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed")
    ports = (free_port(), free_port())
    async with running_broker(tmp_path, "127.0.0.1", *ports, kind=kind) as urls:
        assert urls.kind == kind
        tables = {port: listening(port) for port in ports}
        shown = {port: ss_listeners(port) for port in ports} if shutil.which("ss") else None
    for port, addresses in tables.items():
        assert addresses == {LOCAL}, f"port {port} listens on {addresses}"
        assert not addresses & WILDCARDS
    if shown is not None:
        assert shown == {port: {"127.0.0.1"} for port in ports}


def test_the_socket_table_sees_a_socket_on_every_interface() -> None:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert listening(port) == {ipaddress.ip_address("0.0.0.0")}
        assert wider_than(port, LOCAL) == {ipaddress.ip_address("0.0.0.0")}
        assert wider_than(port, ipaddress.ip_address("0.0.0.0")) == set()
    with socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::1", 0))
        sock.listen()
        assert listening(sock.getsockname()[1]) == {ipaddress.ip_address("::1")}


@pytest.mark.parametrize(
    ("host", "domain"), [("127.0.0.1", "ipv4"), ("::1", "ipv6"), ("0.0.0.0", "ipv4"), ("localhost", None)]
)
def test_the_listener_address_is_an_ip_literal_with_its_family(host: str, domain: str | None) -> None:
    address, family = bind_address(host)
    parsed = ipaddress.ip_address(address)  # libwebsockets binds no host names
    assert family == ("ipv4" if parsed.version == 4 else "ipv6")
    if domain is not None:
        assert (address, family) == (str(ipaddress.ip_address(host)), domain)
