# SPDX-License-Identifier: Apache-2.0
"""hub/mqtt/wire.py: packets survive any split of the byte stream; malformed input is refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
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


def test_a_packet_spanning_many_reads_is_reassembled() -> None:
    """A 4 MiB PUBLISH in 64 KiB reads (collected as chunks and joined once), then the next packet."""
    payload = bytes(range(256)) * (16 * 1024)
    stream = wire.publish(b"big", payload, 1, False, 5, wire.MQTT5) + wire.PINGREQ_PACKET
    decoder = wire.Decoder()
    packets = []
    for start in range(0, len(stream), 65536):
        packets += decoder.feed(stream[start : start + 65536])
    assert [kind for kind, _, _ in packets] == [wire.PUBLISH, wire.PINGREQ]
    assert wire.read_publish(packets[0][1], packets[0][2], wire.MQTT5) == ("big", 5, payload)


def test_mqtt_311_connect_never_has_a_password_without_a_user_name() -> None:
    """MQTT 3.1.1 [MQTT-3.1.2-22]: an empty user name goes with it; MQTT 5 allows the password alone."""
    old = wire.connect("c", wire.MQTT311, 30, False, None, "pw")
    flags = old[2 + 6 + 1]  # fixed header, "MQTT", level
    assert flags & 0xC0 == 0xC0
    assert old.endswith(wire.text("") + wire.binary(b"pw"))
    new = wire.connect("c", wire.MQTT5, 30, False, None, "pw")
    assert new[2 + 6 + 1] & 0xC0 == 0x40


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x00\x02\xff\xfe", "not UTF-8"),  # [MQTT-1.5.4-1]
        (b"\x00\x01a\x00\x00", "packet id 0"),  # QoS 1 [MQTT-2.2.1-3]
        (b"\x00\x01a\x00", "truncated"),  # QoS 1 without its packet id
    ],
)
def test_malformed_publish_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(wire.ProtocolError, match=reason):
        wire.read_publish(0x02, body, wire.MQTT311)


def test_a_property_twice_is_a_protocol_error_but_user_properties_repeat() -> None:
    twice = bytes([wire.RECEIVE_MAXIMUM, 0, 1, wire.RECEIVE_MAXIMUM, 0, 2])
    with pytest.raises(wire.ProtocolError, match="twice") as caught:
        wire.read_properties(wire.varint(len(twice)) + twice, 0)
    assert caught.value.reason == wire.PROTOCOL_ERROR
    users = (bytes([wire.USER_PROPERTY]) + wire.text("k") + wire.text("1")) * 2
    props, _ = wire.read_properties(wire.varint(len(users)) + users, 0)
    assert props[wire.USER_PROPERTY] == [("k", "1"), ("k", "1")]


def test_connack_values_the_client_relies_on_are_checked() -> None:
    with pytest.raises(wire.ProtocolError, match="Receive Maximum"):
        wire.read_connack(b"\x00\x00" + wire.properties({wire.RECEIVE_MAXIMUM: 0}), wire.MQTT5)
    with pytest.raises(wire.ProtocolError, match="reserved flags"):
        wire.read_connack(b"\x02\x00\x00", wire.MQTT5)  # [MQTT-3.2.2-1]
    # A 3.1.1 broker refusing MQTT 5: return code 1, no properties.
    assert wire.read_connack(b"\x00\x01", wire.MQTT5).reason == 1


def test_disconnect_carries_a_reason_code_in_mqtt_5_only() -> None:
    assert wire.disconnect(wire.MQTT5, reason=wire.PACKET_TOO_LARGE) == b"\xe0\x01\x95"
    assert wire.disconnect(wire.MQTT311, reason=wire.PACKET_TOO_LARGE) == wire.DISCONNECT_PACKET
    assert wire.disconnect(wire.MQTT5) == wire.DISCONNECT_PACKET


def test_publish_takes_an_encoded_property_block() -> None:
    """For a marker on the hub's own publications (a user property), encoded once by the caller."""
    props = wire.properties({}, (("twinhub", "1"),))
    encoded = wire.publish(b"t", b"p", 1, False, 3, wire.MQTT5, props)
    _, flags, body = wire.Decoder().feed(encoded)[0]
    assert wire.read_publish(flags, body, wire.MQTT5) == ("t", 3, b"p")
    assert wire.read_properties(body, 5)[0] == {wire.USER_PROPERTY: [("twinhub", "1")]}


def test_read_publish_marked_finds_the_marker_among_user_properties() -> None:
    mark = ("twinhub", "notification")
    cases = [
        (wire.properties({}, (("a", "b"), mark)), wire.MQTT5, True),
        (wire.properties({}, (("twinhub", "other"),)), wire.MQTT5, False),
        (wire.properties({0x01: 1}), wire.MQTT5, False),  # other properties only
        (b"\x00", wire.MQTT5, False),
        (b"\x00", wire.MQTT311, False),  # no properties in 3.1.1
    ]
    for props, level, marked in cases:
        encoded = wire.publish(b"t", b"p", 1, False, 3, level, props)
        _, flags, body = wire.Decoder().feed(encoded)[0]
        assert wire.read_publish_marked(flags, body, level, mark) == ("t", 3, b"p", marked)
        assert wire.read_publish_marked(flags, body, level, None) == ("t", 3, b"p", False)


sized = st.tuples(topics, st.integers(0, 17_000), st.booleans())


@settings(deadline=None)  # no timing in tests: a loaded machine must not fail it
@given(
    st.lists(sized, max_size=12),
    st.sampled_from([wire.MQTT5, wire.MQTT311]),
    st.sampled_from([b"\x00", wire.properties({}, (("twinhub", "notification"),))]),
    st.booleans(),
    st.sampled_from([wire.MAX_REMAINING, 200, 16_387]),
)
def test_qos0_publisher_writes_what_publish_writes(
    items: list[tuple[str, int, bool]], level: int, props: bytes, retain_ok: bool, max_size: int
) -> None:
    """Byte for byte, also across the one/two/three-byte length boundaries and with topics seen
    before (cached); packets over `max_size` are left out and their sizes answered."""
    publisher = wire.Qos0Publisher(level, props)
    publications = [(topic, bytes((size % 251,)) * size, retain) for topic, size, retain in items]
    for _ in range(2):  # the second round meets every topic and length in the caches
        out: list[bytes] = []
        too_large = publisher.encode(publications, retain_ok, max_size, out)
        expected = [
            wire.publish(topic.encode(), payload, 0, retain and retain_ok, 0, level, props)
            for topic, payload, retain in publications
        ]
        assert b"".join(out) == b"".join(packet for packet in expected if len(packet) <= max_size)
        assert too_large == [len(packet) for packet in expected if len(packet) > max_size]


def test_qos0_publisher_forgets_topics_when_full() -> None:
    publisher = wire.Qos0Publisher(wire.MQTT5)
    publisher.HEADS_MAX = 3
    out: list[bytes] = []
    publisher.encode([(f"t/{i}", b"x", False) for i in range(10)], True, wire.MAX_REMAINING, out)
    assert len(publisher._heads) <= 3
    assert b"".join(out) == b"".join(
        wire.publish(f"t/{i}".encode(), b"x", 0, False, 0, wire.MQTT5) for i in range(10)
    )


_marks = st.sampled_from([(), ("?$select=result",), ("?$select=a,b", "?$select=b,a")])
_groups = st.lists(
    st.tuples(st.sampled_from(["t/a", "t/b", "t/é"]) | topics, st.booleans(), st.integers(0, 3)), max_size=5
)


@settings(deadline=None)  # no timing in tests: a loaded machine must not fail it
@given(
    st.lists(st.tuples(_marks, _groups), max_size=4), st.booleans(), st.sampled_from([wire.MAX_REMAINING, 40])
)
def test_grouped_publications_encode_as_their_flat_sequence(
    runs: list[tuple[tuple[str, ...], list[tuple[str, bool, int]]]], retain_ok: bool, max_size: int
) -> None:
    """A Grouped is the sequence it stands for (topic, then each group's marked topics per run), and
    the publisher writes for it what it writes for that sequence, the caches warm or cold."""
    grouped_runs: list[wire.Run] = []
    flat: list[tuple[str, bytes, bool]] = []
    for marks, groups in runs:
        made = []
        for number, (topic, retain, extra) in enumerate(groups):
            marked = tuple(b"%d-%d" % (number, i) * (i + 1) for i in range(min(extra, len(marks))))
            made.append((topic, retain, b"%d" % number, marked))
        grouped_runs.append((marks, made))
        flat += [(topic, payload, retain) for topic, retain, payload, _ in made]
        flat += [
            (topic + mark, payload, retain)
            for topic, retain, _, marked in made
            for mark, payload in zip(marks, marked, strict=False)
        ]
    grouped = wire.Grouped(grouped_runs, len(flat))
    assert list(grouped) == flat
    assert len(grouped) == len(flat)
    assert grouped[:2] == flat[:2]
    publisher = wire.Qos0Publisher(wire.MQTT5)
    for _ in range(2):
        out: list[bytes] = []
        expected: list[bytes] = []
        assert publisher.encode_grouped(grouped, retain_ok, max_size, out) == wire.Qos0Publisher(
            wire.MQTT5
        ).encode(flat, retain_ok, max_size, expected)
        assert b"".join(out) == b"".join(expected)
