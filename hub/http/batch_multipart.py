# SPDX-License-Identifier: Apache-2.0
"""POST $batch in the multipart form of OData 4.0 Part 1 §11.7 (OGC 18-088 §11.2, req/batch-request).

The body is `multipart/mixed` (RFC 2046 §5.1): each part is either one request
(`Content-Type: application/http`, the request line, its headers, a blank line, its body) or a change
set, a nested `multipart/mixed` whose requests commit atomically and carry a `Content-ID` that later
requests of the batch reference as `$<Content-ID>` (in a url, or as an `@iot.id` in a body).

The requests run through the same executor as the JSON form (hub/http/batch.py): a change set is an
atomicity group. The response is `multipart/mixed` with one part per request in request order, and a
nested `multipart/mixed` per change set; a failed change set answers with the one response of its
failed request instead (§11.7.4: "a single response ... that applies to all requests in the change
set"). Line breaks may be CRLF (as the RFC asks) or bare LF (as hand-written bodies have).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp.helpers import parse_mimetype

from hub.errors import BadRequestError
from hub.http.batch import FAILED_DEPENDENCY, Outcome, Part, run_parts
from hub.http.context import AppState

MULTIPART_MIXED = "multipart/mixed"
APPLICATION_HTTP = "application/http"
CRLF = "\r\n"
_LINE_BREAK = re.compile(r"\r?\n")
# `GET Things(1)?$select=name HTTP/1.1`; the HTTP version is optional in what clients send.
_REQUEST_LINE = re.compile(r"(?P<method>[A-Za-z]+)[ \t]+(?P<target>\S+)(?:[ \t]+HTTP/\d(?:\.\d)?)?[ \t]*")
_JSON_TYPES = ("application/json", "application/json-patch+json")


@dataclass
class MultipartBatch:
    """The requests of a multipart batch, with what the response needs to echo."""

    parts: list[Part] = field(default_factory=list)
    content_ids: dict[str, str] = field(default_factory=dict)  # part id -> the Content-ID as sent


def boundary_of(content_type: str, where: str) -> str:
    """The boundary parameter of a multipart/mixed Content-Type (quoted or not); 400 without one."""
    mime = parse_mimetype(content_type)
    if f"{mime.type}/{mime.subtype}" != MULTIPART_MIXED:
        raise BadRequestError(f"{where}: expected {MULTIPART_MIXED}, not {mime.type}/{mime.subtype}")
    boundary = mime.parameters.get("boundary", "").strip()
    if not boundary:
        raise BadRequestError(f"{where}: Content-Type {MULTIPART_MIXED} needs a boundary parameter")
    return boundary


def _split(lines: list[str], boundary: str, where: str) -> list[list[str]]:
    """The body parts between `--boundary` delimiters (RFC 2046 §5.1.1); preamble and epilogue dropped."""
    delimiter, close = f"--{boundary}", f"--{boundary}--"
    parts: list[list[str]] = []
    current: list[str] | None = None
    for line in lines:
        bare = line.rstrip(" \t")  # transport padding after a delimiter is allowed
        if bare == close:
            return parts if current is None else [*parts, current]
        if bare == delimiter:
            if current is not None:
                parts.append(current)
            current = []
        elif current is not None:
            current.append(line)
    if current is None:
        raise BadRequestError(f"{where}: no part starts with the delimiter line '{delimiter}'")
    raise BadRequestError(f"{where}: the closing delimiter line '{close}' is missing")


def _headers(lines: list[str], where: str) -> tuple[dict[str, str], list[str]]:
    """Header fields (lower-case names) up to the first empty line, and the lines after it."""
    headers: dict[str, str] = {}
    last = ""
    for index, line in enumerate(lines):
        if not line.strip():
            return headers, lines[index + 1 :]
        if line[0] in " \t" and last:  # an obsolete folded continuation line
            headers[last] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise BadRequestError(f"{where}: {line[:80]!r} is not a header field ('Name: value')")
        last = name.strip().lower()
        headers[last] = value.strip()
    return headers, []


def _body(lines: list[str], content_type: str, where: str) -> Any:
    """The decoded body of one request: JSON for the JSON media types, else the text (the executor
    answers 415 for it), None when empty."""
    text = "\n".join(lines).strip()
    if not text:
        return None
    if content_type.split(";")[0].strip().lower() not in _JSON_TYPES:
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise BadRequestError(f"{where}: the request body is not valid JSON: {error}") from None


def _request(lines: list[str], part_id: str, group: str | None, where: str) -> Part:
    """One `application/http` request: request line, headers, blank line, body."""
    while lines and not lines[0].strip():
        lines = lines[1:]
    if not lines:
        raise BadRequestError(f"{where}: the application/http part holds no request line")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        raise BadRequestError(
            f"{where}: {lines[0][:80]!r} is not a request line such as 'GET Things(1) HTTP/1.1'"
        )
    headers, rest = _headers(lines[1:], where)
    content_type = headers.get("content-type", "application/json")
    body = _body(rest, content_type, where)
    return Part(part_id, match["method"].upper(), match["target"], body, headers, group)


class _Reader:
    """Turns the MIME parts into Parts, numbering those without a Content-ID."""

    def __init__(self) -> None:
        self.batch = MultipartBatch()
        self.serial = 0

    def part_id(self, headers: dict[str, str], where: str) -> str:
        sent = headers.get("content-id", "").strip().removeprefix("<").removesuffix(">")
        if not sent:
            self.serial += 1
            return f"#{self.serial}"  # cannot collide with a reference a client writes as $<id>
        if sent in self.batch.content_ids.values():
            raise BadRequestError(
                f"{where}: Content-ID {sent!r} is given twice; it must be unique in the batch"
            )
        return sent

    def add(self, headers: dict[str, str], lines: list[str], group: str | None, where: str) -> None:
        part_id = self.part_id(headers, where)
        self.batch.parts.append(_request(lines, part_id, group, where))
        if not part_id.startswith("#"):
            self.batch.content_ids[part_id] = part_id

    def read(self, lines: list[str], boundary: str, group: str | None, where: str) -> None:
        for index, mime_lines in enumerate(_split(lines, boundary, where), start=1):
            here = f"{where} part {index}"
            headers, rest = _headers(mime_lines, here)
            kind = headers.get("content-type", "")
            media = kind.split(";")[0].strip().lower()
            if media == APPLICATION_HTTP:
                self.add(headers, rest, group, here)
            elif media == MULTIPART_MIXED and group is None:
                self.read(rest, boundary_of(kind, here), f"changeset-{index}", f"{here} (change set)")
            elif media == MULTIPART_MIXED:
                raise BadRequestError(f"{here}: a change set cannot contain another change set")
            else:
                raise BadRequestError(
                    f"{here}: Content-Type must be {APPLICATION_HTTP} or {MULTIPART_MIXED} (a change set), "
                    f"not {kind or 'missing'}"
                )


def parse_multipart(raw: bytes, content_type: str) -> MultipartBatch:
    """The requests of a multipart batch body (400 naming the problem when it is not one)."""
    boundary = boundary_of(content_type, "$batch")
    try:
        text = raw.decode()
    except UnicodeDecodeError as error:
        raise BadRequestError(f"$batch: the body is not UTF-8 (byte {error.start})") from None
    reader = _Reader()
    reader.read(_LINE_BREAK.split(text), boundary, None, "$batch")
    if not reader.batch.parts:
        raise BadRequestError("$batch: the multipart body holds no request")
    return reader.batch


# ---- the response ------------------------------------------------------------------------------


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _http_part(outcome: Outcome, content_id: str | None) -> list[str]:
    """One application/http response part (without its delimiter)."""
    entry = outcome.entry
    lines = [f"Content-Type: {APPLICATION_HTTP}", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"HTTP/1.1 {outcome.status} {_phrase(outcome.status)}".rstrip()]
    headers: dict[str, str] = dict(entry.get("headers", {}))
    body = entry.get("body")
    text = ""
    if body is not None:
        if isinstance(body, str) and "content-type" in headers:
            text = body
        else:
            headers.setdefault("content-type", "application/json")
            text = orjson.dumps(body).decode()
    lines += [
        f"{'-'.join(w.capitalize() for w in name.split('-'))}: {value}" for name, value in headers.items()
    ]
    lines += ["", text]
    return lines


def _changeset_part(outcomes: list[Outcome], content_ids: dict[str, str]) -> list[str]:
    """A change set's answer: a nested multipart, or the one failed response when it rolled back."""
    failed = [o for o in outcomes if o.status >= 400 and o.status != FAILED_DEPENDENCY]
    if failed:
        return _http_part(failed[0], content_ids.get(failed[0].part.id))
    boundary = f"changesetresponse_{uuid.uuid4()}"
    lines = [f"Content-Type: {MULTIPART_MIXED}; boundary={boundary}", ""]
    for outcome in outcomes:
        lines += [f"--{boundary}", *_http_part(outcome, content_ids.get(outcome.part.id))]
    lines.append(f"--{boundary}--")
    return lines


def render_multipart(outcomes: list[Outcome], content_ids: dict[str, str]) -> tuple[str, str]:
    """(body, Content-Type) of the multipart response: one part per request or change set."""
    boundary = f"batchresponse_{uuid.uuid4()}"
    lines: list[str] = []
    index = 0
    while index < len(outcomes):
        group = outcomes[index].part.group
        members = [outcomes[index]]
        while group is not None and index + len(members) < len(outcomes):
            following = outcomes[index + len(members)]
            if following.part.group != group:
                break
            members.append(following)
        lines.append(f"--{boundary}")
        if group is None:
            lines += _http_part(members[0], content_ids.get(members[0].part.id))
        else:
            lines += _changeset_part(members, content_ids)
        index += len(members)
    lines.append(f"--{boundary}--")
    return CRLF.join(lines) + CRLF, f"{MULTIPART_MIXED}; boundary={boundary}"


async def run_multipart(
    state: AppState,
    raw: bytes,
    content_type: str,
    base: str,
    authorize: Callable[[list[Part]], None] | None = None,
) -> tuple[str, str]:
    """Execute a multipart batch; (response body, its Content-Type)."""
    batch = parse_multipart(raw, content_type)
    outcomes = await run_parts(state, batch.parts, base, authorize)
    return render_multipart(outcomes, batch.content_ids)
