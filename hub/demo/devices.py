# SPDX-License-Identifier: Apache-2.0
"""The simulated devices: which kind stands where, with ids in each ecosystem's own style.

`make_devices(count, seed)` is deterministic: the same seed gives the same devices (and so the
same Things in the hub) on every run. Device i goes to city i mod 3 and kind (i div 3) mod 5, so
nine devices already cover every domain in every city and fifteen every kind.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hub.demo.cities import BUILDINGS, CITIES

# kind -> (domain, German label, English label)
KINDS: dict[str, tuple[str, str, str]] = {
    "shelly_pro3em": ("energy", "Stromzähler (Shelly Pro 3EM)", "electricity meter (Shelly Pro 3EM)"),
    "ttn_lht65n": ("climate", "Klimasensor (LoRaWAN, Dragino LHT65N)", "climate sensor (LoRaWAN, LHT65N)"),
    "telraam": ("traffic", "Verkehrszählung (Telraam)", "traffic count (Telraam)"),
    "tasmota": ("energy", "Netzzähler (Tasmota SML)", "grid meter (Tasmota SML reader)"),
    "airrohr": ("climate", "Feinstaubsensor (sensor.community)", "particulate sensor (sensor.community)"),
}
KIND_ORDER = tuple(KINDS)
DOMAINS = ("energy", "climate", "traffic")

# Spread of devices around their district's point, in degrees (about ±600 m).
SPREAD = 0.006


@dataclass(frozen=True)
class Device:
    """One simulated device and where it stands."""

    kind: str
    device_id: str  # what the adapter names the Thing by (its deviceId property)
    topic_id: str  # the id in the device's MQTT topic
    city: str
    district: str
    latitude: float
    longitude: float
    site_de: str
    site_en: str
    scale: float  # base load in W, PM2.5 background, or traffic level
    offset: float  # temperature offset of the site (urban heat island, shade)

    @property
    def domain(self) -> str:
        return KINDS[self.kind][0]

    @property
    def name(self) -> str:
        """A plain, bilingual-friendly Thing name: what it is and where."""
        return f"{self.site_de} ({self.city})"

    @property
    def has_time(self) -> bool:
        """Whether the device's own format carries a time (sensor.community pushes do not)."""
        return self.kind != "airrohr"


def _hex(rng: random.Random, digits: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(digits))


def _ids(kind: str, rng: random.Random, index: int) -> tuple[str, str]:
    """(device id as the adapter reports it, id in the topic)."""
    if kind == "shelly_pro3em":
        name = f"shellypro3em-{_hex(rng, 12)}"
        return name, name
    if kind == "tasmota":  # an IR read head on the grid meter: the Thing is the meter (Meter_Id)
        return f"0a01454d48{_hex(rng, 10)}", f"tasmota_{_hex(rng, 6).upper()}"
    if kind == "ttn_lht65n":
        return f"A84041{_hex(rng, 10).upper()}", f"lht65n-demo-{index:03d}"
    if kind == "airrohr":
        chip = str(rng.randrange(1_000_000, 16_000_000))
        return f"esp8266-{chip}", f"esp8266-{chip}"
    segment = str(9_000_000_000 + rng.randrange(1_000_000, 9_999_999))
    return segment, segment


def _site(kind: str, rng: random.Random, district: str) -> tuple[str, str]:
    if KINDS[kind][0] == "energy":
        building_de, building_en = rng.choice(BUILDINGS)
        return f"{building_de} {district}", f"{building_en} {district}"
    _, label_de, label_en = KINDS[kind]
    return f"{label_de.split(' (')[0]} {district}", f"{label_en.split(' (')[0]} {district}"


def _scale(kind: str, rng: random.Random) -> float:
    domain = KINDS[kind][0]
    if domain == "energy":
        return round(rng.uniform(4000, 30000), 0)  # W: a day-care centre to an indoor pool
    if domain == "traffic":
        return round(rng.uniform(0.3, 1.6), 2)
    return round(rng.uniform(5.0, 14.0), 1)  # PM2.5 background in µg/m³


def make_devices(count: int, seed: int) -> list[Device]:
    """`count` devices, deterministic for a seed."""
    devices = []
    for index in range(count):
        rng = random.Random(f"twinhub-demo:{seed}:{index}")
        city = CITIES[index % len(CITIES)]
        kind = KIND_ORDER[(index // len(CITIES)) % len(KIND_ORDER)]
        district = rng.choice(city.districts)
        device_id, topic_id = _ids(kind, rng, index)
        site_de, site_en = _site(kind, rng, district.name)
        devices.append(
            Device(
                kind=kind,
                device_id=device_id,
                topic_id=topic_id,
                city=city.name,
                district=district.name,
                latitude=round(district.latitude + rng.uniform(-SPREAD, SPREAD), 5),
                longitude=round(district.longitude + rng.uniform(-SPREAD, SPREAD) * 1.5, 5),
                site_de=site_de,
                site_en=site_en,
                scale=_scale(kind, rng),
                offset=round(rng.uniform(-1.0, 1.5), 2),
            )
        )
    return devices
