# SPDX-License-Identifier: Apache-2.0
"""One vocabulary: quantity key -> ObservedProperty, and the UCUM units adapters emit.

This is data, not configuration: no setting extends it (a new quantity is a row here), and
every adapter maps its device's field names onto these keys.
"""

from __future__ import annotations

from dataclasses import dataclass

QUDT = "http://qudt.org/vocab/quantitykind/"


@dataclass(frozen=True)
class Quantity:
    """What becomes an ObservedProperty."""

    name: str
    definition: str
    description: str


def _q(name: str, kind: str, description: str) -> Quantity:
    return Quantity(name, QUDT + kind, description)


QUANTITIES: dict[str, Quantity] = {
    # climate
    "air_temperature": _q("Air temperature", "Temperature", "Temperature of the air"),
    "temperature": _q("Temperature", "Temperature", "Temperature measured by a probe or device"),
    "device_temperature": _q("Device temperature", "Temperature", "Internal temperature of the device"),
    "relative_humidity": _q("Relative humidity", "RelativeHumidity", "Relative humidity of the air"),
    "air_pressure": _q("Air pressure", "Pressure", "Atmospheric pressure"),
    "pm10": _q("PM10", "MassConcentration", "Mass concentration of particulate matter below 10 µm"),
    "pm1": _q("PM1", "MassConcentration", "Mass concentration of particulate matter below 1 µm"),
    "pm4": _q("PM4", "MassConcentration", "Mass concentration of particulate matter below 4 µm"),
    "pm2_5": _q("PM2.5", "MassConcentration", "Mass concentration of particulate matter below 2.5 µm"),
    "co2": _q("CO2", "MoleFraction", "Carbon dioxide concentration"),
    "no2": _q("NO2", "MassConcentration", "Nitrogen dioxide concentration"),
    "illuminance": _q("Illuminance", "Illuminance", "Illuminance"),
    "motion": _q("Motion", "Count", "Motion events counted by a PIR sensor"),
    # energy
    "active_power": _q("Active power", "ActivePower", "Active electrical power (negative: export)"),
    "apparent_power": _q("Apparent power", "ApparentPower", "Apparent electrical power"),
    "reactive_power": _q("Reactive power", "ReactivePower", "Reactive electrical power"),
    "power_factor": _q("Power factor", "PowerFactor", "Ratio of active to apparent power"),
    "voltage": _q("Voltage", "Voltage", "Electrical voltage"),
    "current": _q("Current", "ElectricCurrent", "Electrical current"),
    "frequency": _q("Frequency", "Frequency", "Mains frequency"),
    "energy": _q("Energy", "Energy", "Cumulative electrical energy counter"),
    "energy_returned": _q("Energy returned", "Energy", "Cumulative energy fed into the grid"),
    "energy_delta": _q("Energy in interval", "Energy", "Electrical energy used within the interval"),
    # device health
    "battery_voltage": _q("Battery voltage", "Voltage", "Voltage of the device's battery"),
    "battery": _q("Battery level", "DimensionlessRatio", "Charge of the device's battery"),
    "signal_strength": _q("Signal strength", "SignalStrength", "Received signal strength"),
    "signal_to_noise": _q("Signal-to-noise ratio", "SignalToNoiseRatio", "Signal-to-noise ratio of a radio"),
    # traffic
    "vehicle_count": _q("Vehicles", "Count", "Motor vehicles counted in the interval"),
    "car_count": _q("Cars", "Count", "Cars counted in the interval"),
    "heavy_vehicle_count": _q("Heavy vehicles", "Count", "Heavy vehicles counted in the interval"),
    "bicycle_count": _q("Bicycles", "Count", "Bicycles counted in the interval"),
    "pedestrian_count": _q("Pedestrians", "Count", "Pedestrians counted in the interval"),
    "speed_v85": _q("Speed (V85)", "Speed", "Speed below which 85 % of vehicles drive"),
    "speed_histogram": _q("Speed histogram", "Speed", "Share of vehicles per speed class"),
    # anything a generic mapping or an unknown field brings in
    "value": _q("Value", "Unknown", "A value without a known quantity"),
}

# UCUM codes in use; observationType follows from the result's JSON type (see observation_type).
UNITS: dict[str, str] = {
    "Cel": "degree Celsius",
    "%": "percent",
    "hPa": "hectopascal",
    "Pa": "pascal",
    "ug/m3": "microgram per cubic metre",
    "[ppm]": "parts per million",
    "lx": "lux",
    "W": "watt",
    "kW": "kilowatt",
    "V.A": "volt-ampere",
    "V": "volt",
    "mV": "millivolt",
    "A": "ampere",
    "Hz": "hertz",
    "W.h": "watt hour",
    "kW.h": "kilowatt hour",
    "1": "one (dimensionless)",
    "dB[mW]": "decibel-milliwatt",
    "dB": "decibel",
    "km/h": "kilometre per hour",
    "/h": "per hour",
    "{count}": "count",
    "{vehicles}": "vehicles",
}

OM = "http://www.opengis.net/def/observationType/OGC-OM/2.0/"


COUNT_UNITS = frozenset({"{count}", "{vehicles}"})


def observation_type(value: object, unit: str | None = None) -> str:
    """The O&M observationType of a result (§8.2.4 Table 12): counts only where the unit says so,
    since a device may send 21 for 21.0 °C."""
    if isinstance(value, bool):
        return OM + "OM_TruthObservation"
    if isinstance(value, int) and unit in COUNT_UNITS:
        return OM + "OM_CountObservation"
    if isinstance(value, int | float):
        return OM + "OM_Measurement"
    if isinstance(value, str):
        return OM + "OM_CategoryObservation"
    return OM + "OM_Observation"
