# SPDX-License-Identifier: Apache-2.0
"""Typed settings from an optional TOML file and TWINHUB_* environment variables (env wins)."""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, get_args
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import annotated_types
import platformdirs
import pydantic
from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

ENV_PREFIX = "TWINHUB_"
CONFIG_ENV_VAR = "TWINHUB_CONFIG"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
COUNT_MODES = ("exact", "estimate")
MASK = "***"
MQTT_PROTOCOLS = ("5", "3.1.1")
SELECT_SCOPES = ("streams", "all")  # mqtt_select_scope
LOG_FORMATS = ("text", "json")
PARTITION_WIDTHS = ("day", "week", "month", "year")

# (smaller, larger) pairs checked after the fields themselves; one row per rule.
ORDERED_SETTINGS = (("default_top", "max_top"), ("db_pool_min", "db_pool_max"))

_URL_SCHEMES: dict[str, tuple[str, ...]] = {
    "database_url": ("postgresql", "postgres"),
    "base_url": ("http", "https"),
    "mqtt_url": ("mqtt", "mqtts", "ws", "wss"),
}


class ConfigError(ValueError):
    """A setting is missing, malformed or out of range; the message names it."""


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("twinhub"))


class ConfiguredKey(pydantic.BaseModel, frozen=True, extra="forbid"):
    """An API key given in the configuration: its roles and the SHA-256 of the whole key."""

    roles: tuple[str, ...]
    sha256: str = Field(pattern="^[0-9a-fA-F]{64}$")
    name: str = ""

    @field_validator("roles", mode="before")
    @classmethod
    def _check_roles(cls, value: object) -> tuple[str, ...]:
        from hub.auth.roles import parse_roles

        if not isinstance(value, str | list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError('must be a list of roles such as ["create", "read"]')
        return tuple(sorted(parse_roles(value)))


# Settings that take one of a few words: (the words, how a value is read, the message's lead).
_CHOICES: dict[str, tuple[tuple[str, ...], Callable[[str], str], str]] = {
    "log_level": (LOG_LEVELS, str.upper, "one of "),
    "log_format": (LOG_FORMATS, str.lower, ""),
    "count_mode": (COUNT_MODES, str.lower, "one of "),
    "partition_width": (PARTITION_WIDTHS, str.lower, ""),
    "mqtt_protocol": (MQTT_PROTOCOLS, str, ""),
    "mqtt_select_scope": (SELECT_SCOPES, str, ""),
}


class Settings(pydantic.BaseModel, frozen=True, extra="forbid"):
    """Effective configuration of one hub process."""

    database_url: str | None = Field(
        None,
        description="PostgreSQL URL (postgresql://user:password@host:port/db); unset: embedded PostgreSQL.",
    )
    database_read_urls: tuple[str, ...] = Field(
        (),
        description="Hot standbys of database_url that serve GETs (comma-separated in the environment); "
        "empty: every read goes to database_url.",
    )
    max_replica_lag: float = Field(
        5.0, gt=0, description="Seconds a standby may lag behind database_url before reads skip it."
    )
    replica_check_interval: float = Field(
        1.0, gt=0, description="Seconds between measurements of each standby's replay lag."
    )
    http_host: str = Field("127.0.0.1", description="Address the HTTP server listens on.")
    http_port: int = Field(8080, ge=1, le=65535, description="TCP port the HTTP server listens on.")
    base_url: str | None = Field(
        None,
        description="External base URL used in links (e.g. https://example.org/sta); unset: the request's.",
    )
    mqtt_url: str | None = Field(None, description="MQTT broker URL (mqtt://host:1883); unset: no broker.")
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Directory for local state such as the embedded PostgreSQL cluster.",
    )
    migrate_on_start: bool = Field(True, description="Apply pending database migrations when serving.")
    default_top: int = Field(100, ge=1, description="Page size when a request has no $top.")
    max_top: int = Field(10000, ge=1, description="Largest page size a request may ask for with $top.")
    max_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1, description="Largest accepted request body, in bytes."
    )
    log_level: str = Field("INFO", description="Logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    db_pool_min: int = Field(2, ge=0, description="Connections the database pool keeps open.")
    db_pool_max: int = Field(16, ge=1, description="Most connections the database pool opens.")
    statement_timeout_ms: int = Field(
        30000, ge=0, description="Longest a database statement may run, in ms (0: no limit); then 503."
    )
    count_mode: str = Field(
        "exact",
        description="$count of a whole entity set: 'exact', or 'estimate' (the planner's estimate, instant).",
    )
    mqtt_public_urls: tuple[str, ...] | None = Field(
        None,
        description="Broker URLs the service root advertises to clients (comma-separated in the environment, "
        "e.g. wss://example.org/mqtt,mqtts://example.org:8883); unset: mqtt_url without its credentials.",
    )
    mqtt_tls_ca_file: Path | None = Field(
        None,
        description="PEM file of the CA(s) that signed the broker's certificate (mqtts://, wss://); "
        "unset: the system's CAs.",
    )
    mqtt_tls_cert_file: Path | None = Field(
        None, description="PEM client certificate (mutual TLS; may hold the key too); unset: none."
    )
    mqtt_tls_key_file: Path | None = Field(
        None, description="PEM private key of mqtt_tls_cert_file, if not in that file."
    )
    mqtt_client_id: str = Field(
        "twinhub", description="MQTT client id; replicas in one share group need distinct ids."
    )
    mqtt_share_group: str | None = Field(
        None, description="MQTT 5 shared-subscription group: ingest subscribes as $share/<group>/<filter>."
    )
    mqtt_leave_on_stop: bool = Field(
        False,
        description="With a share group: on a clean stop, unsubscribe, drain and end the session (replicas "
        "whose client ids do not come back, e.g. Kubernetes pods); off: keep it and its queue for a restart.",
    )
    mqtt_protocol: str = Field("5", description="MQTT protocol version: 5 (falls back to 3.1.1) or 3.1.1.")
    mqtt_session_expiry: int = Field(
        86400, ge=0, description="Seconds the broker keeps the hub's session (and queues for it) while away."
    )
    mqtt_publish_v10: bool = Field(
        False, description="Also publish change notifications on the v1.0/... topic tree."
    )
    mqtt_select_topics: tuple[str, ...] = Field(
        ("result,phenomenonTime", "phenomenonTime,result"),
        description="$select forms also published as <topic>?$select=<form> (STA 14.1; an external broker "
        "does not tell the hub who subscribes to what); ';'-separated in the environment, ';' alone: none.",
    )
    # "streams" by default: a form such as result,phenomenonTime is a time series, which is a
    # stream's collection; on v1.1/Observations, Observations(id) and FeaturesOfInterest(f)/
    # Observations too, an Observation was 12 packets instead of 6, and the broker takes ~3 µs a
    # packet: MQTT ingest 15,900 against 23,600 obs/s (make bench, bench/results/).
    mqtt_select_scope: str = Field(
        "streams",
        description="Where an Observation's $select forms are published: 'streams' on its Datastream's "
        "or MultiDatastream's collection topic only, 'all' on each of its topics; other entities: 'all'.",
    )
    mqtt_qos: int = Field(1, ge=0, le=2, description="QoS of the ingest subscriptions and dead letters.")
    # QoS 0 by default: measured with bench/deployed.py, QoS 1 notifications cost the hub ~35 % more
    # CPU per HTTP-created Observation (a PUBACK to read for each of 4-5 topics) and ~15 % per
    # MQTT-ingested one; they are best-effort anyway (a full queue drops the oldest change).
    mqtt_notify_qos: int = Field(
        0,
        ge=0,
        le=2,
        description="QoS of change notifications: 0 (least CPU, lost while a subscriber is offline) or 1/2 "
        "(queued for offline persistent subscribers, ~35 % more hub CPU per created Observation).",
    )
    # Under load a batch takes what arrived while the previous one was written; a cap of 10000
    # instead of 2000 cut the hub's CPU per MQTT-ingested Observation by ~1/3, the broker's by ~1/3
    # and PostgreSQL's by ~10 % (bench/deployed.py, both orders). A quiet hub still writes after 50 ms.
    ingest_batch_size: int = Field(10000, ge=1, description="Rows that close an ingest batch.")
    ingest_batch_ms: int = Field(
        50, ge=1, description="Milliseconds after its first row that an ingest batch closes."
    )
    ingest_buffer_max: int = Field(
        20000, ge=1, description="Received but not yet committed messages before the hub stops reading."
    )
    ingest_workers: int = Field(
        1, ge=1, le=64, description="Ingest processes of `twinhub serve` (they share one MQTT subscription)."
    )
    dead_letter_prefix: str = Field(
        "twinhub/errors", description="Topic prefix under which rejected ingest messages are published."
    )
    adapters: tuple[str, ...] | None = Field(
        None,
        description="Ingest adapters to run (comma-separated in the environment); unset: all, on their "
        "default topics; empty: none.",
    )
    adapter_topics: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Topic filters per adapter, replacing its defaults (TOML table)."
    )
    adapter_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Options per adapter, e.g. the generic adapter's mappings (TOML)."
    )
    timezone: str = Field(
        "Europe/Berlin", description="Time zone of devices that send local times without an offset (Tasmota)."
    )
    dataset_labels: dict[str, str] = Field(
        default_factory=dict,
        description="Properties of provisioned Things and Datastreams, e.g. serviceName, layerName (TOML).",
    )
    viewer_tile_url: str | None = Field(
        None,
        description="Base map tiles of the viewer at / (https://host/{z}/{x}/{y}.png); unset: none.",
    )
    viewer_tile_attribution: str = Field(
        "", description="Attribution text the viewer shows for its base map tiles (their licence)."
    )
    log_format: str = Field(
        "text", description="Log lines as 'text' (for terminals) or 'json' (one object per line)."
    )
    ingest_metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of each `twinhub ingest` process's own /metrics (worker i of serve: port + i - 1); "
        "0: none.",
    )
    auth_anonymous_read: bool = Field(True, description="Clients without credentials may read (GET).")
    auth_anonymous_write: bool = Field(
        False,
        description="Clients without credentials may create, update and delete: for local development only.",
    )
    auth_api_keys: dict[str, ConfiguredKey] = Field(
        default_factory=dict,
        description="API keys by id with roles and SHA-256 (TOML table; JSON in the environment); "
        "besides those of `twinhub keys`.",
    )
    auth_jwks_url: str | None = Field(
        None, description="URL of the OIDC provider's JWKS; bearer JWTs are verified against it."
    )
    auth_jwks_file: Path | None = Field(None, description="A JWKS file, instead of auth_jwks_url.")
    auth_issuer: str | None = Field(
        None, validate_default=True, description="The `iss` every token must carry (required with a JWKS)."
    )
    auth_audience: str | None = Field(None, description="The `aud` tokens must carry; unset: not checked.")
    auth_roles_claim: str = Field(
        "realm_access.roles", description="Dotted path of the token claim that lists the roles."
    )
    rate_limit: int = Field(
        0, ge=0, description="Requests per second per client (API key, token or address); 0: no limit."
    )
    rate_limit_burst: int = Field(
        50, ge=1, description="Requests a client may send at once before rate_limit applies."
    )
    trusted_proxies: tuple[str, ...] = Field(
        (),
        description="Addresses/networks of reverse proxies whose X-Forwarded-For names the client "
        "(comma-separated in the environment).",
    )
    max_expand_depth: int = Field(
        5, ge=1, description="Deepest $expand (navigation steps) a request may ask."
    )
    max_filter_length: int = Field(8192, ge=1, description="Longest $filter text, in characters.")
    max_filter_nodes: int = Field(
        1000, ge=1, description="Most terms (operators, values, names) in the $filters of one request."
    )
    cache_control_metadata: str = Field(
        "no-cache",
        description="Cache-Control of reads of Things, Locations, HistoricalLocations, Sensors, "
        "ObservedProperties and FeaturesOfInterest (e.g. 'public, max-age=60').",
    )
    cache_control_observations: str = Field(
        "no-cache",
        description="Cache-Control of reads that involve Observations, Datastreams or MultiDatastreams.",
    )
    gzip_min_bytes: int = Field(
        1024,
        ge=0,
        description="Smallest response body, in bytes, sent gzip-compressed when accepted (0: never).",
    )
    cors_origins: tuple[str, ...] = Field(
        (),
        description="Origins allowed to read cross-origin (comma-separated in the environment; '*': any); "
        "empty: CORS off.",
    )
    cors_allow_writes: bool = Field(
        False, description="Whether CORS also allows POST, PATCH, PUT and DELETE from the allowed origins."
    )
    cors_max_age: int = Field(600, ge=0, description="Seconds a browser may cache a CORS preflight answer.")
    partition_width: str = Field(
        "month", description="Time span of one Observation partition: day, week, month or year (UTC)."
    )
    partition_ahead: int = Field(
        3, ge=0, le=1000, description="Partitions maintenance creates ahead of the current one."
    )
    retention_days: int | None = Field(
        None, ge=1, description="Days Observations are kept (whole partitions dropped after); unset: forever."
    )
    retention_datasets: dict[str, int] = Field(
        default_factory=dict,
        description="Retention days per dataset (TOML table, dataset name = days; 0: forever), "
        "overriding retention_days.",
    )
    retention_dataset_property: str = Field(
        "serviceName", description="Datastream property whose value names a Datastream's dataset."
    )
    maintenance_interval_s: int = Field(
        3600, ge=0, description="Seconds between maintenance runs of `twinhub serve` (0: never)."
    )
    rollup_retention_days: int | None = Field(
        None,
        ge=1,
        description="Days hourly and daily rollups are kept (docs/aggregates.md); unset: forever. "
        "At least the longest Observation retention.",
    )
    apply_max_rows: int = Field(
        500_000, ge=1, description="Rows (raw Observations plus rollup rows) one $apply request may read."
    )

    @field_validator("database_url", "base_url", "mqtt_url")
    @classmethod
    def _check_url(cls, value: str | None, info: pydantic.ValidationInfo) -> str | None:
        if value is None:
            return None
        schemes = _URL_SCHEMES[str(info.field_name)]
        parts = urlsplit(value)
        # A socket DSN (postgresql://user@/db?host=/dir) has no netloc, so only web URLs need one.
        if parts.scheme not in schemes or (info.field_name != "database_url" and not parts.netloc):
            raise ValueError(f"must be a URL starting with {_either(f'{s}://' for s in schemes)}")
        # Links are built as base_url + "/v1.1/...", so a trailing slash would double up.
        return value.rstrip("/") if info.field_name == "base_url" else value

    @field_validator("database_read_urls", mode="before")
    @classmethod
    def _split_read_urls(cls, value: object) -> object:
        if isinstance(value, str):  # TWINHUB_DATABASE_READ_URLS=postgresql://a/db,postgresql://b/db
            return tuple(url.strip() for url in value.split(",") if url.strip())
        return value

    @field_validator("database_read_urls")
    @classmethod
    def _check_read_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        schemes = _URL_SCHEMES["database_url"]
        for url in value:
            if urlsplit(url).scheme not in schemes:
                raise ValueError(
                    f"{redact_url(url)!r} must be a URL starting with {_either(f'{s}://' for s in schemes)}"
                )
        return value

    @field_validator("mqtt_public_urls", mode="before")
    @classmethod
    def _split_public_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(url.strip() for url in value.split(",") if url.strip())
        return value

    @field_validator("mqtt_public_urls")
    @classmethod
    def _check_public_urls(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        schemes = _URL_SCHEMES["mqtt_url"]
        for url in value or ():
            parts = urlsplit(url)
            if parts.scheme not in schemes or not parts.netloc:
                raise ValueError(f"{url!r} must be a URL starting with {_either(f'{s}://' for s in schemes)}")
        return value

    @field_validator(*_CHOICES)
    @classmethod
    def _check_choice(cls, value: str, info: pydantic.ValidationInfo) -> str:
        """A setting that takes one of a few words (_CHOICES)."""
        choices, read, lead = _CHOICES[str(info.field_name)]
        found = read(value.strip())
        if found not in choices:
            raise ValueError(f"must be {lead}{_either(choices)}")
        return found

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):  # TWINHUB_CORS_ORIGINS=https://a.example,https://b.example
            return tuple(origin.strip().rstrip("/") for origin in value.split(",") if origin.strip())
        return value

    @field_validator("mqtt_select_topics", mode="before")
    @classmethod
    def _split_select_topics(cls, value: object) -> object:
        if isinstance(value, str):  # TWINHUB_MQTT_SELECT_TOPICS=result,phenomenonTime;result
            return tuple(form.strip() for form in value.split(";") if form.strip())
        return value

    @field_validator("mqtt_select_topics")
    @classmethod
    def _check_select_topics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from schemas.model import ALL_TYPES  # names are checked against the model, as in $select

        known = {p.name for t in ALL_TYPES for p in t.properties} | {"id", "@iot.id"}
        forms = []
        for form in value:
            names = [name.strip() for name in form.split(",")]
            unknown = [name for name in names if name not in known]
            if unknown:
                raise ValueError(f"{form!r}: {unknown[0]!r} is no property of any entity type")
            forms.append(",".join(names))
        return tuple(forms)

    @field_validator("adapters", mode="before")
    @classmethod
    def _split_adapters(cls, value: object) -> object:
        if isinstance(value, str):  # TWINHUB_ADAPTERS=ttn,shelly
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @field_validator("adapters")
    @classmethod
    def _check_adapters(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        from adapters import FAMILIES  # the adapter table lives with the adapters

        unknown = [name for name in value or () if name not in FAMILIES]
        if unknown:
            raise ValueError(f"unknown adapter {unknown[0]!r}; known: {', '.join(FAMILIES)}")
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)"
            ) from None
        return value

    @field_validator("viewer_tile_url")
    @classmethod
    def _check_tile_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not value.startswith(("http://", "https://", "/")) or not all(
            part in value for part in ("{z}", "{x}", "{y}")
        ):
            raise ValueError("must be an http(s) URL template with {z}, {x} and {y}")
        return value

    @field_validator("retention_datasets")
    @classmethod
    def _check_retention_datasets(cls, value: dict[str, int]) -> dict[str, int]:
        negative = [name for name, days in value.items() if days < 0]
        if negative:
            raise ValueError(f"dataset {negative[0]!r}: days must be 0 (forever) or more")
        return value

    @field_validator("http_host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a host name or IP address")
        return value.strip()

    @field_validator("mqtt_client_id", "dead_letter_prefix")
    @classmethod
    def _check_topic_text(cls, value: str, info: pydantic.ValidationInfo) -> str:
        value = value.strip().strip("/") if info.field_name == "dead_letter_prefix" else value.strip()
        if not value or any(char in value for char in "+#\0"):
            raise ValueError("must be non-empty text without the MQTT wildcards + and #")
        return value

    @field_validator("mqtt_share_group")
    @classmethod
    def _check_share_group(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(char in value for char in "/+#")):
            raise ValueError("must be a name without /, + or #")
        return value.strip() if value is not None else None

    @field_validator("data_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("auth_api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: object) -> object:
        if isinstance(value, str):  # TWINHUB_AUTH_API_KEYS='{"<id>": {"roles": [...], "sha256": "..."}}'
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ValueError(
                    'must be a JSON object {"<id>": {"roles": [...], "sha256": "..."}}'
                ) from None
        return value

    @field_validator("auth_api_keys")
    @classmethod
    def _check_key_ids(cls, value: dict[str, ConfiguredKey]) -> dict[str, ConfiguredKey]:
        from hub.auth.keys import valid_key_id

        bad = [key_id for key_id in value if not valid_key_id(key_id)]
        if bad:
            raise ValueError(f"key id {bad[0]!r} is not 10 hex digits (as `twinhub keys create` makes them)")
        return value

    @field_validator("auth_jwks_url")
    @classmethod
    def _check_jwks_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be a URL starting with http:// or https://")
        return value

    @field_validator("auth_issuer")
    @classmethod
    def _check_issuer(cls, value: str | None, info: pydantic.ValidationInfo) -> str | None:
        url, file = info.data.get("auth_jwks_url"), info.data.get("auth_jwks_file")
        if url is not None and file is not None:
            raise ValueError("set only one of auth_jwks_url and auth_jwks_file")
        if (url is not None or file is not None) and not value:
            raise ValueError("must be set when tokens are verified (auth_jwks_url or auth_jwks_file)")
        return value

    @field_validator("auth_roles_claim")
    @classmethod
    def _check_claim(cls, value: str) -> str:
        if not value.strip() or any(not part for part in value.strip().split(".")):
            raise ValueError("must be a claim name or a dotted path such as realm_access.roles")
        return value.strip()

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not an IP address or network (e.g. 10.0.0.0/8)") from None
        return value

    @model_validator(mode="after")
    def _check_tls_key(self) -> Settings:
        if self.mqtt_tls_key_file is not None and self.mqtt_tls_cert_file is None:
            raise ValueError("mqtt_tls_key_file needs mqtt_tls_cert_file (the certificate it belongs to)")
        return self

    @model_validator(mode="after")
    def _check_order(self) -> Settings:
        for smaller, larger in ORDERED_SETTINGS:
            low, high = getattr(self, smaller), getattr(self, larger)
            if low > high:
                raise PydanticCustomError(
                    "setting_order",
                    "{smaller} ({low}) must not exceed {larger} ({high})",
                    {"smaller": smaller, "larger": larger, "low": low, "high": high},
                )
        return self

    @model_validator(mode="after")
    def _check_rollup_retention(self) -> Settings:
        # The planner serves from rollups wherever they align: they must cover what raw rows cover.
        kept = [self.retention_days, *self.retention_datasets.values()]
        longest = None if any(not days for days in kept) else max(d for d in kept if d)
        rollups = self.rollup_retention_days
        if rollups is not None and (longest is None or rollups < longest):
            raise PydanticCustomError(
                "rollup_retention",
                "rollup_retention_days ({rollups}) must be unset or at least the longest Observation "
                "retention ({longest})",
                {"rollups": rollups, "longest": "forever" if longest is None else f"{longest} days"},
            )
        return self

    def redacted(self) -> dict[str, Any]:
        """Return the settings as a dict with passwords in URLs masked, for printing."""
        values = self.model_dump()
        for name in _URL_SCHEMES:
            if values[name] is not None:
                values[name] = redact_url(values[name])
        values["database_read_urls"] = tuple(redact_url(url) for url in self.database_read_urls)
        return values

    def __repr_args__(self) -> Any:
        # Settings end up in logs and tracebacks; never show a database password there.
        return list(self.redacted().items())


SETTINGS_DOC: dict[str, str] = {name: str(f.description) for name, f in Settings.model_fields.items()}


def _either(choices: Iterable[str]) -> str:
    """Join choices as 'a, b or c' for error messages."""
    *most, last = choices
    return f"{', '.join(most)} or {last}" if most else last


def env_var(name: str) -> str:
    """Return the environment variable that sets the setting `name`."""
    return ENV_PREFIX + name.upper()


def redact_url(url: str) -> str:
    """Replace the password in a URL (user:password@ or ?password=) with ***."""
    parts = urlsplit(url)
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    netloc = f"{user}:{MASK}@{hostinfo}" if password else parts.netloc
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "password" for key, _ in query):
        masked = [(key, MASK if key == "password" else value) for key, value in query]
        return urlunsplit(parts._replace(netloc=netloc, query=urlencode(masked, safe="/*")))
    return urlunsplit(parts._replace(netloc=netloc))


def load_settings(config_file: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from TOML (argument, else $TWINHUB_CONFIG) then TWINHUB_* variables.

    Empty environment variables count as unset. Raises ConfigError naming the offending setting.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    origin = "config file"
    if config_file is None and environ.get(CONFIG_ENV_VAR):
        config_file, origin = Path(environ[CONFIG_ENV_VAR]), CONFIG_ENV_VAR
    if config_file is not None:
        for name, value in _read_toml(config_file, origin).items():
            values[name], sources[name] = value, f"{config_file}: {name}"
    for name in Settings.model_fields:
        raw = environ.get(env_var(name), "")
        if raw != "":
            values[name], sources[name] = raw, env_var(name)
    try:
        return Settings.model_validate(values)
    except pydantic.ValidationError as exc:
        raise ConfigError(_explain(exc, values, sources)) from None


def _read_toml(path: Path, origin: str) -> dict[str, Any]:
    """Parse a config file and reject keys that are not settings."""
    try:
        with path.open("rb") as stream:
            table = tomllib.load(stream)
    except OSError as exc:
        raise ConfigError(f"{origin} {path}: cannot read it: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = [key for key in table if key not in Settings.model_fields]
    if unknown:
        raise ConfigError(f"{path}: unknown setting{'s' * (len(unknown) > 1)} " + _describe_unknown(unknown))
    return table


def _describe_unknown(keys: list[str]) -> str:
    described = []
    for key in keys:
        close = difflib.get_close_matches(key, list(Settings.model_fields), n=1)
        described.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    return ", ".join(described)


def _explain(exc: pydantic.ValidationError, values: Mapping[str, Any], sources: Mapping[str, str]) -> str:
    """Turn the first validation error into one line: '<source>: <expectation>, got <value>'."""
    error = exc.errors()[0]
    ctx = error.get("ctx") or {}
    if error["type"] == "setting_order":
        return _explain_order(ctx, sources)
    name = str(error["loc"][0])
    if len(error["loc"]) > 1:  # inside a table such as auth_api_keys.<id>.roles: pydantic's words
        inner = ".".join(str(part) for part in error["loc"][1:])
        return f"{sources.get(name, name)}: {inner}: {ctx.get('error') or error['msg']}"
    expectation = str(ctx["error"]) if error["type"] == "value_error" else _expectation(name)
    return f"{sources.get(name, name)}: {expectation}, got {_show(name, values.get(name))}"


def _explain_order(ctx: Mapping[str, Any], sources: Mapping[str, str]) -> str:
    """Blame whichever of two ordered settings was set; the other may be a default."""
    smaller, larger, low, high = ctx["smaller"], ctx["larger"], ctx["low"], ctx["high"]
    if larger in sources and smaller not in sources:
        return f"{sources[larger]}: must be at least {smaller} ({low}), got {high}"
    return f"{sources.get(smaller, smaller)}: must not exceed {larger} ({high}), got {low}"


def _expectation(name: str) -> str:
    """Describe what a field accepts, from its type and bounds."""
    field = Settings.model_fields[name]
    kinds = {
        int: "an integer",
        float: "a number",
        bool: "true or false",
        Path: "a directory path",
        str: "text",
    }
    kind = next((text for tp, text in kinds.items() if tp in (field.annotation, *get_args(field.annotation))))
    low = next((m.ge for m in field.metadata if isinstance(m, annotated_types.Ge)), None)
    high = next((m.le for m in field.metadata if isinstance(m, annotated_types.Le)), None)
    above = next((m.gt for m in field.metadata if isinstance(m, annotated_types.Gt)), None)
    if above is not None:  # the replica lag and check interval: seconds, more than 0
        return f"must be {kind} greater than {above}"
    if low is not None and high is not None:
        return f"must be {kind} between {low} and {high}"
    if low is not None:
        return f"must be {kind} of at least {low}"
    return f"must be {kind}"


def _show(name: str, value: Any) -> str:
    """Quote a rejected value for an error message, masking URL passwords and cutting long ones."""
    if isinstance(value, str) and name in _URL_SCHEMES:
        value = redact_url(value)
    if name == "database_read_urls":  # a comma-separated text, or a TOML list
        parts = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
        value = ",".join(redact_url(str(part)) for part in parts) if parts else value
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


__all__ = [
    "CONFIG_ENV_VAR",
    "SETTINGS_DOC",
    "ConfigError",
    "Settings",
    "env_var",
    "load_settings",
    "redact_url",
]
