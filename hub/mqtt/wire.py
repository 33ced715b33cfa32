# SPDX-License-Identifier: Apache-2.0
"""MQTT 5 and 3.1.1 packets as bytes: the encoders the hub sends and a decoder for a byte stream.

Only what a client needs (OASIS MQTT 5.0 §3 and MQTT 3.1.1 §3): CONNECT, SUBSCRIBE, PUBLISH and the
acknowledgements out; CONNACK, SUBACK, PUBLISH, the acknowledgements, PINGRESP and DISCONNECT in.
The decoder is incremental and cheap per packet, because the ingest receives every message
through it: `Decoder.feed(data)` returns the complete packets the data finished, as
(type, flags, body) tuples, and keeps the remainder for the next call.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(8, 16)

MQTT5, MQTT311 = 5, 4  # protocol levels in CONNECT
MAX_REMAINING = 268_435_455  # the largest remaining length a 4-byte variable integer encodes

# Property identifiers (MQTT 5 §2.2.2.2) by the type of their value.
_BYTE_PROPS = frozenset({0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A})
_U16_PROPS = frozenset({0x13, 0x21, 0x22, 0x23})
_U32_PROPS = frozenset({0x02, 0x11, 0x18, 0x27})
_VARINT_PROPS = frozenset({0x0B})
_STRING_PROPS = frozenset({0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F})
_BINARY_PROPS = frozenset({0x09, 0x16})
USER_PROPERTY = 0x26
SESSION_EXPIRY = 0x11
RECEIVE_MAXIMUM = 0x21
MAXIMUM_QOS = 0x24
REASON_STRING = 0x1F
ASSIGNED_CLIENT_ID = 0x12
SERVER_KEEP_ALIVE = 0x13

PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"  # reason "normal disconnection" may be left out (both versions)

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class ProtocolError(Exception):
    """The peer sent bytes that are not a well-formed packet; the connection must be closed."""


# ---- encoding --------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    """A variable byte integer (§1.5.5)."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def text(value: str) -> bytes:
    """A UTF-8 encoded string with its two-byte length (§1.5.4)."""
    raw = value.encode()
    return _U16.pack(len(raw)) + raw


def binary(value: bytes) -> bytes:
    """Binary data with its two-byte length (§1.5.6)."""
    return _U16.pack(len(value)) + value


def packet(first: int, body: bytes) -> bytes:
    """A whole packet: fixed header byte, remaining length, body."""
    return bytes((first,)) + varint(len(body)) + body


def properties(props: dict[int, int]) -> bytes:
    """A property block of integer properties (all the hub sends)."""
    out = bytearray()
    for ident, value in props.items():
        out.append(ident)
        if ident in _BYTE_PROPS:
            out.append(value)
        elif ident in _U16_PROPS:
            out += _U16.pack(value)
        elif ident in _U32_PROPS:
            out += _U32.pack(value)
        else:
            raise ValueError(f"property 0x{ident:02x} is not an integer property")
    return varint(len(out)) + bytes(out)


def connect(
    client_id: str,
    level: int,
    keepalive: int,
    clean_start: bool,
    username: str | None = None,
    password: str | None = None,
    props: dict[int, int] | None = None,
) -> bytes:
    """CONNECT (§3.1). `props` only for MQTT 5 (e.g. session expiry, receive maximum)."""
    flags = 0x02 if clean_start else 0
    payload = text(client_id)
    if username is not None:
        flags |= 0x80
        payload += text(username)
    if password is not None:
        flags |= 0x40
        payload += binary(password.encode())
    body = text("MQTT") + bytes((level, flags)) + _U16.pack(keepalive)
    if level == MQTT5:
        body += properties(props or {})
    return packet(CONNECT << 4, body + payload)


def subscribe(packet_id: int, level: int, topics: list[tuple[str, int]]) -> bytes:
    """SUBSCRIBE (§3.8); each topic with its options byte (QoS, and No Local etc. in MQTT 5)."""
    body = bytearray(_U16.pack(packet_id))
    if level == MQTT5:
        body.append(0)  # no properties
    for topic, options in topics:
        body += text(topic)
        body.append(options if level == MQTT5 else options & 0x03)
    return packet(0x82, bytes(body))


def unsubscribe(packet_id: int, level: int, topics: list[str]) -> bytes:
    """UNSUBSCRIBE (§3.10)."""
    body = bytearray(_U16.pack(packet_id))
    if level == MQTT5:
        body.append(0)  # no properties
    for topic in topics:
        body += text(topic)
    return packet(0xA2, bytes(body))


def disconnect(level: int, session_expiry: int | None = None) -> bytes:
    """DISCONNECT (§3.14); in MQTT 5 optionally with a new session expiry (0: end the session)."""
    if level != MQTT5 or session_expiry is None:
        return DISCONNECT_PACKET
    return packet(DISCONNECT << 4, b"\x00" + properties({SESSION_EXPIRY: session_expiry}))


def publish(topic: bytes, payload: bytes, qos: int, retain: bool, packet_id: int, level: int) -> bytes:
    """PUBLISH (§3.3); `topic` already UTF-8 encoded. Built with one copy of the payload."""
    head = _U16.pack(len(topic)) + topic
    if qos:
        head += _U16.pack(packet_id)
    if level == MQTT5:
        head += b"\x00"  # no properties
    first = (PUBLISH << 4) | (qos << 1) | (1 if retain else 0)
    return b"".join((bytes((first,)), varint(len(head) + len(payload)), head, payload))


def ack(kind: int, packet_id: int) -> bytes:
    """PUBACK, PUBREC, PUBREL or PUBCOMP with reason "success" left out (allowed in both versions)."""
    first = (kind << 4) | (0x02 if kind == PUBREL else 0)
    return bytes((first, 2)) + _U16.pack(packet_id)


def with_dup(encoded: bytes) -> bytes:
    """The same PUBLISH with the DUP flag set, for resending after a reconnect (§4.4)."""
    return bytes((encoded[0] | 0x08,)) + encoded[1:]


# ---- decoding --------------------------------------------------------------------------------


class Decoder:
    """Splits a byte stream into packets; keeps an incomplete tail for the next `feed`."""

    def __init__(self, max_packet: int = MAX_REMAINING) -> None:
        self._tail = b""
        self.max_packet = max_packet

    def reset(self) -> None:
        """Forget a partial packet (a new connection starts a new stream)."""
        self._tail = b""

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        """The packets completed by `data`, as (packet type, flags, body)."""
        if self._tail:
            data = self._tail + data
        packets: list[tuple[int, int, bytes]] = []
        append = packets.append
        size = len(data)
        pos = 0
        while size - pos >= 2:
            first = data[pos]
            # Remaining length: one byte for packets under 128 bytes, up to four otherwise.
            length = data[pos + 1]
            head = pos + 2
            if length & 0x80:
                length &= 0x7F
                shift = 7
                while True:
                    if head >= size:
                        self._tail = data[pos:]
                        return packets
                    byte = data[head]
                    head += 1
                    length |= (byte & 0x7F) << shift
                    if not byte & 0x80:
                        break
                    shift += 7
                    if shift > 21:
                        raise ProtocolError("malformed remaining length")
            if length > self.max_packet:
                raise ProtocolError(f"packet of {length} bytes exceeds the limit of {self.max_packet}")
            end = head + length
            if end > size:
                break
            append((first >> 4, first & 0x0F, data[head:end]))
            pos = end
        self._tail = data[pos:] if pos < size else b""
        return packets


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """A variable byte integer at `pos`: (value, position after it)."""
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ProtocolError("truncated variable byte integer")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            raise ProtocolError("malformed variable byte integer")


def read_properties(data: bytes, pos: int) -> tuple[dict[int, Any], int]:
    """A property block at `pos`: ({identifier: value}, position after it). User properties: a list."""
    length, pos = read_varint(data, pos)
    end = pos + length
    if end > len(data):
        raise ProtocolError("property block longer than its packet")
    props: dict[int, Any] = {}
    try:
        while pos < end:
            ident = data[pos]
            pos += 1
            if ident in _BYTE_PROPS:
                props[ident] = data[pos]
                pos += 1
            elif ident in _U16_PROPS:
                props[ident] = _U16.unpack_from(data, pos)[0]
                pos += 2
            elif ident in _U32_PROPS:
                props[ident] = _U32.unpack_from(data, pos)[0]
                pos += 4
            elif ident in _VARINT_PROPS:
                props[ident], pos = read_varint(data, pos)
            elif ident in _STRING_PROPS or ident in _BINARY_PROPS:
                size = _U16.unpack_from(data, pos)[0]
                raw = data[pos + 2 : pos + 2 + size]
                props[ident] = raw.decode("utf-8", "replace") if ident in _STRING_PROPS else raw
                pos += 2 + size
            elif ident == USER_PROPERTY:
                key_size = _U16.unpack_from(data, pos)[0]
                key = data[pos + 2 : pos + 2 + key_size].decode("utf-8", "replace")
                pos += 2 + key_size
                value_size = _U16.unpack_from(data, pos)[0]
                value = data[pos + 2 : pos + 2 + value_size].decode("utf-8", "replace")
                pos += 2 + value_size
                props.setdefault(USER_PROPERTY, []).append((key, value))
            else:
                raise ProtocolError(f"unknown property 0x{ident:02x}")
    except struct.error as exc:
        raise ProtocolError("truncated property") from exc
    if pos != end:
        raise ProtocolError("property block overruns its length")
    return props, end


@dataclass(frozen=True)
class ConnAck:
    """A decoded CONNACK: reason code 0 is success (in MQTT 3.1.1 the return code)."""

    session_present: bool
    reason: int
    props: dict[int, Any] = field(default_factory=dict)


def read_connack(body: bytes, level: int) -> ConnAck:
    """CONNACK (§3.2)."""
    if len(body) < 2:
        raise ProtocolError("CONNACK shorter than 2 bytes")
    props: dict[int, Any] = {}
    if level == MQTT5 and len(body) > 2:
        props, _ = read_properties(body, 2)
    return ConnAck(bool(body[0] & 0x01), body[1], props)


def read_publish(flags: int, body: bytes, level: int) -> tuple[str, int, bytes]:
    """PUBLISH (§3.3): (topic, packet id or 0, payload). Properties are skipped."""
    try:
        size = _U16.unpack_from(body, 0)[0]
    except struct.error as exc:
        raise ProtocolError("truncated PUBLISH") from exc
    pos = 2 + size
    topic = body[2:pos].decode()
    packet_id = 0
    if flags & 0x06:
        packet_id = _U16.unpack_from(body, pos)[0] if len(body) >= pos + 2 else 0
        pos += 2
    if level == MQTT5:
        if pos < len(body) and body[pos] == 0:
            pos += 1  # the common case: no properties
        else:
            _, pos = read_properties(body, pos)
    if pos > len(body):
        raise ProtocolError("truncated PUBLISH")
    return topic, packet_id, body[pos:]


def read_packet_id(body: bytes) -> int:
    """The packet id that starts an acknowledgement's body."""
    if len(body) < 2:
        raise ProtocolError("acknowledgement without a packet id")
    return int(_U16.unpack_from(body, 0)[0])


def read_suback(body: bytes, level: int) -> tuple[int, list[int]]:
    """SUBACK (§3.9): (packet id, reason codes; 0x80 and above refuse)."""
    packet_id = read_packet_id(body)
    pos = 2
    if level == MQTT5:
        _, pos = read_properties(body, pos)
    return packet_id, list(body[pos:])


def read_reason(body: bytes, level: int) -> tuple[int, str | None]:
    """A DISCONNECT's reason code and reason string (MQTT 5); (0, None) when absent."""
    if level != MQTT5 or not body:
        return 0, None
    reason = body[0]
    text_value = None
    if len(body) > 1:
        props, _ = read_properties(body, 1)
        text_value = props.get(REASON_STRING)
    return reason, text_value
