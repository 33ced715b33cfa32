# SPDX-License-Identifier: Apache-2.0
"""One vocabulary: quantity key -> ObservedProperty, and the UCUM units adapters emit.

This is data, not configuration: no setting extends it (a new quantity is a row here), and
every adapter maps its device's field names onto these keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.units import UNITS as _UNITS

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
    "presence": _q("Presence", "Dimensionless", "Whether motion or occupancy was detected"),
    "dew_point": _q("Dew point", "DewPointTemperature", "Dew point temperature of the air"),
    "sea_level_pressure": _q("Sea-level pressure", "Pressure", "Atmospheric pressure reduced to sea level"),
    "tvoc": _q("TVOC", "MoleFraction", "Total volatile organic compounds"),
    "co": _q("CO", "MoleFraction", "Carbon monoxide concentration"),
    "o3": _q("O3", "MoleFraction", "Ozone concentration"),
    "nh3": _q("NH3", "MoleFraction", "Ammonia concentration"),
    "hcho": _q("HCHO", "MassConcentration", "Formaldehyde concentration"),
    "uv_index": _q("UV index", "Dimensionless", "Ultraviolet index"),
    "sound_level": _q("Sound level", "SoundPressureLevel", "Sound pressure level"),
    "distance": _q("Distance", "Distance", "Distance measured by a range sensor"),
    "water_level": _q("Water level", "Length", "Level of water above a reference"),
    "wind_speed": _q("Wind speed", "Speed", "Speed of the wind"),
    "wind_direction": _q("Wind direction", "PlaneAngle", "Direction the wind blows from"),
    "rainfall": _q("Rainfall", "Length", "Precipitation depth in the interval"),
    "water_temperature": _q("Water temperature", "Temperature", "Temperature of water"),
    "soil_temperature": _q("Soil temperature", "Temperature", "Temperature of the soil"),
    "soil_moisture": _q("Soil moisture", "VolumeFraction", "Volumetric water content of the soil"),
    "soil_conductivity": _q("Soil conductivity", "Conductivity", "Electrical conductivity of the soil"),
    "soil_ph": _q("Soil pH", "PH", "pH of the soil"),
    "soil_nitrogen": _q("Soil nitrogen", "MassFraction", "Nitrogen in the soil"),
    "soil_phosphorus": _q("Soil phosphorus", "MassFraction", "Phosphorus in the soil"),
    "soil_potassium": _q("Soil potassium", "MassFraction", "Potassium in the soil"),
    "ph": _q("pH", "PH", "pH of a liquid"),
    "water_volume": _q("Water volume", "Volume", "Cumulative volume counted by a water meter"),
    "gas_volume": _q("Gas volume", "Volume", "Cumulative volume counted by a gas meter"),
    "pulse_count": _q("Pulses", "Count", "Cumulative pulses counted by a counter input"),
    "leak": _q("Leak", "Dimensionless", "Whether a water leak was detected"),
    "contact_state": _q("Contact state", "Dimensionless", "State of a door or window contact"),
    "analog_input": _q("Analog input", "Voltage", "Voltage read at an analog input"),
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
    "speed": _q("Speed", "Speed", "Speed of a moving thing"),
    # device health
    "battery_voltage": _q("Battery voltage", "Voltage", "Voltage of the device's battery"),
    "battery": _q("Battery level", "DimensionlessRatio", "Charge of the device's battery"),
    "battery_current": _q("Battery current", "ElectricCurrent", "Current into or out of a battery"),
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

# The UCUM codes in use live in adapters.units (one table for every adapter); re-exported here.
UNITS = _UNITS

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
