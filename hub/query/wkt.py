# SPDX-License-Identifier: Apache-2.0
"""A syntax check for well-known text (OGC 06-103r4 §7) before it reaches ST_GeomFromText.

PostGIS rejects malformed WKT with a statement error; checking first turns a
client's typo into a 400 that says what is wrong. It follows what PostGIS
parses: the seven simple-feature types with optional Z/M/ZM, EMPTY, finite
coordinates of one dimension throughout, lines of two or more points and
closed polygon rings of four or more.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

_TOKEN = re.compile(r"\s*(?:([A-Za-z]+)|(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|([(),]))")
_DIMENSIONS = {"Z": 3, "M": 3, "ZM": 4}
_MAX_DEPTH = 8  # nested GEOMETRYCOLLECTIONs


class _Bad(Exception):
    pass


Coordinate = tuple[float, ...]


class _Reader:
    def __init__(self, text: str) -> None:
        self.tokens = self._tokenize(text)
        self.at = 0
        self.dims: int | None = None

    @staticmethod
    def _tokenize(text: str) -> list[str]:
        tokens, pos = [], 0
        while pos < len(text.rstrip()):
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                raise _Bad(f"unexpected {text[pos:].strip()[:20]!r}")
            tokens.append(next(g for g in match.groups() if g is not None))
            pos = match.end()
        return tokens

    def peek(self) -> str:
        return self.tokens[self.at] if self.at < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if not token or (expected is not None and token.upper() != expected):
            raise _Bad(f"expected {expected or 'more'}, found {repr(token) if token else 'the end'}")
        self.at += 1
        return token

    def coordinate(self) -> Coordinate:
        numbers: list[float] = []
        while self.peek() and self.peek() not in "(),":
            token = self.take()
            value = float(token) if token[0] in "+-.0123456789" else math.nan
            if not math.isfinite(value):
                raise _Bad(f"{token!r} is not a finite number")
            numbers.append(value)
        if not 2 <= len(numbers) <= 4:
            raise _Bad(f"a position has 2 to 4 numbers, not {len(numbers)}")
        if self.dims is None:
            self.dims = len(numbers)
        elif self.dims != len(numbers):
            raise _Bad("positions mix dimensions")
        return tuple(numbers)

    def points(self, minimum: int, closed: bool = False) -> list[Coordinate]:
        self.take("(")
        points = [self.coordinate()]
        while self.peek() == ",":
            self.take(",")
            points.append(self.coordinate())
        self.take(")")
        if len(points) < minimum:
            raise _Bad(f"needs at least {minimum} positions")
        if closed and points[0] != points[-1]:
            raise _Bad("a polygon ring must end where it starts")
        return points


def _empty_or(reader: _Reader) -> bool:
    if reader.peek().upper() == "EMPTY":
        reader.take()
        return True
    return False


def _listed(reader: _Reader, read_one: Callable[[], object]) -> None:
    reader.take("(")
    read_one()
    while reader.peek() == ",":
        reader.take(",")
        read_one()
    reader.take(")")


def _polygon(reader: _Reader) -> None:
    if not _empty_or(reader):
        _listed(reader, lambda: reader.points(4, closed=True))


def _line(reader: _Reader) -> None:
    if not _empty_or(reader):
        reader.points(2)


def _multipoint_item(reader: _Reader) -> None:
    if _empty_or(reader):
        return
    if reader.peek() == "(":
        reader.points(1)
    else:
        reader.coordinate()


def _collection(reader: _Reader, depth: int) -> None:
    if depth >= _MAX_DEPTH:
        raise _Bad("geometry collections nest too deep")
    _listed(reader, lambda: _geometry(reader, depth + 1))


_BODIES: dict[str, Callable[[_Reader, int], object]] = {
    "POINT": lambda reader, depth: reader.points(1),
    "LINESTRING": lambda reader, depth: reader.points(2),
    "POLYGON": lambda reader, depth: _polygon(reader),
    "MULTIPOINT": lambda reader, depth: _listed(reader, lambda: _multipoint_item(reader)),
    "MULTILINESTRING": lambda reader, depth: _listed(reader, lambda: _line(reader)),
    "MULTIPOLYGON": lambda reader, depth: _listed(reader, lambda: _polygon(reader)),
    "GEOMETRYCOLLECTION": _collection,
}


def _geometry(reader: _Reader, depth: int) -> None:
    kind = reader.take().upper()
    body = _BODIES.get(kind)
    if body is None:
        raise _Bad(f"unsupported geometry type {kind!r}")
    tag = reader.peek().upper()
    if tag in ("Z", "M", "ZM"):
        reader.take()
        if reader.dims not in (None, _DIMENSIONS[tag]):
            raise _Bad("positions mix dimensions")
        reader.dims = _DIMENSIONS[tag]
    if not _empty_or(reader):
        body(reader, depth)


def wkt_problem(text: str) -> str | None:
    """What is wrong with `text` as WKT, or None when PostGIS will read it."""
    try:
        reader = _Reader(text)
        _geometry(reader, 0)
        if reader.peek():
            raise _Bad(f"unexpected {reader.peek()!r} after the geometry")
    except _Bad as exc:
        return str(exc)
    return None


def simple_shape(text: str) -> tuple[str, list[Coordinate]] | None:
    """("POINT", [xy]) or ("POLYGON", ring) for a two-dimensional point or polygon without holes,
    the shapes PostgreSQL's built-in types hold; None for anything else (or bad WKT)."""
    try:
        reader = _Reader(text)
        kind = reader.take().upper()
        if kind not in ("POINT", "POLYGON") or reader.peek() != "(":
            return None
        if kind == "POINT":
            coordinates = reader.points(1)
        else:
            reader.take("(")
            coordinates = reader.points(4, closed=True)
            reader.take(")")  # a second ring (a hole) stops here
        if reader.peek() or reader.dims != 2 or (kind == "POINT" and len(coordinates) != 1):
            return None
    except _Bad:
        return None
    return kind, coordinates
