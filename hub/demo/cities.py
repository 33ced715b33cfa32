# SPDX-License-Identifier: Apache-2.0
"""Three cities and a few real districts of each, with the WGS84 position of a central point.

Positions are rounded to four decimals (about 10 m); a simulated device stands at a small,
seeded offset from its district's point so that markers do not stack.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class District:
    """A district (Stadtteil, Ortsteil, Stadtbezirk) and a point in it."""

    name: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class City:
    """A city with the districts devices are placed in."""

    name: str
    districts: tuple[District, ...]


CITIES: tuple[City, ...] = (
    City(
        "Hamburg",
        (
            District("Altstadt", 53.5503, 9.9937),
            District("St. Pauli", 53.5566, 9.9640),
            District("Eimsbüttel", 53.5750, 9.9530),
            District("Altona-Altstadt", 53.5497, 9.9356),
            District("Barmbek-Süd", 53.5811, 10.0417),
            District("Wilhelmsburg", 53.4977, 10.0077),
        ),
    ),
    City(
        "Leipzig",
        (
            District("Zentrum", 51.3397, 12.3731),
            District("Connewitz", 51.3099, 12.3826),
            District("Plagwitz", 51.3270, 12.3350),
            District("Gohlis-Süd", 51.3637, 12.3700),
            District("Reudnitz-Thonberg", 51.3380, 12.4050),
            District("Lindenau", 51.3390, 12.3340),
        ),
    ),
    City(
        "München",
        (
            District("Altstadt-Lehel", 48.1374, 11.5755),
            District("Maxvorstadt", 48.1500, 11.5700),
            District("Schwabing-West", 48.1650, 11.5700),
            District("Sendling", 48.1180, 11.5410),
            District("Au-Haidhausen", 48.1290, 11.5980),
            District("Neuhausen-Nymphenburg", 48.1550, 11.5400),
        ),
    ),
)

# Public buildings that carry the energy meters: (German, English) kind names.
BUILDINGS: tuple[tuple[str, str], ...] = (
    ("Grundschule", "primary school"),
    ("Stadtteilbibliothek", "district library"),
    ("Schwimmhalle", "indoor pool"),
    ("Bezirksamt", "district office"),
    ("Kita", "day-care centre"),
    ("Gymnasium", "secondary school"),
)
