# SPDX-License-Identifier: Apache-2.0
"""The OpenAPI 3.1 document at /v1.1/api: valid, and generated from schemas.model."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from hub.http.openapi import KIND_SCHEMAS
from schemas.model import ALL_TYPES, Join

QUERY_OPTIONS = ("$filter", "$expand", "$select", "$orderby", "$top", "$skip", "$count", "$resultFormat")


@pytest.fixture
async def document(client: Any) -> dict[str, Any]:
    response = await client.get("/v1.1/api")
    assert response.status == 200
    assert response.content_type == "application/json"
    body: dict[str, Any] = await response.json()
    return body


async def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


@pytest.mark.parametrize("version", ["v1.0", "v1.1"])
async def test_served_under_both_versions_with_the_service_root(client: Any, version: str) -> None:
    response = await client.get(f"/{version}/api", headers={"X-Forwarded-Host": "sta.example.org"})
    assert response.status == 200
    body = await response.json()
    assert body["servers"] == [{"url": f"http://sta.example.org/{version}"}]


async def test_every_entity_type_has_its_paths(document: dict[str, Any]) -> None:
    paths = document["paths"]
    for entity_type in ALL_TYPES:
        one = f"/{entity_type.set_name}({{id}})"
        assert set(paths[f"/{entity_type.set_name}"]) == {"get", "post"}
        assert {"get", "patch", "put", "delete"} <= set(paths[one])
        for prop in entity_type.properties:
            assert "get" in paths[f"{one}/{prop.name}"]
            assert "get" in paths[f"{one}/{prop.name}/$value"]
        for nav in entity_type.navigation:
            assert "get" in paths[f"{one}/{nav.name}"]
            assert "get" in paths[f"{one}/{nav.name}/$ref"]
            assert ("post" in paths[f"{one}/{nav.name}"]) is nav.many


async def test_schemas_follow_the_model(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for entity_type in ALL_TYPES:
        entity = schemas[entity_type.name]["properties"]
        create = schemas[f"{entity_type.name}Create"]
        for prop in entity_type.properties:
            expected = KIND_SCHEMAS[prop.kind]
            assert entity[prop.name] in (expected, {"anyOf": [expected, {"type": "null"}]})
            assert (prop.name in create["properties"]) is not prop.read_only
        for nav in entity_type.navigation:
            assert f"{nav.name}@iot.navigationLink" in entity
            target = {"$ref": f"#/components/schemas/{nav.target.name}"}
            assert entity[nav.name] == ({"type": "array", "items": target} if nav.many else target)
        required = {p.name for p in entity_type.properties if p.required and not p.read_only}
        required |= {n.name for n in entity_type.navigation if n.required and n.join is Join.FORWARD}
        assert set(create.get("required", [])) == required


async def test_thing_schema_in_detail(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["ThingCreate"]["required"] == ["name", "description"]
    assert schemas["ThingCreate"]["properties"]["properties"] == {"type": "object"}
    assert schemas["DatastreamCreate"]["required"] == [
        "name",
        "description",
        "unitOfMeasurement",
        "observationType",
        "Thing",
        "Sensor",
        "ObservedProperty",
    ]
    assert schemas["Observation"]["properties"]["result"] == {}


async def test_query_options_and_errors(document: dict[str, Any]) -> None:
    parameters = document["components"]["parameters"]
    collection = document["paths"]["/Things"]["get"]
    names = [parameters[p["$ref"].rsplit("/", 1)[1]]["name"] for p in collection["parameters"]]
    assert names == list(QUERY_OPTIONS)
    entity = document["paths"]["/Things({id})"]["get"]
    assert [parameters[p["$ref"].rsplit("/", 1)[1]]["name"] for p in entity["parameters"]] == [
        "$select",
        "$expand",
    ]
    for item in document["paths"].values():
        for operation in (v for k, v in item.items() if k != "parameters"):
            assert operation["responses"]["4XX"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }
    assert set(collection["responses"]["200"]["content"]) == {
        "application/json",
        "application/geo+json",
        "text/csv",
    }


async def test_api_route_takes_only_get(client: Any) -> None:
    """The document route comes before the STA catch-all for GET; other methods still reach it."""
    response = await client.post("/v1.1/api", json={})
    assert response.status == 404
    assert "api" in (await response.json())["message"]


async def test_security_schemes_name_the_credentials_the_hub_takes(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert (schemes["bearer"]["type"], schemes["bearer"]["scheme"]) == ("http", "bearer")
    assert (schemes["apiKey"]["type"], schemes["apiKey"]["in"]) == ("apiKey", "header")
    assert schemes["apiKey"]["name"] == "X-API-Key"
    # Either scheme, or none: reads are anonymous by default (tests/auth shows who may write).
    assert document["security"] == [{}, {"bearer": []}, {"apiKey": []}]
