# SPDX-License-Identifier: Apache-2.0
"""Validation of create and update request bodies, derived from the data model in `schemas.model`.

Each `Kind` has one rule (a strict Python type plus an optional converter); the pydantic models
for create and update are built from an entity type's Property table and those rules.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from typing import Annotated, Any, cast

import pydantic

from schemas.model import COMPLEX_OBSERVATION, MULTI_DATASTREAM, EntityType, Kind, Property


class ValidationError(ValueError):
    """A request body that does not fit the data model; str() is "<Type.field>: <what is wrong>"."""

    def __init__(self, field: str, message: str) -> None:
        # Both go to args so the exception survives pickling (e.g. across process pools).
        super().__init__(field, message)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


# --- ISO 8601 times (§8.2.x "TM_Instant"/"TM_Period": ISO 8601 time strings) -------------------

# The extended format with a time of day; `fromisoformat` alone would also take dates, week dates
# and the basic format, which STA clients never mean.
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?")

# PnW or PnYnMnDTnHnMnS; only days and smaller may carry a decimal fraction.
_NUMBER = r"\d+(?:[.,]\d+)?"
_DURATION = re.compile(
    rf"P(?:(?P<weeks>{_NUMBER})W"
    rf"|(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<days>{_NUMBER})D)?"
    rf"(?:T(?=\d)(?:(?P<hours>{_NUMBER})H)?(?:(?P<minutes>{_NUMBER})M)?(?:(?P<seconds>{_NUMBER})S)?)?)"
)
_SECONDS_PER = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}


@dataclass(frozen=True)
class _Duration:
    """An ISO 8601 duration: calendar months (years fold into them) plus an exact time span."""

    months: int
    span: timedelta


def _show(value: object) -> str:
    """A short repr of client input for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),  # before int: bool is a subclass of int
    (int, "a number"),
    (float, "a number"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
    (type(None), "null"),
)


def _json_type(value: object) -> str:
    """The JSON type name of a parsed JSON value, for error messages."""
    return next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), type(value).__name__)


def _local_instant(text: str) -> datetime | None:
    """Parse an instant keeping its own offset (UTC when it has none); None when it is not one."""
    text = text.upper()  # RFC 3339 §5.6 allows lower-case "t" and "z"
    if not _INSTANT.fullmatch(text):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:  # out-of-range fields, e.g. hour 24 or February 30
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_instant(text: str, field: str) -> datetime:
    """Parse an ISO 8601 instant into an aware UTC datetime; a missing offset means UTC."""
    parsed = _local_instant(text)
    if parsed is None:
        raise ValidationError(field, f"not an ISO 8601 instant: {_show(text)}")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValidationError(field, f"instant out of range: {_show(text)}") from None


def _duration(text: str) -> _Duration | None:
    """Parse an ISO 8601 duration; None when it is not one."""
    match = _DURATION.fullmatch(text.upper())
    if match is None or not any(match.groupdict().values()):
        return None
    given = [(unit, raw) for unit, raw in match.groupdict().items() if raw is not None]
    # ISO 8601 §4.4.3.2: only the lowest-order component may have a decimal fraction.
    if any("." in raw or "," in raw for _, raw in given[:-1]):
        return None
    seconds = sum(float(raw.replace(",", ".")) * _SECONDS_PER[u] for u, raw in given if u in _SECONDS_PER)
    months = int(match["years"] or 0) * 12 + int(match["months"] or 0)
    return _Duration(months, timedelta(seconds=seconds))


def _add_months(t: datetime, months: int) -> datetime:
    """Calendar arithmetic: move by whole months, clamping the day to the month's length."""
    year, month0 = divmod(t.month - 1 + months, 12)
    year += t.year
    day = min(t.day, calendar.monthrange(year, month0 + 1)[1])
    return t.replace(year=year, month=month0 + 1, day=day)


def _interval(start_text: str, end_text: str) -> tuple[datetime, datetime] | None:
    """Resolve `start/end`, `start/duration` or `duration/end` in the instants' own offsets."""
    start, end = _local_instant(start_text), _local_instant(end_text)
    if start is not None and end is not None:
        return start, end
    if start is not None and (forward := _duration(end_text)) is not None:
        return start, _add_months(start, forward.months) + forward.span
    if end is not None and (back := _duration(start_text)) is not None:
        return _add_months(end, -back.months) - back.span, end
    return None


def _bounds(value: str) -> tuple[datetime, datetime] | None:
    """An instant as (t, t) or an interval as (start, end), in the given offsets; None if neither."""
    start_text, slash, end_text = value.partition("/")
    if slash:
        return _interval(start_text, end_text)
    instant = _local_instant(value)
    return None if instant is None else (instant, instant)


def parse_time(value: object, field: str) -> tuple[datetime, datetime]:
    """Parse an ISO 8601 instant (as (t, t)) or interval into aware UTC (start, end)."""
    if not isinstance(value, str):
        expected = "must be an ISO 8601 instant or interval string"
        raise ValidationError(field, f"{expected}, not {_json_type(value)}")
    try:
        bounds = _bounds(value)
        utc = None if bounds is None else (bounds[0].astimezone(UTC), bounds[1].astimezone(UTC))
    except (OverflowError, ValueError):  # a duration or offset that leaves datetime's range
        raise ValidationError(field, f"time out of range: {_show(value)}") from None
    if utc is None:
        raise ValidationError(field, f"not an ISO 8601 instant or interval: {_show(value)}")
    if utc[0] > utc[1]:
        raise ValidationError(field, f"interval starts after it ends: {_show(value)}")
    return utc


# --- GeoJSON (RFC 7946 §3) ------------------------------------------------------------------------


class _Bad(Exception):
    """A structural GeoJSON error; validate_geojson adds the field name."""


_Check = Callable[[object, str], None]


def _at(where: str, name: str) -> str:
    """Join a JSON path for messages: `geometry` + `coordinates` -> `geometry.coordinates`."""
    return f"{where}.{name}" if where else name


def _position(value: object, where: str) -> None:
    """A position is 2 or 3 finite numbers (RFC 7946 §3.1.1: longitude, latitude, elevation)."""
    if not isinstance(value, list) or not 2 <= len(value) <= 3:
        raise _Bad(f"{where} must be a position: an array of 2 or 3 numbers")
    for number in value:
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            raise _Bad(f"{where} must contain only numbers, found {_show(number)}")


def _many(check: _Check, minimum: int, what: str) -> _Check:
    """An array of at least `minimum` items that each pass `check`."""

    def run(value: object, where: str) -> None:
        if not isinstance(value, list):
            raise _Bad(f"{where} must be an array of {what}")
        # Items first: a wrongly nested array then gets blamed for its nesting, not for its length.
        for index, item in enumerate(value):
            check(item, f"{where}[{index}]")
        if len(value) < minimum:
            raise _Bad(f"{where} needs at least {minimum} {what}, has {len(value)}")

    return run


_line = _many(_position, 2, "positions")  # §3.1.4


def _ring(value: object, where: str) -> None:
    """A linear ring: a closed line of at least 4 positions (§3.1.6)."""
    _many(_position, 4, "positions (a linear ring)")(value, where)
    positions = cast(list[object], value)
    if positions[0] != positions[-1]:
        raise _Bad(f"{where} is not a closed ring: its first and last positions differ")


_polygon = _many(_ring, 1, "linear rings")

_COORDINATES: dict[str, _Check] = {
    "Point": _position,
    "MultiPoint": _many(_position, 1, "positions"),
    "LineString": _line,
    "MultiLineString": _many(_line, 1, "line strings"),
    "Polygon": _polygon,
    "MultiPolygon": _many(_polygon, 1, "polygons"),
}


def _geometry(value: object, where: str, nested: bool = False) -> None:
    """A geometry object, or a GeometryCollection of non-collection geometries (§3.1.8)."""
    kind = value.get("type") if isinstance(value, dict) else None
    if not isinstance(value, dict) or kind is None:
        what = (
            f"{where} must be a GeoJSON geometry object"
            if where
            else "must be a GeoJSON geometry or Feature object"
        )
        raise _Bad(f"{what} with a 'type'")
    if kind == "GeometryCollection":
        # Nested collections "SHOULD be avoided" (§3.1.8); refusing them also bounds the recursion.
        if nested:
            raise _Bad(f"{where}: nested GeometryCollections are not supported")
        members = _many(partial(_geometry, nested=True), 1, "geometries")
        members(value.get("geometries"), _at(where, "geometries"))
        return
    check = _COORDINATES.get(kind) if isinstance(kind, str) else None
    if check is None:
        raise _Bad(f"{_at(where, 'type')}: unsupported geometry type {_show(kind)}")
    if "coordinates" not in value:
        raise _Bad(f"{_at(where, 'coordinates')} is missing")
    check(value["coordinates"], _at(where, "coordinates"))


def _feature(value: dict[str, Any]) -> None:
    """A Feature with a geometry (§3.2); a Location or FeatureOfInterest needs a place."""
    if value.get("geometry") is None:
        raise _Bad("geometry is missing: a Feature must have a geometry here")
    _geometry(value["geometry"], "geometry")
    if value.get("properties") is not None and not isinstance(value["properties"], dict):
        raise _Bad("properties must be an object or null")


def validate_geojson(value: object, field: str) -> dict[str, Any]:
    """Check that value is a GeoJSON geometry or a Feature with a geometry; return it unchanged."""
    try:
        if isinstance(value, dict) and value.get("type") == "Feature":
            _feature(value)
        else:
            _geometry(value, "")
    except _Bad as exc:
        raise ValidationError(field, str(exc)) from None
    return cast(dict[str, Any], value)


# --- Property kinds ----------------------------------------------------------------------------


def _instant(value: object, field: str) -> datetime:
    """An INSTANT property: one ISO 8601 instant string."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be an ISO 8601 instant string, not {_json_type(value)}")
    return parse_instant(value, field)


def _unit(value: object, field: str) -> dict[str, Any]:
    """A unitOfMeasurement (§8.2.4, Datastream): an object whose name/symbol/definition are strings."""
    if not isinstance(value, dict):
        expected = "must be an object with name, symbol and definition"
        raise ValidationError(field, f"{expected}, not {_json_type(value)}")
    for key in ("name", "symbol", "definition"):
        if value.get(key) is not None and not isinstance(value[key], str):
            raise ValidationError(f"{field}.{key}", f"must be a string or null, not {_json_type(value[key])}")
    return value


@dataclass(frozen=True)
class _KindRule:
    """How one Kind is validated: a strict type pydantic checks, after an optional converter."""

    annotation: Any
    convert: Callable[[object, str], object] | None = None
    null_is_value: bool = False  # JSON: null is a legitimate value (e.g. a null result), not absence


_KINDS: dict[Kind, _KindRule] = {
    Kind.TEXT: _KindRule(str),
    Kind.OBJECT: _KindRule(dict[str, Any]),
    Kind.JSON: _KindRule(Any, null_is_value=True),
    Kind.INSTANT: _KindRule(datetime, _instant),
    Kind.TIME: _KindRule(tuple[datetime, datetime], parse_time),
    # An instant is a zero-length interval: clients send instants for validTime, too.
    Kind.INTERVAL: _KindRule(tuple[datetime, datetime], parse_time),
    Kind.GEOJSON: _KindRule(dict[str, Any], validate_geojson),
    Kind.UNIT: _KindRule(dict[str, Any], _unit),
    Kind.ARRAY: _KindRule(list[Any]),
}

# pydantic error types -> what to tell the client (the input's JSON type is appended).
_MESSAGES = {
    "string_type": "must be a string",
    "dict_type": "must be a JSON object",
    "list_type": "must be a JSON array",
    "datetime_type": "must be an ISO 8601 instant string",
    "tuple_type": "must be an ISO 8601 instant or interval string",
}

_CONFIG = pydantic.ConfigDict(strict=True, extra="forbid")
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")


def _convert(convert: Callable[[object, str], object], field: str, value: object) -> object:
    """Run a kind's converter; null passes through to the (nullable or not) type check."""
    return None if value is None else convert(value, field)


def _field(entity_type: EntityType, prop: Property, create: bool) -> tuple[Any, Any]:
    """The pydantic field definition for one property."""
    rule = _KINDS[prop.kind]
    annotation = rule.annotation
    if not rule.null_is_value and not prop.required:
        annotation = annotation | None
    if rule.convert is not None:
        convert = partial(_convert, rule.convert, f"{entity_type.name}.{prop.name}")
        annotation = Annotated[annotation, pydantic.BeforeValidator(convert)]
    default = ... if create and prop.required else None
    return annotation, pydantic.Field(default, alias=prop.name)


def _attribute(name: str) -> str:
    """The model attribute for an STA name (`encodingType` -> `encoding_type`); the alias is the STA name."""
    return _CAMEL_HUMP.sub(r"_\1", name).lower()


def _build_model(entity_type: EntityType, create: bool) -> type[pydantic.BaseModel]:
    """Build the create or update model; read-only properties are left out (they are dropped)."""
    fields: dict[str, Any] = {
        _attribute(p.name): _field(entity_type, p, create) for p in entity_type.properties if not p.read_only
    }
    name = f"{entity_type.name}{'Create' if create else 'Update'}"
    return pydantic.create_model(name, __config__=_CONFIG, **fields)


@cache
def create_model_for(entity_type: EntityType) -> type[pydantic.BaseModel]:
    """The pydantic model for a create body: required properties must be present."""
    return _build_model(entity_type, create=True)


@cache
def update_model_for(entity_type: EntityType) -> type[pydantic.BaseModel]:
    """The pydantic model for an update body: everything optional, but required ones not null."""
    return _build_model(entity_type, create=False)


def _translate(entity_type: EntityType, exc: pydantic.ValidationError) -> ValidationError:
    """Turn pydantic's errors into one ValidationError that names the field and the problem."""
    errors = exc.errors(include_url=False)
    unknown = [str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        noun = "property" if len(unknown) == 1 else "properties"
        return ValidationError(entity_type.name, f"unknown {noun} " + ", ".join(map(repr, unknown)))
    first = errors[0]
    original = first.get("ctx", {}).get("error")
    if isinstance(original, ValidationError):
        return original
    field = f"{entity_type.name}.{first['loc'][0]}"
    if first["type"] == "missing":
        return ValidationError(field, "is required")
    if first["input"] is None:
        return ValidationError(field, "must not be null")
    message = _MESSAGES.get(first["type"], "is not valid")
    return ValidationError(field, f"{message}, not {_json_type(first['input'])}")


def _validate(
    model: type[pydantic.BaseModel], entity_type: EntityType, props: Mapping[str, object]
) -> dict[str, object]:
    """Validate props with model, dropping read-only properties; keys of the result are STA names."""
    by_name = entity_type.property_by_name
    writable = {k: v for k, v in props.items() if k not in by_name or not by_name[k].read_only}
    try:
        instance = model.model_validate(writable)
    except pydantic.ValidationError as exc:
        raise _translate(entity_type, exc) from None
    given = instance.model_fields_set
    fields = model.model_fields.items()
    return {info.alias or name: getattr(instance, name) for name, info in fields if name in given}


def _multi_datastream(values: Mapping[str, object]) -> None:
    """OGC 18-088 §10.2 (Table 26, req/multi-datastream/properties): a MultiDatastream's
    observationType is fixed to OM_ComplexObservation; multiObservationDataTypes lists one
    observationType URI (a string) per component."""
    kind = values.get("observationType")
    if kind is not None and kind != COMPLEX_OBSERVATION:
        raise ValidationError(
            "MultiDatastream.observationType", f"must be {COMPLEX_OBSERVATION}, not {_show(kind)}"
        )
    types = values.get("multiObservationDataTypes")
    for index, item in enumerate(types if isinstance(types, list) else []):
        if not isinstance(item, str) or not item:
            where = f"MultiDatastream.multiObservationDataTypes[{index}]"
            raise ValidationError(where, f"must be an observationType URI string, not {_json_type(item)}")


# Rules across one entity's values that no single Kind expresses, by entity type name.
_ENTITY_RULES: dict[str, Callable[[Mapping[str, object]], None]] = {
    MULTI_DATASTREAM.name: _multi_datastream,
}


def _no_rule(values: Mapping[str, object]) -> None:
    return None


def validate_create(entity_type: EntityType, props: Mapping[str, object]) -> dict[str, object]:
    """Validate the properties of a create body; returns only the properties given, converted."""
    values = _validate(create_model_for(entity_type), entity_type, props)
    _ENTITY_RULES.get(entity_type.name, _no_rule)(values)
    return values


def validate_update(entity_type: EntityType, props: Mapping[str, object]) -> dict[str, object]:
    """Validate the properties of an update body (PATCH/PUT); returns only those given, converted."""
    values = _validate(update_model_for(entity_type), entity_type, props)
    _ENTITY_RULES.get(entity_type.name, _no_rule)(values)
    return values
