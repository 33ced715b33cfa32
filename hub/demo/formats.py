# SPDX-License-Identifier: Apache-2.0
"""Each simulated device's message in its own native format, on its ecosystem's usual topic.

These are the payloads the ingest adapters read (see /adapters and the samples they are tested
with): Shelly Gen2 NotifyStatus frames, Tasmota SML telemetry, The Things Stack v3 uplinks,
sensor.community airRohr pushes and Telraam hourly reports. `malformed` gives a broken message
of the same device, of the kinds seen in the field, for the dead-letter path.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

from hub.demo import signals
from hub.demo.devices import Device

TTN_APPLICATION = "twinhub-demo@ttn"
TTN_GATEWAYS = ("kerlink-rathaus-dach", "rak7268-stadtbibliothek", "tektelic-feuerwache")
METER_START = datetime(2024, 1, 1, tzinfo=UTC)  # the counters' zero: energy_wh - this offset

Payload = tuple[str, bytes]


def _dumps(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _iso(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds and Z, as TTN writes times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _counter_wh(device: Device, moment: datetime) -> float:
    return signals.energy_wh(moment, device.scale) - signals.energy_wh(METER_START, device.scale)


def shelly(device: Device, moment: datetime, noise: random.Random, zone: tzinfo) -> Payload:
    """A Shelly Pro 3EM NotifyStatus frame: em:0 (power, current, voltage) and emdata:0 (counter)."""
    power = signals.building_power(moment, device.scale, noise)
    voltage = round(230.0 + noise.gauss(0, 1.2), 1)
    frame = {
        "src": device.topic_id,
        "dst": f"{device.topic_id}/events",
        "method": "NotifyStatus",
        "params": {
            "ts": round(moment.timestamp(), 2),
            "em:0": {
                "id": 0,
                "a_voltage": voltage,
                "total_current": round(power / voltage / 1.73, 3),
                "total_act_power": power,
            },
            "emdata:0": {"id": 0, "total_act": round(_counter_wh(device, moment), 2)},
        },
    }
    return f"{device.topic_id}/events/rpc", _dumps(frame)


def tasmota(device: Device, moment: datetime, noise: random.Random, zone: tzinfo) -> Payload:
    """Tasmota Smart Meter Interface telemetry of the building's grid meter (local time, no offset)."""
    power = signals.building_power(moment, device.scale, noise)
    shares = [0.36 + noise.gauss(0, 0.02), 0.31 + noise.gauss(0, 0.02)]
    phases = [round(power * share) for share in shares]
    document = {
        "Time": moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S"),
        "SML": {
            "Total_in": round(_counter_wh(device, moment) / 1000, 4),
            "Power_curr": round(power),
            "Meter_Id": device.device_id,
            "power_l1": phases[0],
            "power_l2": phases[1],
            "power_l3": round(power) - sum(phases),
            "voltage_l1": round(230.5 + noise.gauss(0, 1.0), 1),
        },
    }
    return f"tele/{device.topic_id}/SENSOR", _dumps(document)


def ttn(device: Device, moment: datetime, noise: random.Random, zone: tzinfo) -> Payload:
    """A The Things Stack v3 uplink of a Dragino LHT65N with its decoded payload."""
    gateway_time = moment - timedelta(milliseconds=220)
    uplink = {
        "end_device_ids": {
            "device_id": device.topic_id,
            "application_ids": {"application_id": TTN_APPLICATION.split("@")[0]},
            "dev_eui": device.device_id,
        },
        "received_at": _iso(moment),
        "uplink_message": {
            "f_port": 2,
            "f_cnt": int(moment.timestamp() // 60) % 65536,
            "decoded_payload": {
                "BatV": signals.battery_voltage(moment, noise),
                "Hum_SHT": signals.relative_humidity(moment, device.offset, noise),
                "TempC_SHT": signals.air_temperature(moment, device.offset, noise),
            },
            "rx_metadata": [
                {
                    "gateway_ids": {"gateway_id": noise.choice(TTN_GATEWAYS)},
                    "time": _iso(gateway_time),
                    "rssi": round(noise.gauss(-98, 6)),
                    "snr": round(noise.gauss(6, 2.5), 2),
                }
            ],
            "received_at": _iso(moment - timedelta(milliseconds=200)),
            "version_ids": {"brand_id": "dragino", "model_id": "lht65n", "band_id": "EU_863_870"},
            "locations": {
                "user": {
                    "latitude": device.latitude,
                    "longitude": device.longitude,
                    "source": "SOURCE_REGISTRY",
                }
            },
        },
    }
    return f"v3/{TTN_APPLICATION}/devices/{device.topic_id}/up", _dumps(uplink)


def airrohr_values(device: Device, moment: datetime, noise: random.Random) -> dict[str, float]:
    """sensor.community value_type -> value at `moment` (also what the STA backfill sends)."""
    pm10, pm25 = signals.particulate(moment, device.scale, noise)
    return {
        "SDS_P1": pm10,
        "SDS_P2": pm25,
        "BME280_temperature": signals.air_temperature(moment, device.offset, noise),
        "BME280_humidity": signals.relative_humidity(moment, device.offset, noise),
        "BME280_pressure": signals.air_pressure(moment, noise),
    }


def airrohr(
    device: Device, moment: datetime, noise: random.Random, zone: tzinfo, interval_ms: int
) -> Payload:
    """An airRohr data push as a bridge republishes it (no time in it: the hub uses receive time)."""
    values = [
        {"value_type": key, "value": f"{value:.2f}"}
        for key, value in airrohr_values(device, moment, noise).items()
    ]
    values += [
        {"value_type": "samples", "value": str(noise.randrange(4_000_000, 5_000_000))},
        {"value_type": "interval", "value": str(interval_ms)},
        {"value_type": "signal", "value": str(round(noise.gauss(-70, 5)))},
    ]
    push = {
        "esp8266id": device.device_id.removeprefix("esp8266-"),
        "software_version": "NRZ-2020-133",
        "sensordatavalues": values,
    }
    return f"airrohr/{device.topic_id}/data", _dumps(push)


def telraam(device: Device, hour: datetime, noise: random.Random, zone: tzinfo) -> Payload:
    """A Telraam API answer with the report of the hour starting at `hour`, as a poller publishes it."""
    counts = signals.hourly_traffic(hour, device.scale, noise)
    report: dict[str, object] = {
        "instance_id": -1,
        "segment_id": int(device.device_id),
        "date": hour.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "interval": "hourly",
        "uptime": round(min(1.0, 0.78 + noise.random() * 0.2), 4),
        "timezone": "Europe/Berlin",
        "v85": round(noise.gauss(43, 4), 1),
    }
    for mode, count in counts.items():
        left = round(count * (0.45 + noise.random() * 0.1), 2)
        report.update({mode: count, f"{mode}_lft": left, f"{mode}_rgt": round(count - left, 2)})
    answer = {"status_code": 200, "message": "ok", "report": [report]}
    return f"telraam/{device.topic_id}/traffic", _dumps(answer)


# Broken messages as they happen: a frame without its time, a read head misreading a value, a
# network server without a decoder, a sensor's NaN, a poller relaying an API error, a cut payload.
def malformed(device: Device, moment: datetime, noise: random.Random, zone: tzinfo) -> Payload:
    """A broken message of this device (the adapter must reject it into the dead-letter topic)."""
    topic, payload = build(device, moment, noise, zone, 10_000)
    if noise.random() < 0.3:
        return topic, payload[: len(payload) // 2]  # cut off in transit
    document = json.loads(payload)
    if device.kind == "shelly_pro3em":
        del document["params"]["ts"]
    elif device.kind == "tasmota":
        document["SML"]["Power_curr"] = "nan"
    elif device.kind == "ttn_lht65n":
        del document["uplink_message"]["decoded_payload"]
    elif device.kind == "airrohr":
        document["sensordatavalues"][0]["value"] = "NaN"
    else:
        document = {"status_code": 503, "message": "Service temporarily unavailable"}
    return topic, _dumps(document)


Builder = Callable[[Device, datetime, random.Random, tzinfo], Payload]

BUILDERS: dict[str, Builder] = {
    "shelly_pro3em": shelly,
    "tasmota": tasmota,
    "ttn_lht65n": ttn,
    "telraam": telraam,
}


def build(device: Device, moment: datetime, noise: random.Random, zone: tzinfo, interval_ms: int) -> Payload:
    """The device's message for `moment` (for Telraam: the hour starting at `moment`)."""
    if device.kind == "airrohr":
        return airrohr(device, moment, noise, zone, interval_ms)
    return BUILDERS[device.kind](device, moment, noise, zone)
