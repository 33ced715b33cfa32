-- SPDX-License-Identifier: Apache-2.0
-- Keys that make ingest provisioning idempotent: the first reading of a device creates
-- its Thing, Sensor, ObservedProperty and Datastream; a concurrent hub (or replica)
-- seeing the same device at once hits the unique key and reuses what the other made.
-- Entities created over HTTP have NULL keys and are never touched by provisioning.
ALTER TABLE things ADD COLUMN device_key text UNIQUE;
ALTER TABLE sensors ADD COLUMN model_key text UNIQUE;
ALTER TABLE observed_properties ADD COLUMN quantity_key text UNIQUE;
ALTER TABLE datastreams ADD COLUMN stream_key text UNIQUE;
-- A device that reports no position gets one FeatureOfInterest of its own (a GeoJSON Feature
-- with a null geometry), since every Observation needs one (§8.2.8).
ALTER TABLE features_of_interest ADD COLUMN device_key text UNIQUE;
