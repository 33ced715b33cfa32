# SPDX-License-Identifier: Apache-2.0
"""Things of three cities as the viewer expects them (properties city and domain), as STA bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

Json = dict[str, Any]

OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"

# (city, name, domain, longitude, latitude, quantity, unit symbol, unit name, typical value)
STATIONS = (
    ("Hamburg", "Rathausmarkt", "climate", 9.9925, 53.5503, "Air temperature", "Cel", "degree Celsius", 12.0),
    ("Hamburg", "Bezirksamt Altona", "energy", 9.9354, 53.5502, "Active power", "W", "watt", 850.0),
    (
        "Leipzig",
        "Augustusplatz",
        "climate",
        12.3813,
        51.3397,
        "Air temperature",
        "Cel",
        "degree Celsius",
        9.0,
    ),
    (
        "Leipzig",
        "Karl-Liebknecht-Str.",
        "traffic",
        12.3747,
        51.3260,
        "Bicycles",
        "{bicycles}",
        "bicycles",
        40.0,
    ),
    ("München", "Marienplatz", "climate", 11.5755, 48.1374, "Air temperature", "Cel", "degree Celsius", 7.0),
    ("München", "Rathaus", "energy", 11.5760, 48.1379, "Active power", "W", "watt", 1200.0),
)


def thing_body(
    city: str, name: str, domain: str, lon: float, lat: float, quantity: str, symbol: str, unit: str
) -> Json:
    """A Thing with its Location and one Datastream, in one deep insert."""
    return {
        "name": f"{name} ({city})",
        "description": f"{domain} station",
        "properties": {"city": city, "domain": domain},
        "Locations": [
            {
                "name": name,
                "description": f"{name}, {city}",
                "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [lon, lat]},
            }
        ],
        "Datastreams": [
            {
                "name": f"{quantity} {name}",
                "description": f"{quantity} at {name}",
                "unitOfMeasurement": {"name": unit, "symbol": symbol, "definition": "https://ucum.org/ucum"},
                "observationType": OM_MEASUREMENT,
                "Sensor": {
                    "name": f"{quantity} sensor",
                    "description": "test sensor",
                    "encodingType": "text/html",
                    "metadata": "https://example.org/sensor",
                },
                "ObservedProperty": {
                    "name": quantity,
                    "description": quantity,
                    "definition": f"https://example.org/quantity/{quantity.replace(' ', '')}",
                },
            }
        ],
    }


def history(value: float, hours: int = 6, step_seconds: int = 900, now: datetime | None = None) -> list[Json]:
    """Observations every `step_seconds` over the last `hours`, a gentle wave around `value`."""
    end = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    count = hours * 3600 // step_seconds
    rows = []
    for i in range(count):
        at = end - timedelta(seconds=step_seconds * (count - i))
        rows.append(
            {
                "phenomenonTime": at.isoformat().replace("+00:00", "Z"),
                "result": round(value * (1 + 0.1 * ((i % 8) - 4) / 4), 2),
            }
        )
    return rows
