# SPDX-License-Identifier: Apache-2.0
"""Structure-aware fuzzing of the MQTT decoders and of the client's data path.

Packets are correctly framed (so the fuzz reaches the body readers, not just the framing) with
bodies assembled from protocol fragments: strings, variable integers, property blocks that are
truncated, overlong, repeated or of unknown identifiers, and random bytes; the stream is split at
random points. Only `wire.ProtocolError` may come out of a decoder; the client must abort the
connection on it and connect again, and no other exception may escape anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mqtt_helpers import wait_for
from scripted_broker import ScriptedBroker, escaped_errors, running_client

from hub.ingest.dispatch import Message
from hub.mqtt import wire

levels = st.sampled_from([wire.MQTT5, wire.MQTT311])
texts = st.text(max_size=12)
property_ids = st.one_of(st.sampled_from(sorted({*range(0x01, 0x2B)} - {0x04, 0x05})), st.integers(0, 255))


@st.composite
def property_values(draw: Any) -> bytes:
    """One property: a known or unknown identifier with a value of the right, wrong or no length."""
    ident = draw(property_ids)
    value = draw(
        st.one_of(
            st.just(b""),
            st.binary(max_size=4),
            st.builds(wire.text, texts),
            st.builds(lambda a, b: wire.text(a) + wire.text(b), texts, texts),
            st.builds(wire.varint, st.integers(0, 2**28 - 1)),
            st.binary(min_size=2, max_size=2).map(lambda b: b + b"\xff" * 3),  # a string length overrun
        )
    )
    return bytes((ident,)) + value


@st.composite
def property_blocks(draw: Any) -> bytes:
    """A property block whose declared length is right, short, long or huge."""
    content = b"".join(draw(st.lists(property_values(), max_size=4)))
    length = draw(
        st.one_of(st.just(len(content)), st.integers(0, len(content) + 8), st.integers(0, 2**28 - 1))
    )
    return wire.varint(length) + content


fragments = st.one_of(
    st.binary(max_size=8),
    st.builds(wire.text, texts),
    st.binary(min_size=2, max_size=2),  # a packet id, 0 included
    property_blocks(),
    st.sampled_from([b"\x00", b"\x01", b"\x80", b"\xff", b"\x00\x00", b"\xff\xff"]),
)
bodies = st.lists(fragments, max_size=6).map(b"".join)


@st.composite
def packets(draw: Any) -> bytes:
    """A correctly framed packet of any type and flags around a fuzzed body."""
    first = draw(st.integers(0, 255))
    return wire.packet(first, draw(bodies))


def _read(kind: int, flags: int, body: bytes, level: int) -> None:
    """Every body reader the client has for a packet type."""
    if kind == wire.PUBLISH:
        wire.read_publish(flags, body, level)
    elif kind == wire.CONNACK:
        wire.read_connack(body, level)
    elif kind in (wire.SUBACK, wire.UNSUBACK):
        wire.read_suback(body, level, kind)
    elif kind in (wire.PUBACK, wire.PUBREC, wire.PUBREL, wire.PUBCOMP):
        wire.read_ack(body, level, kind)
    elif kind == wire.DISCONNECT:
        wire.read_reason(body, level)
    else:
        wire.read_properties(body, 0)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(packets(), min_size=1, max_size=5), levels, st.lists(st.integers(0, 4000), max_size=6))
def test_decoders_raise_only_protocol_errors(stream: list[bytes], level: int, cuts: list[int]) -> None:
    data = b"".join(stream)
    decoder = wire.Decoder(max_packet=256)
    start = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        try:
            for kind, flags, body in decoder.feed(data[start:cut]):
                assert len(body) <= 256
                assert not flags & wire.TRUNCATED or kind == wire.PUBLISH
                _read(kind, flags & 0x0F, body, level)
        except wire.ProtocolError as error:
            reason = error.reason  # the code the client's DISCONNECT carries
            assert reason in (wire.MALFORMED_PACKET, wire.PROTOCOL_ERROR, wire.TOPIC_ALIAS_INVALID,
                              wire.PACKET_TOO_LARGE)  # fmt: skip
            return
        start = cut


@given(st.binary(max_size=64), st.integers(0, 300))
def test_read_varint_and_properties_only_raise_protocol_errors(data: bytes, pos: int) -> None:
    for read in (wire.read_varint, wire.read_properties):
        with contextlib.suppress(wire.ProtocolError):
            read(data, pos)


@given(st.integers(1, 2000), st.integers(0, 3000), st.lists(st.integers(1, 5000), min_size=1, max_size=8))
def test_oversized_publish_is_cut_and_the_stream_stays_in_step(
    limit: int, size: int, reads: list[int]
) -> None:
    """A PUBLISH over the limit comes out cut to `limit` bytes; the next packet is intact."""
    body = b"\x00\x01t" + bytes(size)
    stream = wire.packet(0x30, body) + wire.packet(0xD0, b"")
    decoder = wire.Decoder(max_packet=limit)
    out: list[tuple[int, int, bytes]] = []
    pos = 0
    index = 0
    while pos < len(stream):
        step = reads[index % len(reads)]
        out += decoder.feed(stream[pos : pos + step])
        pos += step
        index += 1
    assert [kind for kind, _, _ in out] == [wire.PUBLISH, wire.PINGRESP]
    flags, kept = out[0][1], out[0][2]
    assert bool(flags & wire.TRUNCATED) == (len(body) > limit)
    assert kept == body[:limit]


# ---- the client's data path ----------------------------------------------------------------------


@st.composite
def hostile_streams(draw: Any) -> tuple[list[bytes], int]:
    """What a broker sends after CONNACK: valid PUBLISHes mixed with fuzzed packets, in chunks."""
    level = draw(levels)
    parts: list[bytes] = []
    for index in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            props = b"\x00" if level == wire.MQTT5 else b""
            parts.append(
                wire.packet(0x32, wire.text("sensors/x") + struct.pack(">H", 100 + index) + props + b"p")
            )
        else:
            parts.append(draw(packets()))
    data = b"".join(parts)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True) if b > a]
    return chunks, level


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(hostile_streams())
def test_client_survives_any_stream(tmp_path: Path, case: tuple[list[bytes], int]) -> None:
    """Whatever arrives, the client either keeps the connection (and its data path still works) or
    aborts it and connects again; no exception but ProtocolError is raised inside, none escapes."""
    chunks, level = case
    asyncio.run(_client_survives(tmp_path, chunks, level))


async def _client_survives(tmp_path: Path, chunks: list[bytes], level: int) -> None:
    received: list[Message] = []
    protocol = "5" if level == wire.MQTT5 else "3.1.1"
    async with ScriptedBroker() as broker:
        with escaped_errors() as errors:
            async with running_client(
                broker.url, tmp_path, deliver=received.extend, mqtt_protocol=protocol
            ) as client:
                conn = await broker.session()
                await wait_for(lambda: client.subscribed, within=5)
                for chunk in chunks:
                    conn.send(chunk)
                    await conn.writer.drain()
                await asyncio.sleep(0.05)
                generation = client.generation
                # A probe: on a live connection it arrives; on an aborted one, a new connection comes.
                probe = wire.packet(
                    0x30, wire.text("sensors/probe") + (b"\x00" if level == wire.MQTT5 else b"")
                )
                try:
                    conn.send(probe)
                    await conn.writer.drain()
                except ConnectionError:
                    pass
                try:
                    await wait_for(lambda: any(m.topic == "sensors/probe" for m in received), within=0.5)
                except AssertionError:
                    # The probe was not read: the client must have dropped this connection and be back.
                    assert await conn.closed(within=2)
                    again = await broker.session()
                    await wait_for(lambda: client.subscribed and client.generation > generation, within=5)
                    again.send(probe)
                    await wait_for(lambda: any(m.topic == "sensors/probe" for m in received), within=5)
    assert errors == []
