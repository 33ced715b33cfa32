# SPDX-License-Identifier: Apache-2.0
"""mqtts:// and wss:// against a real mosquitto with TLS listeners, a CA made by the test, and mutual
TLS (client certificate and key) when the broker requires it."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import pwd
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from mqtt_helpers import connect, free_port, wait_for
from scripted_broker import running_client

from hub.config import Settings
from hub.ingest.dispatch import Message


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_bundle: Path  # certificate and key in one file


def _key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return key


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as PEM files."""
    home = tmp_path_factory.mktemp("pki")
    pem = serialization.Encoding.PEM
    ca_key = _key(home / "ca.key")
    ca = _cert("twinhub test CA", ca_key, None, ca_key, ca=True)
    (home / "ca.pem").write_bytes(ca.public_bytes(pem))
    server_key = _key(home / "server.key")
    server = _cert("127.0.0.1", server_key, ca.subject, ca_key, server=True)
    (home / "server.pem").write_bytes(server.public_bytes(pem))
    client_key = _key(home / "client.key")
    client = _cert("twinhub", client_key, ca.subject, ca_key)
    (home / "client.pem").write_bytes(client.public_bytes(pem))
    (home / "bundle.pem").write_bytes((home / "client.pem").read_bytes() + (home / "client.key").read_bytes())
    return Pki(
        home / "ca.pem", home / "server.pem", home / "server.key", home / "client.pem", home / "client.key",
        home / "bundle.pem",
    )  # fmt: skip


TLS_CONF = """
user {user}
allow_anonymous true
listener {plain} 127.0.0.1
listener {tls} 127.0.0.1
cafile {ca}
certfile {cert}
keyfile {key}
require_certificate {require}
listener {wss} 127.0.0.1
protocol websockets
cafile {ca}
certfile {cert}
keyfile {key}
require_certificate {require}
"""


@dataclass
class TlsBroker:
    plain: int
    tls: int
    wss: int


@pytest.fixture(params=[False, True], ids=["server-auth", "mutual-tls"])
def tls_broker(request: pytest.FixtureRequest, pki: Pki, tmp_path: Path) -> Iterator[tuple[TlsBroker, bool]]:
    """mosquitto with a plain listener (for the test's publisher), mqtts and wss; `require`: mutual TLS."""
    require = bool(request.param)
    ports = TlsBroker(free_port(), free_port(), free_port())
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        TLS_CONF.format(
            user=pwd.getpwuid(os.getuid()).pw_name,
            plain=ports.plain,
            tls=ports.tls,
            wss=ports.wss,
            ca=pki.ca,
            cert=pki.server_cert,
            key=pki.server_key,
            require=str(require).lower(),
        )
    )
    log = (tmp_path / "mosquitto.log").open("ab")
    process = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                for port in (ports.plain, ports.tls, ports.wss):
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield ports, require
    finally:
        process.terminate()
        process.wait(10)


async def _receives(url: str, tmp_path: Path, plain_port: int, **tls: Path) -> bool:
    """Whether a client with these TLS settings connects, subscribes and receives a publication."""
    received: list[Message] = []
    async with running_client(url, tmp_path, deliver=received.extend, **tls) as client:
        try:
            await wait_for(lambda: client.subscribed, within=4)
        except AssertionError:
            return False
        # (The session is persistent: a message of an earlier call that was not acknowledged may
        # come again, so each call looks for its own payload.)
        payload = os.urandom(8).hex().encode()
        publisher = connect(plain_port)
        try:
            publisher.publish("sensors/tls", payload, qos=1).wait_for_publish(5)
            await wait_for(lambda: any(m.payload == payload for m in received), within=5)
        finally:
            publisher.disconnect()
            publisher.loop_stop()
    return True


@pytest.mark.parametrize("scheme", ["mqtts", "wss"])
async def test_tls_with_the_ca_file_and_a_client_certificate(
    scheme: str, tls_broker: tuple[TlsBroker, bool], pki: Pki, tmp_path: Path
) -> None:
    ports, require = tls_broker
    url = f"mqtts://127.0.0.1:{ports.tls}" if scheme == "mqtts" else f"wss://127.0.0.1:{ports.wss}/mqtt"
    # The certificate and key in two files, or both in one.
    assert await _receives(
        url, tmp_path, ports.plain, mqtt_tls_ca_file=pki.ca, mqtt_tls_cert_file=pki.client_cert,
        mqtt_tls_key_file=pki.client_key,
    )  # fmt: skip
    assert await _receives(
        url, tmp_path, ports.plain, mqtt_tls_ca_file=pki.ca, mqtt_tls_cert_file=pki.client_bundle
    )
    # Without a client certificate only where the broker does not require one.
    assert await _receives(url, tmp_path, ports.plain, mqtt_tls_ca_file=pki.ca) is not require


@pytest.mark.parametrize("scheme", ["mqtts", "wss"])
async def test_tls_refuses_a_broker_the_ca_did_not_sign(
    scheme: str, tls_broker: tuple[TlsBroker, bool], pki: Pki, tmp_path: Path
) -> None:
    """Without mqtt_tls_ca_file the system's CAs are used, which do not know the test's CA."""
    ports, _ = tls_broker
    url = f"mqtts://127.0.0.1:{ports.tls}" if scheme == "mqtts" else f"wss://127.0.0.1:{ports.wss}/mqtt"
    assert not await _receives(url, tmp_path, ports.plain, mqtt_tls_cert_file=pki.client_cert,
                               mqtt_tls_key_file=pki.client_key)  # fmt: skip


def test_a_key_without_its_certificate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mqtt_tls_key_file needs mqtt_tls_cert_file"):
        Settings(mqtt_url="mqtts://127.0.0.1:8883", data_dir=tmp_path, mqtt_tls_key_file=tmp_path / "k.pem")
