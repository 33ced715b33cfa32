# SPDX-License-Identifier: Apache-2.0
"""A migrated database of its own per test, with two Datastreams in two datasets, for the lifecycle tests."""

from __future__ import annotations

from datetime import datetime

import asyncpg

# Datastream 1 is in dataset "short", 2 in "long"; both on Thing 1 with Location 1 (FeatureOfInterest 1).
SETUP_SQL = """
INSERT INTO things (name, description) VALUES ('station', 'd');
INSERT INTO locations (name, description, encoding_type, location)
    VALUES ('roof', 'd', 'application/geo+json', '{"type": "Point", "coordinates": [10, 53.5]}');
INSERT INTO thing_locations VALUES (1, 1);
INSERT INTO sensors (name, description, encoding_type, metadata) VALUES ('s', 'd', 'text/html', '"m"');
INSERT INTO observed_properties (name, definition, description) VALUES ('t', 'd', 'd');
INSERT INTO datastreams (name, description, unit_of_measurement, observation_type, thing_id, sensor_id,
                         observed_property_id, properties)
VALUES ('short', 'd', '{}', 'm', 1, 1, 1, '{"serviceName": "short"}'),
       ('long', 'd', '{}', 'm', 1, 1, 1, '{"serviceName": "long"}');
INSERT INTO features_of_interest (name, description, encoding_type, feature, location_id)
    SELECT name, description, encoding_type, location, id FROM locations;
"""


async def setup_streams(conn: asyncpg.Connection) -> None:
    """Create the Thing, Location, two Datastreams and the FeatureOfInterest."""
    await conn.execute(SETUP_SQL)


async def partition_of(conn: asyncpg.Connection, observation_id: int) -> str:
    """The partition an Observation is stored in."""
    name: str = await conn.fetchval(
        "SELECT tableoid::regclass::text FROM observations WHERE id = $1", observation_id
    )
    return name


def utc(text: str) -> datetime:
    """A datetime from ISO 8601 text."""
    return datetime.fromisoformat(text)
