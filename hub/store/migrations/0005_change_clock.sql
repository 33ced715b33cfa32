-- SPDX-License-Identifier: Apache-2.0
-- The change clock behind HTTP validators (docs/http-caching.md): one row per clock, bumped
-- by statement-level triggers in the same transaction as any write to the metadata tables,
-- whoever writes (HTTP, MQTT ingest provisioning, another replica, psql).
--
-- modified_at moves in whole seconds and strictly forward: a bump sets it to the current
-- second or, when that is not later, to the previous value plus one second. HTTP dates have
-- one-second resolution, so this makes "Last-Modified equal" mean "unchanged". The row lock
-- taken by the upsert orders concurrent writers, and xact keeps it to one bump per transaction.
-- Observations, Datastreams and MultiDatastreams are not clocked: their representations
-- change with every ingested Observation, and a hot row there would serialise ingest.
CREATE TABLE twinhub_clock (
    name text PRIMARY KEY,
    modified_at timestamptz NOT NULL,
    xact xid8
);

CREATE FUNCTION twinhub_clock_bump(clock text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO twinhub_clock AS c (name, modified_at, xact)
    VALUES (clock, date_trunc('second', clock_timestamp()), pg_current_xact_id())
    ON CONFLICT (name) DO UPDATE
        SET modified_at = greatest(date_trunc('second', clock_timestamp()), c.modified_at + interval '1 second'),
            xact = excluded.xact
        WHERE c.xact IS DISTINCT FROM excluded.xact
$$;

-- INSERT/UPDATE/DELETE: bump only when the statement touched rows (ON CONFLICT DO NOTHING
-- and empty UPDATEs in the ingest path must not move the clock).
CREATE FUNCTION twinhub_clock_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed_rows) THEN
        PERFORM twinhub_clock_bump(TG_ARGV[0]);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION twinhub_clock_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM twinhub_clock_bump(TG_ARGV[0]);
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['things', 'locations', 'thing_locations', 'historical_locations',
                             'location_historical_locations', 'sensors', 'observed_properties',
                             'features_of_interest']
    LOOP
        EXECUTE format('CREATE TRIGGER twinhub_clock_insert AFTER INSERT ON %I REFERENCING NEW TABLE AS changed_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION twinhub_clock_rows(''metadata'')', t);
        EXECUTE format('CREATE TRIGGER twinhub_clock_update AFTER UPDATE ON %I REFERENCING NEW TABLE AS changed_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION twinhub_clock_rows(''metadata'')', t);
        EXECUTE format('CREATE TRIGGER twinhub_clock_delete AFTER DELETE ON %I REFERENCING OLD TABLE AS changed_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION twinhub_clock_rows(''metadata'')', t);
        EXECUTE format('CREATE TRIGGER twinhub_clock_truncate AFTER TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION twinhub_clock_truncate(''metadata'')', t);
    END LOOP;
END
$$;
