-- SPDX-License-Identifier: Apache-2.0
-- Point columns on PostgreSQL's built-in geometric types, for the viewers' spatial filters where
-- PostGIS is missing (the embedded server, small installations). Masterportal, QGIS and VC Map ask
-- for point Locations inside or intersecting a polygon and for distances between points; a `point`
-- derived from the GeoJSON on write answers those with `<@` and `<->`, planar in the stored
-- coordinates as PostGIS in SRID 4326 (STA-NOTES 11), and GiST-indexed like the geom columns.
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
    EXECUTE 'ALTER TABLE locations ADD COLUMN pt point GENERATED ALWAYS AS (twinhub_point(location)) STORED';
    EXECUTE 'ALTER TABLE features_of_interest ADD COLUMN pt point GENERATED ALWAYS AS (twinhub_point(feature)) STORED';
    EXECUTE 'CREATE INDEX locations_pt ON locations USING gist (pt)';
    EXECUTE 'CREATE INDEX features_of_interest_pt ON features_of_interest USING gist (pt)';
END
$$;
