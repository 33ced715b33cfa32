# SPDX-License-Identifier: Apache-2.0
"""Readings -> Datastream ids, creating Thing, Location, Sensor, ObservedProperty and Datastream
on a device's first reading.

Set-based per batch: one statement per entity type for everything new in the batch, each
`INSERT ... ON CONFLICT (key) DO NOTHING` followed by a select of the keys, so two hubs that see a
new device at once create it once (the unique keys of migration 0003). Known stream keys come from
an in-process cache, so a steady stream costs no provisioning query at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from adapters.vocabulary import QUANTITIES, UNITS, Quantity, observation_type
from schemas.reading import Reading

UCUM = "http://unitsofmeasure.org/ucum.html"


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class Provisioner:
    """Finds or creates the entities behind readings; caches stream key -> Datastream id."""

    def __init__(self, labels: Mapping[str, Any] | None = None) -> None:
        # Hamburg-style dataset labels (serviceName, layerName, ownerThing) added to new Things
        # and Datastreams as properties.
        self.labels = dict(labels or {})
        # stream key -> (Datastream id, the device's own FeatureOfInterest when it has no Location)
        self._streams: dict[str, tuple[int, int | None]] = {}

    async def datastreams(
        self, conn: asyncpg.Connection, readings: Sequence[Reading], now: datetime
    ) -> dict[str, tuple[int, int | None]]:
        """Stream key -> (Datastream id, FeatureOfInterest id or None: derive it from the Thing's
        Location) for every reading, creating what is missing (in a transaction of its own)."""
        missing = {r.stream_key: r for r in readings if r.stream_key not in self._streams}
        if missing:
            async with conn.transaction():
                found = await _select(conn, "datastreams", "stream_key", list(missing))
                new = [r for key, r in missing.items() if key not in found]
                if new:
                    found.update(await self._create(conn, new, now))
                features = await _device_features(conn, list(missing.values()))
            for key, reading in missing.items():  # committed: safe to remember
                self._streams[key] = (found[key], features.get(reading.device_key))
        return {r.stream_key: self._streams[r.stream_key] for r in readings}

    async def _create(
        self, conn: asyncpg.Connection, readings: list[Reading], now: datetime
    ) -> dict[str, int]:
        things = await self._things(conn, readings, now)
        sensors = await _ensure(conn, "sensors", "model_key", _sensor_rows(readings))
        properties = await _ensure(conn, "observed_properties", "quantity_key", _property_rows(readings))
        rows = {
            r.stream_key: {
                "name": _stream_name(r),
                "description": f"{QUANTITIES[_quantity_key(r)].description} ({r.adapter} device {r.device})",
                "unit_of_measurement": _json(_unit(r.unit, r.value)),
                "observation_type": observation_type(r.value, r.unit),
                "properties": _json(
                    {
                        "quantity": r.quantity,
                        "stream": r.stream or r.quantity,
                        **r.stream_properties,
                        **self.labels,
                    }
                ),
                "thing_id": things[r.device_key],
                "sensor_id": sensors[_model_key(r)],
                "observed_property_id": properties[_quantity_key(r)],
            }
            for r in readings
        }
        return await _ensure(conn, "datastreams", "stream_key", rows)

    async def _things(
        self, conn: asyncpg.Connection, readings: list[Reading], now: datetime
    ) -> dict[str, int]:
        devices = {r.device_key: r for r in readings}
        found = await _select(conn, "things", "device_key", list(devices))
        new = {key: r for key, r in devices.items() if key not in found}
        if not new:
            return found
        rows = {
            key: {
                "name": r.device_name or r.device,
                "description": f"{r.adapter} device {r.device}",
                "properties": _json(
                    {"adapter": r.adapter, "deviceId": r.device, **r.device_properties, **self.labels}
                ),
            }
            for key, r in new.items()
        }
        made = await _insert_new(conn, "things", "device_key", rows)
        await _locate(conn, {made[key]: r for key, r in new.items() if key in made and r.location}, now)
        found.update(await _select(conn, "things", "device_key", list(new)))
        return found


async def _device_features(conn: asyncpg.Connection, readings: list[Reading]) -> dict[str, int]:
    """Device key -> its own FeatureOfInterest, for the devices whose Thing has no Location."""
    devices = {r.device_key: r for r in readings}
    records = await conn.fetch(
        "SELECT t.device_key FROM things t WHERE t.device_key = ANY($1::text[]) "
        "AND NOT EXISTS (SELECT 1 FROM thing_locations l WHERE l.thing_id = t.id)",
        list(devices),
    )
    unlocated = {r["device_key"]: devices[r["device_key"]] for r in records}
    if not unlocated:
        return {}
    rows = {
        key: {
            "name": r.device_name or r.device,
            "description": f"The {r.adapter} device {r.device}, which reports no position",
            "encoding_type": "application/geo+json",
            "feature": _json({"type": "Feature", "geometry": None, "properties": {"device": key}}),
        }
        for key, r in unlocated.items()
    }
    return await _ensure(conn, "features_of_interest", "device_key", rows)


async def _locate(conn: asyncpg.Connection, things: Mapping[int, Reading], now: datetime) -> None:
    """A Location (and its HistoricalLocation, §8.2.3) for each new Thing whose reading had one."""
    for thing_id, reading in things.items():
        location_id = await conn.fetchval(
            "INSERT INTO locations (name, description, encoding_type, location) "
            "VALUES ($1, $2, 'application/geo+json', $3::text::jsonb) RETURNING id",
            f"Location of {reading.device_name or reading.device}",
            f"Reported by the {reading.adapter} device",
            _json(reading.location),
        )
        await conn.execute(
            "INSERT INTO thing_locations (thing_id, location_id) VALUES ($1, $2)", thing_id, location_id
        )
        hl = await conn.fetchval(
            "INSERT INTO historical_locations (time, thing_id) VALUES ($1, $2) RETURNING id", now, thing_id
        )
        await conn.execute(
            "INSERT INTO location_historical_locations (location_id, historical_location_id) VALUES ($1, $2)",
            location_id,
            hl,
        )


def _quantity_key(reading: Reading) -> str:
    return reading.quantity if reading.quantity in QUANTITIES else "value"


def _model_key(reading: Reading) -> str:
    return f"{reading.adapter}:{reading.sensor_model or reading.adapter}"


def _stream_name(reading: Reading) -> str:
    device = reading.device_name or reading.device
    if _quantity_key(reading) == "value" and reading.stream:
        return f"{device} {reading.stream}"  # an unknown key: named after the key itself
    quantity: Quantity = QUANTITIES[_quantity_key(reading)]
    suffix = f" ({reading.stream})" if reading.stream else ""
    return f"{device} {quantity.name}{suffix}"


# A number whose unit no table knows: the unit is stated as unknown, not left null (docs/adapters.md).
UNKNOWN_UNIT = {"name": "unknown", "symbol": None, "definition": None}


def _unit(code: str | None, value: Any = None) -> dict[str, Any]:
    if code is None:
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        return dict(UNKNOWN_UNIT) if numeric else {"name": None, "symbol": None, "definition": None}
    return {"name": UNITS.get(code, code), "symbol": code, "definition": UCUM}


def _sensor_rows(readings: Sequence[Reading]) -> dict[str, dict[str, Any]]:
    return {
        _model_key(r): {
            "name": r.sensor_model or f"{r.adapter} device",
            "description": f"{r.sensor_model or 'Device'} reporting through the {r.adapter} adapter",
            "encoding_type": "text/plain",
            "metadata": _json(f"{r.adapter} adapter; model {r.sensor_model or 'unknown'}"),
        }
        for r in readings
    }


def _property_rows(readings: Sequence[Reading]) -> dict[str, dict[str, Any]]:
    rows = {}
    for r in readings:
        quantity = QUANTITIES[_quantity_key(r)]
        rows[_quantity_key(r)] = {
            "name": quantity.name,
            "definition": quantity.definition,
            "description": quantity.description,
        }
    return rows


async def _select(conn: asyncpg.Connection, table: str, key: str, keys: list[str]) -> dict[str, int]:
    records = await conn.fetch(f"SELECT {key} AS k, id FROM {table} WHERE {key} = ANY($1::text[])", keys)
    return {r["k"]: r["id"] for r in records}


_JSONB_COLUMNS = frozenset({"properties", "unit_of_measurement", "metadata", "location", "feature"})


async def _insert_new(
    conn: asyncpg.Connection, table: str, key: str, rows: Mapping[str, Mapping[str, Any]]
) -> dict[str, int]:
    """Insert the rows whose key is new; returns key -> id of those this statement created."""
    columns = list(next(iter(rows.values())))
    arrays = [[row[c] for row in rows.values()] for c in columns]
    types = ["bigint" if c.endswith("_id") else "text" for c in columns]
    unnest = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, start=2))
    values = ", ".join(f"u.{c}::jsonb" if c in _JSONB_COLUMNS else f"u.{c}" for c in columns)
    sql = (
        f"INSERT INTO {table} ({key}, {', '.join(columns)}) "
        f"SELECT u.k, {values} FROM unnest($1::text[], {unnest}) AS u(k, {', '.join(columns)}) "
        f"ON CONFLICT ({key}) DO NOTHING RETURNING {key} AS k, id"
    )
    return {r["k"]: r["id"] for r in await conn.fetch(sql, list(rows), *arrays)}


async def _ensure(
    conn: asyncpg.Connection, table: str, key: str, rows: Mapping[str, Mapping[str, Any]]
) -> dict[str, int]:
    """Key -> id for every row, inserting those that do not exist yet (idempotent across hubs)."""
    found = await _select(conn, table, key, list(rows))
    new = {k: row for k, row in rows.items() if k not in found}
    if new:
        await _insert_new(conn, table, key, new)
        found.update(await _select(conn, table, key, list(new)))
    return found
