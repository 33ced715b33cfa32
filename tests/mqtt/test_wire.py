# SPDX-License-Identifier: Apache-2.0
"""hub/mqtt/wire.py: packets survive any split of the byte stream; malformed input is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.mqtt import wire

topics = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00+#"), min_size=1, max_size=40
)
publications = st.tuples(
    topics, st.binary(max_size=300), st.integers(0, 2), st.booleans(), st.integers(1, 65535)
)


@given(st.lists(publications, max_size=20), st.sampled_from([wire.MQTT5, wire.MQTT311]), st.data())
def test_publish_packets_survive_any_split(
    items: list[tuple[str, bytes, int, bool, int]], level: int, data: st.DataObject
) -> None:
    stream = b"".join(
        wire.publish(topic.encode(), payload, qos, retain, packet_id, level)
        for topic, payload, qos, retain, packet_id in items
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    decoder = wire.Decoder()
    packets = []
    start = 0
    for cut in [*cuts, len(stream)]:
        packets += decoder.feed(stream[start:cut])
        start = cut
    assert len(packets) == len(items)
    for (kind, flags, body), (topic, payload, qos, retain, packet_id) in zip(packets, items, strict=True):
        assert kind == wire.PUBLISH
        assert (flags >> 1) & 3 == qos
        assert bool(flags & 1) == retain
        assert wire.read_publish(flags, body, level) == (topic, packet_id if qos else 0, payload)


@pytest.mark.parametrize("value", [0, 1, 127, 128, 16383, 16384, 2097151, 2097152, wire.MAX_REMAINING])
def test_variable_byte_integers_round_trip(value: int) -> None:
    encoded = wire.varint(value)
    assert len(encoded) == 1 + (value >= 128) + (value >= 16384) + (value >= 2097152)
    assert wire.read_varint(encoded, 0) == (value, len(encoded))


def test_connack_properties_are_read() -> None:
    props = wire.properties({wire.RECEIVE_MAXIMUM: 20, wire.MAXIMUM_QOS: 1, wire.SESSION_EXPIRY: 60})
    body = b"\x01\x00" + props
    ack = wire.read_connack(body, wire.MQTT5)
    assert ack.session_present
    assert ack.reason == 0
    assert ack.props == {wire.RECEIVE_MAXIMUM: 20, wire.MAXIMUM_QOS: 1, wire.SESSION_EXPIRY: 60}


def test_string_and_user_properties_are_read() -> None:
    block = (
        bytes([wire.REASON_STRING])
        + wire.text("no")
        + bytes([wire.USER_PROPERTY])
        + wire.text("k")
        + wire.text("v")
    )
    props, end = wire.read_properties(wire.varint(len(block)) + block, 0)
    assert props == {wire.REASON_STRING: "no", wire.USER_PROPERTY: [("k", "v")]}
    assert end == len(block) + 1


@pytest.mark.parametrize(
    ("stream", "reason"),
    [
        (b"\x30\xff\xff\xff\xff\x01", "remaining length"),  # a fifth length byte
        (b"\x90" + wire.varint(2000), "exceeds the limit"),  # over max_packet (not a PUBLISH)
    ],
)
def test_malformed_streams_are_refused(stream: bytes, reason: str) -> None:
    with pytest.raises(wire.ProtocolError, match=reason):
        wire.Decoder(max_packet=1000).feed(stream)


def test_unknown_property_is_refused() -> None:
    with pytest.raises(wire.ProtocolError, match="unknown property"):
        wire.read_properties(b"\x02\x7f\x00", 0)


def test_dup_flag_is_set_on_resend() -> None:
    encoded = wire.publish(b"t", b"p", 1, False, 9, wire.MQTT5)
    assert wire.with_dup(encoded)[0] == encoded[0] | 0x08
    assert wire.with_dup(encoded)[1:] == encoded[1:]
