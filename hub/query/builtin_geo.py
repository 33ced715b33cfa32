# SPDX-License-Identifier: Apache-2.0
"""Spatial functions on PostgreSQL's built-in geometric types, where PostGIS is missing.

The shapes map viewers send (STA-NOTES "What viewers send"): point Locations or features inside
or intersecting a polygon (Masterportal's st_intersects, QGIS's geo.intersects, VC Map's
st_within), and the distance between points. Stored points are the `pt` columns of migration
0007; a point literal is a `point`, a polygon literal its ring as a float8[] bind, found through its
bounding `box` (GiST-indexed) and decided exactly by the SQL functions of migration 0007 (an
axis-aligned rectangle, the usual viewport, by the box alone). Planar in the stored coordinates,
as PostGIS on SRID 4326 and FROST (STA-NOTES 11). Every other combination is a 501 that names PostGIS.

The DE-9IM meanings (OGC 06-103r4 §6.1.15): a point on a polygon's boundary intersects and touches
it, but is not within it (nor does the polygon contain it), so within/contains exclude the ring.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from hub.query.sqlexpr import FLOAT, Ctx, Ty, Val, boolean, number
from hub.query.wkt import Coordinate, simple_shape

POINT, POLYGON = "point", "polygon"

Rule = Callable[[Val, Val], str]


def literal(text: str, ctx: Ctx) -> Val:
    """A geography literal as a built-in point or polygon; a 501 for any other geometry."""
    shape = simple_shape(text)
    if shape is None:
        ctx.needs_postgis(
            f"geography'{text[:60]}': without PostGIS only POINT and POLYGON (one ring, two "
            "dimensions) literals work; other geometries need PostGIS, which this database does not have"
        )
    kind, coordinates = shape
    if kind == "POINT":
        (x, y), *_ = coordinates
        return Val(Ty.GEOMETRY, f"point({ctx.bind(x, FLOAT)}, {ctx.bind(y, FLOAT)})", shape=POINT)
    # One bind, the ring as x1, y1, ..., xn, yn (an unreferenced bind would fail the statement):
    # its bounding box, the GiST index's exact `<@ box` test, and the exact tests of migration 0007.
    ring = ctx.bind([value for point in coordinates for value in point], "float8[]")
    return Val(
        Ty.GEOMETRY,
        ring,
        shape=POLYGON,
        box=f"twinhub_ring_box({ring})",
        rectangle=_rectangle(coordinates),
    )


def _rectangle(ring: list[Coordinate]) -> bool:
    """Whether a closed ring is an axis-aligned rectangle (then it equals its bounding box)."""
    if len(ring) != 5:
        return False
    xs, ys = {x for x, _ in ring}, {y for _, y in ring}
    axis_aligned = all(a[0] == b[0] or a[1] == b[1] for a, b in itertools.pairwise(ring))
    return axis_aligned and len(xs) == 2 and len(ys) == 2


def _in_box(point: Val, polygon: Val) -> str:
    """In the polygon's bounding box: exact, and what the GiST index on the pt columns answers."""
    return f"({point.sql} <@ {polygon.box})"


def _inside(point: Val, polygon: Val) -> str:
    """In the polygon or on its ring (for a rectangle the box says it all)."""
    if polygon.rectangle:
        return _in_box(point, polygon)
    exact = f"(twinhub_on_ring({point.sql}, {polygon.sql}) OR twinhub_in_ring({point.sql}, {polygon.sql}))"
    return f"({_in_box(point, polygon)} AND {exact})"


def _on_ring(point: Val, polygon: Val) -> str:
    return f"({_in_box(point, polygon)} AND twinhub_on_ring({point.sql}, {polygon.sql}))"


def _interior(point: Val, polygon: Val) -> str:
    return f"({_inside(point, polygon)} AND NOT twinhub_on_ring({point.sql}, {polygon.sql}))"


def _same(a: Val, b: Val) -> str:
    """Exactly the same point (PostgreSQL's `~=` would compare with a tolerance of 1e-6)."""
    return f"(({a.sql})[0] = ({b.sql})[0] AND ({a.sql})[1] = ({b.sql})[1])"


def _swap(rule: Rule) -> Rule:
    return lambda a, b: rule(b, a)


def _not(rule: Rule) -> Rule:
    return lambda a, b: f"(NOT {rule(a, b)})"


_INTERSECTS: dict[tuple[str, str], Rule] = {
    (POINT, POLYGON): _inside,
    (POLYGON, POINT): _swap(_inside),
    (POINT, POINT): _same,
}

# (function, shape of argument 1, shape of argument 2) -> SQL of the relation.
RELATIONS: dict[str, dict[tuple[str, str], Rule]] = {
    "st_intersects": _INTERSECTS,
    "geo.intersects": _INTERSECTS,
    "st_disjoint": {shapes: _not(rule) for shapes, rule in _INTERSECTS.items()},
    "st_within": {(POINT, POLYGON): _interior, (POINT, POINT): _same},
    "st_contains": {(POLYGON, POINT): _swap(_interior), (POINT, POINT): _same},
    "st_equals": {(POINT, POINT): _same},
    "st_touches": {(POINT, POLYGON): _on_ring, (POLYGON, POINT): _swap(_on_ring)},
}


def call(name: str, args: list[Val], ctx: Ctx) -> Val:
    """`name(args)` on built-in types, or a 501 naming PostGIS for what they cannot answer."""
    shapes = tuple(arg.shape for arg in args)
    if name == "geo.distance" and shapes == (POINT, POINT):
        return number(f"({args[0].sql} <-> {args[1].sql})", FLOAT)
    rule = RELATIONS.get(name, {}).get((shapes[0], shapes[1])) if len(shapes) == 2 else None
    if rule is None:
        given = ", ".join(shape or "geometry" for shape in shapes)
        ctx.needs_postgis(
            f"{name}({given}) needs PostGIS, which this database does not have; without it "
            "points within or intersecting a polygon and the distance between points work"
        )
    return boolean(rule(args[0], args[1]))
