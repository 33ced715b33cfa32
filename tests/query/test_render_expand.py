# SPDX-License-Identifier: Apache-2.0
"""Expanded collections' nextLinks (OGC 18-088 §9.3.2.1): each parent's own, one query text per expand."""

from __future__ import annotations

from datetime import UTC, datetime

from multidict import MultiDict

from hub.query.parse import parse_query
from hub.query.plan import plan_expands
from hub.render import render_nodes
from hub.store.read import Expanded, Node
from schemas.model import DATASTREAM

BASE = "http://hub.example/v1.1"
T = datetime(2026, 12, 7, tzinfo=UTC)


def stream(stream_id: int) -> dict[str, object]:
    return {
        "id": stream_id, "name": f"s{stream_id}", "description": "d", "unit_of_measurement": {},
        "observation_type": "OM_Measurement", "observed_area": None, "phenomenon_time_start": T,
        "phenomenon_time_end": T, "result_time_start": None, "result_time_end": None, "properties": None,
        "thing_id": 1, "sensor_id": 1, "observed_property_id": 1,
    }  # fmt: skip


def observation(observation_id: int, stream_id: int) -> dict[str, object]:
    return {
        "id": observation_id, "phenomenon_time_start": T, "phenomenon_time_end": T, "result_time": None,
        "result": 1, "result_quality": None, "valid_time_start": None, "valid_time_end": None,
        "parameters": None, "datastream_id": stream_id, "multi_datastream_id": None,
        "feature_of_interest_id": 1,
    }  # fmt: skip


def test_each_parent_gets_its_own_next_link_with_the_same_query() -> None:
    query = parse_query(
        MultiDict({"$expand": "Observations($orderby=phenomenonTime desc;$top=1)"}), 100, 1000
    )
    (plan,) = plan_expands(DATASTREAM, query.expand, 100)
    nodes = [
        Node(stream(i), {"Observations": Expanded(plan, [Node(observation(10 + i, i))], has_more=True)})
        for i in (1, 2, 3)
    ]
    links = [entity["Observations@iot.nextLink"] for entity in render_nodes(DATASTREAM, nodes, BASE)]
    prefixes = [link.partition("?")[0] for link in links]
    assert prefixes == [f"{BASE}/Datastreams({i})/Observations" for i in (1, 2, 3)]
    queries = {link.partition("?")[2] for link in links}
    (text,) = queries
    assert "$top=1" in text
    assert "$skip=1" in text
