# SPDX-License-Identifier: Apache-2.0
"""Plausible daily cycles for the simulated devices, as functions of time (no state, no clock).

Values depend on the local hour (Europe/Berlin unless told), so that a chart over a day shows
warm afternoons, busy mornings and quiet nights. Energy counters are the closed-form integral of
the smooth power profile, so they rise monotonically across restarts of the simulator.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")
# Buildings run on standard time all year: a fixed offset keeps the energy counter monotonic
# across the daylight-saving switch (a local-time integral would jump back an hour).
CET = timezone(timedelta(hours=1))
DAY_SECONDS = 86400.0
HOUR_SECONDS = 3600.0


def local_hour(moment: datetime, zone: tzinfo = BERLIN) -> float:
    """The hour of day (0-24, fractional) at `moment` in `zone`."""
    local = moment.astimezone(zone)
    return local.hour + local.minute / 60 + (local.second + local.microsecond / 1e6) / 3600


def _wave(hour: float, peak: float) -> float:
    """A cosine over the day, 1 at `peak` o'clock and -1 twelve hours later."""
    return math.cos(2 * math.pi * (hour - peak) / 24)


def _bump(hour: float, centre: float, width: float) -> float:
    """A Gaussian bump around `centre` o'clock (rush hours)."""
    distance = min(abs(hour - centre), 24 - abs(hour - centre))
    return math.exp(-((distance / width) ** 2))


def air_temperature(moment: datetime, offset: float, noise: random.Random) -> float:
    """Air temperature in °C: coolest before dawn, warmest mid-afternoon."""
    hour = local_hour(moment)
    return round(9.0 + offset + 5.5 * _wave(hour, 15.0) + noise.gauss(0, 0.25), 2)


def relative_humidity(moment: datetime, offset: float, noise: random.Random) -> float:
    """Relative humidity in %: the mirror of temperature, high at night."""
    hour = local_hour(moment)
    value = 72.0 - 2 * offset - 14.0 * _wave(hour, 15.0) + noise.gauss(0, 1.0)
    return round(min(max(value, 15.0), 100.0), 1)


def air_pressure(moment: datetime, noise: random.Random) -> float:
    """Station air pressure in Pa, slowly drifting."""
    days = moment.timestamp() / DAY_SECONDS
    return round(101325.0 + 600.0 * math.sin(2 * math.pi * days / 3.7) + noise.gauss(0, 8.0), 2)


def particulate(moment: datetime, base: float, noise: random.Random) -> tuple[float, float]:
    """(PM10, PM2.5) in µg/m³: traffic peaks in the morning and evening, higher at night inversions."""
    hour = local_hour(moment)
    traffic = 0.8 * _bump(hour, 8.0, 1.5) + 0.6 * _bump(hour, 17.5, 2.0)
    night = 0.3 * max(0.0, -_wave(hour, 15.0))
    pm25 = max(0.5, base * (1 + traffic + night) * (1 + noise.gauss(0, 0.12)))
    pm10 = pm25 * (1.6 + noise.gauss(0, 0.08))
    return round(pm10, 2), round(pm25, 2)


def battery_voltage(moment: datetime, noise: random.Random) -> float:
    """A LoRaWAN node's battery, slowly discharging around 3.0 V."""
    return round(3.08 - (moment.timestamp() % (180 * DAY_SECONDS)) / (180 * DAY_SECONDS) * 0.1, 3)


def _occupancy(hour: float) -> float:
    """Share of a public building in use: 0 at night, about 1 from 8 to 16 o'clock."""
    return 0.5 * (1 + _wave(hour, 12.0)) ** 2 / 2


def building_power(moment: datetime, base_w: float, noise: random.Random) -> float:
    """Active power of a public building in W: standby base load plus daytime use."""
    use = _occupancy(local_hour(moment, CET))
    return round(base_w * (0.25 + 0.9 * use) * (1 + noise.gauss(0, 0.04)), 1)


def energy_wh(moment: datetime, base_w: float) -> float:
    """The building's energy counter in W·h: the integral of its mean power since the epoch.

    Mean power is base_w * (0.25 + 0.9 * occupancy) with occupancy = (1 + cos x)^2 / 4 for
    x = 2π(h - 12)/24; its integral over a day is constant, plus a bounded periodic term.
    """
    seconds = moment.timestamp()
    # occupancy(x) = (1 + 2cos x + cos² x)/4 = 3/8 + cos(x)/2 + cos(2x)/8
    x = 2 * math.pi * (local_hour(moment, CET) - 12.0) / 24
    omega = 2 * math.pi / DAY_SECONDS
    periodic = (math.sin(x) / 2 + math.sin(2 * x) / 16) / omega  # ∫ of the cosine terms, in s
    mean_use = 3 / 8
    watt_seconds = base_w * ((0.25 + 0.9 * mean_use) * seconds + 0.9 * periodic)
    return round(watt_seconds / HOUR_SECONDS, 3)


def hourly_traffic(start: datetime, scale: float, noise: random.Random) -> dict[str, float]:
    """Road users counted in the hour from `start` (uptime-corrected counts per hour)."""
    hour = local_hour(start) + 0.5
    weekday = start.astimezone(BERLIN).weekday() < 5
    rush = (1.0 if weekday else 0.35) * (_bump(hour, 8.0, 1.3) + 0.9 * _bump(hour, 17.0, 1.8))
    daytime = float(max(0.0, 0.5 * (1 + _wave(hour, 14.0))) ** 1.5)
    level = 0.03 + 0.45 * daytime + rush

    def count(peak: float) -> float:
        return round(max(0.0, peak * scale * level * (1 + noise.gauss(0, 0.08))), 2)

    return {"car": count(520), "heavy": count(24), "bike": count(180), "pedestrian": count(90)}
