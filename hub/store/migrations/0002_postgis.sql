-- SPDX-License-Identifier: Apache-2.0
-- Optional geometry columns for the geospatial query functions. They are
-- added only where the PostGIS extension is available (and creatable by this
-- role); without it every other feature works and geo functions answer 400.
-- The jsonb columns stay the source of truth: geom is derived from them, so
-- GeoJSON comes back exactly as stored.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'postgis') THEN
        RAISE NOTICE 'PostGIS is not available: geometry columns not created';
        RETURN;
    END IF;
    BEGIN
        CREATE EXTENSION IF NOT EXISTS postgis;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'PostGIS is available but this role may not create it: geometry columns not created';
        RETURN;
    END;
    -- A GeoJSON Feature carries its geometry one level down; it may be null (RFC 7946 §3.2).
    EXECUTE $f$
        CREATE FUNCTION twinhub_geometry(doc jsonb) RETURNS geometry
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN ST_SetSRID(ST_GeomFromGeoJSON(NULLIF(
            CASE WHEN doc->>'type' = 'Feature' THEN doc->'geometry' ELSE doc END, 'null'::jsonb)), 4326)
    $f$;
    EXECUTE 'ALTER TABLE locations ADD COLUMN geom geometry GENERATED ALWAYS AS (twinhub_geometry(location)) STORED';
    EXECUTE 'ALTER TABLE features_of_interest ADD COLUMN geom geometry GENERATED ALWAYS AS (twinhub_geometry(feature)) STORED';
    EXECUTE 'CREATE INDEX locations_geom ON locations USING gist (geom)';
    EXECUTE 'CREATE INDEX features_of_interest_geom ON features_of_interest USING gist (geom)';
END
$$;
