# SPDX-License-Identifier: Apache-2.0
"""The OpenAPI 3.1 document of the STA interface, generated from schemas.model (never hand-written).

Served at /v1.1/api and /v1.0/api. Every entity type of the model contributes its schemas
(the representation, the create and the update body) and its paths: the entity set, the
entity by id, each property (and its $value), each navigation property (and its $ref).
"""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from hub.http.context import AppState, service_root
from hub.http.exchange import CSV, GEO_JSON, JSON, JSON_PATCH, TEXT
from hub.query.path import MAX_KEY
from schemas.model import ALL_TYPES, EntityType, Join, Kind, NavigationProperty, Property

Schema = dict[str, Any]

_UNIT: Schema = {
    "type": "object",
    "properties": {
        "name": {"type": ["string", "null"]},
        "symbol": {"type": ["string", "null"]},
        "definition": {"type": ["string", "null"]},
    },
}

# JSON Schema of each value kind; one row per Kind (a new kind fails the lookup loudly).
KIND_SCHEMAS: dict[Kind, Schema] = {
    Kind.TEXT: {"type": "string"},
    Kind.OBJECT: {"type": "object"},
    Kind.JSON: {},
    Kind.INSTANT: {"type": "string", "description": "ISO 8601 instant"},
    Kind.TIME: {"type": "string", "description": "ISO 8601 instant or interval (start/end)"},
    Kind.INTERVAL: {"type": "string", "description": "ISO 8601 interval (start/end)"},
    Kind.GEOJSON: {"type": "object", "description": "GeoJSON geometry or Feature"},
    Kind.UNIT: _UNIT,
    Kind.ARRAY: {"type": "array"},
}

ERROR: Schema = {
    "type": "object",
    "required": ["message"],
    "properties": {"code": {"type": "integer"}, "type": {"type": "string"}, "message": {"type": "string"}},
}

QUERY_OPTIONS: dict[str, Schema] = {
    "filter": {"name": "$filter", "in": "query", "schema": {"type": "string"}, "description": "§9.3.3.5"},
    "expand": {"name": "$expand", "in": "query", "schema": {"type": "string"}, "description": "§9.3.2.1"},
    "select": {"name": "$select", "in": "query", "schema": {"type": "string"}, "description": "§9.3.2.2"},
    "orderby": {"name": "$orderby", "in": "query", "schema": {"type": "string"}, "description": "§9.3.3.1"},
    "top": {"name": "$top", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    "skip": {"name": "$skip", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    "count": {"name": "$count", "in": "query", "schema": {"type": "boolean"}},
    "resultFormat": {
        "name": "$resultFormat",
        "in": "query",
        "schema": {"type": "string", "enum": ["dataArray", "CSV", "GeoJSON"]},
    },
}
COLLECTION_OPTIONS = tuple(QUERY_OPTIONS)
ENTITY_OPTIONS = ("select", "expand")


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    """Responses may carry null for unset properties."""
    if not schema:
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def _property_schema(prop: Property) -> Schema:
    return dict(KIND_SCHEMAS[prop.kind])


def entity_schema(entity_type: EntityType) -> Schema:
    """The representation of an entity; nothing required, since $select may leave anything out."""
    properties: Schema = {
        "@iot.id": {"type": "integer"},
        "@iot.selfLink": {"type": "string"},
    }
    for prop in entity_type.properties:
        properties[prop.name] = _nullable(_property_schema(prop))
    for nav in entity_type.navigation:
        properties[f"{nav.name}@iot.navigationLink"] = {"type": "string"}
        target = _ref(nav.target.name)
        properties[nav.name] = {"type": "array", "items": target} if nav.many else target
        if nav.many:
            properties[f"{nav.name}@iot.count"] = {"type": "integer"}
            properties[f"{nav.name}@iot.nextLink"] = {"type": "string"}
    return {"type": "object", "properties": properties}


def _create_schema(entity_type: EntityType, required_links: bool) -> Schema:
    properties: Schema = {}
    required: list[str] = []
    for prop in entity_type.properties:
        if prop.read_only:
            continue
        properties[prop.name] = _property_schema(prop)
        if prop.required:
            required.append(prop.name)
    for nav in entity_type.navigation:
        link: Schema = {"type": "object", "description": f'a new {nav.target_name} or {{"@iot.id": <id>}}'}
        properties[nav.name] = {"type": "array", "items": link} if nav.many else link
        if required_links and nav.required and nav.join is Join.FORWARD:
            required.append(nav.name)
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _update_schema(entity_type: EntityType) -> Schema:
    schema = _create_schema(entity_type, required_links=False)
    schema.pop("required", None)
    return schema


def _collection_schema(entity_type: EntityType) -> Schema:
    return {
        "type": "object",
        "properties": {
            "@iot.count": {"type": "integer"},
            "@iot.nextLink": {"type": "string"},
            "value": {"type": "array", "items": _ref(entity_type.name)},
        },
    }


_REFS: Schema = {
    "type": "object",
    "properties": {
        "@iot.count": {"type": "integer"},
        "@iot.nextLink": {"type": "string"},
        "value": {
            "type": "array",
            "items": {"type": "object", "properties": {"@iot.selfLink": {"type": "string"}}},
        },
    },
}


def _json(schema: Schema) -> Schema:
    return {"content": {JSON: {"schema": schema}}}


def _ok(description: str, schema: Schema) -> Schema:
    return {"description": description, **_json(schema)}


def _responses(success: dict[str, Schema]) -> Schema:
    errors = {
        "4XX": {"description": "a client error, the message names the problem", **_json(_ref("Error"))},
        "503": {"description": "database unavailable or statement timeout", **_json(_ref("Error"))},
    }
    return {**success, **errors}


def _params(*names: str) -> list[Schema]:
    return [{"$ref": f"#/components/parameters/{name}"} for name in names]


def _body(schema: Schema, *extra: tuple[str, Schema]) -> Schema:
    content = {JSON: {"schema": schema}}
    content.update(dict(extra))
    return {"required": True, "content": content}


def _collection_get(entity_type: EntityType, operation_id: str, summary: str) -> Schema:
    name = entity_type.name
    return {
        "operationId": operation_id,
        "summary": summary,
        "parameters": _params(*COLLECTION_OPTIONS),
        "responses": _responses(
            {
                "200": {
                    "description": f"a page of {entity_type.set_name}",
                    "content": {
                        JSON: {"schema": _ref(f"{name}Collection")},
                        GEO_JSON: {"schema": {"type": "object"}},
                        CSV: {"schema": {"type": "string"}},
                    },
                },
                "304": {"description": "not modified (If-None-Match / If-Modified-Since)"},
            }
        ),
    }


def _entity_get(entity_type: EntityType, operation_id: str, summary: str) -> Schema:
    return {
        "operationId": operation_id,
        "summary": summary,
        "parameters": _params(*ENTITY_OPTIONS),
        "responses": _responses(
            {
                "200": _ok(f"one {entity_type.name}", _ref(entity_type.name)),
                "304": {"description": "not modified (If-None-Match / If-Modified-Since)"},
            }
        ),
    }


def _created(entity_type: EntityType) -> Schema:
    return {
        "description": f"the created {entity_type.name}",
        "headers": {"Location": {"schema": {"type": "string"}, "description": "the new entity's selfLink"}},
        **_json(_ref(entity_type.name)),
    }


def _id_param(name: str = "id") -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_KEY},
    }


def _entity_paths(entity_type: EntityType) -> dict[str, Schema]:
    set_name, name = entity_type.set_name, entity_type.name
    one = f"/{set_name}({{id}})"
    paths: dict[str, Schema] = {
        f"/{set_name}": {
            "get": _collection_get(entity_type, f"list{set_name}", f"Read {set_name}"),
            "post": {
                "operationId": f"create{name}",
                "summary": f"Create a {name} (deep insert, links by @iot.id)",
                "requestBody": _body(_ref(f"{name}Create")),
                "responses": _responses({"201": _created(entity_type)}),
            },
        },
        one: {
            "parameters": [_id_param()],
            "get": _entity_get(entity_type, f"get{name}", f"Read one {name}"),
            "patch": {
                "operationId": f"update{name}",
                "summary": f"Update a {name} (merge, or JSON Patch)",
                "requestBody": _body(
                    _ref(f"{name}Update"),
                    (JSON_PATCH, {"schema": {"type": "array", "items": {"type": "object"}}}),
                ),
                "responses": _responses({"200": _ok(f"the updated {name}", _ref(name))}),
            },
            "put": {
                "operationId": f"replace{name}",
                "summary": f"Replace a {name}",
                "requestBody": _body(_ref(f"{name}Replace")),
                "responses": _responses({"200": _ok(f"the replaced {name}", _ref(name))}),
            },
            "delete": {
                "operationId": f"delete{name}",
                "summary": f"Delete a {name} and what the standard cascades to",
                "responses": _responses({"200": {"description": "deleted"}}),
            },
        },
    }
    for prop in entity_type.properties:
        paths[f"{one}/{prop.name}"] = _property_path(entity_type, prop)
        paths[f"{one}/{prop.name}/$value"] = _value_path(entity_type, prop)
    for nav in entity_type.navigation:
        paths.update(_navigation_paths(entity_type, nav, one))
    return paths


def _property_path(entity_type: EntityType, prop: Property) -> Schema:
    schema = {"type": "object", "properties": {prop.name: _nullable(_property_schema(prop))}}
    return {
        "parameters": [_id_param()],
        "get": {
            "operationId": f"get{entity_type.name}_{prop.name}",
            "summary": f"Read {entity_type.name}.{prop.name}",
            "responses": _responses({"200": _ok(f"{{{prop.name!r}: value}}", schema), "204": _NULL_VALUE}),
        },
    }


# OData 4.0 Part 1 §11.2.4.1: a property whose value is null answers 204 without a body.
_NULL_VALUE: Schema = {"description": "the value is null"}


def _value_path(entity_type: EntityType, prop: Property) -> Schema:
    return {
        "parameters": [_id_param()],
        "get": {
            "operationId": f"get{entity_type.name}_{prop.name}_value",
            "summary": f"Read the raw value of {entity_type.name}.{prop.name}",
            "responses": _responses(
                {
                    "200": {
                        "description": "the value as text",
                        "content": {TEXT: {"schema": {"type": "string"}}},
                    },
                    "204": _NULL_VALUE,
                }
            ),
        },
    }


def _navigation_paths(entity_type: EntityType, nav: NavigationProperty, one: str) -> dict[str, Schema]:
    target = nav.target
    where = f"{one}/{nav.name}"
    stem = f"{entity_type.name}_{nav.name}"
    summary = f"Read the {nav.name} of a {entity_type.name}"
    if nav.many:
        get = _collection_get(target, f"list{stem}", summary)
        ref_schema = _REFS
    else:
        get = _entity_get(target, f"get{stem}", summary)
        ref_schema = {"type": "object", "properties": {"@iot.selfLink": {"type": "string"}}}
    paths: dict[str, Schema] = {where: {"parameters": [_id_param()], "get": get}}
    ref_ops: Schema = {
        "parameters": [_id_param()],
        "get": {
            "operationId": f"ref{stem}",
            "summary": f"References to the {nav.name} of a {entity_type.name}",
            "responses": _responses({"200": _ok("selfLinks", ref_schema)}),
        },
    }
    if nav.many:
        paths[where]["post"] = {
            "operationId": f"create{stem}",
            "summary": f"Create a {target.name} linked to the {entity_type.name}",
            "requestBody": _body(_ref(f"{target.name}Replace")),
            "responses": _responses({"201": _created(target)}),
        }
        ref_ops["post"] = {
            "operationId": f"link{stem}",
            "summary": f"Link an existing {target.name}",
            "requestBody": _body(
                {"type": "object", "required": ["@iot.id"], "properties": {"@iot.id": {"type": "integer"}}}
            ),
            "responses": _responses({"204": {"description": "linked"}}),
        }
    paths[f"{where}/$ref"] = ref_ops
    return paths


def _components() -> Schema:
    schemas: Schema = {"Error": ERROR}
    for entity_type in ALL_TYPES:
        name = entity_type.name
        schemas[name] = entity_schema(entity_type)
        schemas[f"{name}Collection"] = _collection_schema(entity_type)
        schemas[f"{name}Create"] = _create_schema(entity_type, required_links=True)
        schemas[f"{name}Replace"] = _create_schema(entity_type, required_links=False)
        schemas[f"{name}Update"] = _update_schema(entity_type)
    return {"schemas": schemas, "parameters": QUERY_OPTIONS, "securitySchemes": SECURITY_SCHEMES}


# README "Security": API keys (`twinhub keys`) as a bearer token or X-API-Key, or OIDC JWTs.
SECURITY_SCHEMES: Schema = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "an API key (thk_...) or an OIDC access token (JWT) of the configured provider",
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "an API key"},
}
# Reads are anonymous by default, writes need credentials: each operation accepts either scheme or
# none ({}), and a hub that refuses answers 401/403 (covered by the 4XX responses).
SECURITY: list[Schema] = [{}, {"bearer": []}, {"apiKey": []}]


def _root_path() -> Schema:
    return {
        "get": {
            "operationId": "serviceRoot",
            "summary": "The entity sets and serverSettings.conformance",
            "responses": _responses(
                {
                    "200": _ok(
                        "the service root",
                        {
                            "type": "object",
                            "required": ["value", "serverSettings"],
                            "properties": {"value": {"type": "array"}, "serverSettings": {"type": "object"}},
                        },
                    )
                }
            ),
        }
    }


MULTIPART = "multipart/mixed"


def _action_paths() -> dict[str, Schema]:
    """CreateObservations (§14.2, dataArray) and JSON $batch (§12, OData 4.01 JSON batch)."""
    data_array = {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["components", "dataArray"],
            "properties": {
                "Datastream": {"type": "object"},
                "MultiDatastream": {"type": "object"},
                "components": {"type": "array", "items": {"type": "string"}},
                "dataArray": {"type": "array", "items": {"type": "array"}},
            },
        },
    }
    batch = {
        "type": "object",
        "required": ["requests"],
        "properties": {
            "requests": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "method", "url"],
                    "properties": {
                        "id": {"type": "string"},
                        "method": {"type": "string", "enum": ["get", "post", "patch", "put", "delete"]},
                        "url": {"type": "string"},
                        "body": {},
                        "atomicityGroup": {"type": "string"},
                        "dependsOn": {"type": "array", "items": {"type": "string"}},
                    },
                },
            }
        },
    }
    links = {"type": "array", "items": {"type": "string"}}
    responses = {
        "type": "object",
        "properties": {"responses": {"type": "array", "items": {"type": "object"}}},
    }
    return {
        "/CreateObservations": {
            "post": {
                "operationId": "createObservations",
                "summary": "Create Observations in the dataArray format",
                "requestBody": _body(data_array),
                "responses": _responses({"201": _ok("selfLinks, or 'error' for a failed row", links)}),
            }
        },
        "/$batch": {
            "post": {
                "operationId": "batch",
                "summary": "A batch of requests: OData 4.01 JSON, or OData 4.0 multipart/mixed",
                "requestBody": _body(batch, (MULTIPART, {"schema": {"type": "string"}})),
                "responses": _responses(
                    {
                        "200": {
                            "description": "one response per request (per change set, multipart)",
                            "content": {
                                JSON: {"schema": responses},
                                MULTIPART: {"schema": {"type": "string"}},
                            },
                        }
                    }
                ),
            }
        },
    }


@functools.cache
def _paths() -> Schema:
    paths: Schema = {"/": _root_path()}
    for entity_type in ALL_TYPES:
        paths.update(_entity_paths(entity_type))
    paths.update(_action_paths())
    return paths


def openapi_document(service_url: str) -> Schema:
    """The whole document, for the STA service root `service_url` (e.g. https://host/v1.1)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "twinhub SensorThings API",
            "version": "1.1",
            "description": "OGC SensorThings API v1.1 (OGC 18-088); generated from the hub's data model.",
        },
        "servers": [{"url": service_url}],
        "paths": _paths(),
        "components": _components(),
        "security": SECURITY,
    }


async def handle_openapi(request: web.Request) -> web.StreamResponse:
    """GET /v1.1/api: the generated document with this hub's service root as its server."""
    state = AppState.of(request)
    return web.json_response(openapi_document(service_root(request, state.settings)))
