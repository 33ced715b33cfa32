# SPDX-License-Identifier: Apache-2.0
"""deploy/compose.yaml as `docker compose config` renders it: services, scale-out, health, secrets."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from deploy_helpers import COMPOSE_ENV, DEPLOY, MOSQUITTO, compose_file, render_compose

from hub.config import Settings, load_settings

HUBS = ("hub-1", "hub-2")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return compose_file()


def test_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {*HUBS, "db", "db-replica", "broker"}
    assert compose["services"]["db"]["image"].startswith("postgis/postgis:")


@pytest.mark.parametrize("hub", HUBS)
def test_hub_settings_are_real_settings(compose: dict[str, Any], hub: str) -> None:
    environment = compose["services"][hub]["environment"]
    names = {key.removeprefix("TWINHUB_").lower() for key in environment}
    assert names <= set(Settings.model_fields), names - set(Settings.model_fields)
    settings = load_settings(None, environ=environment)
    assert settings.database_url is not None
    assert settings.database_url.startswith("postgresql://twinhub:db-pw@db:5432/")
    assert settings.mqtt_url == f"mqtt://twinhub:{COMPOSE_ENV['HUB_MQTT_PASSWORD']}@broker:1883"
    # Reads on the standby, as the same role of the same database.
    (read_url,) = settings.database_read_urls
    assert read_url == settings.database_url.replace("@db:", "@db-replica:")


def test_the_standby_is_a_base_backup_of_db_with_its_own_volume(compose: dict[str, Any]) -> None:
    db, replica = compose["services"]["db"], compose["services"]["db-replica"]
    assert replica["image"] == db["image"]  # pg_basebackup needs the same major version
    assert replica["depends_on"]["db"]["condition"] == "service_healthy"
    assert replica["environment"]["PGPASSWORD"] == COMPOSE_ENV["DB_PASSWORD"]
    mounts = {volume["target"]: volume for volume in replica["volumes"]}
    assert mounts["/var/lib/postgresql/data"]["type"] == "volume"
    assert mounts["/var/lib/postgresql/data"]["source"] != "pgdata"
    script = Path(mounts["/standby.sh"]["source"])
    assert replica["entrypoint"] == ["/bin/sh", "/standby.sh"]
    assert mounts["/standby.sh"]["read_only"] is True
    text = script.read_text()
    assert "pg_basebackup -h db" in text
    assert " -R " in text
    assert "exec postgres -c hot_standby=on" in text
    # The primary allows the replication connection (its init script, run when db is created).
    init = {v["target"]: v for v in db["volumes"]}["/docker-entrypoint-initdb.d/allow-replication.sh"]
    assert "host replication twinhub all" in Path(init["source"]).read_text()
    syntax = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr


def test_replicas_share_one_subscription_group_with_their_own_sessions(compose: dict[str, Any]) -> None:
    environments = [compose["services"][hub]["environment"] for hub in HUBS]
    groups = {env["TWINHUB_MQTT_SHARE_GROUP"] for env in environments}
    client_ids = {env["TWINHUB_MQTT_CLIENT_ID"] for env in environments}
    assert len(groups) == 1
    assert None not in groups
    assert len(client_ids) == len(HUBS)
    published = [port["published"] for hub in HUBS for port in compose["services"][hub]["ports"]]
    assert len(set(published)) == len(HUBS)


@pytest.mark.parametrize("hub", HUBS)
def test_hubs_wait_for_a_healthy_database_and_broker(compose: dict[str, Any], hub: str) -> None:
    service = compose["services"][hub]
    assert {name: dep["condition"] for name, dep in service["depends_on"].items()} == {
        "db": "service_healthy",
        "broker": "service_healthy",
    }
    assert "/health" in " ".join(service["healthcheck"]["test"])
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert service["read_only"] is True


@pytest.mark.parametrize("service", ["db", "db-replica", "broker"])
def test_dependencies_have_healthchecks(compose: dict[str, Any], service: str) -> None:
    assert compose["services"][service]["healthcheck"]["test"]


def test_broker_listens_for_mqtt_and_websockets_with_the_shipped_files(compose: dict[str, Any]) -> None:
    broker = compose["services"]["broker"]
    assert {int(port["target"]) for port in broker["ports"]} == {1883, 9001}
    mounted = {volume["target"]: volume for volume in broker["volumes"]}
    for name in ("mosquitto.conf", "mosquitto.acl", "start.sh"):
        volume = mounted[f"/mosquitto/config/{name}"]
        assert volume["source"] == str(MOSQUITTO / name)
        assert volume["read_only"] is True
    assert mounted["/mosquitto/data"]["type"] == "volume"
    assert broker["entrypoint"] == ["/bin/sh", "/mosquitto/config/start.sh"]


def test_broker_config_keeps_every_acknowledged_message() -> None:
    """LIMITS.md: mosquitto's default queue limit drops acknowledged messages while the hub lags."""
    lines = [line.split() for line in (MOSQUITTO / "mosquitto.conf").read_text().splitlines()]
    directives = {line[0]: line[1:] for line in lines if line and not line[0].startswith("#")}
    assert directives["max_queued_messages"] == ["0"]
    assert directives["max_inflight_messages"] == ["0"]
    assert directives["persistence"] == ["true"]
    assert directives["acl_file"] == ["/mosquitto/config/mosquitto.acl"]
    assert "password_file" in directives


@pytest.mark.parametrize("missing", sorted(COMPOSE_ENV))
def test_no_password_has_a_default(missing: str) -> None:
    rendered = render_compose({key: value for key, value in COMPOSE_ENV.items() if key != missing})
    assert rendered.returncode != 0
    assert missing in rendered.stderr


def test_env_example_names_every_password() -> None:
    example = (DEPLOY / "env.example").read_text()
    assert {line.split("=")[0] for line in example.splitlines() if "=" in line and line[0] != "#"} == set(
        COMPOSE_ENV
    )
