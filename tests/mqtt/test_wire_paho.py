# SPDX-License-Identifier: Apache-2.0
"""Differential tests of hub/mqtt/wire.py against an independent codec: paho-mqtt's packet decoders
(paho.mqtt._packet) and property codec (paho.mqtt.properties).

- What we encode, paho decodes to the same fields.
- What paho encodes (property blocks of every kind), we decode to the same values.
- On arbitrary bytes we may be stricter than paho, never more lenient: whatever we accept, paho
  accepts too and reads the same way.
"""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt import _packet
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub.mqtt import wire

LEVELS = {wire.MQTT5: MQTTProtocolVersion.MQTTv5, wire.MQTT311: MQTTProtocolVersion.MQTTv311}
levels = st.sampled_from([wire.MQTT5, wire.MQTT311])
# paho refuses U+FEFF in strings, which MQTT allows (MQTT-1.5.4-3); U+0000 and surrogates are refused by both.
strings = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"), max_size=30)
topics = strings.filter(lambda t: t and "+" not in t and "#" not in t)
u16 = st.integers(1, 65535)


def _split(data: bytes) -> tuple[int, bytes]:
    """(fixed header byte, body) of one whole packet."""
    packets = wire.Decoder().feed(data)
    assert len(packets) == 1
    kind, flags, body = packets[0]
    return (kind << 4) | flags, body


# ---- ours encoded, paho decodes -----------------------------------------------------------------


@given(topics, st.binary(max_size=200), st.integers(0, 2), st.booleans(), u16, levels, st.booleans())
def test_paho_decodes_our_publish(
    topic: str, payload: bytes, qos: int, retain: bool, packet_id: int, level: int, dup: bool
) -> None:
    encoded = wire.publish(topic.encode(), payload, qos, retain, packet_id, level)
    if dup:
        encoded = wire.with_dup(encoded)
    header, body = _split(encoded)
    decoded = _packet.decode_publish(header, body, LEVELS[level])
    assert decoded.topic == topic.encode()
    assert decoded.payload == payload
    assert (decoded.qos, decoded.retain, decoded.mid) == (qos, retain, packet_id if qos else 0)
    assert decoded.dup == dup


@given(st.sampled_from([wire.PUBACK, wire.PUBREC, wire.PUBREL, wire.PUBCOMP]), u16, levels)
def test_paho_decodes_our_acknowledgements(kind: int, packet_id: int, level: int) -> None:
    header, body = _split(wire.ack(kind, packet_id))
    decode = {
        wire.PUBACK: _packet.decode_puback,
        wire.PUBREC: _packet.decode_pubrec,
        wire.PUBREL: _packet.decode_pubrel,
        wire.PUBCOMP: _packet.decode_pubcomp,
    }[kind]
    decoded = decode(header, body, LEVELS[level])
    assert decoded.mid == packet_id
    assert decoded.reason.value == 0
    assert header & 0x0F == (2 if kind == wire.PUBREL else 0)  # [MQTT-3.6.1-1]


@given(st.sampled_from([0, 0x04, 0x81, 0x82, 0x95]), st.one_of(st.none(), st.integers(0, 2**32 - 1)))
def test_paho_decodes_our_disconnect(reason: int, expiry: int | None) -> None:
    header, body = _split(wire.disconnect(wire.MQTT5, expiry, reason))
    decoded = _packet.decode_disconnect(header, body, MQTTProtocolVersion.MQTTv5)
    assert (decoded.reason.value if decoded.reason else 0) == reason
    if expiry is not None:
        assert decoded.properties is not None
        assert decoded.properties.SessionExpiryInterval == expiry


@given(
    st.dictionaries(
        st.sampled_from(
            [wire.SESSION_EXPIRY, wire.RECEIVE_MAXIMUM, wire.MAXIMUM_PACKET_SIZE, wire.MAXIMUM_QOS]
        ),
        st.integers(1, 255),
    ),
    st.lists(st.tuples(strings, strings), max_size=4),
)
def test_paho_reads_our_property_blocks(props: dict[int, int], user: list[tuple[str, str]]) -> None:
    block = wire.properties(props, tuple(user))
    theirs = Properties(PacketTypes.CONNACK)  # where paho allows all of these
    _, length = theirs.unpack(block)
    assert length == len(block)
    names = {wire.SESSION_EXPIRY: "SessionExpiryInterval", wire.RECEIVE_MAXIMUM: "ReceiveMaximum",
             wire.MAXIMUM_PACKET_SIZE: "MaximumPacketSize", wire.MAXIMUM_QOS: "MaximumQoS"}  # fmt: skip
    for ident, value in props.items():
        assert getattr(theirs, names[ident]) == value
    assert list(getattr(theirs, "UserProperty", [])) == user


# ---- paho encoded, we decode --------------------------------------------------------------------


def _paho_properties(draw: Any) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    if draw(st.booleans()):
        props.PayloadFormatIndicator = draw(st.integers(0, 1))
    if draw(st.booleans()):
        props.MessageExpiryInterval = draw(st.integers(0, 2**32 - 1))
    if draw(st.booleans()):
        props.ContentType = draw(strings)
    if draw(st.booleans()):
        props.ResponseTopic = draw(topics)
    if draw(st.booleans()):
        props.CorrelationData = draw(st.binary(max_size=20))
    for value in draw(st.lists(st.integers(1, 2**28 - 1), max_size=3)):
        props.SubscriptionIdentifier = value  # repeatable: paho appends
    for pair in draw(st.lists(st.tuples(strings, strings), max_size=3)):
        props.UserProperty = pair
    return props


@st.composite
def paho_publish(draw: Any) -> tuple[bytes, Properties, str, bytes, int, int]:
    """A PUBLISH body built around a property block paho packed, and its parts."""
    topic = draw(topics)
    payload = draw(st.binary(max_size=100))
    qos = draw(st.integers(0, 2))
    packet_id = draw(u16) if qos else 0
    props = _paho_properties(draw)
    body = wire.text(topic) + (struct.pack(">H", packet_id) if qos else b"") + props.pack() + payload
    return wire.packet(0x30 | qos << 1, body), props, topic, payload, qos, packet_id


@given(paho_publish())
def test_we_decode_paho_property_blocks_as_paho_does(
    case: tuple[bytes, Properties, str, bytes, int, int],
) -> None:
    encoded, props, topic, payload, qos, packet_id = case
    header, body = _split(encoded)
    assert wire.read_publish(header & 0x0F, body, wire.MQTT5) == (topic, packet_id, payload)
    theirs = _packet.decode_publish(header, body, MQTTProtocolVersion.MQTTv5)
    pos = 2 + len(topic.encode()) + (2 if qos else 0)
    ours, _ = wire.read_properties(body, pos)
    expected = Properties(PacketTypes.PUBLISH)
    expected.unpack(props.pack())
    assert theirs.properties is not None
    assert theirs.properties.json() == expected.json()
    names = ((0x01, "PayloadFormatIndicator"), (0x02, "MessageExpiryInterval"), (0x03, "ContentType"),
             (0x08, "ResponseTopic"), (0x09, "CorrelationData"), (0x0B, "SubscriptionIdentifier"),
             (wire.USER_PROPERTY, "UserProperty"))  # fmt: skip
    for ident, name in names:
        if hasattr(props, name):
            value = getattr(props, name)
            assert ours[ident] == (list(value) if isinstance(value, list) else value)
        else:
            assert ident not in ours


# ---- arbitrary bytes: we are never more lenient than paho ----------------------------------------

fragments = st.one_of(
    st.binary(max_size=12),
    st.builds(lambda s: wire.text(s), strings),
    st.builds(lambda v: wire.varint(v), st.integers(0, 300)),
    st.sampled_from([b"\x00", b"\x01\x01", b"\x26\x00\x01a\x00\x01b", b"\x23\x00\x01", b"\x0b\x05"]),
)
bodies = st.lists(fragments, max_size=6).map(b"".join)


def _paho_or_none(decode: Any, header: int, body: bytes, level: int) -> Any:
    try:
        return decode(header, body, LEVELS[level])
    except _packet.MalformedPacket:
        return None


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 7), bodies, levels)
def test_a_publish_we_accept_paho_accepts_alike(flags: int, body: bytes, level: int) -> None:
    try:
        topic, packet_id, payload = wire.read_publish(flags, body, level)
    except wire.ProtocolError:
        return
    theirs = _paho_or_none(_packet.decode_publish, 0x30 | flags, body, level)
    assert theirs is not None, "we accepted a PUBLISH paho calls malformed"
    assert (theirs.topic.decode(), theirs.mid, bytes(theirs.payload)) == (topic, packet_id, payload)


@settings(max_examples=300)
@given(bodies, levels)
def test_a_connack_we_accept_paho_accepts_alike(body: bytes, level: int) -> None:
    try:
        ours = wire.read_connack(body, level)
    except wire.ProtocolError:
        return
    theirs = _paho_or_none(_packet.decode_connack, 0x20, body, level)
    assert theirs is not None, "we accepted a CONNACK paho calls malformed"
    assert (bool(theirs.flags & 1), theirs.rc) == (ours.session_present, ours.reason)


@settings(max_examples=300)
@given(bodies, levels)
def test_a_suback_we_accept_paho_accepts_alike(body: bytes, level: int) -> None:
    try:
        packet_id, codes = wire.read_suback(body, level)
    except wire.ProtocolError:
        return
    theirs = _paho_or_none(_packet.decode_suback, 0x90, body, level)
    assert theirs is not None, "we accepted a SUBACK paho calls malformed"
    assert (theirs.mid, [c.value for c in theirs.reason_codes]) == (packet_id, codes)


@settings(max_examples=300)
@given(bodies, levels)
def test_an_acknowledgement_we_accept_paho_accepts_alike(body: bytes, level: int) -> None:
    try:
        packet_id, reason = wire.read_ack(body, level)
    except wire.ProtocolError:
        return
    theirs = _paho_or_none(_packet.decode_puback, 0x40, body, level)
    assert theirs is not None, "we accepted a PUBACK paho calls malformed"
    assert (theirs.mid, theirs.reason.value) == (packet_id, reason)
