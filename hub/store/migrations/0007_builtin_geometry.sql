-- SPDX-License-Identifier: Apache-2.0
-- Point columns on PostgreSQL's built-in geometric types, for the viewers' spatial filters where
-- PostGIS is missing (the embedded server, small installations). Masterportal, QGIS and VC Map ask
-- for point Locations inside or intersecting a polygon and for distances between points; a `point`
-- derived from the GeoJSON on write answers those with `<@` and `<->`, planar in the stored
-- coordinates as PostGIS in SRID 4326 (STA-NOTES 11), and GiST-indexed like the geom columns.
-- A polygon literal is a float8[] ring (x1, y1, ..., xn, yn, closed): the GiST index finds the points
-- in its bounding box (`<@ box`, exact), and the functions below decide exactly; PostgreSQL's own
-- `polygon` operators compare with a tolerance (1e-6 on cross products: metres at city scale).
-- Only where migration 0002 created no geom columns: with PostGIS, the geom columns serve.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = current_schema() AND table_name = 'locations' AND column_name = 'geom') THEN
        RAISE NOTICE 'PostGIS geometry columns exist: built-in point columns not needed';
        RETURN;
    END IF;
    -- The point of a GeoJSON Point, bare or as a Feature's geometry (RFC 7946 §3.1.2, §3.2);
    -- NULL for every other geometry, which only PostGIS can test.
    EXECUTE $f$
        CREATE FUNCTION twinhub_point(doc jsonb) RETURNS point
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $body$
            SELECT CASE WHEN g->>'type' = 'Point'
                         AND jsonb_typeof(g->'coordinates'->0) = 'number'
                         AND jsonb_typeof(g->'coordinates'->1) = 'number'
                        THEN point((g->'coordinates'->>0)::float8, (g->'coordinates'->>1)::float8) END
            FROM (SELECT CASE WHEN doc->>'type' = 'Feature' THEN doc->'geometry' ELSE doc END) AS s (g)
        $body$
    $f$;
    EXECUTE $f$
        CREATE FUNCTION twinhub_ring_box(ring float8[]) RETURNS box
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $body$
            SELECT box(point(min(ring[2 * i - 1]), min(ring[2 * i])), point(max(ring[2 * i - 1]), max(ring[2 * i])))
            FROM generate_series(1, array_length(ring, 1) / 2) AS i
        $body$
    $f$;
    -- On one of the ring's edges: collinear with it (cross product exactly 0) and within its extent.
    EXECUTE $f$
        CREATE FUNCTION twinhub_on_ring(p point, ring float8[]) RETURNS boolean
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $body$
            SELECT EXISTS (
                SELECT 1
                FROM generate_series(1, array_length(ring, 1) / 2 - 1) AS i,
                     LATERAL (SELECT ring[2 * i - 1], ring[2 * i], ring[2 * i + 1], ring[2 * i + 2]) AS e (ax, ay, bx, by)
                WHERE (bx - ax) * (p[1] - ay) = (by - ay) * (p[0] - ax)
                  AND p[0] BETWEEN least(ax, bx) AND greatest(ax, bx)
                  AND p[1] BETWEEN least(ay, by) AND greatest(ay, by))
        $body$
    $f$;
    -- Inside by the crossing number (W. R. Franklin's PNPOLY); points on the ring go either way,
    -- so callers decide those with twinhub_on_ring.
    EXECUTE $f$
        CREATE FUNCTION twinhub_in_ring(p point, ring float8[]) RETURNS boolean
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $body$
            SELECT count(*) % 2 = 1
            FROM generate_series(1, array_length(ring, 1) / 2 - 1) AS i,
                 LATERAL (SELECT ring[2 * i - 1], ring[2 * i], ring[2 * i + 1], ring[2 * i + 2]) AS e (ax, ay, bx, by)
            -- CASE, not AND: a horizontal edge must never reach the division.
            WHERE CASE WHEN (ay > p[1]) <> (by > p[1]) THEN p[0] < (bx - ax) * (p[1] - ay) / (by - ay) + ax END
        $body$
    $f$;
    EXECUTE 'ALTER TABLE locations ADD COLUMN pt point GENERATED ALWAYS AS (twinhub_point(location)) STORED';
    EXECUTE 'ALTER TABLE features_of_interest ADD COLUMN pt point GENERATED ALWAYS AS (twinhub_point(feature)) STORED';
    EXECUTE 'CREATE INDEX locations_pt ON locations USING gist (pt)';
    EXECUTE 'CREATE INDEX features_of_interest_pt ON features_of_interest USING gist (pt)';
END
$$;
