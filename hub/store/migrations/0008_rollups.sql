-- SPDX-License-Identifier: Apache-2.0
-- Hourly and daily rollups of each Datastream's Observations (docs/aggregates.md): what
-- $apply needs to answer daily or hourly mean/min/max over years without reading every row.
-- Buckets are UTC hours and UTC days of phenomenon_time_start (an interval counts by its start).
-- hub/store/rollups.py keeps them in step with the raw rows, set-based, in the statements that
-- write Observations; no triggers. `total` is the numeric sum of the results as posted (jsonb
-- keeps numbers as numeric), exact in any order: rollup-served and raw answers are equal.

-- First and last (time, id, value) travel together through array_agg (hub/query/apply_pieces.py).
CREATE TYPE twinhub_rollup_point AS (t timestamptz, id bigint, v double precision);

CREATE TABLE observation_rollups_hour (
    datastream_id bigint NOT NULL REFERENCES datastreams (id) ON DELETE CASCADE,
    bucket        timestamptz NOT NULL,
    n             bigint NOT NULL,
    n_numeric     bigint NOT NULL,
    total         numeric,
    min           double precision,
    max           double precision,
    first_time    timestamptz,
    first_id      bigint,
    first_value   double precision,
    last_time     timestamptz,
    last_id       bigint,
    last_value    double precision,
    PRIMARY KEY (datastream_id, bucket)
);
CREATE TABLE observation_rollups_day (LIKE observation_rollups_hour INCLUDING ALL);
ALTER TABLE observation_rollups_day
    ADD FOREIGN KEY (datastream_id) REFERENCES datastreams (id) ON DELETE CASCADE;

-- The rows already stored.
INSERT INTO observation_rollups_hour
SELECT datastream_id, date_bin('1 hour', phenomenon_time_start, '2000-01-01 00:00:00+00'),
       count(*), count(result_number), sum(CASE WHEN result_number IS NOT NULL THEN result::numeric END), min(result_number), max(result_number),
       (array_agg(phenomenon_time_start ORDER BY phenomenon_time_start, id) FILTER (WHERE result_number IS NOT NULL))[1],
       (array_agg(id ORDER BY phenomenon_time_start, id) FILTER (WHERE result_number IS NOT NULL))[1],
       (array_agg(result_number ORDER BY phenomenon_time_start, id) FILTER (WHERE result_number IS NOT NULL))[1],
       (array_agg(phenomenon_time_start ORDER BY phenomenon_time_start DESC, id DESC) FILTER (WHERE result_number IS NOT NULL))[1],
       (array_agg(id ORDER BY phenomenon_time_start DESC, id DESC) FILTER (WHERE result_number IS NOT NULL))[1],
       (array_agg(result_number ORDER BY phenomenon_time_start DESC, id DESC) FILTER (WHERE result_number IS NOT NULL))[1]
FROM observations WHERE datastream_id IS NOT NULL GROUP BY 1, 2;

INSERT INTO observation_rollups_day
SELECT datastream_id, date_bin('1 day', bucket, '2000-01-01 00:00:00+00'),
       sum(n), sum(n_numeric), sum(total), min(min), max(max),
       (array_agg(first_time ORDER BY first_time, first_id) FILTER (WHERE first_id IS NOT NULL))[1],
       (array_agg(first_id ORDER BY first_time, first_id) FILTER (WHERE first_id IS NOT NULL))[1],
       (array_agg(first_value ORDER BY first_time, first_id) FILTER (WHERE first_id IS NOT NULL))[1],
       (array_agg(last_time ORDER BY last_time DESC, last_id DESC) FILTER (WHERE last_id IS NOT NULL))[1],
       (array_agg(last_id ORDER BY last_time DESC, last_id DESC) FILTER (WHERE last_id IS NOT NULL))[1],
       (array_agg(last_value ORDER BY last_time DESC, last_id DESC) FILTER (WHERE last_id IS NOT NULL))[1]
FROM observation_rollups_hour GROUP BY 1, 2;
