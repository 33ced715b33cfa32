# SPDX-License-Identifier: Apache-2.0
"""Property-based run of schemathesis against the generated OpenAPI document (issue 7, Security).

Every operation of /v1.1/api gets generated requests (writes included: the hub's test settings
accept them without credentials); each answer must not be a 5xx, and must match the status
codes, media types and schemas the document declares. The data set is seeded first, so that
small ids address existing entities.
"""

from __future__ import annotations

from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# Examples per operation: bounded so the whole run stays near a minute on these machines.
EXAMPLES = 15
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

SEED_THING = {
    "name": "Rathausmarkt station",
    "description": "Air quality station",
    "properties": {"city": "Hamburg"},
    "Locations": [
        {
            "name": "Rathausmarkt",
            "description": "Town hall square",
            "encodingType": "application/geo+json",
            "location": {"type": "Point", "coordinates": [9.9925, 53.5503]},
        }
    ],
    "Datastreams": [
        {
            "name": "Air temperature",
            "description": "2 m above ground",
            "unitOfMeasurement": {"name": "degree Celsius", "symbol": "Cel", "definition": "ucum:Cel"},
            "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
            "Sensor": {"name": "SHT31", "description": "T/H", "encodingType": "text/html", "metadata": "x"},
            "ObservedProperty": {
                "name": "Air temperature",
                "definition": "qudt:Temperature",
                "description": "T",
            },
        }
    ],
}


MULTI_DATASTREAM = {
    "name": "Weather",
    "description": "two values",
    "unitOfMeasurements": [{"name": "C", "symbol": "Cel", "definition": "ucum:Cel"}] * 2,
    "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_ComplexObservation",
    "multiObservationDataTypes": ["http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"] * 2,
    "Thing": {"@iot.id": 1},
    "Sensor": {"@iot.id": 1},
    "ObservedProperties": [{"@iot.id": 1}, {"@iot.id": 2}],
}
# Reads first, writes next, deletes last: a DELETE of a seeded entity would leave little to read.
METHOD_ORDER = {"GET": 0, "POST": 1, "PATCH": 2, "PUT": 3, "DELETE": 4}
SEEDED_IDS = {"type": "integer", "minimum": 1, "maximum": 2}


def _seed(root: str) -> None:
    for _ in range(2):
        assert requests.post(f"{root}/Things", json=SEED_THING, timeout=30).status_code == 201
    for stream in (1, 2):
        observation = {"phenomenonTime": "2026-03-05T10:14:00Z", "result": 21.6}
        response = requests.post(f"{root}/Datastreams({stream})/Observations", json=observation, timeout=30)
        assert response.status_code == 201
    assert requests.post(f"{root}/MultiDatastreams", json=MULTI_DATASTREAM, timeout=30).status_code == 201
    observation = {"phenomenonTime": "2026-03-05T10:14:00Z", "result": [1, 2]}
    response = requests.post(f"{root}/MultiDatastreams(1)/Observations", json=observation, timeout=30)
    assert response.status_code == 201


@pytest.fixture(scope="module")
def api_schema(live_hub: str) -> schemathesis.schemas.BaseSchema:
    """The hub's own document, loaded by schemathesis, with ids narrowed to the seeded ones."""
    root = f"{live_hub}/v1.1"
    _seed(root)
    document = requests.get(f"{root}/api", timeout=30).json()
    # Ids drawn from all of bigint would almost always miss; the document itself says 0..2^63-1.
    for item in document["paths"].values():
        for parameter in item.get("parameters", []):
            if parameter["name"] == "id":
                parameter["schema"] = SEEDED_IDS
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=root)
    return schema


def _run_operation(operation: schemathesis.APIOperation, statuses: Counter[int]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        response = case.call()
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    run()


def test_no_server_error_and_no_schema_violation(api_schema: schemathesis.schemas.BaseSchema) -> None:
    failures = []
    statuses: Counter[int] = Counter()
    operations = 0
    ordered = sorted(
        (r.ok() for r in api_schema.get_all_operations()), key=lambda o: METHOD_ORDER[o.method.upper()]
    )
    for operation in ordered:
        operations += 1
        try:
            _run_operation(operation, statuses)
        except Exception as failure:  # schemathesis raises a group of its check failures
            failures.append(f"{operation.label}: {failure}")
    assert operations > 100
    print(f"schemathesis: {operations} operations, answers by status: {dict(sorted(statuses.items()))}")
    assert not failures, "\n\n".join(failures)
    # The run reached the hub's success paths, not only its 404s.
    assert statuses[200] > operations
    assert statuses[201] > 0
