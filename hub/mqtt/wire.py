# SPDX-License-Identifier: Apache-2.0
"""MQTT 5 and 3.1.1 packets as bytes: the encoders the hub sends and a decoder for a byte stream.

Only what a client needs (OASIS MQTT 5.0 §3 and MQTT 3.1.1 §3): CONNECT, SUBSCRIBE, PUBLISH and the
acknowledgements out; CONNACK, SUBACK, PUBLISH, the acknowledgements, PINGRESP and DISCONNECT in.
The decoder is incremental and cheap per packet, because the ingest receives every message
through it: `Decoder.feed(data)` returns the complete packets the data finished, as
(type, flags, body) tuples, and keeps the remainder for the next call.

Every reader raises `ProtocolError` (and nothing else) on bytes that are not a well-formed packet;
its `reason` is the MQTT 5 reason code the client sends in its DISCONNECT (§4.13).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(8, 16)

MQTT5, MQTT311 = 5, 4  # protocol levels in CONNECT
MAX_REMAINING = 268_435_455  # the largest remaining length a 4-byte variable integer encodes
# Set in a decoded packet's flags (above the 4 flag bits of the fixed header) when the decoder kept
# only the first `max_packet` bytes of a PUBLISH that was larger: see `Decoder`.
TRUNCATED = 0x10

# Property identifiers (MQTT 5 §2.2.2.2) by the type of their value.
_BYTE_PROPS = frozenset({0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A})
_U16_PROPS = frozenset({0x13, 0x21, 0x22, 0x23})
_U32_PROPS = frozenset({0x02, 0x11, 0x18, 0x27})
_VARINT_PROPS = frozenset({0x0B})
# The properties each packet type may carry (§3.x.2.2 of each packet)
_ACK_PROPS = frozenset({0x1F, 0x26})  # PUBACK..PUBCOMP, SUBACK, UNSUBACK: reason string, user
_PUBLISH_PROPS = frozenset({0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23, 0x26})
_CONNACK_PROPS = frozenset(
    {0x11, 0x12, 0x13, 0x15, 0x16, 0x1A, 0x1C, 0x1F, 0x21, 0x22, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A}
)
_DISCONNECT_PROPS = frozenset({0x11, 0x1C, 0x1F, 0x26})
# Receive Maximum, Topic Alias, Maximum Packet Size, Subscription Identifier: 0 is a protocol error
_NONZERO_PROPS = frozenset({0x21, 0x23, 0x27, 0x0B})
_CHECKED_NAMES = {
    0x01: "Payload Format Indicator", 0x17: "Request Problem Information",
    0x19: "Request Response Information", 0x24: "Maximum QoS", 0x25: "Retain Available",
    0x28: "Wildcard Subscription Available", 0x29: "Subscription Identifier Available",
    0x2A: "Shared Subscription Available", 0x21: "Receive Maximum", 0x23: "Topic Alias",
    0x27: "Maximum Packet Size", 0x0B: "Subscription Identifier",
}  # fmt: skip
_STRING_PROPS = frozenset({0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F})
_BINARY_PROPS = frozenset({0x09, 0x16})
USER_PROPERTY = 0x26
SUBSCRIPTION_IDENTIFIER = 0x0B
SESSION_EXPIRY = 0x11
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
MAXIMUM_PACKET_SIZE = 0x27
REASON_STRING = 0x1F
ASSIGNED_CLIENT_ID = 0x12
SERVER_KEEP_ALIVE = 0x13
# Properties that may occur more than once in one block (§2.2.2.2); any other twice is a
# Protocol Error.
_REPEATABLE = frozenset({USER_PROPERTY, SUBSCRIPTION_IDENTIFIER})

# MQTT 5 reason codes the client sends when it closes a connection (§2.4).
MALFORMED_PACKET = 0x81
PROTOCOL_ERROR = 0x82
TOPIC_ALIAS_INVALID = 0x94
PACKET_TOO_LARGE = 0x95

# The reason codes each packet may carry (MQTT 5 §3.2.2.2, §3.4.2.1-§3.7.2.1, §3.9.3, §3.11.3;
# 3.1.1 §3.2.2.3, §3.9.3); any other is a malformed packet.
_CONNACK_CODES = {
    MQTT311: frozenset(range(6)),
    MQTT5: frozenset({0x00, *range(0x80, 0x8B), 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F}),
}
_SUBACK_CODES = {
    MQTT311: frozenset({0, 1, 2, 0x80}),
    MQTT5: frozenset({0, 1, 2, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2}),
}
_UNSUBACK_CODES = frozenset({0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91})
_PUBLISH_ACK_CODES = frozenset({0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99})
_RELEASE_CODES = frozenset({0x00, 0x92})
_ACK_CODES = {PUBACK: _PUBLISH_ACK_CODES, PUBREC: _PUBLISH_ACK_CODES, PUBREL: _RELEASE_CODES,
              PUBCOMP: _RELEASE_CODES}  # fmt: skip

PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"  # reason "normal disconnection" may be left out (both versions)

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class ProtocolError(Exception):
    """The peer sent bytes that are not a well-formed packet; the connection must be closed."""

    def __init__(self, message: str, reason: int = MALFORMED_PACKET) -> None:
        super().__init__(message)
        self.reason = reason  # the MQTT 5 reason code of the client's DISCONNECT


# ---- encoding --------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    """A variable byte integer (§1.5.5)."""
    if value < 0x80:
        return bytes((value,))
    if value < 0x4000:  # two bytes: most notifications (a rendered entity is a few hundred bytes)
        return bytes(((value & 0x7F) | 0x80, value >> 7))
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


def properties(props: dict[int, int], user: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A property block: integer properties, then user properties (name, value) in order."""
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
    for name, string in user:
        out.append(USER_PROPERTY)
        out += text(name) + text(string)
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
    if level == MQTT311 and password is not None and username is None:
        username = ""  # 3.1.1 forbids a password without a user name [MQTT-3.1.2-22]
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


def disconnect(level: int, session_expiry: int | None = None, reason: int = 0) -> bytes:
    """DISCONNECT (§3.14); in MQTT 5 optionally a reason code and a new session expiry (0: end it)."""
    if level != MQTT5 or (session_expiry is None and not reason):
        return DISCONNECT_PACKET
    if session_expiry is None:
        return packet(DISCONNECT << 4, bytes((reason,)))
    return packet(DISCONNECT << 4, bytes((reason,)) + properties({SESSION_EXPIRY: session_expiry}))


def publish(
    topic: bytes, payload: bytes, qos: int, retain: bool, packet_id: int, level: int, props: bytes = b"\x00"
) -> bytes:
    """PUBLISH (§3.3); `topic` already UTF-8 encoded, `props` an encoded property block (MQTT 5).
    Built with one copy of the payload."""
    head = _U16.pack(len(topic)) + topic
    if qos:
        head += _U16.pack(packet_id)
    if level == MQTT5:
        head += props
    first = (PUBLISH << 4) | (qos << 1) | (1 if retain else 0)
    return b"".join((bytes((first,)), varint(len(head) + len(payload)), head, payload))


# (topic, retain, payload, marked): a topic's payload, and one per mark of its run (its `$select`
# forms) for the topic with that mark, or none
Group = tuple[str, bool, bytes, tuple[bytes, ...]]
Run = tuple[tuple[str, ...], list[Group]]  # (marks, groups): the publications of one Notice


class Grouped(Sequence[tuple[str, bytes, bool]]):
    """Publications as groups sharing a topic: each group's first payload goes on its topic, the
    others on the topic with each of its run's marks appended (``?$select=...``). Per run (one
    Notice), first every group's first publication, then every group's marked ones, group by
    group. A sequence of the (topic, payload, retain) it stands for, in that order; the QoS 0
    publisher encodes the groups straight (one topic lookup per group, not per publication)."""

    __slots__ = ("_count", "runs")

    def __init__(self, runs: list[Run], count: int) -> None:
        self.runs = runs
        self._count = count  # publications in all

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[tuple[str, bytes, bool]]:
        for marks, groups in self.runs:
            for topic, retain, payload, _ in groups:
                yield topic, payload, retain
            for topic, retain, _, marked in groups:
                for mark, payload in zip(marks, marked, strict=False):
                    yield topic + mark, payload, retain

    def __getitem__(self, index: Any) -> Any:  # the queue's cap cuts one (rarely): made flat then
        return list(self)[index]


class Qos0Publisher:
    """QoS 0 PUBLISH packets of many publications at once, byte for byte what `publish` builds.

    Change notifications are ~12 packets per created Observation, most on topics that repeat (the
    entity set, its streams' and features' collections): the encoded topic with its length and
    property block is kept per topic, and the fixed header per remaining length, so a packet costs
    two dict lookups and three pieces appended instead of building it (0.49 against ~0.15 µs). Both
    caches are bounded (topics: forgotten all at once when full; headers: lengths that fit two
    bytes only)."""

    HEADS_MAX = 8192
    _FIXED_MAX = 0x4000  # remaining lengths below this have a two-byte (or shorter) fixed header

    def __init__(self, level: int, props: bytes = b"\x00") -> None:
        self.level = level
        self.props = props
        self._tail = props if level == MQTT5 else b""
        self._heads: dict[str | bytes, bytes] = {}
        self._fixed: tuple[dict[int, bytes], dict[int, bytes]] = ({}, {})
        # topic -> (the marks, its head, its marked heads) for Grouped
        self._grouped: dict[str, tuple[tuple[str, ...], bytes, tuple[bytes, ...]]] = {}

    def _head(self, topic: str | bytes) -> bytes:
        raw = topic.encode() if isinstance(topic, str) else topic
        head = _U16.pack(len(raw)) + raw + self._tail
        heads = self._heads
        if len(heads) >= self.HEADS_MAX:
            heads.clear()
        heads[topic] = head
        return head

    def _fixed_header(self, retain: bool, size: int) -> bytes:
        header = bytes(((PUBLISH << 4) | retain,)) + varint(size)
        if size < self._FIXED_MAX:
            self._fixed[retain][size] = header
        return header

    def encode(self, items: Any, retain_ok: bool, max_size: int, out: list[bytes]) -> list[int]:
        """Append the packet of each (topic, payload, retain) in `items` to `out` as its three pieces
        (fixed header, topic with properties, payload: the write joins them all at once), the retain
        flag only when `retain_ok`; the sizes of those left out for being over `max_size` bytes."""
        get_head = self._heads.get
        fixed = self._fixed
        extend = out.extend
        too_large: list[int] = []
        for topic, payload, retain in items:
            head = get_head(topic)
            if head is None:
                head = self._head(topic)
            size = len(head) + len(payload)
            flag = bool(retain and retain_ok)
            header = fixed[flag].get(size)
            if header is None:
                header = self._fixed_header(flag, size)
            if size + len(header) > max_size:
                too_large.append(size + len(header))
                continue
            extend((header, head, payload))
        return too_large

    def _group_heads(
        self, topic: str, marks: tuple[str, ...]
    ) -> tuple[tuple[str, ...], bytes, tuple[bytes, ...]]:
        raw = topic.encode()
        tail = self._tail
        marked = tuple(
            _U16.pack(len(raw) + len(extra)) + raw + extra + tail
            for extra in (mark.encode() for mark in marks)
        )
        found = (marks, _U16.pack(len(raw)) + raw + tail, marked)
        cache = self._grouped
        if len(cache) >= self.HEADS_MAX:
            cache.clear()
        cache[topic] = found
        return found

    def encode_grouped(self, grouped: Grouped, retain_ok: bool, max_size: int, out: list[bytes]) -> list[int]:
        """`encode` of what `grouped` stands for, in its order, looking each group's topic up once."""
        get_heads = self._grouped.get
        get_head = self._heads.get
        fixed = self._fixed
        extend = out.extend
        too_large: list[int] = []
        for marks, groups in grouped.runs:
            found: list[tuple[tuple[str, ...], bytes, tuple[bytes, ...]] | None] = []
            for topic, retain, payload, marked in groups:
                if marked:
                    heads = get_heads(topic)
                    if heads is None or heads[0] is not marks:
                        heads = self._group_heads(topic, marks)
                    head = heads[1]
                else:  # no forms on this topic (a created entity's own topic, new every time):
                    heads = None  # its plain head only, not one per mark as well
                    head = get_head(topic) or self._head(topic)
                found.append(heads)
                flag = bool(retain and retain_ok)
                size = len(head) + len(payload)
                header = fixed[flag].get(size) or self._fixed_header(flag, size)
                if size + len(header) > max_size:
                    too_large.append(size + len(header))
                else:
                    extend((header, head, payload))
            for (_, retain, _, marked), heads in zip(groups, found, strict=True):
                if not marked or heads is None:
                    continue
                flag = bool(retain and retain_ok)
                table = fixed[flag]
                for head, payload in zip(heads[2], marked, strict=False):
                    size = len(head) + len(payload)
                    header = table.get(size) or self._fixed_header(flag, size)
                    if size + len(header) > max_size:
                        too_large.append(size + len(header))
                    else:
                        extend((header, head, payload))
        return too_large


def ack(kind: int, packet_id: int) -> bytes:
    """PUBACK, PUBREC, PUBREL or PUBCOMP with reason "success" left out (allowed in both versions)."""
    first = (kind << 4) | (0x02 if kind == PUBREL else 0)
    return bytes((first, 2)) + _U16.pack(packet_id)


def with_dup(encoded: bytes) -> bytes:
    """The same PUBLISH with the DUP flag set, for resending after a reconnect (§4.4)."""
    return bytes((encoded[0] | 0x08,)) + encoded[1:]


# ---- decoding --------------------------------------------------------------------------------


class Decoder:
    """Splits a byte stream into packets; keeps an incomplete packet for the next `feed`.

    A packet whose body spans reads is collected as a list of chunks and joined once, so a large
    packet costs linear time, not a copy of everything so far on every read. A body longer than
    `max_packet` is never held whole: a PUBLISH keeps its first `max_packet` bytes, comes out with
    the TRUNCATED flag and the rest is skipped as it arrives (the client decides what that means
    for the protocol version); any other packet type that large is a ProtocolError."""

    def __init__(self, max_packet: int = MAX_REMAINING) -> None:
        self.max_packet = max_packet
        self.reset()

    def reset(self) -> None:
        """Forget a partial packet (a new connection starts a new stream)."""
        self._tail = b""  # an incomplete fixed header
        self._parts: list[bytes] = []  # the body so far of a packet that spans reads
        self._kind = self._flags = 0  # its type and flags (| TRUNCATED when cut)
        self._missing = 0  # body bytes still to come for _parts
        self._skip = 0  # bytes of an oversized PUBLISH still to discard

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        """The packets completed by `data`, as (packet type, flags, body)."""
        packets: list[tuple[int, int, bytes]] = []
        append = packets.append
        pos = 0
        if self._missing or self._skip:
            pos = self._continue(data, packets)
            if self._missing or self._skip:
                return packets
        elif self._tail:
            data = self._tail + data
            self._tail = b""
        size = len(data)
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
            end = head + length
            flags = first & 0x0F
            if length > self.max_packet:
                if first >> 4 != PUBLISH:
                    raise ProtocolError(
                        f"packet of {length} bytes exceeds the limit of {self.max_packet}", PACKET_TOO_LARGE
                    )
                flags |= TRUNCATED
                self._skip = length - self.max_packet
                end = head + self.max_packet
            if end > size:
                self._kind, self._flags = first >> 4, flags
                self._parts = [data[head:]]
                self._missing = end - size
                return packets
            append((first >> 4, flags, data[head:end]))
            pos = end
            if self._skip:
                pos = self._discard(data, pos)
                if self._skip:
                    return packets
        if pos < size:
            self._tail = data[pos:]
        return packets

    def _continue(self, data: bytes, packets: list[tuple[int, int, bytes]]) -> int:
        """Go on with a packet that spans reads; the position in `data` after what it took."""
        pos = 0
        if self._missing:
            take = min(self._missing, len(data))
            self._parts.append(data if take == len(data) else data[:take])
            self._missing -= take
            pos = take
            if self._missing:
                return pos
            body = b"".join(self._parts)
            self._parts = []
            packets.append((self._kind, self._flags, body))
        if self._skip:
            pos = self._discard(data, pos)
        return pos

    def _discard(self, data: bytes, pos: int) -> int:
        take = min(self._skip, len(data) - pos)
        self._skip -= take
        return pos + take


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


def _string(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """Two-byte length and that many bytes at `pos`, within `end`."""
    size = _U16.unpack_from(data, pos)[0]
    stop = pos + 2 + size
    if stop > end:
        raise ProtocolError("string longer than its property block")
    return data[pos + 2 : stop], stop


def _utf8(raw: bytes) -> str:
    """A UTF-8 Encoded String's text: well-formed, no U+0000 [MQTT-1.5.4-1/2]."""
    value = raw.decode()
    if "\x00" in value:
        raise ProtocolError("U+0000 in a string")
    return value


def read_properties(
    data: bytes, pos: int, allowed: frozenset[int] | None = None
) -> tuple[dict[int, Any], int]:
    """A property block at `pos`: ({identifier: value}, position after it).

    User properties come as a list of (name, value), subscription identifiers as a list of ints.
    `allowed`: the identifiers the packet type may carry (§2.2.2.2); another one is malformed."""
    length, pos = read_varint(data, pos)
    end = pos + length
    if end > len(data):
        raise ProtocolError("property block longer than its packet")
    props: dict[int, Any] = {}
    try:
        while pos < end:
            ident = data[pos]
            pos += 1
            if ident in props and ident not in _REPEATABLE:
                raise ProtocolError(f"property 0x{ident:02x} twice", PROTOCOL_ERROR)  # §2.2.2.2
            if allowed is not None and ident not in allowed:  # §2.2.2.2: a Malformed Packet
                raise ProtocolError(f"property 0x{ident:02x} is not one of this packet's")
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
                value, pos = read_varint(data, pos)
                props.setdefault(ident, []).append(value)
            elif ident in _STRING_PROPS:
                raw, pos = _string(data, pos, end)
                props[ident] = _utf8(raw)
            elif ident in _BINARY_PROPS:
                props[ident], pos = _string(data, pos, end)
            elif ident == USER_PROPERTY:
                name, pos = _string(data, pos, end)
                string, pos = _string(data, pos, end)
                props.setdefault(USER_PROPERTY, []).append((_utf8(name), _utf8(string)))
            else:
                raise ProtocolError(f"unknown property 0x{ident:02x}")
    except (struct.error, IndexError) as exc:
        raise ProtocolError("truncated property") from exc
    except UnicodeDecodeError as exc:  # [MQTT-1.5.4-1]
        raise ProtocolError("property string is not UTF-8") from exc
    if pos != end:
        raise ProtocolError("property block overruns its length")
    _check_values(props)
    return props, end


def _check_values(props: dict[int, Any]) -> None:
    """The values §2.2.2.2 forbids: a flag other than 0 or 1, a zero where zero means nothing."""
    for ident in _BYTE_PROPS.intersection(props):
        if props[ident] > 1:  # every one-byte property is a flag (Maximum QoS too: 0 or 1)
            raise ProtocolError(f"{_CHECKED_NAMES[ident]} is {props[ident]}, not 0 or 1", PROTOCOL_ERROR)
    for ident in _NONZERO_PROPS.intersection(props):
        values = props[ident] if isinstance(props[ident], list) else [props[ident]]
        if 0 in values:
            raise ProtocolError(f"{_CHECKED_NAMES[ident]} is 0", PROTOCOL_ERROR)


@dataclass(frozen=True)
class ConnAck:
    """A decoded CONNACK: reason code 0 is success (in MQTT 3.1.1 the return code)."""

    session_present: bool
    reason: int
    props: dict[int, Any] = field(default_factory=dict)


def read_connack(body: bytes, level: int) -> ConnAck:
    """CONNACK (§3.2), with the property values the client relies on checked."""
    if len(body) < 2:
        raise ProtocolError("CONNACK shorter than 2 bytes")
    if body[0] & 0xFE:
        raise ProtocolError("CONNACK with reserved flags set")  # [MQTT-3.2.2-1]
    if body[1] not in _CONNACK_CODES[level] and not (level == MQTT5 and body[1] == 1 and len(body) == 2):
        # (a 3.1.1 broker refuses MQTT 5 with its return code 1 and no properties)
        raise ProtocolError(f"CONNACK with reason code 0x{body[1]:02x}")
    props: dict[int, Any] = {}
    if level == MQTT5 and body[1] != 1:
        props, end = read_properties(body, 2, _CONNACK_PROPS)
        if end != len(body):
            raise ProtocolError("bytes after the CONNACK properties")
        if props.get(RECEIVE_MAXIMUM, 1) == 0 or props.get(MAXIMUM_PACKET_SIZE, 1) == 0:
            raise ProtocolError("CONNACK with Receive Maximum or Maximum Packet Size 0", PROTOCOL_ERROR)
        if props.get(MAXIMUM_QOS, 0) > 1 or props.get(RETAIN_AVAILABLE, 0) > 1:
            raise ProtocolError("CONNACK with Maximum QoS or Retain Available out of range", PROTOCOL_ERROR)
    elif len(body) != 2:
        raise ProtocolError("CONNACK longer than 2 bytes")
    return ConnAck(bool(body[0] & 0x01), body[1], props)


def read_publish(flags: int, body: bytes, level: int) -> tuple[str, int, bytes]:
    """PUBLISH (§3.3): (topic, packet id or 0, payload). Properties are checked, not returned."""
    topic, packet_id, payload, _ = read_publish_marked(flags, body, level, None)
    return topic, packet_id, payload


def read_publish_marked(
    flags: int, body: bytes, level: int, marker: tuple[str, str] | None
) -> tuple[str, int, bytes, bool]:
    """read_publish, and whether the message carries the user property `marker` (MQTT 5; a 3.1.1
    message has no properties). Checked while the properties are read anyway: no second parse."""
    marked = False
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise ProtocolError("PUBLISH with QoS 3")  # [MQTT-3.3.1-4]
    try:
        pos = 2 + _U16.unpack_from(body, 0)[0]
        topic = body[2:pos].decode()
        packet_id = 0
        if qos:
            packet_id = _U16.unpack_from(body, pos)[0]
            pos += 2
            if not packet_id:
                raise ProtocolError("PUBLISH with packet id 0")  # [MQTT-2.2.1-3]
    except struct.error as exc:
        raise ProtocolError("truncated PUBLISH") from exc
    except UnicodeDecodeError as exc:
        raise ProtocolError("PUBLISH topic is not UTF-8") from exc  # [MQTT-1.5.4-1]
    if level == MQTT5:
        if pos < len(body) and body[pos] == 0:
            pos += 1  # the common case: no properties
        else:
            props, pos = read_properties(body, pos, _PUBLISH_PROPS)
            if TOPIC_ALIAS in props:  # CONNECT allowed none (Topic Alias Maximum 0) [MQTT-3.1.2-27]
                raise ProtocolError("PUBLISH with a topic alias", TOPIC_ALIAS_INVALID)
            marked = marker is not None and marker in props.get(USER_PROPERTY, ())
    if pos > len(body):
        raise ProtocolError("truncated PUBLISH")
    if not topic or "\x00" in topic or "+" in topic or "#" in topic:
        raise ProtocolError(f"PUBLISH topic {topic!r} is empty or has U+0000 or a wildcard")  # [MQTT-3.3.2-2]
    return topic, packet_id, body[pos:], marked


def read_packet_id(body: bytes) -> int:
    """The packet id that starts an acknowledgement's body."""
    if len(body) < 2:
        raise ProtocolError("acknowledgement without a packet id")
    packet_id = int(_U16.unpack_from(body, 0)[0])
    if not packet_id:
        raise ProtocolError("acknowledgement of packet id 0")
    return packet_id


def read_ack(body: bytes, level: int, kind: int = PUBACK) -> tuple[int, int]:
    """PUBACK, PUBREC, PUBREL or PUBCOMP (§3.4-3.7): (packet id, reason code)."""
    packet_id = read_packet_id(body)
    if len(body) == 2:
        return packet_id, 0
    if level != MQTT5:
        raise ProtocolError("acknowledgement longer than 2 bytes")
    if body[2] not in _ACK_CODES[kind]:
        raise ProtocolError(f"acknowledgement with reason code 0x{body[2]:02x}")
    if len(body) > 3:
        _, end = read_properties(body, 3, _ACK_PROPS)
        if end != len(body):
            raise ProtocolError("bytes after the acknowledgement's properties")
    return packet_id, body[2]


def read_suback(body: bytes, level: int, kind: int = SUBACK) -> tuple[int, list[int]]:
    """SUBACK (§3.9) or UNSUBACK (§3.11): (packet id, reason codes; 0x80 and above refuse)."""
    packet_id = read_packet_id(body)
    pos = 2
    if level == MQTT5:
        _, pos = read_properties(body, pos, _ACK_PROPS)
    codes = list(body[pos:])
    allowed = _SUBACK_CODES[level] if kind == SUBACK else _UNSUBACK_CODES
    if kind == UNSUBACK and level != MQTT5:
        if codes:
            raise ProtocolError("UNSUBACK longer than 2 bytes")
    elif not codes or not allowed.issuperset(codes):  # [MQTT-3.9.3-1]: at least one
        raise ProtocolError(f"{'SUB' if kind == SUBACK else 'UNSUB'}ACK with reason codes {codes}")
    return packet_id, codes


def read_reason(body: bytes, level: int) -> tuple[int, str | None]:
    """A DISCONNECT's reason code and reason string (MQTT 5); (0, None) when absent."""
    if level != MQTT5 or not body:
        return 0, None
    reason = body[0]
    text_value = None
    if len(body) > 1:
        props, _ = read_properties(body, 1, _DISCONNECT_PROPS)
        text_value = props.get(REASON_STRING)
    return reason, text_value
