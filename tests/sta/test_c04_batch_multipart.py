# SPDX-License-Identifier: Apache-2.0
"""Multipart $batch (OData 4.0 Part 1 §11.7, OGC 18-088 §11.2, as FROST's statests c04batch sends it):
GET parts, change sets committing atomically, Content-ID references, one response part per request,
CRLF and LF line breaks, quoted boundaries, and a 400 naming the problem for a broken body.

Responses are read with the standard library's MIME parser (`email`), not with the hub's own code."""

from __future__ import annotations

import email
import email.policy
import json
from email.message import Message
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from helpers import (
    ENTITY_SETS,
    ROOT,
    assert_error,
    count,
    datastream,
    get_ok,
    observation,
    populate,
    sensor,
    thing,
    url,
)

from hub.app import build_app
from hub.config import Settings

BOUNDARY = "batch_36522ad7-fc75-4b56-8c71-56071383e77b"
CHANGESET = "changeset_77162fcd-b8da-41ac-a9f8-9357efbbd"


def request(method: str, target: str, body: Any = None, content_id: str | None = None) -> str:
    """One application/http part (headers, blank line, request) without its delimiter."""
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{method} {target} HTTP/1.1", "Host: localhost"]
    if body is not None:
        text = json.dumps(body)
        lines += ["Content-Type: application/json", f"Content-Length: {len(text.encode())}", "", text]
    else:
        lines += ["", ""]
    return "\r\n".join(lines)


def changeset(*parts: str, boundary: str = CHANGESET) -> str:
    """A change set part: a nested multipart/mixed of requests."""
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts)
    return f"Content-Type: multipart/mixed;boundary={boundary}\r\n\r\n{body}--{boundary}--"


def multipart(*parts: str, boundary: str = BOUNDARY) -> str:
    """A batch body of parts (each a request or a change set)."""
    return "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--"


async def send_batch(client: Any, body: str, content_type: str | None = None) -> tuple[int, bytes, str]:
    """POST a multipart batch; (status, body, Content-Type)."""
    headers = {"Content-Type": content_type or f"multipart/mixed; boundary={BOUNDARY}"}
    response = await client.post(f"{ROOT}/$batch", data=body.encode(), headers=headers)
    return response.status, await response.read(), response.headers.get("Content-Type", "")


def mime(body: bytes, content_type: str) -> Message:
    """The response as a MIME message, parsed by the standard library."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    return email.message_from_bytes(head + body, policy=email.policy.compat32)


def http_answer(part: Message) -> tuple[int, dict[str, str], Any]:
    """(status, headers, decoded body) of an application/http response part."""
    assert part.get_content_type() == "application/http"
    payload = part.get_payload()
    assert isinstance(payload, str)
    head, _, body = payload.replace("\r\n", "\n").partition("\n\n")
    status_line, *header_lines = head.split("\n")
    version, status, *_ = status_line.split(" ")
    assert version == "HTTP/1.1"
    headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    text = body.strip()
    decoded = (
        json.loads(text) if text and headers.get("content-type", "").startswith("application/json") else text
    )
    return int(status), headers, decoded


async def run(client: Any, body: str, content_type: str | None = None) -> list[Message]:
    """POST a multipart batch, asserting 200 multipart/mixed; its top-level parts."""
    status, raw, media_type = await send_batch(client, body, content_type)
    assert status == 200, raw
    assert media_type.startswith("multipart/mixed; boundary=")
    message = mime(raw, media_type)
    assert message.is_multipart(), raw
    parts = message.get_payload()
    assert isinstance(parts, list)
    return parts


async def totals(client: Any) -> dict[str, int]:
    return {entity_set: await count(client, entity_set) for entity_set in ENTITY_SETS}


async def test_the_standard_example_get_changeset_and_a_missing_entity(client: Any) -> None:
    """18-088 §11.2.1's example as FROST's suite sends it: a GET, a change set of a POST and a
    PATCH, and a GET of a missing entity, answered part by part in order."""
    await populate(client)
    body = multipart(
        request("GET", f"{ROOT}/Things(1)?$select=name"),
        changeset(
            request("POST", f"{ROOT}/Things", {"name": "New", "description": "Thing"}, content_id="1"),
            request("PATCH", f"{ROOT}/Things(1)", {"name": "Patched"}, content_id="2"),
        ),
        request("GET", f"{ROOT}/Things(99)"),
    )
    first, change, missing = await run(client, body)
    assert http_answer(first)[0::2] == (200, {"name": "Weather station"})
    assert change.get_content_type() == "multipart/mixed"
    created, patched = change.get_payload()
    status, headers, entity = http_answer(created)
    assert (status, created["Content-ID"]) == (201, "1")
    assert headers["location"] == url(client, "Things(2)") == entity["@iot.selfLink"]
    status, _, entity = http_answer(patched)
    assert (status, patched["Content-ID"], entity["name"]) == (200, "2", "Patched")
    status, _, error = http_answer(missing)
    assert status == 404
    assert "Things(99)" in error["message"]
    assert (await get_ok(client, "Things(1)"))["name"] == "Patched"
    assert (await get_ok(client, "Things(2)"))["name"] == "New"


async def test_references_to_entities_created_in_the_change_set(client: Any) -> None:
    """18-088 §11.2.2: `$<Content-ID>` in a body's @iot.id and at the start of a url."""
    await populate(client)
    stream = datastream("Batch stream", sensor_id=None) | {"Sensor": {"@iot.id": "$sensor1"}}
    body = multipart(
        changeset(
            request("POST", "Sensors", sensor("DS18B20"), content_id="sensor1"),
            request("POST", f"{ROOT}/Things(1)/Datastreams", stream, content_id="any"),
            request("POST", "$any/Observations", observation(7.5), content_id="obs"),
        ),
        request("GET", "Datastreams(2)?$expand=Sensor($select=name),Observations($select=result)"),
    )
    change, read = await run(client, body)
    statuses = [http_answer(part)[0] for part in change.get_payload()]
    assert statuses == [201, 201, 201]
    assert [part["Content-ID"] for part in change.get_payload()] == ["sensor1", "any", "obs"]
    status, _, entity = http_answer(read)
    assert status == 200
    assert entity["Sensor"] == {"name": "DS18B20"}
    assert entity["Observations"] == [{"result": 7.5}]


async def test_a_failed_change_set_commits_nothing_and_answers_once(client: Any) -> None:
    """OData 4.0 §11.7.4: a change set that fails is answered by the one failed response."""
    await populate(client)
    before = await totals(client)
    body = multipart(
        changeset(
            request("POST", "Things", thing("A"), content_id="t"),
            request("PATCH", "Things(1)", {"name": "renamed"}, content_id="p"),
            request("POST", "$t/Datastreams", {"name": "broken"}, content_id="d"),
        ),
        request("GET", "Things(1)"),
    )
    failed, read = await run(client, body)
    status, _, error = http_answer(failed)
    assert status == 400
    assert failed["Content-ID"] == "d"
    assert "Datastream" in error["message"]
    assert http_answer(read)[2]["name"] == "Weather station"
    assert await totals(client) == before


async def test_lf_line_breaks_quoted_boundary_absolute_urls_and_encoded_queries(client: Any) -> None:
    """What hand-written and other clients send: bare LF, a quoted boundary with a space-free
    parameter, absolute URLs, percent-encoded query options, no HTTP version on the request line."""
    await populate(client)
    boundary = "batch test"
    absolute = url(client, "Things?$count=true&$filter=name%20eq%20'Weather%20station'&$select=name")
    body = multipart(
        request("GET", absolute),
        request("GET", "Things(1)/properties/owner/$value").replace(" HTTP/1.1", ""),
        boundary=boundary,
    ).replace("\r\n", "\n")
    listing, owner = await run(client, body, f'multipart/mixed; boundary="{boundary}"')
    assert http_answer(listing)[0::2] == (200, {"@iot.count": 1, "value": [{"name": "Weather station"}]})
    assert http_answer(owner)[0::2] == (200, "city")


async def test_a_multipart_batch_needs_the_roles_of_its_requests(clean_db: str, settings: Settings) -> None:
    """The same authorisation as the JSON form: a write inside needs the create role."""
    locked = settings.model_copy(update={"auth_anonymous_write": False})
    async with TestClient(TestServer(build_app(locked))) as client:
        status, raw, _ = await send_batch(client, multipart(request("POST", "Sensors", sensor())))
        assert_error(status, json.loads(raw), 401)
        status, raw, _ = await send_batch(client, multipart(request("GET", "Sensors")))
        assert status == 200
        assert await count(client, "Sensors") == 0


@pytest.mark.parametrize(
    ("body", "content_type", "mentions"),
    [
        (multipart(request("GET", "Things")), "multipart/mixed", ("boundary",)),
        ("GET Things HTTP/1.1\r\n", None, ("no part starts with", BOUNDARY)),
        (f"--{BOUNDARY}\r\n{request('GET', 'Things')}\r\n", None, ("closing delimiter", f"--{BOUNDARY}--")),
        (
            multipart("Content-Type: text/plain\r\n\r\nhello"),
            None,
            ("part 1", "application/http", "text/plain"),
        ),
        (multipart("Content-Type: application/http\r\n\r\nfetch everything please"), None, ("request line",)),
        (multipart(request("POST", "Things", None) + "{not json"), None, ("part 1", "not valid JSON")),
        (
            multipart(changeset(changeset(request("POST", "Things", thing()), boundary="inner"))),
            None,
            ("change set cannot contain another change set",),
        ),
        (
            multipart(
                changeset(request("POST", "Things", thing(), "x"), request("POST", "Things", thing(), "x"))
            ),
            None,
            ("Content-ID 'x' is given twice",),
        ),
        (
            multipart(changeset(request("POST", "Things", thing())).replace("boundary=", "charset=")),
            None,
            ("boundary",),
        ),
        (f"--{BOUNDARY}--", None, ("no request",)),
    ],
    ids=[
        "no boundary",
        "no delimiter",
        "no close",
        "wrong part type",
        "bad request line",
        "bad JSON",
        "nested change set",
        "duplicate Content-ID",
        "change set without boundary",
        "empty",
    ],
)
async def test_broken_multipart_body_is_400_naming_the_problem(
    client: Any, body: str, content_type: str | None, mentions: tuple[str, ...]
) -> None:
    status, raw, media_type = await send_batch(client, body, content_type)
    assert media_type.startswith("application/json")
    assert_error(status, json.loads(raw), 400, "$batch", *mentions)
    assert await count(client, "Things") == 0


async def test_other_multipart_types_are_415(client: Any) -> None:
    status, raw, _ = await send_batch(
        client, multipart(request("GET", "Things")), "multipart/form-data; boundary=x"
    )
    assert_error(status, json.loads(raw), 415, "multipart/mixed", "application/json")


async def test_service_root_lists_batch_request_for_both_forms(client: Any) -> None:
    """Both forms work (this module and test_c04_batch.py), so the class is claimed."""
    root = await get_ok(client, "")
    assert (
        "http://www.opengis.net/spec/iot_sensing/1.1/req/batch-request/batch-request"
        in (root["serverSettings"]["conformance"])
    )
