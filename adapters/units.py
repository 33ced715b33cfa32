# SPDX-License-Identifier: Apache-2.0
"""The one unit table: UCUM codes twinhub emits, and every spelling devices use for them.

SenML (RFC 8798), Home Assistant's `unit_of_measurement`, Tasmota's `TempUnit`/`PressureUnit`,
key suffixes (`_mv`, `_pct`) and values written as text ("3.384 V") all resolve here.
"""

from __future__ import annotations

import re

# UCUM code -> its name (the unitOfMeasurement name of a Datastream).
UNITS: dict[str, str] = {
    "Cel": "degree Celsius",
    "[degF]": "degree Fahrenheit",
    "K": "kelvin",
    "%": "percent",
    "hPa": "hectopascal",
    "Pa": "pascal",
    "kPa": "kilopascal",
    "mm[Hg]": "millimetre of mercury",
    "[in_i'Hg]": "inch of mercury",
    "ug/m3": "microgram per cubic metre",
    "mg/m3": "milligram per cubic metre",
    "[ppm]": "parts per million",
    "[ppb]": "parts per billion",
    "lx": "lux",
    "W": "watt",
    "kW": "kilowatt",
    "V.A": "volt-ampere",
    "V": "volt",
    "mV": "millivolt",
    "A": "ampere",
    "mA": "milliampere",
    "Hz": "hertz",
    "W.h": "watt hour",
    "kW.h": "kilowatt hour",
    "1": "one (dimensionless)",
    "dB[mW]": "decibel-milliwatt",
    "dB": "decibel",
    "km/h": "kilometre per hour",
    "m/s": "metre per second",
    "[mi_i]/h": "mile per hour",
    "[kn_i]": "knot",
    "[ft_i]/s": "foot per second",
    "[yd_i]/s": "yard per second",
    "/h": "per hour",
    "m": "metre",
    "cm": "centimetre",
    "mm": "millimetre",
    "[in_i]": "inch",
    "m3": "cubic metre",
    "L": "litre",
    "uS/cm": "microsiemens per centimetre",
    "mS/cm": "millisiemens per centimetre",
    "dS/m": "decisiemens per metre",
    "deg": "degree (plane angle)",
    "[pH]": "pH",
    "s": "second",
    "min": "minute",
    "h": "hour",
    "mm/h": "millimetre per hour",
    "L/min": "litre per minute",
    "m3/h": "cubic metre per hour",
    "bar": "bar",
    "W/m2": "watt per square metre",
    "{count}": "count",
    "{vehicles}": "vehicles",
}

# Every spelling seen in the field -> UCUM code. Looked up as written, then in lower case.
UNIT_ALIASES: dict[str, str] = {
    **{code: code for code in UNITS},
    "°C": "Cel",
    "℃": "Cel",
    "C": "Cel",
    "degC": "Cel",
    "celsius": "Cel",
    "°F": "[degF]",
    "℉": "[degF]",
    "F": "[degF]",
    "degF": "[degF]",
    "fahrenheit": "[degF]",
    "%RH": "%",
    "%rh": "%",
    "%EL": "%",
    "pct": "%",
    "percent": "%",
    "mbar": "hPa",  # equal to hPa (UCUM mbar = hPa)
    "mmHg": "mm[Hg]",
    "inHg": "[in_i'Hg]",
    "µg/m³": "ug/m3",
    "μg/m³": "ug/m3",
    "µg/m3": "ug/m3",
    "μg/m3": "ug/m3",
    "mg/m³": "mg/m3",
    "ppm": "[ppm]",
    "ppb": "[ppb]",
    "lux": "lx",
    "VA": "V.A",
    "var": "V.A",  # UCUM has no var; reactive power is told apart by its ObservedProperty
    "Wh": "W.h",
    "kWh": "kW.h",
    "dBm": "dB[mW]",
    "dBA": "dB",
    "dB(A)": "dB",
    "kmh": "km/h",
    "kph": "km/h",
    "mph": "[mi_i]/h",
    "ms": "m/s",  # Tasmota SpeedUnit and key suffixes: metre per second, never milliseconds
    "in": "[in_i]",
    "m³": "m3",
    "l": "L",
    "µS/cm": "uS/cm",
    "μS/cm": "uS/cm",
    "°": "deg",
    "pH": "[pH]",
    "count": "{count}",
    "/": "1",
    "m³/h": "m3/h",
    "W/m²": "W/m2",
    "l/min": "L/min",
}
_LOWER = {alias.lower(): code for alias, code in UNIT_ALIASES.items()}

# Key suffixes that state a unit (`temperature_c`, `battery_mv`, `co2_ppm`).
SUFFIXES: dict[str, str] = {
    "c": "Cel",
    "f": "[degF]",
    "k": "K",
    "pct": "%",
    "percent": "%",
    "rh": "%",
    "mv": "mV",
    "v": "V",
    "ma": "mA",
    "a": "A",
    "ppm": "[ppm]",
    "ppb": "[ppb]",
    "hpa": "hPa",
    "pa": "Pa",
    "kpa": "kPa",
    "lux": "lx",
    "lx": "lx",
    "w": "W",
    "kw": "kW",
    "wh": "W.h",
    "kwh": "kW.h",
    "dbm": "dB[mW]",
    "db": "dB",
    "mm": "mm",
    "cm": "cm",
    "m": "m",
    "kmh": "km/h",
    "ms": "m/s",
    "ugm3": "ug/m3",
    "us": "uS/cm",
    "uscm": "uS/cm",
    "l": "L",
    "m3": "m3",
}

# The units one quantity's value can be converted between, by dimension: a suffix unit replaces
# the default only within its dimension (a `_v` key of a percentage quantity is a voltage).
DIMENSIONS: dict[str, str] = {
    **dict.fromkeys(("Cel", "[degF]", "K"), "temperature"),
    **dict.fromkeys(("hPa", "Pa", "kPa", "bar", "mm[Hg]", "[in_i'Hg]"), "pressure"),
    **dict.fromkeys(("V", "mV"), "voltage"),
    **dict.fromkeys(("A", "mA"), "current"),
    **dict.fromkeys(("W", "kW"), "power"),
    **dict.fromkeys(("W.h", "kW.h"), "energy"),
    **dict.fromkeys(("m", "cm", "mm", "[in_i]"), "length"),
    **dict.fromkeys(("km/h", "m/s", "[mi_i]/h", "[kn_i]", "[ft_i]/s", "[yd_i]/s"), "speed"),
    **dict.fromkeys(("[ppm]", "[ppb]", "%"), "fraction"),
    **dict.fromkeys(("ug/m3", "mg/m3"), "mass_concentration"),
    **dict.fromkeys(("uS/cm", "mS/cm", "dS/m"), "conductivity"),
    **dict.fromkeys(("m3", "L"), "volume"),
    **dict.fromkeys(("dB[mW]", "dB"), "level"),
}

# "3.384 V", "30.11 °C", "0 uS/cm": numbers that payload formatters wrote as text with a unit
VALUE_WITH_UNIT = re.compile(r"\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(\S*?)\s*")


def ucum(spelling: str) -> str | None:
    """The UCUM code of a unit as a device spells it; None when unknown."""
    text = spelling.strip()
    return UNIT_ALIASES.get(text) or _LOWER.get(text.lower())


def same_dimension(first: str | None, second: str | None) -> bool:
    """Whether two units measure the same kind of thing (convertible into each other)."""
    if first is None or second is None:
        return False
    return first == second or DIMENSIONS.get(first, first) == DIMENSIONS.get(second, second)
