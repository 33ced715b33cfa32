# SPDX-License-Identifier: Apache-2.0
"""Settings from defaults, TOML and TWINHUB_* variables; every bad value named in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.config import SETTINGS_DOC, ConfigError, Settings, env_var, load_settings, redact_url


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "twinhub.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    settings = load_settings(environ={})
    assert settings.database_url is None
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert (settings.default_top, settings.max_top) == (100, 10000)
    assert settings.max_body_bytes == 16 * 1024 * 1024
    assert settings.migrate_on_start is True
    assert settings.data_dir.name == "twinhub"
    assert (settings.db_pool_min, settings.db_pool_max, settings.log_level) == (2, 16, "INFO")


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("http_port", "9090", 9090),
        ("http_host", " 0.0.0.0 ", "0.0.0.0"),
        ("migrate_on_start", "false", False),
        ("migrate_on_start", "0", False),
        ("log_level", "debug", "DEBUG"),
        ("base_url", "https://example.org/sta/", "https://example.org/sta"),
        ("database_url", "postgresql://u:p@db:5432/hub", "postgresql://u:p@db:5432/hub"),
        ("database_url", "postgresql://postgres@/hub?host=%2Frun", "postgresql://postgres@/hub?host=%2Frun"),
        ("mqtt_url", "mqtt://broker:1883", "mqtt://broker:1883"),
        ("data_dir", "/srv/twinhub", Path("/srv/twinhub")),
        ("max_top", "50000", 50000),
        ("database_url", "", None),  # empty means unset
    ],
)
def test_env_values_are_converted(name: str, raw: str, expected: Any) -> None:
    assert getattr(load_settings(environ={env_var(name): raw}), name) == expected


def test_toml_file(tmp_path: Path) -> None:
    config = write_toml(tmp_path, 'http_port = 9000\nmigrate_on_start = false\nbase_url = "http://h/x/"\n')
    settings = load_settings(config, environ={})
    assert (settings.http_port, settings.migrate_on_start, settings.base_url) == (9000, False, "http://h/x")


def test_config_file_from_environment(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "default_top = 7\n")
    assert load_settings(environ={"TWINHUB_CONFIG": str(config)}).default_top == 7


def test_argument_beats_config_variable(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "default_top = 7\n")
    other = tmp_path / "other.toml"
    other.write_text("default_top = 8\n", encoding="utf-8")
    assert load_settings(config, environ={"TWINHUB_CONFIG": str(other)}).default_top == 7


def test_environment_wins_over_toml(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "http_port = 9000\nhttp_host = '0.0.0.0'\n")
    settings = load_settings(config, environ={"TWINHUB_HTTP_PORT": "9001"})
    assert (settings.http_host, settings.http_port) == ("0.0.0.0", 9001)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"TWINHUB_HTTP_PORT": "abc"},
            "TWINHUB_HTTP_PORT: must be an integer between 1 and 65535, got 'abc'",
        ),
        ({"TWINHUB_HTTP_PORT": "0"}, "TWINHUB_HTTP_PORT: must be an integer between 1 and 65535, got '0'"),
        ({"TWINHUB_HTTP_PORT": "65536"}, "TWINHUB_HTTP_PORT: must be an integer between 1 and 65535"),
        ({"TWINHUB_HTTP_HOST": "  "}, "TWINHUB_HTTP_HOST: must be a host name or IP address"),
        (
            {"TWINHUB_MIGRATE_ON_START": "maybe"},
            "TWINHUB_MIGRATE_ON_START: must be true or false, got 'maybe'",
        ),
        ({"TWINHUB_DEFAULT_TOP": "0"}, "TWINHUB_DEFAULT_TOP: must be an integer of at least 1, got '0'"),
        ({"TWINHUB_MAX_TOP": "ten"}, "TWINHUB_MAX_TOP: must be an integer of at least 1, got 'ten'"),
        ({"TWINHUB_MAX_BODY_BYTES": "-5"}, "TWINHUB_MAX_BODY_BYTES: must be an integer of at least 1"),
        ({"TWINHUB_DB_POOL_MIN": "-1"}, "TWINHUB_DB_POOL_MIN: must be an integer of at least 0"),
        ({"TWINHUB_DB_POOL_MAX": "x"}, "TWINHUB_DB_POOL_MAX: must be an integer of at least 1"),
        ({"TWINHUB_LOG_LEVEL": "loud"}, "TWINHUB_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR or"),
        (
            {"TWINHUB_DATABASE_URL": "mysql://h/db"},
            "TWINHUB_DATABASE_URL: must be a URL starting with postgresql://",
        ),
        ({"TWINHUB_BASE_URL": "example.org/sta"}, "TWINHUB_BASE_URL: must be a URL starting with http://"),
        ({"TWINHUB_MQTT_URL": "tcp://broker"}, "TWINHUB_MQTT_URL: must be a URL starting with mqtt://"),
        (
            {"TWINHUB_DEFAULT_TOP": "500", "TWINHUB_MAX_TOP": "100"},
            "TWINHUB_DEFAULT_TOP: must not exceed max_top",
        ),
        ({"TWINHUB_DB_POOL_MIN": "20"}, "TWINHUB_DB_POOL_MIN: must not exceed db_pool_max (16), got 20"),
        ({"TWINHUB_MAX_TOP": "50"}, "TWINHUB_MAX_TOP: must be at least default_top (100), got 50"),
        (
            {"TWINHUB_CONFIG": "/nonexistent/twinhub.toml"},
            "TWINHUB_CONFIG /nonexistent/twinhub.toml: cannot read",
        ),
    ],
)
def test_bad_environment_value_names_the_setting(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=environ)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("http_port = 'abc'", "http_port: must be an integer between 1 and 65535, got 'abc'"),
        ("http_port = 70000", "http_port: must be an integer between 1 and 65535, got 70000"),
        ("http_host = 5", "http_host: must be text, got 5"),
        ("data_dir = 5", "data_dir: must be a directory path, got 5"),
        ("htp_port = 1", "unknown setting 'htp_port' (did you mean 'http_port'?)"),
        ("colour = 1\n[http]\nport = 1", "unknown settings 'colour', 'http'"),
        ("http_port = ", "not valid TOML"),
    ],
)
def test_bad_toml_names_file_and_setting(tmp_path: Path, toml: str, message: str) -> None:
    config = write_toml(tmp_path, toml + "\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert str(caught.value) == f"{config}: {message}" or str(caught.value).startswith(f"{config}: {message}")


def test_bad_value_hides_password() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"TWINHUB_DATABASE_URL": "mysql://user:secret@h/db"})
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:secret@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://postgres@/db?host=%2Ftmp", "postgresql://postgres@/db?host=%2Ftmp"),
        (
            "postgresql://u@h/db?password=secret&sslmode=require",
            "postgresql://u@h/db?password=***&sslmode=require",
        ),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_repr_hides_password() -> None:
    assert "secret" not in repr(Settings(database_url="postgresql://u:secret@h/db"))


def test_settings_are_frozen() -> None:
    settings = load_settings(environ={})
    with pytest.raises(ValueError, match="frozen"):
        settings.http_port = 1  # type: ignore[misc]


def test_direct_construction_checks_order() -> None:
    with pytest.raises(ValueError, match=r"default_top \(5\) must not exceed max_top \(4\)"):
        Settings(default_top=5, max_top=4)


def test_every_setting_is_documented() -> None:
    assert set(SETTINGS_DOC) == set(Settings.model_fields)
    assert all(len(text) > 10 for text in SETTINGS_DOC.values())
