# SPDX-License-Identifier: Apache-2.0
"""The hub's MQTT client against a scripted broker (tests/mqtt/scripted_broker.py): keepalive expiry,
half-open connections, server DISCONNECT, hostile CONNACKs, refused SUBACKs, outgoing QoS 2, DUP
resend after reconnect and packet-id wrap. Each test names the specification clause it checks."""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from pathlib import Path

import asyncpg
import pytest
from mqtt_helpers import wait_for
from scripted_broker import (
    ScriptedBroker,
    connack,
    escaped_errors,
    grant_subscription,
    parse_publish,
    running_client,
    suback,
    subscribe_of,
)

from hub.config import Settings
from hub.http.health import ingest_checks
from hub.ingest.dispatch import Message
from hub.mqtt import client as client_module
from hub.mqtt import wire
from hub.mqtt.service import IngestService


def _ack(kind: int, packet_id: int, reason: int | None = None) -> bytes:
    body = struct.pack(">H", packet_id) + (b"" if reason is None else bytes((reason,)))
    return wire.packet((kind << 4) | (2 if kind == wire.PUBREL else 0), body)


async def test_connect_announces_the_limits_it_enforces(tmp_path: Path) -> None:
    async with (
        ScriptedBroker() as broker,
        running_client(broker.url, tmp_path, max_body_bytes=1000) as client,
    ):
        conn = await broker.accept()
        props = conn.connect_props()
        # Maximum Packet Size: the body limit plus headroom, the whole packet (MQTT 5 §3.1.2.11.4).
        assert props[wire.MAXIMUM_PACKET_SIZE] == client.max_packet
        assert client.max_packet > 1000
        assert props[wire.RECEIVE_MAXIMUM] == client.buffer_max
        assert wire.TOPIC_ALIAS_MAXIMUM not in props  # 0: the broker may send no topic alias


async def test_keepalive_expiry_reconnects(tmp_path: Path) -> None:
    """A broker that never answers PINGREQ is dropped after a keepalive, not kept (MQTT-3.1.2-24)."""
    async with ScriptedBroker() as broker, running_client(broker.url, tmp_path, keepalive=1) as client:
        conn = await broker.session()
        await wait_for(lambda: client.subscribed, within=5)
        kind, _, _ = await conn.next()
        assert kind == wire.PINGREQ  # not answered
        started = time.monotonic()
        assert await conn.closed(within=5)
        second = await broker.accept()
        assert (
            time.monotonic() - started < 6
        )  # a keepalive of 1 s: aborted by the second period, not by TCP minutes later
        assert second.connect


async def test_server_keep_alive_replaces_ours(tmp_path: Path) -> None:
    """MQTT-3.1.2-21: a Server Keep Alive of 2 s in CONNACK overrides the client's 30 s."""
    async with ScriptedBroker() as broker, running_client(broker.url, tmp_path, keepalive=30) as client:
        conn = await broker.session(props={wire.SERVER_KEEP_ALIVE: 2})
        await wait_for(lambda: client.subscribed, within=5)
        started = time.monotonic()
        kind, _, _ = await conn.next(within=5)
        assert kind == wire.PINGREQ
        assert time.monotonic() - started < 10  # not the client's 30 s


async def test_a_broker_that_stops_reading_is_aborted_not_waited_on(tmp_path: Path) -> None:
    """Half-open: the broker reads nothing more while the client has megabytes to write. The client
    must abort (drop its write buffer) when the PINGRESP is missing, not wait for the buffer to drain."""
    async with ScriptedBroker() as broker, running_client(broker.url, tmp_path, keepalive=1) as client:
        await broker.session()  # then this connection is never read again
        await wait_for(lambda: client.subscribed, within=5)
        for _ in range(400):
            client.publish("out/big", b"x" * 65536, 0, False)  # 25 MiB at QoS 0: the socket fills
        started = time.monotonic()
        second = await broker.accept(within=10)
        assert (
            time.monotonic() - started < 8
        )  # keepalive 1 s; close() would wait on the 25 MiB buffer for ever
        assert second.connect


@pytest.mark.parametrize(("reason", "why"), [(0x8B, "server shutting down"), (0x8E, "session taken over")])
async def test_server_disconnect_with_a_reason_reconnects(
    reason: int, why: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with ScriptedBroker() as broker, running_client(broker.url, tmp_path) as client:
        conn = await broker.session()
        await wait_for(lambda: client.subscribed, within=5)
        body = bytes((reason,)) + _reason_string(why)
        conn.send(wire.packet(wire.DISCONNECT << 4, body))
        with caplog.at_level(logging.WARNING, "hub.mqtt"):
            assert await conn.closed()
            await broker.session()
            await wait_for(lambda: client.subscribed, within=5)
        assert f"reason 0x{reason:02x} {why}" in caplog.text
        assert client.generation == 2


def _reason_string(text: str) -> bytes:
    block = bytes((wire.REASON_STRING,)) + wire.text(text)
    return wire.varint(len(block)) + block


async def test_receive_maximum_zero_is_a_protocol_error(tmp_path: Path) -> None:
    """MQTT 5 §3.2.2.3.3: Receive Maximum 0 is a Protocol Error; the client refuses the connection."""
    async with ScriptedBroker() as broker, running_client(broker.url, tmp_path) as client:
        conn = await broker.accept()
        conn.send(connack(conn.level, props={wire.RECEIVE_MAXIMUM: 0}))
        kind, _, body = await conn.next()
        assert (kind, body[:1]) == (wire.DISCONNECT, bytes((wire.PROTOCOL_ERROR,)))
        assert await conn.closed()
        assert not client.connected
        await broker.session()  # it comes back and works with a sane broker
        await wait_for(lambda: client.subscribed, within=5)


async def test_a_second_connack_is_a_protocol_error(tmp_path: Path) -> None:
    async with ScriptedBroker() as broker, running_client(broker.url, tmp_path) as client:
        conn = await broker.session()
        await wait_for(lambda: client.subscribed, within=5)
        conn.send(connack(conn.level))
        _, _, body = await conn.expect(wire.DISCONNECT)
        assert body[0] == wire.PROTOCOL_ERROR
        assert await conn.closed()
        await broker.session()
        await wait_for(lambda: client.subscribed and client.generation == 2, within=5)


async def test_broker_limits_from_connack_are_honoured(tmp_path: Path) -> None:
    """Maximum QoS 0 (MQTT-3.2.2-11), Retain Available 0 (MQTT-3.2.2-14), Maximum Packet Size
    (MQTT-3.1.2-24) and Receive Maximum (MQTT-4.9.0-2) of the CONNACK bind what the client sends."""
    async with ScriptedBroker() as broker, running_client(broker.url, tmp_path) as client:
        limits = {wire.MAXIMUM_QOS: 0, wire.RETAIN_AVAILABLE: 0, wire.MAXIMUM_PACKET_SIZE: 200}
        conn = await broker.session(props=limits)
        await wait_for(lambda: client.subscribed, within=5)
        client.publish("out/a", b"small", 1, True)
        client.publish("out/b", b"x" * 500, 0, False)  # larger than 200 bytes: not sent
        client.publish("out/c", b"after", 0, False)
        _, flags, body = await conn.expect(wire.PUBLISH)
        assert parse_publish(flags, body, conn.level)[:5] == ("out/a", 0, b"small", 0, False)
        _, flags, body = await conn.expect(wire.PUBLISH)
        assert parse_publish(flags, body, conn.level)[0] == "out/c"
        assert client.dropped == 1


async def test_receive_maximum_bounds_unacknowledged_publications_and_ids_wrap(tmp_path: Path) -> None:
    """At most Receive Maximum QoS 1 publications unacknowledged (MQTT-4.9.0-2); packet ids run to
    65,535, wrap to 1 and skip an id still in use (MQTT-2.2.1-3/4)."""
    async with ScriptedBroker() as broker, running_client(broker.url, tmp_path) as client:
        conn = await broker.session(props={wire.RECEIVE_MAXIMUM: 50})
        await wait_for(lambda: client.subscribed, within=5)
        total = 65534 + 3  # the SUBSCRIBE had packet id 1
        sent: list[int] = []
        outstanding: set[int] = set()
        most = 0

        async def feed() -> None:
            for index in range(total):
                if len(client._pending) > 2000:
                    await asyncio.sleep(0.005)
                client.publish("out/n", str(index).encode(), 1, False)

        feeder = asyncio.create_task(feed())
        while len(sent) < total:
            try:
                _, flags, body = await conn.expect(wire.PUBLISH, within=0.2)
            except TimeoutError:
                packet_id = 0
            else:
                packet_id = parse_publish(flags, body, conn.level)[1]
                sent.append(packet_id)
                outstanding.add(packet_id)
                most = max(most, len(outstanding))
            if packet_id == 0 or len(outstanding) >= 50:  # the window is full (or the feeder is slow)
                for done in sorted(outstanding - {3}):  # 3 stays unacknowledged until the wrap
                    conn.send(_ack(wire.PUBACK, done))
                outstanding &= {3}
        await feeder
        assert most == 50
        assert sent[:2] == [2, 3]
        assert sent[65531:65534] == [65533, 65534, 65535]
        assert sent[65534:] == [1, 2, 4]  # 3 was still unacknowledged
        assert client.dropped == 0


async def test_outgoing_qos_2_handshake(tmp_path: Path) -> None:
    """PUBLISH, PUBREC, PUBREL (flags 0010), PUBCOMP (§4.3.3); a refused PUBREC ends the flow."""
    async with ScriptedBroker() as broker, running_client(broker.url, tmp_path) as client:
        conn = await broker.session()
        await wait_for(lambda: client.subscribed, within=5)
        client.publish("out/q2", b"one", 2, False)
        _, flags, body = await conn.expect(wire.PUBLISH)
        topic, packet_id, payload, qos, _, dup = parse_publish(flags, body, conn.level)
        assert (topic, payload, qos, dup) == ("out/q2", b"one", 2, False)
        conn.send(_ack(wire.PUBREC, packet_id))
        _, flags, body = await conn.expect(wire.PUBREL)
        assert (flags, body) == (2, struct.pack(">H", packet_id))
        conn.send(_ack(wire.PUBCOMP, packet_id))
        await wait_for(lambda: not client._inflight, within=5)
        client.publish("out/q2", b"two", 2, False)
        _, flags, body = await conn.expect(wire.PUBLISH)
        second = parse_publish(flags, body, conn.level)[1]
        conn.send(_ack(wire.PUBREC, second, reason=0x97))  # quota exceeded: no PUBREL (MQTT 5)
        await wait_for(lambda: not client._inflight, within=5)
        client.publish("out/q0", b"three", 0, False)
        _, flags, body = await conn.expect(wire.PUBLISH)  # not a PUBREL in between
        assert parse_publish(flags, body, conn.level)[2] == b"three"


@pytest.mark.parametrize("present", [True, False])
async def test_resend_after_reconnect_follows_session_present(present: bool, tmp_path: Path) -> None:
    """Session present 1: unacknowledged PUBLISH again with DUP and the same packet id, and PUBREL
    for a released QoS 2 (MQTT-4.4.0-1). Session present 0: the session state is discarded
    (MQTT-3.2.2-5): the publication goes out as a new one (no DUP), the PUBREL not at all."""
    async with ScriptedBroker() as broker, running_client(broker.url, tmp_path) as client:
        conn = await broker.session()
        await wait_for(lambda: client.subscribed, within=5)
        client.publish("out/q1", b"one", 1, False)
        client.publish("out/q2", b"two", 2, False)
        _, flags, body = await conn.expect(wire.PUBLISH)
        first = parse_publish(flags, body, conn.level)[1]
        _, flags, body = await conn.expect(wire.PUBLISH)
        second = parse_publish(flags, body, conn.level)[1]
        conn.send(_ack(wire.PUBREC, second))
        await conn.expect(wire.PUBREL)
        conn.writer.transport.abort()  # the connection drops with both unfinished
        again = await broker.session(present=present)
        if present:
            _, flags, body = await again.expect(wire.PUBLISH)
            assert parse_publish(flags, body, again.level) == ("out/q1", first, b"one", 1, False, True)
            kind, _, body = await again.next()
            assert (kind, body) == (wire.PUBREL, struct.pack(">H", second))
        else:
            _, flags, body = await again.expect(wire.PUBLISH)
            topic, _, payload, qos, _, dup = parse_publish(flags, body, again.level)
            assert (topic, payload, qos, dup) == ("out/q1", b"one", 1, False)
            client.publish("out/marker", b"m", 0, False)
            _, flags, body = await again.expect(wire.PUBLISH)
            assert parse_publish(flags, body, again.level)[0] == "out/marker"  # no PUBREL before it


async def test_an_unacknowledged_publication_is_given_up_after_resend_max(tmp_path: Path) -> None:
    """A broker that drops the connection whenever it sees one publication would otherwise get it
    after every reconnect, forever."""
    async with ScriptedBroker() as broker, running_client(broker.url, tmp_path) as client:
        conn = await broker.session()
        await wait_for(lambda: client.subscribed, within=5)
        client.publish("out/poison", b"p", 1, False)
        seen = 0
        for _ in range(6):
            try:
                await conn.expect(wire.PUBLISH, within=1)
                seen += 1
            except TimeoutError:
                break
            conn.writer.transport.abort()
            conn = await broker.session(present=True)
        assert seen == 3
        assert client.dropped == 1


async def test_refused_subscriptions_are_not_ready(
    tmp_path: Path, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SUBACK 0x87 (0x80 in 3.1.1) for the ingest filters: /ready's broker check fails until a later
    SUBSCRIBE is granted (asked for again after RESUBSCRIBE_AFTER)."""
    monkeypatch.setattr(client_module, "RESUBSCRIBE_AFTER", 0.3)
    monkeypatch.setattr(client_module, "RECONNECT_FIRST", 0.05)
    async with ScriptedBroker() as broker:
        settings = Settings(mqtt_url=broker.url, data_dir=tmp_path / "data", migrate_on_start=False)
        service = IngestService(settings, pool, lambda changes: None)
        service.start()
        try:
            conn = await broker.session(grant=0x87)
            await wait_for(lambda: service.client.connected, within=5)
            await asyncio.sleep(0.1)
            assert ingest_checks(service.stats, time.monotonic())["broker"] is False
            assert service.client.refused
            await grant_subscription(conn, 1)  # asked again; granted this time
            await wait_for(lambda: ingest_checks(service.stats, time.monotonic())["broker"], within=5)
            assert service.client.refused == []
        finally:
            await service.stop()


async def test_suback_with_the_wrong_number_of_codes_is_refused(tmp_path: Path) -> None:
    async with ScriptedBroker() as broker, running_client(broker.url, tmp_path) as client:
        conn = await broker.accept()
        conn.send(connack(conn.level))
        _, _, body = await conn.expect(wire.SUBSCRIBE)
        packet_id, _ = subscribe_of(body, conn.level)
        conn.send(suback(packet_id, conn.level, [1, 1]))  # one filter, two codes [MQTT-3.8.4-6]
        assert await conn.closed()
        assert not client.subscribed


async def test_acknowledgements_go_out_in_arrival_order(tmp_path: Path) -> None:
    """MQTT-4.6.0-2: PUBACKs in the order the PUBLISHes arrived, even when the writer finishes a
    later message (an echo, a reject) before an earlier one commits."""
    received: list[Message] = []
    async with (
        ScriptedBroker() as broker,
        running_client(broker.url, tmp_path, deliver=received.extend) as client,
    ):
        conn = await broker.session()
        await wait_for(lambda: client.subscribed, within=5)
        for packet_id in (10, 11, 12):
            conn.send(
                wire.packet(0x32, wire.text("sensors/a") + struct.pack(">H", packet_id) + b"\x00" + b"p")
            )
        await wait_for(lambda: len(received) == 3, within=5)
        client.done(received[2])
        client.done(received[1])
        with pytest.raises(TimeoutError):
            await conn.next(within=0.2)  # nothing acknowledged while message 10 is unfinished
        client.done(received[0])
        ids = []
        for _ in range(3):
            _, _, body = await conn.expect(wire.PUBACK)
            ids.append(struct.unpack(">H", body)[0])
        assert ids == [10, 11, 12]


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (b"\x36\x05\x00\x01a\x00\x01", wire.MALFORMED_PACKET),  # QoS 3 [MQTT-3.3.1-4]
        (b"\x32\x06\x00\x01a\x00\x00\x00", wire.MALFORMED_PACKET),  # packet id 0 [MQTT-2.2.1-3]
        (b"\x30\x04\x00\x01\x00\x00", wire.MALFORMED_PACKET),  # topic with U+0000 [MQTT-1.5.4-2]
        (b"\x30\x04\x00\x01+\x00", wire.MALFORMED_PACKET),  # wildcard in a topic [MQTT-3.3.2-2]
        (b"\x30\x07\x00\x00\x03\x23\x00\x01p", wire.TOPIC_ALIAS_INVALID),  # alias we never allowed
        (b"\x42\x02\x00\x01", wire.PROTOCOL_ERROR),  # PUBACK with reserved flags [MQTT-2.1.3-1]
        (b"\xf0\x00", wire.PROTOCOL_ERROR),  # AUTH without an authentication method
        (b"\x82\x05\x00\x01\x00\x01a", wire.PROTOCOL_ERROR),  # SUBSCRIBE: a server-only packet
        (b"\x90\x04\x03\xe7\x00\x00", wire.PROTOCOL_ERROR),  # SUBACK for an id we never sent
        (b"\x40\x05\x00\x01\x00\x01\x01", wire.MALFORMED_PACKET),  # byte property at the very end
        (b"\xd0\x01\x00", wire.MALFORMED_PACKET),  # PINGRESP with a body [MQTT-3.13]
    ],
)
async def test_hostile_packets_abort_and_reconnect(packet: bytes, reason: int, tmp_path: Path) -> None:
    """Each malformed packet or protocol violation: DISCONNECT with the reason (MQTT 5 §4.13),
    abort, reconnect; nothing else escapes."""
    async with ScriptedBroker() as broker, running_client(broker.url, tmp_path) as client:
        with escaped_errors() as errors:
            conn = await broker.session()
            await wait_for(lambda: client.subscribed, within=5)
            conn.send(packet)
            _, _, body = await conn.expect(wire.DISCONNECT)
            assert body[0] == reason
            assert await conn.closed()
            await broker.session()
            await wait_for(lambda: client.subscribed and client.generation == 2, within=5)
        assert errors == []


async def test_oversized_publish_over_mqtt_5_is_packet_too_large(tmp_path: Path) -> None:
    """A broker that ignores our Maximum Packet Size: DISCONNECT 0x95 (MQTT 5 §3.1.2.11.4), and the
    50 MiB are skipped as they arrive, never held whole."""
    received: list[Message] = []
    async with (
        ScriptedBroker() as broker,
        running_client(broker.url, tmp_path, deliver=received.extend, max_body_bytes=1000) as client,
    ):
        conn = await broker.session()
        await wait_for(lambda: client.subscribed, within=5)
        payload = b"x" * (50 * 1024 * 1024)
        conn.send(wire.packet(0x32, wire.text("sensors/big") + b"\x00\x07\x00" + payload))
        _, _, body = await conn.expect(wire.DISCONNECT, within=10)
        assert body[0] == wire.PACKET_TOO_LARGE
        assert received == []


async def test_oversized_publish_over_mqtt_311_is_handed_over_cut(tmp_path: Path) -> None:
    """MQTT 3.1.1 has no Maximum Packet Size: the client keeps the first max_packet bytes (so that the
    writer dead-letters it as oversized and acknowledges it) and skips the rest, staying connected."""
    received: list[Message] = []
    async with (
        ScriptedBroker() as broker,
        running_client(
            broker.url, tmp_path, deliver=received.extend, max_body_bytes=1000, mqtt_protocol="3.1.1"
        ) as client,
    ):
        conn = await broker.session()
        await wait_for(lambda: client.subscribed, within=5)
        payload = b"x" * (8 * 1024 * 1024)
        conn.send(wire.packet(0x32, wire.text("sensors/big") + b"\x00\x07" + payload))
        conn.send(wire.packet(0x32, wire.text("sensors/small") + b"\x00\x08" + b"ok"))
        await wait_for(lambda: len(received) == 2, within=10)
        big, small = received
        assert (big.topic, big.mid) == ("sensors/big", 7)
        assert 1000 < len(big.payload) < len(payload)
        assert (small.topic, small.payload) == ("sensors/small", b"ok")
        assert client.connected
        assert client.generation == 1
